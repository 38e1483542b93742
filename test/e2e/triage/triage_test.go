//go:build e2e

// Package triage is the e2e suite of the triage suite: holmesgpt-api investigates a signal in the
// cluster and the result is kept in datastorage's audit trail, both reached through the Kind
// port mappings of manifests/kind/triage.yaml.
//
// Run it through `go run magefile.go suite:test triage`; kindling passes HOLMESGPT_API_URL and
// DATASTORAGE_URL from test/suites/triage.yaml.
package triage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	datastorage "github.com/kindling-dev/kindling/services/datastorage/api"
	holmes "github.com/kindling-dev/kindling/services/holmesgpt-api/api"
)

func endpoint(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run the suite with `go run magefile.go suite:test triage`", name)
	}
	return v
}

func TestInvestigationIsAudited(t *testing.T) {
	holmesURL, storeURL := endpoint(t, "HOLMESGPT_API_URL"), endpoint(t, "DATASTORAGE_URL")
	var inv holmes.Investigation
	post(t, holmesURL+"/api/v1/investigate", holmes.InvestigateRequest{Signal: &holmes.Signal{
		Name: "checkout", Namespace: "shop", Kind: "Deployment", Severity: "critical", Reason: "OOMKilled",
	}}, &inv)
	if inv.RecommendedWorkflow.ID != "increase-memory-limit" || inv.Confidence < 0.9 || inv.NeedsHumanReview {
		t.Fatalf("investigation of an OOMKilled signal: %+v", inv)
	}

	correlation := fmt.Sprintf("triage-e2e-%d", time.Now().UnixNano())
	payload, _ := json.Marshal(inv)
	event := datastorage.EventRequest{
		EventID: correlation + "-investigated", CorrelationID: correlation, EventType: "triage.investigated",
		Source: "triage-e2e", Timestamp: time.Now().UTC().Format(time.RFC3339), Payload: payload,
	}
	var stored datastorage.Event
	post(t, storeURL+"/api/v1/audit/events", event, &stored)
	// The same event again is not a second event: event_id is the idempotency key.
	post(t, storeURL+"/api/v1/audit/events", event, &stored)

	var list datastorage.EventList
	get(t, storeURL+"/api/v1/audit/events?correlation_id="+url.QueryEscape(correlation), &list)
	if len(list.Events) != 1 {
		t.Fatalf("audit trail of %s has %d events, want 1: %+v", correlation, len(list.Events), list.Events)
	}
	var kept holmes.Investigation
	if err := json.Unmarshal(list.Events[0].Payload, &kept); err != nil || kept.RecommendedWorkflow.ID != "increase-memory-limit" {
		t.Errorf("stored payload %s (%v), want the investigation", list.Events[0].Payload, err)
	}
}

func post(t *testing.T, target string, body, into any) {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	do(t, http.MethodPost, target, data, into)
}

func get(t *testing.T, target string, into any) {
	t.Helper()
	do(t, http.MethodGet, target, nil, into)
}

func do(t *testing.T, method, target string, body []byte, into any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var msg bytes.Buffer
		msg.ReadFrom(resp.Body)
		t.Fatalf("%s %s: %s: %s", method, target, resp.Status, msg.String())
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		t.Fatalf("%s %s: decode: %v", method, target, err)
	}
}
