// Package servicetest helps the tests of the services (import it from _test.go files only): it
// builds a service's real static binary, runs it on a free port until /healthz answers, stops it
// with SIGTERM, checks the Containerfile against the contract and sends JSON requests.
package servicetest

import (
	"debug/elf"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Containerfile is the contract's Containerfile of the service name (docs/design.md).
func Containerfile(name string) string {
	return fmt.Sprintf("FROM scratch\nCOPY %[1]s /%[1]s\nUSER 65532:65532\nEXPOSE 8080\nENTRYPOINT [\"/%[1]s\"]\n", name)
}

// CheckContainerfile fails the test unless ./Containerfile is exactly Containerfile(name).
func CheckContainerfile(t testing.TB, name string) {
	t.Helper()
	got, err := os.ReadFile("Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	if want := Containerfile(name); string(got) != want {
		t.Errorf("Containerfile =\n%s\nwant\n%s", got, want)
	}
}

// BuildStatic builds the main package in the current directory with CGO_ENABLED=0 into a
// temporary file named name, and fails the test if the result has a dynamic loader (it could not
// run FROM scratch). It returns the binary's path.
func BuildStatic(t testing.TB, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("read built binary: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("%s is dynamically linked (has PT_INTERP); it cannot run FROM scratch", bin)
		}
	}
	return bin
}

// Process is a running service binary.
type Process struct {
	// URL is the service's base URL, http://127.0.0.1:<port>.
	URL    string
	cmd    *exec.Cmd
	exited chan error // receives Wait's result once; whoever takes it puts it back
	stderr *os.File
}

// Start builds the service in the current directory with BuildStatic, starts it with
// --listen <free local address> followed by args, and waits up to 10s until GET /healthz answers
// 200. The process is killed when the test ends, unless it has exited by then.
func Start(t testing.TB, name string, args ...string) *Process {
	t.Helper()
	bin := BuildStatic(t, name)
	addr := freeAddr(t)
	p := &Process{URL: "http://" + addr, exited: make(chan error, 1), stderr: logFile(t)}
	p.cmd = exec.Command(bin, append([]string{"--listen", addr}, args...)...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
	p.waitHealthy(t)
	return p
}

// Log returns what the process has written to stderr so far.
func (p *Process) Log() string {
	data, _ := os.ReadFile(p.stderr.Name())
	return string(data)
}

// Terminate sends SIGTERM and fails the test unless the process exits with status 0 within 15s.
func (p *Process) Terminate(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		p.exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\nstderr:\n%s", err, p.Log())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no exit within 15s of SIGTERM\nstderr:\n%s", p.Log())
	}
}

func (p *Process) waitHealthy(t testing.TB) {
	t.Helper()
	url := p.URL + "/healthz"
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.exited:
			p.exited <- err
			t.Fatalf("process exited before becoming healthy: %v\nstderr:\n%s", err, p.Log())
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not healthy within 10s", url)
}

// logFile captures a child's stderr in a file, which the child writes
// directly, so the test can read it at any time without a data race.
func logFile(t testing.TB) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Do sends a request with a JSON body (Content-Type application/json) and returns the status and
// body of the answer. Every answer but 405 Method Not Allowed (which net/http writes itself) must
// be JSON; Do reports an error otherwise.
func Do(t testing.TB, method, url, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusMethodNotAllowed && ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, url, ct)
	}
	return resp.StatusCode, data
}
