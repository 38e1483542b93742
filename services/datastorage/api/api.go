// Package api holds the wire types of the datastorage HTTP API (see docs/design.md), shared by the
// server and its clients so that both sides always agree on the JSON.
package api

import (
	"encoding/json"
	"time"
)

// EventRequest is the body of POST /api/v1/audit/events.
type EventRequest struct {
	// EventID is the idempotency key: datastorage stores one event per EventID.
	EventID       string `json:"event_id,omitempty"`
	CorrelationID string `json:"correlation_id"`
	EventType     string `json:"event_type"`
	Source        string `json:"source"`
	// Timestamp is RFC 3339 with a zone, e.g. 2025-01-02T15:04:05Z.
	Timestamp string `json:"timestamp"`
	// Payload is a JSON object, or empty.
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Event is an audit event as stored and returned by the API.
type Event struct {
	ID            string          `json:"id"`
	EventID       string          `json:"event_id,omitempty"`
	CorrelationID string          `json:"correlation_id"`
	EventType     string          `json:"event_type"`
	Source        string          `json:"source"`
	Timestamp     time.Time       `json:"timestamp"`
	Payload       json.RawMessage `json:"payload,omitempty"`
	ReceivedAt    time.Time       `json:"received_at"`
}

// EventList is the answer to GET /api/v1/audit/events.
type EventList struct {
	Events []Event `json:"events"`
}
