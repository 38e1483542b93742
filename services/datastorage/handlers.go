package main

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	bolterrors "go.etcd.io/bbolt/errors"
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
	return logRequests(s.logger, mux)
}

func (s *server) createEvent(w http.ResponseWriter, r *http.Request) {
	var req eventRequest
	if apiErr := decodeJSON(w, r, maxEventBytes, &req); apiErr != nil {
		writeError(w, apiErr)
		return
	}
	ev, invalid := req.toEvent(s.now())
	if invalid != nil {
		writeError(w, &apiError{status: http.StatusBadRequest, Message: invalid.String(), Field: invalid.Field})
		return
	}
	stored, created, err := s.store.Append(ev)
	if err != nil {
		s.storeFailed(w, err)
		return
	}
	if !created {
		writeJSON(w, http.StatusOK, stored)
		return
	}
	writeJSON(w, http.StatusCreated, stored)
}

func (s *server) listEvents(w http.ResponseWriter, r *http.Request) {
	query := r.URL.Query()
	correlationID := query.Get("correlation_id")
	if correlationID == "" {
		writeError(w, &apiError{status: http.StatusBadRequest, Message: "correlation_id query parameter is required", Field: "correlation_id"})
		return
	}
	events, err := s.store.ByCorrelation(correlationID, query.Get("event_type"))
	if err != nil {
		s.storeFailed(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string][]Event{"events": events})
}

func (s *server) storeFailed(w http.ResponseWriter, err error) {
	s.logger.Error("audit store", "err", err)
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		writeError(w, &apiError{status: http.StatusServiceUnavailable, Message: "audit store is not open"})
		return
	}
	writeError(w, &apiError{status: http.StatusInternalServerError, Message: "audit store failed; see server log"})
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *server) readyz(w http.ResponseWriter, _ *http.Request) {
	if err := s.store.Ping(); err != nil {
		writeError(w, &apiError{status: http.StatusServiceUnavailable, Message: "audit store unavailable: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
