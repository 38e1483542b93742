package serve

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestLogRequests(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	h := LogRequests(logger, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/teapot" {
			w.WriteHeader(http.StatusTeapot)
		}
		_, _ = w.Write([]byte("body"))
	}))
	for _, path := range []string{"/teapot", "/healthz", "/readyz", "/api/v1/things"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, nil))
		if rec.Body.String() != "body" {
			t.Errorf("%s: the handler's answer did not pass through: %q", path, rec.Body.String())
		}
	}

	var got []string
	for line := range strings.Lines(buf.String()) {
		var entry struct {
			Msg, Method, Path string
			Status            int
		}
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		got = append(got, entry.Msg+" "+entry.Method+" "+entry.Path+" "+http.StatusText(entry.Status))
	}
	want := []string{"request POST /teapot I'm a teapot", "request POST /api/v1/things OK"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("access log\n%s\nwant (probes not logged)\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
