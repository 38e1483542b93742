package servicetest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func TestStartServesAndTerminates(t *testing.T) {
	t.Chdir("testdata/fakeservice")
	p := Start(t, "fakeservice", "--greeting", "hello")
	if !strings.HasPrefix(p.URL, "http://127.0.0.1:") {
		t.Errorf("URL %q, want a local address", p.URL)
	}
	if status, body := Do(t, "GET", p.URL+"/greeting", ""); status != http.StatusOK || string(body) != "\"hello\"\n" {
		t.Errorf("GET /greeting: status %d body %q; the extra arguments did not reach the process", status, body)
	}
	p.Terminate(t)
	if log := p.Log(); log != "fakeservice listening\nfakeservice stopped\n" {
		t.Errorf("Log() = %q", log)
	}
}

func TestContainerfileContract(t *testing.T) {
	for name, want := range map[string]string{
		"datastorage":   "FROM scratch\nCOPY datastorage /datastorage\nUSER 65532:65532\nEXPOSE 8080\nENTRYPOINT [\"/datastorage\"]\n",
		"holmesgpt-api": "FROM scratch\nCOPY holmesgpt-api /holmesgpt-api\nUSER 65532:65532\nEXPOSE 8080\nENTRYPOINT [\"/holmesgpt-api\"]\n",
	} {
		if got := Containerfile(name); got != want {
			t.Errorf("Containerfile(%s) =\n%s\nwant\n%s", name, got, want)
		}
	}
}

// recorder is a testing.TB that records failures instead of failing (Fatal is not supported).
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestCheckContainerfile(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.WriteFile("Containerfile", []byte(Containerfile("svc")), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &recorder{TB: t}
	if CheckContainerfile(r, "svc"); len(r.errors) != 0 {
		t.Errorf("matching Containerfile reported %q", r.errors)
	}
	if CheckContainerfile(r, "other"); len(r.errors) != 1 {
		t.Errorf("Containerfile of another service: %d errors, want 1", len(r.errors))
	}
}

func TestDo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") == "application/json" && r.URL.Path == "/json" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(http.StatusTeapot)
		fmt.Fprint(w, r.Method+" "+r.URL.Path)
	}))
	defer srv.Close()

	r := &recorder{TB: t}
	if status, body := Do(r, "PUT", srv.URL+"/json", "{}"); status != http.StatusTeapot || string(body) != "PUT /json" || len(r.errors) != 0 {
		t.Errorf("Do: status %d body %q errors %q", status, body, r.errors)
	}
	if Do(r, "GET", srv.URL+"/text", ""); len(r.errors) != 1 {
		t.Errorf("an answer that is not JSON: errors %q, want one", r.errors)
	}
}
