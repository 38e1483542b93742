package main

import (
	"debug/elf"
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

func TestParseConfig(t *testing.T) {
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"default", nil, nil, ":8080"},
		{"env", nil, map[string]string{"LISTEN_ADDR": ":9000"}, ":9000"},
		{"flag beats env", []string{"--listen=127.0.0.1:1"}, map[string]string{"LISTEN_ADDR": ":9000"}, "127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfig(tt.args, env(tt.env))
			if err != nil || got.listen != tt.want {
				t.Errorf("parseConfig = %+v, %v; want listen %q", got, err, tt.want)
			}
		})
	}
	if _, err := parseConfig([]string{"--data-dir=/x"}, env(nil)); err == nil {
		t.Error("parseConfig accepted an unknown flag")
	}
}

func TestContainerfileMatchesContract(t *testing.T) {
	got, err := os.ReadFile("Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	want := "FROM scratch\nCOPY holmesgpt-api /holmesgpt-api\nUSER 65532:65532\nEXPOSE 8080\nENTRYPOINT [\"/holmesgpt-api\"]\n"
	if string(got) != want {
		t.Errorf("Containerfile =\n%s\nwant\n%s", got, want)
	}
}

// TestStaticBinaryServesAndStopsOnSIGTERM builds the real binary the image
// ships, runs it, makes one real API call and checks a clean SIGTERM exit.
func TestStaticBinaryServesAndStopsOnSIGTERM(t *testing.T) {
	bin := buildStaticBinary(t, "holmesgpt-api")
	addr := freeAddr(t)

	stderr := logFile(t)
	cmd := exec.Command(bin, "--listen", addr)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})

	base := "http://" + addr
	waitHealthy(t, base+"/healthz", exited, stderr)

	resp, err := http.Post(base+"/api/v1/investigate", "application/json", strings.NewReader(oomRequest))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"id":"increase-memory-limit"`) {
		t.Fatalf("POST investigate: status %d body %s", resp.StatusCode, body)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\nstderr:\n%s", err, readLog(stderr))
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no exit within 15s of SIGTERM\nstderr:\n%s", readLog(stderr))
	}
}

// buildStaticBinary builds the package in the current directory with
// CGO_ENABLED=0 and checks the result has no dynamic loader.
func buildStaticBinary(t *testing.T, name string) string {
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

// logFile captures a child's stderr in a file, which the child writes
// directly, so the test can read it at any time without a data race.
func logFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readLog(f *os.File) string {
	data, _ := os.ReadFile(f.Name())
	return string(data)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitHealthy(t *testing.T, url string, exited chan error, stderr *os.File) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("process exited before becoming healthy: %v\nstderr:\n%s", err, readLog(stderr))
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
