package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kindling-dev/kindling/services/holmesgpt-api/api"
	"github.com/kindling-dev/kindling/services/internal/servicetest"
)

func newTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(routes(slog.New(slog.DiscardHandler)))
	t.Cleanup(ts.Close)
	return ts
}

const oomRequest = `{"signal":{"name":"api-7d9","namespace":"prod","kind":"Pod","severity":"critical",
	"reason":"OOMKilled","labels":{"container":"app","team":"payments"}}}`

func TestInvestigateReturnsExactAnswer(t *testing.T) {
	ts := newTestServer(t)
	status, body := servicetest.Do(t, "POST", ts.URL+"/api/v1/investigate", oomRequest)
	if status != http.StatusOK {
		t.Fatalf("status %d body %s", status, body)
	}
	want := `{"root_cause":"Pod/api-7d9 in namespace prod was OOMKilled: a container exceeded its memory limit and was killed by the kernel.",` +
		`"confidence":0.92,"recommended_workflow":{"id":"increase-memory-limit","parameters":{"container":"app",` +
		`"memory_increase_percent":"50","namespace":"prod","target_kind":"Pod","target_name":"api-7d9"}},` +
		`"needs_human_review":false,"analyser":"rules/v1"}` + "\n"
	if string(body) != want {
		t.Errorf("body\n got %s\nwant %s", body, want)
	}
}

func TestInvestigateIsByteIdenticalAcrossRequests(t *testing.T) {
	ts := newTestServer(t)
	_, first := servicetest.Do(t, "POST", ts.URL+"/api/v1/investigate", oomRequest)
	for range 10 {
		if _, again := servicetest.Do(t, "POST", ts.URL+"/api/v1/investigate", oomRequest); string(again) != string(first) {
			t.Fatalf("responses differ:\n%s\n%s", first, again)
		}
	}
}

func TestInvestigateUnclassifiedIs200(t *testing.T) {
	ts := newTestServer(t)
	status, body := servicetest.Do(t, "POST", ts.URL+"/api/v1/investigate", `{"signal":{"name":"x","namespace":"y"}}`)
	if status != http.StatusOK {
		t.Fatalf("status %d body %s, want 200", status, body)
	}
	var got api.Investigation
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got.RootCause, "unclassified signal: ") || got.RecommendedWorkflow.ID != "manual-investigation" ||
		got.Confidence != 0.2 || !got.NeedsHumanReview {
		t.Errorf("unclassified answer = %+v", got)
	}
}

func TestInvestigateValidation(t *testing.T) {
	ts := newTestServer(t)
	tests := []struct {
		name   string
		body   string
		status int
		field  string
	}{
		{"missing signal", `{}`, 400, "signal"},
		{"null signal", `{"signal":null}`, 400, "signal"},
		{"missing name", `{"signal":{"namespace":"n"}}`, 400, "signal.name"},
		{"blank name", `{"signal":{"name":" ","namespace":"n"}}`, 400, "signal.name"},
		{"missing namespace", `{"signal":{"name":"a"}}`, 400, "signal.namespace"},
		{"bad severity", `{"signal":{"name":"a","namespace":"n","severity":"fatal"}}`, 400, "signal.severity"},
		{"unknown top-level field", `{"signal":{"name":"a","namespace":"n"},"model":"gpt"}`, 400, "model"},
		{"unknown signal field", `{"signal":{"name":"a","namespace":"n","colour":"red"}}`, 400, "colour"},
		{"label not a string", `{"signal":{"name":"a","namespace":"n","labels":{"x":1}}}`, 400, "signal.labels"},
		{"signal not an object", `{"signal":"OOMKilled"}`, 400, "signal"},
		{"not JSON", `signal=1`, 400, ""},
		{"empty body", ``, 400, ""},
		{"trailing data", `{"signal":{"name":"a","namespace":"n"}} {}`, 400, ""},
		{"too large", `{"signal":{"name":"a","namespace":"n","labels":{"x":"` + strings.Repeat("a", maxInvestigateBytes) + `"}}}`, 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := servicetest.Do(t, "POST", ts.URL+"/api/v1/investigate", tt.body)
			if status != tt.status {
				t.Fatalf("status %d body %s, want %d", status, body, tt.status)
			}
			var got map[string]string
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("error body %s: %v", body, err)
			}
			if got["error"] == "" || got["field"] != tt.field {
				t.Errorf("body %s, want an error naming field %q", body, tt.field)
			}
		})
	}
}

func TestValidSeveritiesAccepted(t *testing.T) {
	ts := newTestServer(t)
	for _, sev := range []string{"", "info", "warning", "critical"} {
		body := `{"signal":{"name":"a","namespace":"n","reason":"HighLatency","severity":"` + sev + `"}}`
		if status, resp := servicetest.Do(t, "POST", ts.URL+"/api/v1/investigate", body); status != http.StatusOK {
			t.Errorf("severity %q: status %d body %s", sev, status, resp)
		}
	}
}

func TestProbesAndMethods(t *testing.T) {
	ts := newTestServer(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		status, body := servicetest.Do(t, "GET", ts.URL+path, "")
		if status != http.StatusOK || strings.TrimSpace(string(body)) != `{"status":"ok"}` {
			t.Errorf("%s: status %d body %s", path, status, body)
		}
	}
	if status, _ := servicetest.Do(t, "GET", ts.URL+"/api/v1/investigate", ""); status != http.StatusMethodNotAllowed {
		t.Errorf("GET /api/v1/investigate: status %d, want 405", status)
	}
}
