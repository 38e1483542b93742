package main

import (
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/kindling-dev/kindling/services/holmesgpt-api/api"
	"github.com/kindling-dev/kindling/services/internal/httpjson"
	"github.com/kindling-dev/kindling/services/internal/serve"
)

// maxInvestigateBytes caps the body of POST /api/v1/investigate.
const maxInvestigateBytes = 64 << 10

var severities = []string{"info", "warning", "critical"}

// validate reports the first problem with the body of POST /api/v1/investigate, or nil.
func validate(r api.InvestigateRequest) *httpjson.Error {
	invalid := func(field, message string) *httpjson.Error {
		return &httpjson.Error{Status: http.StatusBadRequest, Field: field, Message: field + " " + message}
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
	return serve.LogRequests(logger, mux)
}

func investigate(w http.ResponseWriter, r *http.Request) {
	var req api.InvestigateRequest
	if apiErr := httpjson.Decode(w, r, maxInvestigateBytes, &req); apiErr != nil {
		httpjson.WriteError(w, apiErr)
		return
	}
	if apiErr := validate(req); apiErr != nil {
		httpjson.WriteError(w, apiErr)
		return
	}
	httpjson.Write(w, http.StatusOK, Analyse(*req.Signal))
}

// ok serves both probes: the service has no dependencies, so serving means ready.
func ok(w http.ResponseWriter, _ *http.Request) {
	httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
}
