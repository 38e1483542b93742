package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kindling-dev/kindling/services/datastorage/api"
	"github.com/kindling-dev/kindling/services/internal/servicetest"
)

var fixedNow = time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)

func newTestServer(t *testing.T) (*httptest.Server, *Store) {
	t.Helper()
	store := openTestStore(t, t.TempDir())
	srv := newServer(store, slog.New(slog.DiscardHandler))
	srv.now = func() time.Time { return fixedNow }
	ts := httptest.NewServer(srv.routes())
	t.Cleanup(ts.Close)
	return ts, store
}

func decode[T any](t *testing.T, data []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return v
}

const validEvent = `{"correlation_id":"c1","event_type":"aianalysis.completed","source":"aianalysis",
	"timestamp":"2025-01-02T03:04:05+02:00","payload":{"decision":"auto-approved","n":1}}`

func TestCreateEventReturns201WithStoredEvent(t *testing.T) {
	ts, _ := newTestServer(t)
	status, body := servicetest.Do(t, "POST", ts.URL+"/api/v1/audit/events", validEvent)
	if status != http.StatusCreated {
		t.Fatalf("status %d body %s, want 201", status, body)
	}
	got := decode[map[string]any](t, body)
	want := map[string]any{
		"id":             "0000000000000001",
		"correlation_id": "c1",
		"event_type":     "aianalysis.completed",
		"source":         "aianalysis",
		"timestamp":      "2025-01-02T03:04:05+02:00",
		"payload":        map[string]any{"decision": "auto-approved", "n": float64(1)},
		"received_at":    "2025-06-07T08:09:10Z",
	}
	if mustJSON(t, got) != mustJSON(t, want) {
		t.Errorf("response\n got %s\nwant %s", mustJSON(t, got), mustJSON(t, want))
	}
}

func TestCreateEventIdempotencyKey(t *testing.T) {
	ts, _ := newTestServer(t)
	body := `{"event_id":"k-1","correlation_id":"c1","event_type":"t","source":"s","timestamp":"2025-01-02T03:04:05Z"}`
	status, first := servicetest.Do(t, "POST", ts.URL+"/api/v1/audit/events", body)
	if status != http.StatusCreated {
		t.Fatalf("first POST: status %d body %s", status, first)
	}
	status, second := servicetest.Do(t, "POST", ts.URL+"/api/v1/audit/events", body)
	if status != http.StatusOK {
		t.Fatalf("repeat POST: status %d body %s, want 200", status, second)
	}
	if string(first) != string(second) {
		t.Errorf("repeat POST returned\n%s\nwant the stored event\n%s", second, first)
	}
	_, list := servicetest.Do(t, "GET", ts.URL+"/api/v1/audit/events?correlation_id=c1", "")
	if n := len(decode[api.EventList](t, list).Events); n != 1 {
		t.Errorf("%d events stored, want 1", n)
	}
}

func TestCreateEventValidation(t *testing.T) {
	ts, _ := newTestServer(t)
	tests := []struct {
		name   string
		body   string
		status int
		field  string
	}{
		{"missing correlation_id", `{"event_type":"t","source":"s","timestamp":"2025-01-02T03:04:05Z"}`, 400, "correlation_id"},
		{"blank event_type", `{"correlation_id":"c","event_type":"  ","source":"s","timestamp":"2025-01-02T03:04:05Z"}`, 400, "event_type"},
		{"missing source", `{"correlation_id":"c","event_type":"t","timestamp":"2025-01-02T03:04:05Z"}`, 400, "source"},
		{"missing timestamp", `{"correlation_id":"c","event_type":"t","source":"s"}`, 400, "timestamp"},
		{"bad timestamp", `{"correlation_id":"c","event_type":"t","source":"s","timestamp":"yesterday"}`, 400, "timestamp"},
		{"timestamp without zone", `{"correlation_id":"c","event_type":"t","source":"s","timestamp":"2025-01-02T03:04:05"}`, 400, "timestamp"},
		{"payload array", `{"correlation_id":"c","event_type":"t","source":"s","timestamp":"2025-01-02T03:04:05Z","payload":[1]}`, 400, "payload"},
		{"payload string", `{"correlation_id":"c","event_type":"t","source":"s","timestamp":"2025-01-02T03:04:05Z","payload":"x"}`, 400, "payload"},
		{"unknown field", `{"correlation_id":"c","event_type":"t","source":"s","timestamp":"2025-01-02T03:04:05Z","extra":1}`, 400, "extra"},
		{"wrong type", `{"correlation_id":7,"event_type":"t","source":"s","timestamp":"2025-01-02T03:04:05Z"}`, 400, "correlation_id"},
		{"too long", `{"correlation_id":"` + strings.Repeat("x", 257) + `","event_type":"t","source":"s","timestamp":"2025-01-02T03:04:05Z"}`, 400, "correlation_id"},
		{"not JSON", `correlation_id=c`, 400, ""},
		{"truncated JSON", `{"correlation_id":"c"`, 400, ""},
		{"array body", `[]`, 400, ""},
		{"empty body", ``, 400, ""},
		{"two objects", validEvent + validEvent, 400, ""},
		{"too large", `{"correlation_id":"c","event_type":"t","source":"s","timestamp":"2025-01-02T03:04:05Z","payload":{"x":"` +
			strings.Repeat("a", maxEventBytes) + `"}}`, 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := servicetest.Do(t, "POST", ts.URL+"/api/v1/audit/events", tt.body)
			if status != tt.status {
				t.Fatalf("status %d body %s, want %d", status, body, tt.status)
			}
			got := decode[map[string]string](t, body)
			if got["error"] == "" {
				t.Errorf("error body %s has no error message", body)
			}
			if got["field"] != tt.field {
				t.Errorf("field = %q, want %q (body %s)", got["field"], tt.field, body)
			}
		})
	}
}

func TestCreateEventAcceptsNullOrMissingPayload(t *testing.T) {
	ts, _ := newTestServer(t)
	for _, payload := range []string{``, `,"payload":null`} {
		body := `{"correlation_id":"c","event_type":"t","source":"s","timestamp":"2025-01-02T03:04:05.123Z"` + payload + `}`
		status, resp := servicetest.Do(t, "POST", ts.URL+"/api/v1/audit/events", body)
		if status != http.StatusCreated {
			t.Fatalf("payload %q: status %d body %s", payload, status, resp)
		}
		if _, ok := decode[map[string]any](t, resp)["payload"]; ok {
			t.Errorf("payload %q: response %s has a payload, want none", payload, resp)
		}
	}
}

func TestListEvents(t *testing.T) {
	ts, _ := newTestServer(t)
	for _, e := range []struct{ cid, typ string }{{"c1", "a"}, {"c2", "a"}, {"c1", "b"}, {"c1", "a"}} {
		body := `{"correlation_id":"` + e.cid + `","event_type":"` + e.typ + `","source":"s","timestamp":"2025-01-02T03:04:05Z"}`
		if status, resp := servicetest.Do(t, "POST", ts.URL+"/api/v1/audit/events", body); status != http.StatusCreated {
			t.Fatalf("seed: status %d body %s", status, resp)
		}
	}
	ids := func(query string) string {
		status, body := servicetest.Do(t, "GET", ts.URL+"/api/v1/audit/events?"+query, "")
		if status != http.StatusOK {
			t.Fatalf("GET %s: status %d body %s", query, status, body)
		}
		var out []string
		for _, ev := range decode[api.EventList](t, body).Events {
			out = append(out, ev.ID[len(ev.ID)-1:])
		}
		return strings.Join(out, ",")
	}
	if got := ids("correlation_id=c1"); got != "1,3,4" {
		t.Errorf("c1 ids = %s, want 1,3,4", got)
	}
	if got := ids("correlation_id=c1&event_type=a"); got != "1,4" {
		t.Errorf("c1 type a ids = %s, want 1,4", got)
	}

	status, body := servicetest.Do(t, "GET", ts.URL+"/api/v1/audit/events?correlation_id=none", "")
	if status != http.StatusOK || strings.TrimSpace(string(body)) != `{"events":[]}` {
		t.Errorf("unknown correlation: status %d body %s, want 200 {\"events\":[]}", status, body)
	}
}

func TestListEventsRequiresCorrelationID(t *testing.T) {
	ts, _ := newTestServer(t)
	status, body := servicetest.Do(t, "GET", ts.URL+"/api/v1/audit/events", "")
	if status != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", status)
	}
	if got := decode[map[string]string](t, body); got["field"] != "correlation_id" {
		t.Errorf("body %s, want field correlation_id", body)
	}
}

func TestProbes(t *testing.T) {
	ts, store := newTestServer(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		status, body := servicetest.Do(t, "GET", ts.URL+path, "")
		if status != http.StatusOK || strings.TrimSpace(string(body)) != `{"status":"ok"}` {
			t.Errorf("%s: status %d body %s, want 200 {\"status\":\"ok\"}", path, status, body)
		}
	}

	store.Close()
	if status, _ := servicetest.Do(t, "GET", ts.URL+"/readyz", ""); status != http.StatusServiceUnavailable {
		t.Errorf("/readyz with closed store: status %d, want 503", status)
	}
	if status, _ := servicetest.Do(t, "GET", ts.URL+"/healthz", ""); status != http.StatusOK {
		t.Errorf("/healthz with closed store: status %d, want 200", status)
	}
	if status, _ := servicetest.Do(t, "POST", ts.URL+"/api/v1/audit/events", validEvent); status != http.StatusServiceUnavailable {
		t.Errorf("POST with closed store: status %d, want 503", status)
	}
}

func TestWrongMethodIsRejected(t *testing.T) {
	ts, _ := newTestServer(t)
	if status, _ := servicetest.Do(t, "DELETE", ts.URL+"/api/v1/audit/events", ""); status != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: status %d, want 405", status)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
