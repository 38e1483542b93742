package pipeline

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
	"github.com/kindling-dev/kindling/test/infrastructure/build"
	"github.com/kindling-dev/kindling/test/infrastructure/cluster"
	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/engine/enginetest"
	"github.com/kindling-dev/kindling/test/infrastructure/load"
	"github.com/kindling-dev/kindling/test/infrastructure/state"
	"github.com/kindling-dev/kindling/test/infrastructure/suite"
	"github.com/kindling-dev/kindling/test/infrastructure/testenv"
)

// TestRealDeployPhase runs the deploy phase against a real Kind cluster holding a real image of
// holmesgpt-api that went through build, save and load: with the container engine made
// unavailable, and on the failure paths that matter.
func TestRealDeployPhase(t *testing.T) {
	testenv.Short(t)
	testenv.RequireEngine(t, "docker")
	nodeImage := testenv.NodeImage(t)
	enginetest.Lock(t) // an engine test's system prune must not catch a node container being created
	ctx := context.Background()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	unique := enginetest.Unique(t)
	eng, err := engine.New("docker", nil)
	if err != nil {
		t.Fatal(err)
	}

	// build (on the host: this test is about deploy) → save → cluster → load, with the real pieces.
	opts := build.Options{Engine: eng, Suite: "it" + unique, RunID: "it-" + unique, RepoRoot: root, WorkDir: t.TempDir(), Parallelism: 1, Log: t.Logf, Host: true}
	planned, err := build.Plan(ctx, opts, []build.Service{{Name: "holmesgpt-api", Spec: build.Spec{Host: &build.HostBuild{
		Package: "./services/holmesgpt-api", Containerfile: "services/holmesgpt-api/Containerfile"}}}})
	if err != nil {
		t.Fatal(err)
	}
	built, err := build.Images(ctx, opts, planned)
	if err != nil {
		t.Fatal(err)
	}
	img := built.Results[0]
	t.Cleanup(func() { eng.Remove(context.Background(), []string{img.ID}) })
	tarball := filepath.Join(t.TempDir(), "suite.tar")
	if err := eng.Save(ctx, tarball, []string{img.Ref}); err != nil {
		t.Fatal(err)
	}

	name := "kindling-it-" + unique
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	// A control plane and two workers: the archive goes to every node.
	c, err := cluster.Create(ctx, cluster.Options{Name: name, Provider: "docker", NodeImage: nodeImage, Workers: 2,
		KubeconfigPath: kubeconfig, WaitForReady: 3 * time.Minute, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cluster.Delete(context.Background(), name, "docker", kubeconfig); err != nil {
			t.Errorf("delete cluster %s: %v", name, err)
		}
	})
	nodes, err := cluster.Nodes(ctx, name, "docker")
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 3 {
		t.Fatalf("nodes %v, want 3", nodes)
	}
	if _, err := load.Archive(ctx, nodes, tarball, []load.Image{{Ref: img.Ref, ID: img.ID}}, t.Logf); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if missing, err := load.Missing(ctx, n, []load.Image{{Ref: img.Ref, ID: img.ID}}); err != nil || len(missing) > 0 {
			t.Fatalf("node %s lacks the loaded image (%v)", n, err)
		}
	}
	loaded := Loaded{
		Cluster: state.Cluster{Name: c.Name, Provider: c.Provider, Kubeconfig: c.Kubeconfig},
		Images:  []state.Image{{Service: "holmesgpt-api", Ref: img.Ref, ID: img.ID}},
	}
	kube := clientFor(t, kubeconfig)

	t.Run("deploys with the engine unavailable", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir()) // no podman, no docker, no kubectl
		t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
		t.Setenv("CONTAINER_HOST", "unix:///nonexistent/podman.sock")
		for _, bin := range []string{"docker", "podman"} {
			if _, err := exec.LookPath(bin); err == nil {
				t.Fatalf("%s is still reachable", bin)
			}
		}
		cfg := testConfig(t, manifests(t, map[string]string{
			"00-namespace.yaml":     namespaceYAML("it-deploy"),
			"41-holmesgpt-api.yaml": deploymentYAML("it-deploy", "holmesgpt-api", "${HOLMESGPT_API_IMAGE}"),
		}), time.Minute)
		var diag bytes.Buffer
		if err := Deploy(ctx, cfg, loaded, t.Logf, &diag); err != nil {
			t.Fatalf("deploy without an engine: %v\n%s", err, diag.String())
		}
		d, err := kube.AppsV1().Deployments("it-deploy").Get(ctx, "holmesgpt-api", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Status.AvailableReplicas != 1 {
			t.Errorf("deployment not available after deploy: %+v", d.Status)
		}
		if got := d.Spec.Template.Spec.Containers[0].Image; got != img.Ref {
			t.Errorf("deployed image %s, want the loaded %s", got, img.Ref)
		}
	})

	t.Run("an image that was not loaded fails before anything is applied", func(t *testing.T) {
		cfg := testConfig(t, manifests(t, map[string]string{
			"00-namespace.yaml": namespaceYAML("it-unloaded"),
			"40-ghost.yaml":     deploymentYAML("it-unloaded", "ghost", "localhost/ghost:never-built"),
		}), time.Minute)
		err := Deploy(ctx, cfg, loaded, t.Logf, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "localhost/ghost:never-built") || !strings.Contains(err.Error(), "40-ghost.yaml") {
			t.Fatalf("err = %v, want one naming the image and the manifest", err)
		}
		if _, err := kube.CoreV1().Namespaces().Get(ctx, "it-unloaded", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("namespace it-unloaded exists (err %v): something was applied", err)
		}
	})

	t.Run("a rollout that times out prints diagnostics", func(t *testing.T) {
		cfg := testConfig(t, manifests(t, map[string]string{
			"00-namespace.yaml": namespaceYAML("it-timeout"),
			"40-ghost.yaml":     deploymentYAML("it-timeout", "ghost", "${GHOST_IMAGE}"),
		}), 20*time.Second)
		// Claim an image is loaded that no node has: the kubelet reports ErrImageNeverPull.
		lying := loaded
		lying.Images = append(append([]state.Image{}, loaded.Images...), state.Image{Service: "ghost", Ref: "localhost/ghost:not-on-any-node"})
		var diag bytes.Buffer
		err := Deploy(ctx, cfg, lying, t.Logf, &diag)
		if err == nil || !strings.Contains(err.Error(), "it-timeout/ghost") {
			t.Fatalf("err = %v, want a rollout timeout naming it-timeout/ghost", err)
		}
		for _, want := range []string{"ErrImageNeverPull", "events", "pod ghost-"} {
			if !strings.Contains(diag.String(), want) {
				t.Errorf("diagnostics lack %q:\n%s", want, diag.String())
			}
		}
	})

	// The archive is the contract: Docker 29 (containerd image store, BuildKit, as on an
	// ubuntu-latest runner) builds an image index (the image and BuildKit's attestation), the
	// archive holds the host platform's manifest, which the build recorded from the engine's
	// index; the nodes of the system Docker's cluster import it and list its config digest, and
	// the service deployed from it answers its readiness probe.
	t.Run("an image BuildKit built on Docker 29 is exported, loaded into the nodes and deployed", func(t *testing.T) {
		d29 := enginetest.Real(t, enginetest.Docker29)
		opts29 := opts
		opts29.Engine, opts29.Suite, opts29.RunID, opts29.WorkDir = d29, "it"+unique+"d29", "it-d29-"+unique, t.TempDir()
		planned29, err := build.Plan(ctx, opts29, []build.Service{{Name: "holmesgpt-api", Spec: build.Spec{Host: &build.HostBuild{
			Package: "./services/holmesgpt-api", Containerfile: "services/holmesgpt-api/Containerfile"}}}})
		if err != nil {
			t.Fatal(err)
		}
		built29, err := build.Images(ctx, opts29, planned29)
		if err != nil {
			t.Fatal(err)
		}
		res := built29.Results[0]
		t.Cleanup(func() {
			d29.Remove(context.Background(), []string{res.ID})
			d29.RemoveBuildCache(context.Background(), built29.BuildCache)
		})
		if info, err := d29.Info(ctx); err != nil || info.Builder != engine.BuilderBuildKit || !info.IDsAreManifests() {
			t.Fatalf("docker29 is not Docker's containerd store with BuildKit: %+v, %v", info, err)
		}
		if res.Manifest == "" || res.Manifest == res.ID {
			t.Errorf("BuildKit on the containerd store: image ID %s, %s manifest %q; want an index holding the manifest", res.ID, engine.HostPlatform, res.Manifest)
		}
		v, err := archive.WriteLayout(ctx, t.TempDir(), opts29.Suite, opts29.RunID, []string{res.Ref}, func(ctx context.Context, w io.Writer) error {
			return d29.SaveImage(ctx, w, res.Ref)
		})
		if err != nil {
			t.Fatal(err)
		}
		layout, err := archive.OpenLayout(v.Path, v.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		images, err := withArchiveIDs([]state.Image{{Service: "holmesgpt-api", Ref: res.Ref, EngineID: res.ID, Manifest: res.Manifest}}, v.Images, true)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("docker29: index %s, %s manifest %s, config %s; archive %d bytes", res.ID, engine.HostPlatform, res.Manifest, images[0].ID, v.Size)
		want := []load.Image{{Ref: res.Ref, ID: images[0].ID}}
		if _, err := load.Layout(ctx, nodes, layout, load.Options{Log: t.Logf}, nil); err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			if missing, err := load.Missing(ctx, n, want); err != nil || len(missing) > 0 {
				t.Errorf("node %s lacks %v (%v)", n, missing, err)
			}
		}
		cfg := testConfig(t, manifests(t, map[string]string{
			"00-namespace.yaml":     namespaceYAML("it-docker29"),
			"41-holmesgpt-api.yaml": deploymentYAML("it-docker29", "holmesgpt-api", "${HOLMESGPT_API_IMAGE}"),
		}), 2*time.Minute)
		var diag bytes.Buffer
		from29 := Loaded{Cluster: loaded.Cluster, Images: images}
		if err := Deploy(ctx, cfg, from29, t.Logf, &diag); err != nil {
			t.Fatalf("deploy of the image built on Docker 29: %v\n%s", err, diag.String())
		}
		d, err := kube.AppsV1().Deployments("it-docker29").Get(ctx, "holmesgpt-api", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Status.AvailableReplicas != 1 || d.Spec.Template.Spec.Containers[0].Image != res.Ref {
			t.Errorf("deployment of %s: image %s, status %+v", res.Ref, d.Spec.Template.Spec.Containers[0].Image, d.Status)
		}
	})

	t.Run("a cluster name already taken is a clear error", func(t *testing.T) {
		cfg := testConfig(t, "", time.Minute)
		cfg.ClusterName, cfg.NodeImage = name, nodeImage
		r, err := New(cfg, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		r.detected.set(eng, engine.Info{})
		_, err = r.createCluster(ctx, Observed{}, true)
		if !errors.Is(err, cluster.ErrClusterExists) {
			t.Fatalf("err = %v, want ErrClusterExists", err)
		}
		for _, want := range []string{name, "suite:down unit", "E2E_REUSE_CLUSTER=true"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
	})
}

func testConfig(t *testing.T, manifestsDir string, rollout time.Duration) Config {
	dir := t.TempDir()
	return Config{
		Root:           "/",
		Suite:          suite.Suite{Name: "unit", Manifests: manifestsDir},
		RunDir:         filepath.Join(dir, "run"),
		ArchiveDir:     filepath.Join(dir, "archives"),
		RolloutTimeout: rollout,
	}
}

func manifests(t *testing.T, files map[string]string) string {
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func namespaceYAML(ns string) string {
	return "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + ns + "\n"
}

func deploymentYAML(ns, name, image string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ` + name + `
  namespace: ` + ns + `
spec:
  replicas: 1
  selector:
    matchLabels: {app: ` + name + `}
  template:
    metadata:
      labels: {app: ` + name + `}
    spec:
      containers:
        - name: ` + name + `
          image: ` + image + `
          imagePullPolicy: Never
          readinessProbe:
            httpGet: {path: /readyz, port: 8080}
            periodSeconds: 1
`
}

func clientFor(t *testing.T, kubeconfig string) kubernetes.Interface {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return kubernetes.NewForConfigOrDie(cfg)
}
