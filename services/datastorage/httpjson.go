package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
)

// apiError is the JSON error body shared by every endpoint.
type apiError struct {
	status  int
	Message string `json:"error"`
	Field   string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		slog.Warn("write response", "err", err)
	}
}

func writeError(w http.ResponseWriter, e *apiError) { writeJSON(w, e.status, e) }

// decodeJSON reads exactly one JSON object of at most limit bytes into dst,
// rejecting unknown fields, and maps every failure to a client error.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, dst any) *apiError {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, limit)
	}
	switch _, err := dec.Token(); {
	case err == io.EOF:
		return nil
	case errors.As(err, new(*http.MaxBytesError)):
		return decodeError(err, limit)
	default:
		return &apiError{status: http.StatusBadRequest, Message: "request body must contain a single JSON object"}
	}
}

func decodeError(err error, limit int64) *apiError {
	var (
		maxBytes  *http.MaxBytesError
		syntax    *json.SyntaxError
		typeError *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &maxBytes):
		return &apiError{status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("request body exceeds %d bytes", limit)}
	case errors.Is(err, io.EOF):
		return &apiError{status: http.StatusBadRequest, Message: "request body is empty; expected a JSON object"}
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return &apiError{status: http.StatusBadRequest, Message: "request body is not valid JSON: " + err.Error()}
	case errors.As(err, &typeError):
		if typeError.Field == "" {
			return &apiError{status: http.StatusBadRequest, Message: "request body must be a JSON object"}
		}
		return &apiError{status: http.StatusBadRequest, Field: typeError.Field,
			Message: fmt.Sprintf("%s must be JSON %s, got %s", typeError.Field, jsonKind(typeError.Type), typeError.Value)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &apiError{status: http.StatusBadRequest, Field: field, Message: "unknown field " + field}
	default:
		return &apiError{status: http.StatusBadRequest, Message: "invalid request body: " + err.Error()}
	}
}

// jsonKind names the JSON value a Go type decodes from.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	default:
		return "number"
	}
}

// statusRecorder captures the status code for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

// logRequests logs every request except the probes, which would drown the log.
func logRequests(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		logger.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status)
	})
}
