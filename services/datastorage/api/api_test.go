package api

import (
	"encoding/json"
	"testing"
	"time"
)

// The JSON of the contract in docs/design.md, field for field.
func TestJSONMatchesContract(t *testing.T) {
	for _, tt := range []struct {
		name string
		v    any
		want string
	}{
		{"request", EventRequest{EventID: "k", CorrelationID: "c", EventType: "t", Source: "s", Timestamp: "2025-01-02T03:04:05Z",
			Payload: json.RawMessage(`{"a":1}`)},
			`{"event_id":"k","correlation_id":"c","event_type":"t","source":"s","timestamp":"2025-01-02T03:04:05Z","payload":{"a":1}}`},
		{"request without the optional fields", EventRequest{CorrelationID: "c", EventType: "t", Source: "s", Timestamp: "2025-01-02T03:04:05Z"},
			`{"correlation_id":"c","event_type":"t","source":"s","timestamp":"2025-01-02T03:04:05Z"}`},
		{"list", EventList{Events: []Event{{ID: "0000000000000001", CorrelationID: "c", EventType: "t", Source: "s",
			Timestamp: time.Date(2025, 1, 2, 3, 4, 5, 0, time.FixedZone("", 7200)), ReceivedAt: time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)}}},
			`{"events":[{"id":"0000000000000001","correlation_id":"c","event_type":"t","source":"s","timestamp":"2025-01-02T03:04:05+02:00","received_at":"2025-06-07T08:09:10Z"}]}`},
		{"empty list", EventList{Events: []Event{}}, `{"events":[]}`},
	} {
		got, err := json.Marshal(tt.v)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tt.want {
			t.Errorf("%s\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}
