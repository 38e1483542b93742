package cluster_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"

	"github.com/kindling-dev/kindling/test/infrastructure/cluster"
	"github.com/kindling-dev/kindling/test/infrastructure/engine/enginetest"
	"github.com/kindling-dev/kindling/test/infrastructure/load"
	"github.com/kindling-dev/kindling/test/infrastructure/testenv"
)

const minimalConfig = `kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
`

// TestReal creates one real cluster per provider and runs the cluster and load checks against it.
func TestReal(t *testing.T) {
	testenv.Short(t)
	enginetest.Lock(t) // an engine test's system prune must not catch a node container being created
	for _, provider := range []string{cluster.ProviderDocker, cluster.ProviderPodman} {
		t.Run(provider, func(t *testing.T) { realCluster(t, provider) })
	}
}

func realCluster(t *testing.T, provider string) {
	testenv.RequireEngine(t, provider)
	image := testenv.NodeImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	start := time.Now()
	nodeImage, err := cluster.EnsureNodeImage(ctx, provider, image, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("node image for %s: %s (%s)", provider, nodeImage, time.Since(start).Round(time.Millisecond))

	dir := t.TempDir()
	configPath := filepath.Join(dir, "kind.yaml")
	if err := os.WriteFile(configPath, []byte(minimalConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	o := cluster.Options{
		Name:           "kindling-test-" + provider[:1] + "-" + randHex(t, 3),
		Provider:       provider,
		NodeImage:      nodeImage,
		ConfigPath:     configPath,
		KubeconfigPath: filepath.Join(dir, "kube", "config"),
		WaitForReady:   2 * time.Minute,
		DeleteHint:     "go run magefile.go aianalysis:down",
		Log:            t.Logf,
	}
	t.Cleanup(func() {
		if err := cluster.Delete(context.Background(), o.Name, provider, o.KubeconfigPath); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})

	start = time.Now()
	c, err := cluster.Create(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("TIMING create %s cluster: %s", provider, time.Since(start).Round(time.Millisecond))
	if c.Name != o.Name || c.Provider != provider || c.Kubeconfig != o.KubeconfigPath || len(c.Nodes) != 1 {
		t.Fatalf("cluster %+v", c)
	}

	t.Run("kubeconfig", func(t *testing.T) {
		checkMode(t, c.Kubeconfig)
		checkAPI(t, ctx, c.Kubeconfig)
	})

	t.Run("exists", func(t *testing.T) {
		_, err := cluster.Create(ctx, o)
		if !errors.Is(err, cluster.ErrClusterExists) {
			t.Fatalf("second Create: %v, want ErrClusterExists", err)
		}
		for _, part := range []string{`cluster "` + o.Name + `" already exists (provider ` + provider + `)`, "aianalysis:down", "E2E_REUSE_CLUSTER=true"} {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("error %q lacks %q", err, part)
			}
		}
		if ok, err := cluster.Exists(ctx, o.Name, provider); err != nil || !ok {
			t.Errorf("Exists = %v, %v", ok, err)
		}
		if ok, err := cluster.Exists(ctx, o.Name+"-absent", provider); err != nil || ok {
			t.Errorf("Exists(absent) = %v, %v", ok, err)
		}
	})

	t.Run("reuse", func(t *testing.T) {
		r := o
		r.Reuse = true
		r.KubeconfigPath = filepath.Join(t.TempDir(), "config")
		// a pre-existing, too open file: kind keeps its mode, Create must restrict it
		if err := os.WriteFile(r.KubeconfigPath, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		rc, err := cluster.Create(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if rc.Name != c.Name || len(rc.Nodes) != len(c.Nodes) {
			t.Errorf("reused %+v, created %+v", rc, c)
		}
		checkMode(t, r.KubeconfigPath)
		checkAPI(t, ctx, r.KubeconfigPath)

		// Workers asked for that the reused cluster does not have: an error, not a silent mismatch.
		r.Workers = 2
		if _, err := cluster.Create(ctx, r); err == nil || !strings.Contains(err.Error(), "E2E_WORKERS") || !strings.Contains(err.Error(), fmt.Sprintf("has %d node(s)", len(c.Nodes))) {
			t.Errorf("reuse with 2 more workers than the cluster has: %v", err)
		}
	})

	t.Run("storage", func(t *testing.T) {
		paths, err := cluster.NodeStorage(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if len(paths) != len(c.Nodes) {
			t.Fatalf("NodeStorage = %v", paths)
		}
		for _, p := range paths {
			if _, err := os.Stat(filepath.Join(p.Path, "lib", "containerd")); err != nil {
				t.Errorf("node %s: host path %s does not hold lib/containerd: %v", p.Node, p.Path, err)
			}
			t.Logf("node %s: /var is %s", p.Node, p.Path)
		}
		listed, err := cluster.NodeStorage(ctx, cluster.Cluster{Name: c.Name, Provider: c.Provider})
		if err != nil || len(listed) != 1 || listed[0] != paths[0] {
			t.Errorf("NodeStorage without node names = %v, %v; want %v", listed, err, paths)
		}
	})

	ns, err := cluster.Nodes(ctx, o.Name, provider)
	if err != nil || len(ns) != 1 {
		t.Fatalf("Nodes = %v, %v", ns, err)
	}

	t.Run("load", func(t *testing.T) {
		ref, id, archive := testArchive(t, ctx, provider)
		before, err := cluster.NodeImageBytes(ctx, ns[0])
		if err != nil {
			t.Fatal(err)
		}
		want := []load.Image{{Ref: ref, ID: id}}
		start := time.Now()
		res, err := load.Archive(ctx, ns, archive, want, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("TIMING load %s: %s", provider, time.Since(start).Round(time.Millisecond))
		if len(res.Nodes) != 1 || !res.Nodes[0].Imported || len(res.Images) != 1 {
			t.Errorf("first load: %+v", res)
		}
		// independent check, the way kind looks up image IDs
		if got, err := nodeutils.ImageID(ns[0], ref); err != nil || got != id {
			t.Errorf("crictl inspecti %s = %q, %v; want %s", ref, got, err, id)
		}
		after, err := cluster.NodeImageBytes(ctx, ns[0])
		if err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(archive)
		t.Logf("node containerd: %d -> %d bytes (+%d) for a %d-byte archive", before, after, after-before, st.Size())
		if after <= before {
			t.Errorf("NodeImageBytes did not grow: %d -> %d", before, after)
		}

		start = time.Now()
		res, err = load.Archive(ctx, ns, archive, want, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("TIMING second load (skip) %s: %s", provider, time.Since(start).Round(time.Millisecond))
		if res.Nodes[0].Imported {
			t.Errorf("second load imported again: %+v", res)
		}
		absent := load.Image{Ref: ref + "-absent", ID: id}
		if miss, err := load.Missing(ctx, ns[0], append(want, absent)); err != nil || len(miss) != 1 || miss[0] != absent {
			t.Errorf("Missing = %v, %v; want only %v", miss, err, absent)
		}
	})

	t.Run("layout in parts", func(t *testing.T) { layoutInParts(t, ctx, ns) })

	t.Run("logs", func(t *testing.T) {
		dir := t.TempDir()
		if err := cluster.ExportLogs(ctx, o.Name, provider, dir); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"kind-version.txt", filepath.Join(c.Nodes[0], "kubelet.log"), filepath.Join(c.Nodes[0], "containerd.log")} {
			if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
				t.Errorf("log file %s: %v", f, err)
			}
		}
	})

	t.Run("delete", func(t *testing.T) {
		if err := cluster.Delete(ctx, o.Name, provider, o.KubeconfigPath); err != nil {
			t.Fatal(err)
		}
		if ok, err := cluster.Exists(ctx, o.Name, provider); err != nil || ok {
			t.Errorf("after Delete: Exists = %v, %v", ok, err)
		}
	})
}

func checkMode(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig %s has mode %v, want 0600", path, st.Mode().Perm())
	}
}

func checkAPI(t *testing.T, ctx context.Context, kubeconfig string) {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// raw request: keeps k8s.io/apimachinery out of this package's direct imports
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes").DoRaw(ctx)
	if err != nil {
		t.Fatalf("list nodes with %s: %v", kubeconfig, err)
	}
	var list struct{ Items []json.RawMessage }
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 {
		t.Errorf("API lists %d nodes, want 1", len(list.Items))
	}
}

// testArchive builds a FROM scratch image around a static hello binary with the provider's engine
// and saves it as a docker-archive. It returns the image's ref, ID and the archive path.
func testArchive(t *testing.T, ctx context.Context, engine string) (ref, id, archive string) {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	ctxDir := filepath.Join(dir, "context")
	for _, d := range []string{src, ctxDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(src, "go.mod"), "module hello\n\ngo 1.24\n")
	write(t, filepath.Join(src, "main.go"), "package main\n\nfunc main() { println(\"hello from kindling\") }\n")
	write(t, filepath.Join(ctxDir, "Containerfile"), "FROM scratch\nCOPY hello /hello\nUSER 65532:65532\nENTRYPOINT [\"/hello\"]\n")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(ctxDir, "hello"), ".")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
	runCmd(t, build)

	ref = "localhost/kindling-loadtest:" + engine + "-" + randHex(t, 4)
	runCmd(t, exec.CommandContext(ctx, engine, "build", "-t", ref, "-f", filepath.Join(ctxDir, "Containerfile"), ctxDir))
	t.Cleanup(func() { _ = exec.Command(engine, "rmi", ref).Run() })
	id = strings.TrimSpace(runCmd(t, exec.CommandContext(ctx, engine, "image", "inspect", "--format", "{{.Id}}", ref)))
	if !strings.HasPrefix(id, "sha256:") {
		id = "sha256:" + id
	}
	archive = filepath.Join(dir, "images.tar")
	save := []string{"save", "-o", archive, ref}
	if engine == cluster.ProviderPodman {
		save = []string{"save", "--format", "docker-archive", "-o", archive, ref}
	}
	runCmd(t, exec.CommandContext(ctx, engine, save...))
	return ref, id, archive
}

func runCmd(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr)
	}
	return string(out)
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func randHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestRealEnsureNodeImage copies a small stand-in "node image" from docker to podman, then
// replaces it in docker and checks that podman's stale copy is replaced (and removed).
func TestRealEnsureNodeImage(t *testing.T) {
	testenv.Short(t)
	testenv.RequireEngine(t, "docker")
	testenv.RequireEngine(t, "podman")
	enginetest.Lock(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	image := "kindlingtest/nodeimg:" + randHex(t, 4)
	podmanName := "localhost/" + image
	t.Cleanup(func() {
		_ = exec.Command("docker", "rmi", image).Run()
		_ = exec.Command("podman", "rmi", podmanName).Run()
	})
	if _, err := cluster.EnsureNodeImage(ctx, cluster.ProviderPodman, image, t.Logf); err == nil || !strings.Contains(err.Error(), "../shared/kindenv/setup") {
		t.Errorf("missing image: error %v should point to ../shared/kindenv/setup", err)
	}

	ids := make([]string, 2)
	for i := range ids {
		dir := t.TempDir()
		write(t, filepath.Join(dir, "version"), randHex(t, 8))
		write(t, filepath.Join(dir, "Containerfile"), "FROM scratch\nCOPY version /version\n")
		runCmd(t, exec.CommandContext(ctx, "docker", "build", "-t", image, "-f", filepath.Join(dir, "Containerfile"), dir))
		ids[i] = strings.TrimSpace(runCmd(t, exec.CommandContext(ctx, "docker", "image", "inspect", "--format", "{{.Id}}", image)))

		got, err := cluster.EnsureNodeImage(ctx, cluster.ProviderPodman, image, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		if got != podmanName {
			t.Errorf("EnsureNodeImage = %q, want %q", got, podmanName)
		}
		podID := strings.TrimSpace(runCmd(t, exec.CommandContext(ctx, "podman", "image", "inspect", "--format", "{{.Id}}", podmanName)))
		if "sha256:"+podID != ids[i] {
			t.Errorf("podman has %s, docker %s", podID, ids[i])
		}
		if got, err := cluster.EnsureNodeImage(ctx, cluster.ProviderDocker, image, t.Logf); err != nil || got != image {
			t.Errorf("docker: EnsureNodeImage = %q, %v", got, err)
		}
	}
	if exec.CommandContext(ctx, "podman", "image", "exists", strings.TrimPrefix(ids[0], "sha256:")).Run() == nil {
		t.Errorf("podman still holds the stale copy %s", ids[0])
	}
	_ = exec.Command("docker", "rmi", ids[0]).Run()
}
