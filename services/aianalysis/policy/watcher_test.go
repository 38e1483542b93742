package policy_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/kindling-dev/kindling/services/aianalysis/policy"
)

const denyAll = `package aianalysis.approval

decision := {"decision": "denied", "reason": "freeze"}
`

func TestWatcherKeepsThePreviousPolicyWhenTheNewOneIsBroken(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "approval.rego")
	w := policy.NewWatcher(path, time.Second, logr.Discard())

	if err := w.ReadyCheck(nil); err == nil {
		t.Error("ready before any policy loaded")
	}
	if _, err := w.Decide(ctx, policy.Input{}); !errors.Is(err, policy.ErrNotLoaded) {
		t.Errorf("Decide before loading: %v, want ErrNotLoaded", err)
	}
	if _, err := w.Reload(ctx); err == nil {
		t.Error("Reload of a missing file succeeded")
	}

	write(t, path, approveAll)
	if changed, err := w.Reload(ctx); !changed || err != nil {
		t.Fatalf("Reload = %v, %v", changed, err)
	}
	if err := w.ReadyCheck(nil); err != nil {
		t.Errorf("not ready after loading: %v", err)
	}
	if changed, err := w.Reload(ctx); changed || err != nil {
		t.Errorf("Reload of unchanged content = %v, %v; want no change", changed, err)
	}

	write(t, path, "package aianalysis.approval\n\ndecision := {\n")
	if changed, err := w.Reload(ctx); changed || err == nil {
		t.Errorf("Reload of a broken policy = %v, %v; want an error and no change", changed, err)
	}
	assertDecision(t, w, "auto-approved", policy.Hash([]byte(approveAll)))

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if changed, _ := w.Reload(ctx); changed {
		t.Error("a vanished file changed the policy")
	}
	assertDecision(t, w, "auto-approved", policy.Hash([]byte(approveAll)))
}

func TestWatcherPicksUpChangesWhileRunning(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "approval.rego")
	write(t, path, approveAll)
	w := policy.NewWatcher(path, 10*time.Millisecond, logr.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start returned %v", err)
		}
	}()

	waitForHash(t, w, policy.Hash([]byte(approveAll)))
	// Replace the file the way the kubelet updates a ConfigMap volume: write aside, then rename over.
	next := filepath.Join(dir, ".approval.rego.new")
	write(t, next, denyAll)
	if err := os.Rename(next, path); err != nil {
		t.Fatal(err)
	}
	waitForHash(t, w, policy.Hash([]byte(denyAll)))
	assertDecision(t, w, "denied", policy.Hash([]byte(denyAll)))
}

func TestWatcherRunsOnEveryReplica(t *testing.T) {
	if policy.NewWatcher("x", time.Second, logr.Discard()).NeedLeaderElection() {
		t.Error("the policy watcher must run without leadership: readiness depends on it")
	}
}

func waitForHash(t *testing.T, w *policy.Watcher, hash string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if p := w.Current(); p != nil && p.Hash == hash {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("policy %s not loaded within 5s", hash)
}

func assertDecision(t *testing.T, w *policy.Watcher, want, hash string) {
	t.Helper()
	d, err := w.Decide(context.Background(), policy.Input{})
	if err != nil || d.Decision != want || d.PolicyHash != hash {
		t.Errorf("Decide = %+v, %v; want %s by %s", d, err, want, hash)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
