// Command datastorage is the audit-event store: an HTTP/JSON API over a bbolt file.
package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/kindling-dev/kindling/services/internal/serve"
)

type config struct {
	listen  string
	dataDir string
}

func main() { serve.Main("datastorage", parseConfig, run) }

// parseConfig reads flags, falling back to environment variables, then defaults.
func parseConfig(args []string, getenv func(string) string) (config, error) {
	var cfg config
	fs := serve.FlagSet("datastorage", getenv, &cfg.listen)
	fs.StringVar(&cfg.dataDir, "data-dir", serve.EnvOr(getenv, "DATA_DIR", "/data"), "directory holding audit.db (env DATA_DIR)")
	if err := serve.Parse(fs, args); err != nil {
		return config{}, err
	}
	return cfg, nil
}

// run serves until ctx is cancelled, then drains requests and closes the store.
func run(ctx context.Context, cfg config, logger *slog.Logger) error {
	store, err := OpenStore(cfg.dataDir)
	if err != nil {
		return err
	}
	defer store.Close()

	if err := serve.Run(ctx, logger, "datastorage", cfg.listen, newServer(store, logger).routes(), "data_dir", cfg.dataDir); err != nil {
		return err
	}
	if err := store.Close(); err != nil {
		return fmt.Errorf("close audit database: %w", err)
	}
	return nil
}
