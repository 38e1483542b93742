package serve

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// ShutdownTimeout bounds how long Run waits for in-flight requests once asked to stop.
const ShutdownTimeout = 10 * time.Second

// Main is the whole main function of the service name. It installs a JSON slog logger on stderr as
// the default logger, parses os.Args with parse (reading the environment with os.Getenv) and calls
// run with a context that is cancelled on SIGTERM or interrupt. It exits 0 after -h/--help and
// after run returns nil (logging "stopped"), 2 for an invalid command line and 1 when run fails.
func Main[C any](name string,
	parse func(args []string, getenv func(string) string) (C, error),
	run func(ctx context.Context, cfg C, logger *slog.Logger) error,
) {
	logger := newLogger(os.Stderr)

	cfg, err := parse(os.Args[1:], os.Getenv)
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
		logger.Error(name+" failed", "err", err)
		os.Exit(1)
	}
	logger.Info("stopped")
}

// newLogger returns a JSON logger writing to w and makes it the slog default.
func newLogger(w io.Writer) *slog.Logger {
	logger := slog.New(slog.NewJSONHandler(w, nil))
	slog.SetDefault(logger)
	return logger
}

// Run listens on addr and serves handler until ctx is done, then stops accepting connections and
// waits up to ShutdownTimeout for in-flight requests to finish. It logs "<name> listening" with the
// bound address and attrs (alternating keys and values), and "shutting down" when ctx is done.
func Run(ctx context.Context, logger *slog.Logger, name, addr string, handler http.Handler, attrs ...any) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return serveOn(ctx, logger, ln, name, addr, handler, attrs)
}

// serveOn is Run on a listener; addr is the configured address, for error messages.
func serveOn(ctx context.Context, logger *slog.Logger, ln net.Listener, name, addr string, handler http.Handler, attrs []any) error {
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info(name+" listening", append([]any{"addr", ln.Addr().String()}, attrs...)...)

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve on %s: %w", addr, err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", ShutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("drain HTTP server: %w", err)
	}
	return nil
}
