package deploy

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A port that accepts and hangs up, as a Kind port mapping does before kube-proxy routes the
// NodePort, is waited for; one that answers HTTP, whatever the status, is reached.
func TestWaitReachable(t *testing.T) {
	var answering atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !answering.Load() {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close() // EOF, like docker-proxy with nothing behind it
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	time.AfterFunc(600*time.Millisecond, func() { answering.Store(true) })
	var log strings.Builder
	err := WaitReachable(context.Background(), map[string]string{"SVC_URL": srv.URL}, 10*time.Second,
		func(f string, a ...any) { log.WriteString(f) })
	if err != nil {
		t.Fatal(err)
	}
	if !answering.Load() {
		t.Error("reached before the server answered HTTP")
	}
	if !strings.Contains(log.String(), "answers") {
		t.Errorf("log %q", log.String())
	}
}

func TestWaitReachableNamesWhatNeverAnswered(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	u := "http://" + l.Addr().String()
	err = WaitReachable(context.Background(), map[string]string{"STORE_URL": u}, time.Second, nil)
	if err == nil || !strings.Contains(err.Error(), "STORE_URL="+u) || !strings.Contains(err.Error(), "did not answer within 1s") {
		t.Fatalf("err = %v, want one naming STORE_URL and the wait", err)
	}
}
