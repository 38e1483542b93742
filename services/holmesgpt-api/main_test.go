package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/kindling-dev/kindling/services/internal/servicetest"
)

func TestParseConfig(t *testing.T) {
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"default", nil, nil, ":8080"},
		{"env", nil, map[string]string{"LISTEN_ADDR": ":9000"}, ":9000"},
		{"flag beats env", []string{"--listen=127.0.0.1:1"}, map[string]string{"LISTEN_ADDR": ":9000"}, "127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfig(tt.args, env(tt.env))
			if err != nil || got.listen != tt.want {
				t.Errorf("parseConfig = %+v, %v; want listen %q", got, err, tt.want)
			}
		})
	}
	if _, err := parseConfig([]string{"--data-dir=/x"}, env(nil)); err == nil {
		t.Error("parseConfig accepted an unknown flag")
	}
}

func TestContainerfileMatchesContract(t *testing.T) {
	servicetest.CheckContainerfile(t, "holmesgpt-api")
}

// TestStaticBinaryServesAndStopsOnSIGTERM builds the real binary the image
// ships, runs it, makes one real API call and checks a clean SIGTERM exit.
func TestStaticBinaryServesAndStopsOnSIGTERM(t *testing.T) {
	p := servicetest.Start(t, "holmesgpt-api")

	resp, err := http.Post(p.URL+"/api/v1/investigate", "application/json", strings.NewReader(oomRequest))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"id":"increase-memory-limit"`) {
		t.Fatalf("POST investigate: status %d body %s", resp.StatusCode, body)
	}

	p.Terminate(t)
}
