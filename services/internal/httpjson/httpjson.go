// Package httpjson writes and reads the JSON bodies of the services' HTTP APIs: replies, the
// contract's error body {"error":"...","field":"..."}, and request bodies decoded strictly (one JSON
// object, no unknown fields, a size cap), with every decoding failure mapped to a client error.
package httpjson

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

// Error is the JSON error body shared by every endpoint; Status is the HTTP status it is sent with.
type Error struct {
	Status  int    `json:"-"`
	Message string `json:"error"`
	Field   string `json:"field,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// Write sends v as a JSON reply with the given status. The body ends with a newline.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		slog.Warn("write response", "err", err)
	}
}

// WriteError sends e as the JSON error body with e.Status.
func WriteError(w http.ResponseWriter, e *Error) { Write(w, e.Status, e) }

// Decode reads exactly one JSON object of at most limit bytes into dst,
// rejecting unknown fields, and maps every failure to a client error.
func Decode(w http.ResponseWriter, r *http.Request, limit int64, dst any) *Error {
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
		return &Error{Status: http.StatusBadRequest, Message: "request body must contain a single JSON object"}
	}
}

func decodeError(err error, limit int64) *Error {
	var (
		maxBytes  *http.MaxBytesError
		syntax    *json.SyntaxError
		typeError *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &maxBytes):
		return &Error{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("request body exceeds %d bytes", limit)}
	case errors.Is(err, io.EOF):
		return &Error{Status: http.StatusBadRequest, Message: "request body is empty; expected a JSON object"}
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Status: http.StatusBadRequest, Message: "request body is not valid JSON: " + err.Error()}
	case errors.As(err, &typeError):
		if typeError.Field == "" {
			return &Error{Status: http.StatusBadRequest, Message: "request body must be a JSON object"}
		}
		return &Error{Status: http.StatusBadRequest, Field: typeError.Field,
			Message: fmt.Sprintf("%s must be JSON %s, got %s", typeError.Field, jsonKind(typeError.Type), typeError.Value)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &Error{Status: http.StatusBadRequest, Field: field, Message: "unknown field " + field}
	default:
		return &Error{Status: http.StatusBadRequest, Message: "invalid request body: " + err.Error()}
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
