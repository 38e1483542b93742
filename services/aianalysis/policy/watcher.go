package policy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
)

// ErrNotLoaded is returned by Watcher.Decide until a policy has compiled.
var ErrNotLoaded = errors.New("no approval policy loaded yet")

// Watcher keeps the policy compiled from a file and reloads it when the file's content changes.
//
// It polls the content's sha256 instead of watching file events: a ConfigMap volume is updated by an
// atomic symlink swap, which inotify watches on the file miss, while polling the content always sees it.
// A new content that fails to compile is logged and the previous policy stays active.
type Watcher struct {
	path     string
	interval time.Duration
	log      logr.Logger

	current atomic.Pointer[Policy]

	mu       sync.Mutex
	lastHash string // hash of the last content tried, valid or not
	lastErr  string // last read error, to log each distinct one once
}

// NewWatcher returns a watcher of path polling every interval. Call Reload or Start to load the policy.
func NewWatcher(path string, interval time.Duration, log logr.Logger) *Watcher {
	return &Watcher{path: path, interval: interval, log: log}
}

// Current returns the active policy, or nil before one compiled.
func (w *Watcher) Current() *Policy { return w.current.Load() }

// Decide evaluates the active policy.
func (w *Watcher) Decide(ctx context.Context, in Input) (Decision, error) {
	p := w.Current()
	if p == nil {
		return Decision{}, fmt.Errorf("%w from %s", ErrNotLoaded, w.path)
	}
	return p.Decide(ctx, in)
}

// Reload reads the file and, if its content changed since the last try, compiles it and makes it active.
// It reports whether the active policy changed.
func (w *Watcher) Reload(ctx context.Context) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	source, err := os.ReadFile(w.path)
	if err != nil {
		err = fmt.Errorf("read approval policy (mount the aianalysis-policy ConfigMap or set --policy-file): %w", err)
		if err.Error() != w.lastErr {
			w.lastErr = err.Error()
			w.log.Error(err, "keeping the previous approval policy", "path", w.path)
		}
		return false, err
	}
	w.lastErr = ""
	hash := Hash(source)
	if hash == w.lastHash {
		return false, nil
	}
	w.lastHash = hash
	p, err := Compile(ctx, w.path, source)
	if err != nil {
		w.log.Error(err, "approval policy does not compile; keeping the previous one", "path", w.path, "hash", hash)
		return false, err
	}
	previous := w.current.Swap(p)
	if previous == nil {
		w.log.Info("approval policy loaded", "path", w.path, "hash", hash)
	} else {
		w.log.Info("approval policy reloaded", "path", w.path, "hash", hash, "previousHash", previous.Hash)
	}
	return true, nil
}

// Start loads the policy and polls the file until ctx ends (a manager.Runnable).
func (w *Watcher) Start(ctx context.Context) error {
	_, _ = w.Reload(ctx) // failures are logged; readiness reports them
	ticker := time.NewTicker(w.interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			_, _ = w.Reload(ctx)
		}
	}
}

// NeedLeaderElection is false: every replica needs the policy to be ready.
func (w *Watcher) NeedLeaderElection() bool { return false }

// ReadyCheck is a healthz.Checker: ready once a policy is active.
func (w *Watcher) ReadyCheck(_ *http.Request) error {
	if w.Current() == nil {
		return fmt.Errorf("%w from %s", ErrNotLoaded, w.path)
	}
	return nil
}
