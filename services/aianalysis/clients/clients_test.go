package clients_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kindling-dev/kindling/services/aianalysis/clients"
	dsapi "github.com/kindling-dev/kindling/services/datastorage/api"
	holmesapi "github.com/kindling-dev/kindling/services/holmesgpt-api/api"
)

func serve(t *testing.T, status int, body string, seen *map[string]any) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seen != nil {
			raw, _ := io.ReadAll(r.Body)
			if err := json.Unmarshal(raw, seen); err != nil {
				t.Errorf("request body %s: %v", raw, err)
			}
			(*seen)["_path"] = r.Method + " " + r.URL.Path
			(*seen)["_contentType"] = r.Header.Get("Content-Type")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestInvestigate(t *testing.T) {
	var seen map[string]any
	url := serve(t, 200, `{"root_cause":"oom","confidence":0.92,"recommended_workflow":{"id":"increase-memory-limit","parameters":{"namespace":"staging"}},"needs_human_review":false,"analyser":"rules/v1"}`, &seen)
	inv, err := clients.NewHolmesGPT(url+"/").Investigate(context.Background(), holmesapi.Signal{Name: "api", Namespace: "staging", Reason: "OOMKilled"})
	if err != nil {
		t.Fatal(err)
	}
	if inv.RootCause != "oom" || inv.Confidence != 0.92 || inv.RecommendedWorkflow.ID != "increase-memory-limit" ||
		inv.RecommendedWorkflow.Parameters["namespace"] != "staging" || inv.Analyser != "rules/v1" {
		t.Errorf("investigation = %+v", inv)
	}
	if seen["_path"] != "POST /api/v1/investigate" || seen["_contentType"] != "application/json" {
		t.Errorf("request %v %v", seen["_path"], seen["_contentType"])
	}
	signal, _ := seen["signal"].(map[string]any)
	if signal["reason"] != "OOMKilled" || signal["namespace"] != "staging" || signal["labels"] == nil {
		t.Errorf("signal sent = %v, want all contract fields (labels as {})", signal)
	}
}

func TestInvestigateErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		name      string
		url       string
		permanent bool
		mentions  string
	}{
		{"500", serve(t, 500, `{"error":"boom"}`, nil), false, "boom"},
		{"503 without body", serve(t, 503, ``, nil), false, "503"},
		{"429", serve(t, 429, `{"error":"slow down"}`, nil), false, "429"},
		{"408", serve(t, 408, ``, nil), false, "408"},
		{"connection refused", closedURL(t), false, "investigate"},
		{"400", serve(t, 400, `{"error":"is required","field":"signal.reason"}`, nil), true, "signal.reason"},
		{"404", serve(t, 404, `not json`, nil), true, "404"},
		{"bad JSON", serve(t, 200, `{"root_cause":`, nil), true, "decode"},
		{"confidence out of range", serve(t, 200, `{"confidence":1.5}`, nil), true, "confidence"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := clients.NewHolmesGPT(tc.url).Investigate(context.Background(), holmesapi.Signal{Name: "a", Namespace: "b"})
			if err == nil {
				t.Fatal("want an error")
			}
			if clients.IsPermanent(err) != tc.permanent || !strings.Contains(err.Error(), tc.mentions) {
				t.Errorf("error %q: permanent = %v, want %v and a mention of %q", err, clients.IsPermanent(err), tc.permanent, tc.mentions)
			}
		})
	}
}

func TestRecordEvent(t *testing.T) {
	for _, status := range []int{201, 200} {
		var seen map[string]any
		url := serve(t, status, `{"id":"1"}`, &seen)
		err := clients.NewDatastorage(url).RecordEvent(context.Background(), dsapi.EventRequest{
			EventID: "uid/Pending", CorrelationID: "uid", EventType: "aianalysis.phase.pending", Source: "aianalysis-controller",
			Timestamp: "2026-03-01T12:00:00Z", Payload: json.RawMessage(`{"phase":"Pending"}`),
		})
		if err != nil {
			t.Fatalf("%d: %v", status, err)
		}
		if seen["_path"] != "POST /api/v1/audit/events" || seen["event_id"] != "uid/Pending" || seen["correlation_id"] != "uid" ||
			seen["event_type"] != "aianalysis.phase.pending" || seen["source"] != "aianalysis-controller" ||
			seen["timestamp"] != "2026-03-01T12:00:00Z" || seen["payload"].(map[string]any)["phase"] != "Pending" {
			t.Errorf("%d: body %v", status, seen)
		}
	}
}

func TestRecordEventErrorClasses(t *testing.T) {
	ds := func(url string) error {
		return clients.NewDatastorage(url).RecordEvent(context.Background(), dsapi.EventRequest{EventID: "x"})
	}
	if err := ds(serve(t, 400, `{"error":"is required","field":"correlation_id"}`, nil)); !clients.IsPermanent(err) || !strings.Contains(err.Error(), "correlation_id") {
		t.Errorf("400: %v", err)
	}
	for _, url := range []string{serve(t, 500, `{"error":"disk full"}`, nil), closedURL(t)} {
		if err := ds(url); err == nil || clients.IsPermanent(err) {
			t.Errorf("%s: %v, want a transient error", url, err)
		}
	}
	var serr *clients.StatusError
	if err := ds(serve(t, 503, `{"error":"closing"}`, nil)); !errors.As(err, &serr) || serr.StatusCode != 503 || serr.Message != "closing" {
		t.Errorf("503: %v", err)
	}
}
