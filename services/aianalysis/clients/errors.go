package clients

import (
	"errors"
	"fmt"
	"net/http"
)

// PermanentError is a failure that retrying cannot fix: a 4xx answer (other than 408 and 429) or an
// answer that breaks the contract. Every other error (network, timeout, 5xx, 408, 429) is transient.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// IsPermanent reports whether err (or an error it wraps) is a PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// StatusError is a non-2xx answer; Message and Field come from the JSON error body when present.
type StatusError struct {
	URL        string
	StatusCode int
	Message    string
	Field      string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s answered %d %s", e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Field != "" {
		msg += " (field " + e.Field + ")"
	}
	return msg
}

func retryable(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout
}
