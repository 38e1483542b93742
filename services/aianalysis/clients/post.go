package clients

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// postJSON sends body to url and decodes a 2xx answer into out (when out is non-nil).
func postJSON(ctx context.Context, hc *http.Client, url string, body, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return &PermanentError{fmt.Errorf("encode request for %s: %w", url, err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		return &PermanentError{fmt.Errorf("build request for %s: %w", url, err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read answer of POST %s: %w", url, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		serr := &StatusError{URL: url, StatusCode: resp.StatusCode}
		var body struct{ Error, Field string }
		if json.Unmarshal(raw, &body) == nil {
			serr.Message, serr.Field = body.Error, body.Field
		}
		if retryable(resp.StatusCode) {
			return serr
		}
		return &PermanentError{serr}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return &PermanentError{fmt.Errorf("decode answer of POST %s: %w", url, err)}
		}
	}
	return nil
}
