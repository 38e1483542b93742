package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain doubles as a service's main function for TestMain* when SERVE_TEST_MAIN is set, so
// those tests can check exit codes and logs of a real process.
func TestMain(m *testing.M) {
	if mode := os.Getenv("SERVE_TEST_MAIN"); mode != "" {
		os.Args = append([]string{"fake"}, strings.Fields(os.Getenv("SERVE_TEST_ARGS"))...)
		Main("fake", func(args []string, getenv func(string) string) (string, error) {
			var listen string
			return listen, Parse(FlagSet("fake", getenv, &listen), args)
		}, func(ctx context.Context, listen string, logger *slog.Logger) error {
			if mode == "fail" {
				return errors.New("boom")
			}
			slog.Info("via the default logger")
			return Run(ctx, logger, "fake", listen, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusNoContent)
			}))
		})
		os.Exit(0) // returning from main
	}
	os.Exit(m.Run())
}

// syncBuffer is a log destination that the server goroutines and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logEntries decodes JSON log lines into maps.
func logEntries(t *testing.T, log string) []map[string]any {
	t.Helper()
	var entries []map[string]any
	for line := range strings.Lines(log) {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		entries = append(entries, e)
	}
	return entries
}

func messages(entries []map[string]any) []string {
	var msgs []string
	for _, e := range entries {
		msgs = append(msgs, e["msg"].(string))
	}
	return msgs
}

func TestRunServesAndDrainsInFlightRequests(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		<-release
		_, _ = io.WriteString(w, "done")
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- serveOn(ctx, logger, ln, "svc", "configured:1", handler, []any{"data_dir", "/d"}) }()

	type answer struct {
		status int
		body   string
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String())
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		answered <- answer{resp.StatusCode, string(body), err}
	}()
	<-started
	cancel()
	select {
	case err := <-stopped:
		t.Fatalf("Run returned (%v) while a request was in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the in-flight request finished")
	}
	if a := <-answered; a.err != nil || a.status != http.StatusOK || a.body != "done" {
		t.Errorf("in-flight request: %+v, want 200 done", a)
	}
	if _, err := http.Get("http://" + ln.Addr().String()); err == nil {
		t.Error("server still accepts connections after Run returned")
	}

	entries := logEntries(t, logs.String())
	if got := strings.Join(messages(entries), ", "); got != "svc listening, shutting down" {
		t.Fatalf("log messages: %s", got)
	}
	if entries[0]["addr"] != ln.Addr().String() || entries[0]["data_dir"] != "/d" {
		t.Errorf("listening line %v, want the bound address and the extra attributes", entries[0])
	}
	if entries[1]["timeout"] != "10s" {
		t.Errorf("shutting down line %v, want timeout 10s", entries[1])
	}
}

func TestRunListenError(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	err = Run(context.Background(), slog.New(slog.DiscardHandler), "svc", addr, http.NotFoundHandler())
	if err == nil || !strings.HasPrefix(err.Error(), "listen on "+addr+": ") {
		t.Errorf("Run on a taken address: %v", err)
	}
}

func TestRunServeError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	err = serveOn(context.Background(), slog.New(slog.DiscardHandler), ln, "svc", "configured:1", http.NotFoundHandler(), nil)
	if err == nil || !strings.HasPrefix(err.Error(), "serve on configured:1: ") {
		t.Errorf("serve on a closed listener: %v", err)
	}
}

// runMain runs Main in a child process with the mode and arguments given.
func runMain(t *testing.T, mode string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SERVE_TEST_MAIN="+mode, "SERVE_TEST_ARGS="+strings.Join(args, " "), "LISTEN_ADDR=")
	stderr := new(syncBuffer)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, stderr
}

func exitCode(err error) int {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestMainExitCodes(t *testing.T) {
	tests := []struct {
		name  string
		mode  string
		args  []string
		code  int
		wants string // in stderr
	}{
		{"help", "serve", []string{"--help"}, 0, "listen address (env LISTEN_ADDR)"},
		{"invalid command line", "serve", []string{"stray"}, 2, `"msg":"invalid command line","err":"unexpected arguments [\"stray\"]"`},
		{"run fails", "fail", nil, 1, `"msg":"fake failed","err":"boom"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, stderr := runMain(t, tt.mode, tt.args...)
			if code := exitCode(cmd.Wait()); code != tt.code || !strings.Contains(stderr.String(), tt.wants) {
				t.Errorf("exit code %d, want %d; stderr (want %s):\n%s", code, tt.code, tt.wants, stderr)
			}
		})
	}
}

func TestMainStopsCleanlyOnSIGTERM(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd, stderr := runMain(t, "serve", "--listen", addr)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()

	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr)
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child not serving on %s within 10s: %v\nstderr:\n%s", addr, err, stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if code := exitCode(err); code != 0 {
			t.Fatalf("exit code %d after SIGTERM, want 0\nstderr:\n%s", code, stderr)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no exit within 15s of SIGTERM\nstderr:\n%s", stderr)
	}
	got := strings.Join(messages(logEntries(t, stderr.String())), ", ")
	if want := "via the default logger, fake listening, shutting down, stopped"; got != want {
		t.Errorf("log messages: %s\nwant %s", got, want)
	}
}
