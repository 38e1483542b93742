package main

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/kindling-dev/kindling/services/datastorage/api"
)

// maxIdentifierBytes bounds the string fields that end up in bbolt index keys.
const maxIdentifierBytes = 256

// fieldError is a validation failure attributable to one request field.
type fieldError struct {
	Field   string
	Message string
}

func (e *fieldError) String() string { return e.Field + " " + e.Message }

// toEvent validates the body of POST /api/v1/audit/events and turns it into an event without an ID.
func toEvent(r api.EventRequest, receivedAt time.Time) (api.Event, *fieldError) {
	if len(r.EventID) > maxIdentifierBytes {
		return api.Event{}, tooLong("event_id")
	}
	required := []struct{ name, value string }{
		{"correlation_id", r.CorrelationID},
		{"event_type", r.EventType},
		{"source", r.Source},
		{"timestamp", r.Timestamp},
	}
	for _, f := range required {
		if strings.TrimSpace(f.value) == "" {
			return api.Event{}, &fieldError{Field: f.name, Message: "is required"}
		}
		if len(f.value) > maxIdentifierBytes {
			return api.Event{}, tooLong(f.name)
		}
	}
	ts, err := time.Parse(time.RFC3339, r.Timestamp)
	if err != nil {
		return api.Event{}, &fieldError{Field: "timestamp", Message: "must be an RFC3339 timestamp, e.g. 2025-01-02T15:04:05Z"}
	}
	payload := bytes.TrimSpace(r.Payload)
	if string(payload) == "null" {
		payload = nil
	}
	if len(payload) > 0 && payload[0] != '{' {
		return api.Event{}, &fieldError{Field: "payload", Message: "must be a JSON object"}
	}
	return api.Event{
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
