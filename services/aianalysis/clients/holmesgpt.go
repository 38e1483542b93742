package clients

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// HolmesGPT calls holmesgpt-api.
type HolmesGPT struct {
	BaseURL string
	HTTP    *http.Client
}

// NewHolmesGPT returns a client for the holmesgpt-api at baseURL (e.g. http://holmesgpt-api.kindling.svc:8080).
func NewHolmesGPT(baseURL string) *HolmesGPT {
	return &HolmesGPT{BaseURL: strings.TrimRight(baseURL, "/"), HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// Signal is the alert sent for investigation.
type Signal struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Kind      string            `json:"kind"`
	Severity  string            `json:"severity"`
	Reason    string            `json:"reason"`
	Labels    map[string]string `json:"labels"`
}

// Workflow is a recommended remediation.
type Workflow struct {
	ID         string            `json:"id"`
	Parameters map[string]string `json:"parameters"`
}

// Investigation is holmesgpt-api's answer.
type Investigation struct {
	RootCause           string   `json:"root_cause"`
	Confidence          float64  `json:"confidence"`
	RecommendedWorkflow Workflow `json:"recommended_workflow"`
	NeedsHumanReview    bool     `json:"needs_human_review"`
	Analyser            string   `json:"analyser"`
}

// Investigate posts the signal to /api/v1/investigate. Errors are transient unless IsPermanent says otherwise.
func (c *HolmesGPT) Investigate(ctx context.Context, s Signal) (Investigation, error) {
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	url := c.BaseURL + "/api/v1/investigate"
	var inv Investigation
	if err := postJSON(ctx, c.HTTP, url, map[string]Signal{"signal": s}, &inv); err != nil {
		return Investigation{}, fmt.Errorf("investigate signal %s/%s: %w", s.Namespace, s.Name, err)
	}
	if inv.Confidence < 0 || inv.Confidence > 1 {
		return Investigation{}, &PermanentError{fmt.Errorf("investigate signal %s/%s: %s returned confidence %v outside [0,1]", s.Namespace, s.Name, url, inv.Confidence)}
	}
	return inv, nil
}
