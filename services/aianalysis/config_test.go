package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigFromEnvironment(t *testing.T) {
	c, err := parseConfig(nil, env(map[string]string{
		"HOLMESGPT_URL":   "http://holmesgpt-api.kindling.svc:8080",
		"DATASTORAGE_URL": "http://datastorage.kindling.svc:8080",
		"POLICY_FILE":     "/policy/a.rego",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		holmesgptURL: "http://holmesgpt-api.kindling.svc:8080", datastorageURL: "http://datastorage.kindling.svc:8080",
		policyFile: "/policy/a.rego", policyPoll: 2 * time.Second, metricsAddr: ":8080", probeAddr: ":8081",
	}
	if c != want {
		t.Errorf("config = %+v, want %+v", c, want)
	}
}

func TestFlagsOverrideEnvironment(t *testing.T) {
	c, err := parseConfig([]string{
		"--holmesgpt-url=http://127.0.0.1:30082", "--datastorage-url=http://127.0.0.1:30081", "--leader-elect",
		"--health-probe-bind-address=:9091", "--metrics-bind-address=0",
	}, env(map[string]string{"HOLMESGPT_URL": "http://elsewhere:1"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.holmesgptURL != "http://127.0.0.1:30082" || !c.leaderElect || c.probeAddr != ":9091" || c.metricsAddr != "0" ||
		c.policyFile != "/etc/aianalysis/policy/approval.rego" {
		t.Errorf("config = %+v", c)
	}
}

func TestConfigNamesMissingSettings(t *testing.T) {
	_, err := parseConfig([]string{"--datastorage-url=datastorage:8080"}, env(nil), io.Discard)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"--holmesgpt-url", "HOLMESGPT_URL", "--datastorage-url", "not an http(s) URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
