package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
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
		want config
	}{
		{"defaults", nil, nil, config{listen: ":8080", dataDir: "/data"}},
		{"env", nil, map[string]string{"LISTEN_ADDR": ":9000", "DATA_DIR": "/var/x"}, config{listen: ":9000", dataDir: "/var/x"}},
		{"flags beat env", []string{"--listen", "127.0.0.1:1", "--data-dir=/d"},
			map[string]string{"LISTEN_ADDR": ":9000", "DATA_DIR": "/var/x"}, config{listen: "127.0.0.1:1", dataDir: "/d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfig(tt.args, env(tt.env))
			if err != nil || got != tt.want {
				t.Errorf("parseConfig = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	if _, err := parseConfig([]string{"stray"}, env(nil)); err == nil {
		t.Error("parseConfig accepted a positional argument")
	}
}

func TestContainerfileMatchesContract(t *testing.T) {
	servicetest.CheckContainerfile(t, "datastorage")
}

// TestStaticBinaryServesAndStopsOnSIGTERM builds the real binary the image
// ships, runs it, makes one real API call and checks a clean SIGTERM exit.
func TestStaticBinaryServesAndStopsOnSIGTERM(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	p := servicetest.Start(t, "datastorage", "--data-dir", dataDir)

	resp, err := http.Post(p.URL+"/api/v1/audit/events", "application/json", strings.NewReader(validEvent))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST event: status %d body %s", resp.StatusCode, body)
	}
	resp, err = http.Get(p.URL + "/api/v1/audit/events?correlation_id=c1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"id":"0000000000000001"`) {
		t.Fatalf("GET events: status %d body %s", resp.StatusCode, body)
	}

	p.Terminate(t)
	if _, err := os.Stat(filepath.Join(dataDir, "audit.db")); err != nil {
		t.Errorf("audit.db missing after run: %v", err)
	}
}
