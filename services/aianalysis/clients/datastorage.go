package clients

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	dsapi "github.com/kindling-dev/kindling/services/datastorage/api"
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

// RecordEvent stores the event. Both 201 (created) and 200 (an event with this EventID already exists)
// mean the event is stored. An empty Timestamp is set to now. Errors are transient unless IsPermanent
// says otherwise.
func (c *Datastorage) RecordEvent(ctx context.Context, e dsapi.EventRequest) error {
	if e.Timestamp == "" {
		e.Timestamp = time.Now().UTC().Format(time.RFC3339)
	}
	if err := postJSON(ctx, c.HTTP, c.BaseURL+"/api/v1/audit/events", e, nil); err != nil {
		return fmt.Errorf("record audit event %s: %w", e.EventID, err)
	}
	return nil
}
