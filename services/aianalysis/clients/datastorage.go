package clients

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Datastorage records audit events in datastorage.
type Datastorage struct {
	BaseURL string
	HTTP    *http.Client
}

// NewDatastorage returns a client for the datastorage at baseURL (e.g. http://datastorage.kindling.svc:8080).
func NewDatastorage(baseURL string) *Datastorage {
	return &Datastorage{BaseURL: strings.TrimRight(baseURL, "/"), HTTP: &http.Client{Timeout: 10 * time.Second}}
}

// AuditEvent is the body of POST /api/v1/audit/events.
type AuditEvent struct {
	// EventID is the idempotency key: datastorage stores one event per EventID.
	EventID       string         `json:"event_id,omitempty"`
	CorrelationID string         `json:"correlation_id"`
	EventType     string         `json:"event_type"`
	Source        string         `json:"source"`
	Timestamp     string         `json:"timestamp"`
	Payload       map[string]any `json:"payload,omitempty"`
}

// RecordEvent stores the event. Both 201 (created) and 200 (an event with this EventID already exists)
// mean the event is stored. Errors are transient unless IsPermanent says otherwise.
func (c *Datastorage) RecordEvent(ctx context.Context, e AuditEvent) error {
	if e.Timestamp == "" {
		e.Timestamp = time.Now().UTC().Format(time.RFC3339)
	}
	if err := postJSON(ctx, c.HTTP, c.BaseURL+"/api/v1/audit/events", e, nil); err != nil {
		return fmt.Errorf("record audit event %s: %w", e.EventID, err)
	}
	return nil
}
