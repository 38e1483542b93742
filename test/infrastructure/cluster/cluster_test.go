package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
)

func TestValidateName(t *testing.T) {
	for _, name := range []string{"kindling-aianalysis", "a", "k8s-1", strings.Repeat("a", 50)} {
		if err := ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q) = %v, want ok", name, err)
		}
	}
	for _, name := range []string{"", "Kindling", "kindling_x", "-x", "x-", "a.b", "kind ling", strings.Repeat("a", 51)} {
		if err := ValidateName(name); err == nil {
			t.Errorf("ValidateName(%q) = nil, want error", name)
		}
	}
}

func TestDefaultName(t *testing.T) {
	t.Setenv(NameEnv, "")
	if got, err := DefaultName("aianalysis"); err != nil || got != "kindling-aianalysis" {
		t.Errorf("DefaultName = %q, %v; want kindling-aianalysis", got, err)
	}
	if _, err := DefaultName(""); err == nil {
		t.Error("DefaultName(\"\") = nil error")
	}
	if _, err := DefaultName("AI"); err == nil {
		t.Error("DefaultName(\"AI\") = nil error")
	}
	t.Setenv(NameEnv, "mine")
	if got, err := DefaultName("aianalysis"); err != nil || got != "mine" {
		t.Errorf("DefaultName with %s=mine = %q, %v", NameEnv, got, err)
	}
	t.Setenv(NameEnv, "Bad_Name")
	if _, err := DefaultName("aianalysis"); err == nil || !strings.Contains(err.Error(), NameEnv) {
		t.Errorf("DefaultName with bad %s: error %v should name the variable", NameEnv, err)
	}
}

func TestExistsError(t *testing.T) {
	err := error(&ExistsError{Name: "X", Provider: "podman", DeleteHint: "go run magefile.go aianalysis:down"})
	want := `cluster "X" already exists (provider podman): delete it with "go run magefile.go aianalysis:down" ` +
		`(or KIND_EXPERIMENTAL_PROVIDER=podman kind delete cluster --name X), or set E2E_REUSE_CLUSTER=true to reuse it`
	if err.Error() != want {
		t.Errorf("message\n got %s\nwant %s", err, want)
	}
	if !errors.Is(fmt.Errorf("wrapped: %w", err), ErrClusterExists) {
		t.Error("errors.Is(err, ErrClusterExists) = false")
	}
	err = &ExistsError{Name: "X", Provider: "docker"}
	want = `cluster "X" already exists (provider docker): delete it with "kind delete cluster --name X", or set E2E_REUSE_CLUSTER=true to reuse it`
	if err.Error() != want {
		t.Errorf("message\n got %s\nwant %s", err, want)
	}
}

func TestCreateRejectsBadOptions(t *testing.T) {
	ctx := context.Background()
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	for _, o := range []Options{
		{Name: "Bad", Provider: "docker", KubeconfigPath: kc},
		{Name: "ok", Provider: "nerdctl", KubeconfigPath: kc},
		{Name: "ok", Provider: "docker"},
	} {
		if _, err := Create(ctx, o); err == nil {
			t.Errorf("Create(%+v) = nil error", o)
		}
	}
}

func TestPodmanImageName(t *testing.T) {
	for in, want := range map[string]string{
		"kindenv/node:v1.34.4":           "localhost/kindenv/node:v1.34.4",
		"localhost/kindenv/node:v1.34.4": "localhost/kindenv/node:v1.34.4",
		"node:v1":                        "localhost/node:v1",
		"registry.k8s.io/x:1":            "registry.k8s.io/x:1",
		"host:5000/x:1":                  "host:5000/x:1",
	} {
		if got := PodmanImageName(in); got != want {
			t.Errorf("PodmanImageName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestVarMountSource(t *testing.T) {
	for file, want := range map[string]string{
		"docker-inspect-node.json": "/var/lib/docker/volumes/6919b893163d0f75cc1330c5b82f44d0ccaacd9b3aa49889dfa56a557a29aa9c/_data",
		"podman-inspect-node.json": "/var/lib/containers/storage/volumes/11b2dbac9842b84a64b4a6d8770daab39926cc245447b819b82609a7debd5e63/_data",
	} {
		js, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := varMountSource(js)
		if err != nil || got != want {
			t.Errorf("%s: varMountSource = %q, %v; want %q", file, got, err, want)
		}
	}
	if _, err := varMountSource([]byte(`[{"Mounts":[]}]`)); err == nil {
		t.Error("no /var mount: nil error")
	}
	if _, err := varMountSource([]byte(`[]`)); err == nil {
		t.Error("no container: nil error")
	}
}

func TestParseDu(t *testing.T) {
	if n, err := parseDu("1234567\t/var/lib/containerd\n"); err != nil || n != 1234567 {
		t.Errorf("parseDu = %d, %v", n, err)
	}
	for _, bad := range []string{"", "x\t/var", "12"} {
		if _, err := parseDu(bad); err == nil {
			t.Errorf("parseDu(%q) = nil error", bad)
		}
	}
}

func TestKindLogger(t *testing.T) {
	var lines []string
	l := kindLogger{func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) }}
	l.V(0).Infof("Creating cluster %q ...\n", "x")
	l.V(1).Info("debug, dropped")
	l.Warn("careful\n")
	l.V(0).Info("\n")
	want := []string{`kind: Creating cluster "x" ...`, "kind: warning: careful"}
	if fmt.Sprint(lines) != fmt.Sprint(want) {
		t.Errorf("logged %q, want %q", lines, want)
	}
	if l.V(1).Enabled() || !l.V(0).Enabled() {
		t.Error("Enabled: want V(0) only")
	}
}

func TestNodeConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kind.yaml")
	os.WriteFile(path, []byte("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: control-plane\n  - role: worker\n"), 0o644)
	mount := v1alpha4.Mount{HostPath: "/host/coverage", ContainerPath: "/var/kindling/coverage"}
	c, err := nodeConfig(path, []v1alpha4.Mount{mount}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Nodes) != 2 {
		t.Fatalf("nodes %+v", c.Nodes)
	}
	for _, n := range c.Nodes {
		if len(n.ExtraMounts) != 1 || n.ExtraMounts[0] != mount {
			t.Errorf("node %s mounts %+v", n.Role, n.ExtraMounts)
		}
	}
	if c, err := nodeConfig("", []v1alpha4.Mount{mount}, 0); err != nil || len(c.Nodes) != 1 || len(c.Nodes[0].ExtraMounts) != 1 {
		t.Errorf("no config file: %+v, %v", c, err)
	}
	c, err = nodeConfig(path, []v1alpha4.Mount{mount}, 2)
	if err != nil || len(c.Nodes) != 4 || c.Nodes[3].Role != v1alpha4.WorkerRole || len(c.Nodes[3].ExtraMounts) != 1 {
		t.Errorf("2 workers more: %+v, %v", c, err)
	}
	if n, err := NodeCount(path, 2); n != 4 || err != nil {
		t.Errorf("NodeCount = %d, %v; want 4", n, err)
	}
	if n, err := NodeCount("", 0); n != 1 || err != nil {
		t.Errorf("NodeCount without a config = %d, %v; want 1", n, err)
	}
	os.WriteFile(path, []byte("kind: Cluster\nnodez: []\n"), 0o644)
	if _, err := nodeConfig(path, []v1alpha4.Mount{mount}, 0); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("bad config: %v, want an error naming the file", err)
	}
}

func TestEnsureModulesDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lib", "modules")
	var logged []string
	logf := func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) }
	if err := ensureModulesDir(dir, logf); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(dir); err != nil || !info.IsDir() || len(logged) != 1 {
		t.Fatalf("dir %v, logged %q", err, logged)
	}
	if err := ensureModulesDir(dir, logf); err != nil || len(logged) != 1 {
		t.Errorf("an existing dir: %v, logged %q", err, logged)
	}
}
