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

// Docker29 names the third real engine configuration: Docker 29 with the containerd image store,
// the daemon ../shared/kindenv/setup starts beside the system's Docker (KINDENV_DOCKER29_HOST).
// Its image IDs are manifest digests and it saves OCI layouts; Kind clusters stay on the system
// Docker.
const Docker29 = "docker29"

// Configurations are the real engine configurations that engine, build and archive tests run on.
var Configurations = []string{engine.Podman, engine.Docker, Docker29}

// Real returns the real engine of a configuration (see Configurations), skipping under -short and
// skipping (locally) or failing (CI) when it is missing.
func Real(t testing.TB, config string) engine.Engine {
	t.Helper()
	testenv.Short(t)
	name, env := config, []string(nil)
	if config == Docker29 {
		host := KindenvValue("KINDENV_DOCKER29_HOST")
		if host == "" {
			testenv.Missing(t, "KINDENV_DOCKER29_HOST is not set and /etc/kindenv.env lacks it (run ../shared/kindenv/setup)")
		}
		name, env = engine.Docker, []string{"DOCKER_HOST=" + host}
	}
	testenv.RequireEngine(t, name, env...)
	e, err := engine.New(name, nil, env...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Command runs the CLI of a configuration (see Configurations) the way Real's engine does.
func Command(ctx context.Context, config string, args ...string) *exec.Cmd {
	name := config
	cmd := exec.CommandContext(ctx, name, args...)
	if config == Docker29 {
		cmd = exec.CommandContext(ctx, engine.Docker, args...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+KindenvValue("KINDENV_DOCKER29_HOST"))
	}
	return cmd
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

// MultiStageDockerfile is a service's Dockerfile as real projects write theirs, built from the
// repository root: a builder stage from the Go toolchain image, modules first, and a runtime
// stage from a Debian base. The runtime base is debian:bookworm, which nothing else here uses,
// so a test can remove it and see the build pull it.
func MultiStageDockerfile(service string) string {
	return fmt.Sprintf(`FROM golang:1.26-bookworm AS builder
WORKDIR /src
COPY go.mod ./
RUN go mod download
COPY services/ services/
ARG GOFLAGS=""
RUN CGO_ENABLED=0 go build -trimpath -o /out/%[1]s ./services/%[1]s

FROM debian:bookworm AS production
COPY --from=builder /out/%[1]s /usr/local/bin/%[1]s
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/%[1]s"]
`, service)
}

// RuntimeBase is the runtime stage's base of MultiStageDockerfile.
const RuntimeBase = "debian:bookworm"

// Repo lays out a throwaway Go module with services/<name>/{main.go,Containerfile,Dockerfile}
// for each name, main.go being testdata/hello, and a .dockerignore, and returns its root.
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
	write(filepath.Join(root, ".dockerignore"), "*\n!go.mod\n!services/\n**/Containerfile\n")
	for _, name := range names {
		write(filepath.Join(root, "services", name, "main.go"), string(source))
		write(filepath.Join(root, "services", name, "Containerfile"), Containerfile(name))
		write(filepath.Join(root, "services", name, "Dockerfile"), MultiStageDockerfile(name))
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
func NodeImage() string { return KindenvValue("KIND_NODE_IMAGE") }

// KindenvValue returns the variable name from the environment, else from /etc/kindenv.env, else "".
func KindenvValue(name string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	f, err := os.Open("/etc/kindenv.env")
	if err != nil {
		return ""
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if value, ok := strings.CutPrefix(strings.TrimSpace(scanner.Text()), name+"="); ok {
			return strings.Trim(value, `"'`)
		}
	}
	return ""
}
