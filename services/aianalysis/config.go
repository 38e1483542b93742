package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"
)

// config holds the command line; every flag with an environment variable falls back to it.
type config struct {
	holmesgptURL   string
	datastorageURL string
	policyFile     string
	policyPoll     time.Duration
	metricsAddr    string
	probeAddr      string
	leaderElect    bool
}

func parseConfig(args []string, getenv func(string) string, usage io.Writer) (config, error) {
	envOr := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	var c config
	fs := flag.NewFlagSet("aianalysis", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.StringVar(&c.holmesgptURL, "holmesgpt-url", envOr("HOLMESGPT_URL", ""), "base URL of holmesgpt-api (env HOLMESGPT_URL)")
	fs.StringVar(&c.datastorageURL, "datastorage-url", envOr("DATASTORAGE_URL", ""), "base URL of datastorage (env DATASTORAGE_URL)")
	fs.StringVar(&c.policyFile, "policy-file", envOr("POLICY_FILE", "/etc/aianalysis/policy/approval.rego"), "Rego approval policy (env POLICY_FILE)")
	fs.DurationVar(&c.policyPoll, "policy-poll-interval", 2*time.Second, "how often the policy file is checked for changes")
	fs.StringVar(&c.metricsAddr, "metrics-bind-address", ":8080", "address of the metrics endpoint (0 disables it)")
	fs.StringVar(&c.probeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	leaderDefault, _ := strconv.ParseBool(envOr("LEADER_ELECT", "false"))
	fs.BoolVar(&c.leaderElect, "leader-elect", leaderDefault, "elect a leader among replicas (needs RBAC for coordination.k8s.io leases)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %v: aianalysis takes flags only", fs.Args())
	}
	var errs []error
	for _, u := range []struct{ flag, env, value, example string }{
		{"--holmesgpt-url", "HOLMESGPT_URL", c.holmesgptURL, "http://holmesgpt-api.kindling.svc:8080"},
		{"--datastorage-url", "DATASTORAGE_URL", c.datastorageURL, "http://datastorage.kindling.svc:8080"},
	} {
		if err := checkURL(u.value, u.example); err != nil {
			errs = append(errs, fmt.Errorf("%s (env %s): %w", u.flag, u.env, err))
		}
	}
	if c.policyPoll <= 0 {
		errs = append(errs, errors.New("--policy-poll-interval must be positive"))
	}
	return c, errors.Join(errs...)
}

func checkURL(raw, example string) error {
	if raw == "" {
		return fmt.Errorf("is required, e.g. %s", example)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", raw)
	}
	return nil
}
