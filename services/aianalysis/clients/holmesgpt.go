package clients

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	holmesapi "github.com/kindling-dev/kindling/services/holmesgpt-api/api"
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

// Investigate posts the signal to /api/v1/investigate. Errors are transient unless IsPermanent says otherwise.
// The signal is sent with labels {} when it has none.
func (c *HolmesGPT) Investigate(ctx context.Context, s holmesapi.Signal) (holmesapi.Investigation, error) {
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	url := c.BaseURL + "/api/v1/investigate"
	var inv holmesapi.Investigation
	if err := postJSON(ctx, c.HTTP, url, holmesapi.InvestigateRequest{Signal: &s}, &inv); err != nil {
		return holmesapi.Investigation{}, fmt.Errorf("investigate signal %s/%s: %w", s.Namespace, s.Name, err)
	}
	if inv.Confidence < 0 || inv.Confidence > 1 {
		return holmesapi.Investigation{}, &PermanentError{fmt.Errorf("investigate signal %s/%s: %s returned confidence %v outside [0,1]", s.Namespace, s.Name, url, inv.Confidence)}
	}
	return inv, nil
}
