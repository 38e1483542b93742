// Command holmesgpt-api answers investigation requests with a deterministic,
// rule-based analyser that stands in for an LLM (see analyser.go).
package main

import (
	"context"
	"log/slog"

	"github.com/kindling-dev/kindling/services/internal/serve"
)

type config struct {
	listen string
}

func main() { serve.Main("holmesgpt-api", parseConfig, run) }

// parseConfig reads flags, falling back to environment variables, then defaults.
func parseConfig(args []string, getenv func(string) string) (config, error) {
	var cfg config
	if err := serve.Parse(serve.FlagSet("holmesgpt-api", getenv, &cfg.listen), args); err != nil {
		return config{}, err
	}
	return cfg, nil
}

// run serves until ctx is cancelled, then drains in-flight requests.
func run(ctx context.Context, cfg config, logger *slog.Logger) error {
	return serve.Run(ctx, logger, "holmesgpt-api", cfg.listen, routes(logger), "analyser", analyserName)
}
