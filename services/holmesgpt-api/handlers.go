package main

import (
	"log/slog"
	"net/http"
	"slices"
	"strings"
)

// maxInvestigateBytes caps the body of POST /api/v1/investigate.
const maxInvestigateBytes = 64 << 10

var severities = []string{"info", "warning", "critical"}

// investigateRequest is the body of POST /api/v1/investigate.
type investigateRequest struct {
	Signal *Signal `json:"signal"`
}

// validate reports the first problem with the request, or nil.
func (r investigateRequest) validate() *apiError {
	invalid := func(field, message string) *apiError {
		return &apiError{status: http.StatusBadRequest, Field: field, Message: field + " " + message}
	}
	switch {
	case r.Signal == nil:
		return invalid("signal", "is required")
	case strings.TrimSpace(r.Signal.Name) == "":
		return invalid("signal.name", "is required")
	case strings.TrimSpace(r.Signal.Namespace) == "":
		return invalid("signal.namespace", "is required")
	case r.Signal.Severity != "" && !slices.Contains(severities, r.Signal.Severity):
		return invalid("signal.severity", "must be one of info, warning, critical")
	}
	return nil
}

func routes(logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/investigate", investigate)
	mux.HandleFunc("GET /healthz", ok)
	mux.HandleFunc("GET /readyz", ok)
	return logRequests(logger, mux)
}

func investigate(w http.ResponseWriter, r *http.Request) {
	var req investigateRequest
	if apiErr := decodeJSON(w, r, maxInvestigateBytes, &req); apiErr != nil {
		writeError(w, apiErr)
		return
	}
	if apiErr := req.validate(); apiErr != nil {
		writeError(w, apiErr)
		return
	}
	writeJSON(w, http.StatusOK, Analyse(*req.Signal))
}

// ok serves both probes: the service has no dependencies, so serving means ready.
func ok(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
