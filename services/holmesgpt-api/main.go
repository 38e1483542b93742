// Command holmesgpt-api answers investigation requests with a deterministic,
// rule-based analyser that stands in for an LLM (see analyser.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const shutdownTimeout = 10 * time.Second

type config struct {
	listen string
}

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	slog.SetDefault(logger)

	cfg, err := parseConfig(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		logger.Error("invalid command line", "err", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, logger); err != nil {
		logger.Error("holmesgpt-api failed", "err", err)
		os.Exit(1)
	}
}

// parseConfig reads flags, falling back to environment variables, then defaults.
func parseConfig(args []string, getenv func(string) string) (config, error) {
	listen := ":8080"
	if v := getenv("LISTEN_ADDR"); v != "" {
		listen = v
	}
	var cfg config
	fs := flag.NewFlagSet("holmesgpt-api", flag.ContinueOnError)
	fs.StringVar(&cfg.listen, "listen", listen, "listen address (env LISTEN_ADDR)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return cfg, nil
}

// run serves until ctx is cancelled, then drains in-flight requests.
func run(ctx context.Context, cfg config, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.listen, err)
	}
	srv := &http.Server{
		Handler:           routes(logger),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("holmesgpt-api listening", "addr", ln.Addr().String(), "analyser", analyserName)

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve on %s: %w", cfg.listen, err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", shutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("drain HTTP server: %w", err)
	}
	logger.Info("stopped")
	return nil
}
