// Package api holds the wire types of the holmesgpt-api HTTP API (see docs/design.md), shared by the
// server and its clients so that both sides always agree on the JSON.
package api

// InvestigateRequest is the body of POST /api/v1/investigate. Signal is a pointer so that the server
// can tell a missing signal from an empty one.
type InvestigateRequest struct {
	Signal *Signal `json:"signal"`
}

// Signal is the alert being investigated.
type Signal struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Kind      string            `json:"kind"`
	Severity  string            `json:"severity"`
	Reason    string            `json:"reason"`
	Labels    map[string]string `json:"labels"`
}

// Investigation is the answer to POST /api/v1/investigate.
type Investigation struct {
	RootCause           string   `json:"root_cause"`
	Confidence          float64  `json:"confidence"`
	RecommendedWorkflow Workflow `json:"recommended_workflow"`
	NeedsHumanReview    bool     `json:"needs_human_review"`
	Analyser            string   `json:"analyser"`
}

// Workflow is the recommended remediation.
type Workflow struct {
	ID         string            `json:"id"`
	Parameters map[string]string `json:"parameters"`
}
