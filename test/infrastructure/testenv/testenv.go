// Package testenv decides what tests that need real parts (a container engine, a Kind node image, a
// cluster) do when the part is missing: skip on a developer's machine, fail in CI.
package testenv

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Required reports whether missing real parts must fail tests instead of skipping them: in CI
// (CI=true) or when KINDLING_REQUIRE_REAL=1.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("KINDLING_REQUIRE_REAL") == "1"
}

// Missing skips the test, or fails it when real parts are required.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if Required() {
		t.Fatalf("required for this test (CI=true or KINDLING_REQUIRE_REAL=1): "+format, args...)
	}
	t.Skipf("skipping: "+format, args...)
}

// RequireEngine makes sure the named engine ("podman" or "docker") is installed and answering,
// with env (e.g. DOCKER_HOST=...) added to its environment.
func RequireEngine(t testing.TB, name string, env ...string) {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s is not installed (run ../shared/kindenv/setup)", name)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "info")
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		Missing(t, "%s info failed (%v): %v\n%s", name, env, err, out)
	}
}

// NodeImage returns KIND_NODE_IMAGE, or skips/fails when it is not set.
func NodeImage(t testing.TB) string {
	t.Helper()
	image := os.Getenv("KIND_NODE_IMAGE")
	if image == "" {
		Missing(t, "KIND_NODE_IMAGE is not set (source /etc/kindenv.env after ../shared/kindenv/setup)")
	}
	return image
}

// Short skips long tests under -short.
func Short(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping in -short mode: needs real engines or a cluster")
	}
}
