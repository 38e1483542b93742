package main

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/kindling-dev/kindling/services/datastorage/api"
	"github.com/kindling-dev/kindling/services/internal/httpjson"
	"github.com/kindling-dev/kindling/services/internal/serve"
)

// maxEventBytes caps the body of POST /api/v1/audit/events.
const maxEventBytes = 1 << 20

type server struct {
	store  *Store
	now    func() time.Time
	logger *slog.Logger
}

func newServer(store *Store, logger *slog.Logger) *server {
	return &server{store: store, now: func() time.Time { return time.Now().UTC() }, logger: logger}
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/audit/events", s.createEvent)
	mux.HandleFunc("GET /api/v1/audit/events", s.listEvents)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	return serve.LogRequests(s.logger, mux)
}

func (s *server) createEvent(w http.ResponseWriter, r *http.Request) {
	var req api.EventRequest
	if apiErr := httpjson.Decode(w, r, maxEventBytes, &req); apiErr != nil {
		httpjson.WriteError(w, apiErr)
		return
	}
	ev, invalid := toEvent(req, s.now())
	if invalid != nil {
		httpjson.WriteError(w, &httpjson.Error{Status: http.StatusBadRequest, Message: invalid.String(), Field: invalid.Field})
		return
	}
	stored, created, err := s.store.Append(ev)
	if err != nil {
		s.storeFailed(w, err)
		return
	}
	if !created {
		httpjson.Write(w, http.StatusOK, stored)
		return
	}
	httpjson.Write(w, http.StatusCreated, stored)
}

func (s *server) listEvents(w http.ResponseWriter, r *http.Request) {
	query := r.URL.Query()
	correlationID := query.Get("correlation_id")
	if correlationID == "" {
		httpjson.WriteError(w, &httpjson.Error{Status: http.StatusBadRequest, Message: "correlation_id query parameter is required", Field: "correlation_id"})
		return
	}
	events, err := s.store.ByCorrelation(correlationID, query.Get("event_type"))
	if err != nil {
		s.storeFailed(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, api.EventList{Events: events})
}

func (s *server) storeFailed(w http.ResponseWriter, err error) {
	s.logger.Error("audit store", "err", err)
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		httpjson.WriteError(w, &httpjson.Error{Status: http.StatusServiceUnavailable, Message: "audit store is not open"})
		return
	}
	httpjson.WriteError(w, &httpjson.Error{Status: http.StatusInternalServerError, Message: "audit store failed; see server log"})
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *server) readyz(w http.ResponseWriter, _ *http.Request) {
	if err := s.store.Ping(); err != nil {
		httpjson.WriteError(w, &httpjson.Error{Status: http.StatusServiceUnavailable, Message: "audit store unavailable: " + err.Error()})
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
}
