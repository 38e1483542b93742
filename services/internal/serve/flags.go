package serve

import (
	"flag"
	"fmt"
)

const (
	// ListenEnv is the environment variable behind --listen.
	ListenEnv = "LISTEN_ADDR"
	// DefaultListen is the listen address when neither --listen nor LISTEN_ADDR is set.
	DefaultListen = ":8080"
)

// EnvOr returns getenv(key), or fallback when that is empty.
func EnvOr(getenv func(string) string, key, fallback string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return fallback
}

// FlagSet returns a flag set for the command name that returns parse errors (flag.ContinueOnError)
// and has --listen registered into listen, defaulting to the environment variable LISTEN_ADDR,
// then to ":8080". Flags take precedence over the environment.
func FlagSet(name string, getenv func(string) string, listen *string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(listen, "listen", EnvOr(getenv, ListenEnv, DefaultListen), "listen address (env "+ListenEnv+")")
	return fs
}

// Parse parses args with fs and rejects positional arguments: the services take flags only.
// For -h and --help it returns flag.ErrHelp.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return nil
}
