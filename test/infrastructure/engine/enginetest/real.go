package enginetest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/testenv"
)

// Real returns the named real engine, skipping under -short and skipping (locally) or failing
// (CI) when it is missing.
func Real(t testing.TB, name string) engine.Engine {
	t.Helper()
	testenv.Short(t)
	testenv.RequireEngine(t, name)
	e, err := engine.New(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Lock serialises tests that change a real engine's state (prunes above all) or create Kind
// clusters in it across test processes, since `go test` runs packages in parallel and a system
// prune removes containers that are created but not yet started. Take it once per top-level test; it is
// released when the test ends.
func Lock(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "kindling-engine-tests.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("open test lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("take test lock: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
}

// Unique returns a random hex string for names that must not collide between runs.
func Unique(t testing.TB) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// HelloSource returns the path of testdata/hello/main.go, a tiny main package.
func HelloSource(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate enginetest's source directory")
	}
	return filepath.Join(filepath.Dir(file), "testdata", "hello", "main.go")
}

// Containerfile is the design's Containerfile for a service binary.
func Containerfile(service string) string {
	return fmt.Sprintf("FROM scratch\nCOPY %[1]s /%[1]s\nUSER 65532:65532\nEXPOSE 8080\nENTRYPOINT [\"/%[1]s\"]\n", service)
}

// Repo lays out a throwaway Go module with services/<name>/{main.go,Containerfile} for each
// name, main.go being testdata/hello, and returns its root.
func Repo(t testing.TB, names ...string) string {
	t.Helper()
	root := t.TempDir()
	source, err := os.ReadFile(HelloSource(t))
	if err != nil {
		t.Fatal(err)
	}
	write := func(path, content string) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "go.mod"), "module kindling.test/it\n\ngo 1.22\n")
	for _, name := range names {
		write(filepath.Join(root, "services", name, "main.go"), string(source))
		write(filepath.Join(root, "services", name, "Containerfile"), Containerfile(name))
	}
	return root
}

// HelloContext compiles testdata/hello into a static binary "hello" in a fresh build context and
// writes a Containerfile next to it; it returns both paths.
func HelloContext(t testing.TB) (contextDir, containerfile string) {
	t.Helper()
	root := Repo(t, "hello")
	contextDir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w",
		"-o", filepath.Join(contextDir, "hello"), "./services/hello")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build of testdata/hello: %v\n%s", err, out)
	}
	containerfile = filepath.Join(root, "services", "hello", "Containerfile")
	return contextDir, containerfile
}

// NodeImage returns KIND_NODE_IMAGE, read from /etc/kindenv.env when the environment lacks it,
// or "" when neither has it.
func NodeImage() string {
	if image := os.Getenv("KIND_NODE_IMAGE"); image != "" {
		return image
	}
	f, err := os.Open("/etc/kindenv.env")
	if err != nil {
		return ""
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if value, ok := strings.CutPrefix(strings.TrimSpace(scanner.Text()), "KIND_NODE_IMAGE="); ok {
			return strings.Trim(value, `"'`)
		}
	}
	return ""
}
