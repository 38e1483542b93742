package httpjson

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, http.StatusCreated, map[string]string{"status": "ok"})
	if rec.Code != http.StatusCreated {
		t.Errorf("status %d, want 201", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if got := rec.Body.String(); got != `{"status":"ok"}`+"\n" {
		t.Errorf("body %q", got)
	}
}

func TestWriteError(t *testing.T) {
	for _, tt := range []struct {
		err  *Error
		want string
	}{
		{&Error{Status: http.StatusBadRequest, Message: "name is required", Field: "name"}, `{"error":"name is required","field":"name"}` + "\n"},
		{&Error{Status: http.StatusServiceUnavailable, Message: "store is not open"}, `{"error":"store is not open"}` + "\n"},
	} {
		rec := httptest.NewRecorder()
		WriteError(rec, tt.err)
		if rec.Code != tt.err.Status || rec.Body.String() != tt.want {
			t.Errorf("WriteError(%+v): status %d body %q, want %d %q", tt.err, rec.Code, rec.Body.String(), tt.err.Status, tt.want)
		}
		if rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("WriteError(%+v): Content-Type %q", tt.err, rec.Header().Get("Content-Type"))
		}
	}
}

func TestErrorIsAnError(t *testing.T) {
	var err error = &Error{Status: http.StatusBadRequest, Message: "x must be JSON string, got number", Field: "x"}
	var e *Error
	if !errors.As(err, &e) || err.Error() != "x must be JSON string, got number" {
		t.Errorf("Error() = %q", err.Error())
	}
}

type body struct {
	Name  string            `json:"name"`
	OK    bool              `json:"ok"`
	List  []string          `json:"list"`
	Tags  map[string]string `json:"tags"`
	Inner *struct {
		N int `json:"n"`
	} `json:"inner"`
}

func TestDecode(t *testing.T) {
	const limit = 64
	tests := []struct {
		name    string
		body    string
		status  int    // 0: no error
		field   string // the error's field
		message string // the error's message, or its prefix when it ends with "…"
	}{
		{"one object", `{"name":"a","inner":{"n":1}}`, 0, "", ""},
		{"trailing whitespace", "{\"name\":\"a\"}\n\t ", 0, "", ""},
		{"empty body", ``, 400, "", "request body is empty; expected a JSON object"},
		{"not JSON", `name=a`, 400, "", "request body is not valid JSON: …"},
		{"truncated", `{"name":"a"`, 400, "", "request body is not valid JSON: …"},
		{"array body", `[]`, 400, "", "request body must be a JSON object"},
		{"string body", `"a"`, 400, "", "request body must be a JSON object"},
		{"two objects", `{}{}`, 400, "", "request body must contain a single JSON object"},
		{"trailing garbage", `{} x`, 400, "", "request body must contain a single JSON object"},
		{"unknown field", `{"name":"a","colour":"red"}`, 400, "colour", "unknown field colour"},
		{"string wanted", `{"name":7}`, 400, "name", "name must be JSON string, got number"},
		{"boolean wanted", `{"ok":"yes"}`, 400, "ok", "ok must be JSON boolean, got string"},
		{"array wanted", `{"list":{}}`, 400, "list", "list must be JSON array, got object"},
		{"object wanted", `{"inner":"x"}`, 400, "inner", "inner must be JSON object, got string"},
		{"number wanted", `{"inner":{"n":"1"}}`, 400, "inner.n", "inner.n must be JSON number, got string"},
		{"map value", `{"tags":{"a":1}}`, 400, "tags", "tags must be JSON string, got number"},
		{"too large", `{"name":"` + strings.Repeat("a", limit) + `"}`, 413, "", "request body exceeds 64 bytes"},
		{"too large after the object", `{"name":"a"}` + strings.Repeat(" ", limit), 413, "", "request body exceeds 64 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
			var dst body
			got := Decode(httptest.NewRecorder(), r, limit, &dst)
			if tt.status == 0 {
				if got != nil {
					t.Fatalf("Decode = %+v, want success", got)
				}
				if dst.Name != "a" {
					t.Errorf("decoded %+v", dst)
				}
				return
			}
			if got == nil {
				t.Fatalf("Decode succeeded (%+v), want status %d", dst, tt.status)
			}
			prefix, isPrefix := strings.CutSuffix(tt.message, "…")
			if got.Status != tt.status || got.Field != tt.field ||
				(isPrefix && !strings.HasPrefix(got.Message, prefix)) || (!isPrefix && got.Message != tt.message) {
				t.Errorf("Decode = %+v, want status %d field %q message %q", got, tt.status, tt.field, tt.message)
			}
		})
	}
}
