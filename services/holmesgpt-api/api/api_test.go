package api

import (
	"encoding/json"
	"testing"
)

// The JSON of the contract in docs/design.md, field for field.
func TestJSONMatchesContract(t *testing.T) {
	req, err := json.Marshal(InvestigateRequest{Signal: &Signal{Name: "api", Namespace: "prod", Kind: "Pod",
		Severity: "critical", Reason: "OOMKilled", Labels: map[string]string{"k": "v"}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"signal":{"name":"api","namespace":"prod","kind":"Pod","severity":"critical","reason":"OOMKilled","labels":{"k":"v"}}}`; string(req) != want {
		t.Errorf("request\n got %s\nwant %s", req, want)
	}

	inv, err := json.Marshal(Investigation{RootCause: "oom", Confidence: 0.9, NeedsHumanReview: false, Analyser: "rules/v1",
		RecommendedWorkflow: Workflow{ID: "increase-memory-limit", Parameters: map[string]string{"k": "v"}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"root_cause":"oom","confidence":0.9,"recommended_workflow":{"id":"increase-memory-limit","parameters":{"k":"v"}},` +
		`"needs_human_review":false,"analyser":"rules/v1"}`; string(inv) != want {
		t.Errorf("investigation\n got %s\nwant %s", inv, want)
	}
}
