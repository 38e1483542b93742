package serve

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestEnvOr(t *testing.T) {
	getenv := env(map[string]string{"SET": "v", "EMPTY": ""})
	for _, tt := range []struct{ key, want string }{{"SET", "v"}, {"EMPTY", "fallback"}, {"UNSET", "fallback"}} {
		if got := EnvOr(getenv, tt.key, "fallback"); got != tt.want {
			t.Errorf("EnvOr(%s) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

func TestListenFlag(t *testing.T) {
	listen := func(args []string, getenv func(string) string) string {
		t.Helper()
		var listen string
		if err := Parse(FlagSet("svc", getenv, &listen), args); err != nil {
			t.Fatalf("Parse(%q): %v", args, err)
		}
		return listen
	}
	withEnv := env(map[string]string{"LISTEN_ADDR": ":9000"})
	if got := listen(nil, env(nil)); got != ":8080" {
		t.Errorf("without flag and env: listen %q, want :8080", got)
	}
	if got := listen(nil, withEnv); got != ":9000" {
		t.Errorf("with LISTEN_ADDR: listen %q, want :9000", got)
	}
	for _, args := range [][]string{{"--listen=127.0.0.1:1"}, {"--listen", "127.0.0.1:1"}, {"-listen", "127.0.0.1:1"}} {
		if got := listen(args, withEnv); got != "127.0.0.1:1" {
			t.Errorf("%q with LISTEN_ADDR: listen %q, want the flag's 127.0.0.1:1", args, got)
		}
	}
}

func TestParseRejects(t *testing.T) {
	var listen string
	fs := FlagSet("svc", env(nil), &listen)
	fs.SetOutput(new(bytes.Buffer))
	if err := Parse(fs, []string{"stray"}); err == nil || err.Error() != `unexpected arguments ["stray"]` {
		t.Errorf("positional argument: %v", err)
	}

	fs = FlagSet("svc", env(nil), &listen)
	fs.SetOutput(new(bytes.Buffer))
	if err := Parse(fs, []string{"--data-dir=/x"}); err == nil {
		t.Error("Parse accepted an unknown flag")
	}
}

func TestHelp(t *testing.T) {
	var listen string
	fs := FlagSet("svc", env(map[string]string{"LISTEN_ADDR": ":9000"}), &listen)
	var usage bytes.Buffer
	fs.SetOutput(&usage)
	if err := Parse(fs, []string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v, want flag.ErrHelp", err)
	}
	if !strings.Contains(usage.String(), "listen address (env LISTEN_ADDR) (default \":9000\")") {
		t.Errorf("usage does not document --listen with its environment variable and default:\n%s", usage.String())
	}
}
