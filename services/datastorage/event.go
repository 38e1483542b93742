package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// maxIdentifierBytes bounds the string fields that end up in bbolt index keys.
const maxIdentifierBytes = 256

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

// eventRequest is the body of POST /api/v1/audit/events.
type eventRequest struct {
	EventID       string          `json:"event_id"`
	CorrelationID string          `json:"correlation_id"`
	EventType     string          `json:"event_type"`
	Source        string          `json:"source"`
	Timestamp     string          `json:"timestamp"`
	Payload       json.RawMessage `json:"payload"`
}

// fieldError is a validation failure attributable to one request field.
type fieldError struct {
	Field   string
	Message string
}

func (e *fieldError) String() string { return e.Field + " " + e.Message }

// toEvent validates the request and turns it into an Event without an ID.
func (r eventRequest) toEvent(receivedAt time.Time) (Event, *fieldError) {
	if len(r.EventID) > maxIdentifierBytes {
		return Event{}, tooLong("event_id")
	}
	required := []struct{ name, value string }{
		{"correlation_id", r.CorrelationID},
		{"event_type", r.EventType},
		{"source", r.Source},
		{"timestamp", r.Timestamp},
	}
	for _, f := range required {
		if strings.TrimSpace(f.value) == "" {
			return Event{}, &fieldError{Field: f.name, Message: "is required"}
		}
		if len(f.value) > maxIdentifierBytes {
			return Event{}, tooLong(f.name)
		}
	}
	ts, err := time.Parse(time.RFC3339, r.Timestamp)
	if err != nil {
		return Event{}, &fieldError{Field: "timestamp", Message: "must be an RFC3339 timestamp, e.g. 2025-01-02T15:04:05Z"}
	}
	payload := bytes.TrimSpace(r.Payload)
	if string(payload) == "null" {
		payload = nil
	}
	if len(payload) > 0 && payload[0] != '{' {
		return Event{}, &fieldError{Field: "payload", Message: "must be a JSON object"}
	}
	return Event{
		EventID:       r.EventID,
		CorrelationID: r.CorrelationID,
		EventType:     r.EventType,
		Source:        r.Source,
		Timestamp:     ts,
		Payload:       payload,
		ReceivedAt:    receivedAt,
	}, nil
}

func tooLong(field string) *fieldError {
	return &fieldError{Field: field, Message: fmt.Sprintf("must be at most %d bytes", maxIdentifierBytes)}
}
