package pipeline

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kindling-dev/kindling/test/infrastructure/build"
	"github.com/kindling-dev/kindling/test/infrastructure/cluster"
	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/engine/enginetest"
	"github.com/kindling-dev/kindling/test/infrastructure/registry"
	"github.com/kindling-dev/kindling/test/infrastructure/suite"
	"github.com/kindling-dev/kindling/test/infrastructure/testenv"
)

// TestRealLocalRegistryMode runs a suite through every phase with E2E_REGISTRY=local on podman:
// the image is pushed to the suite's registry:3 and read back, pruned from the engine, and pulled
// by the node when the pod starts; down removes the registry with the cluster.
func TestRealLocalRegistryMode(t *testing.T) {
	eng, cfg := realHoloSuite(t, "podman", "reg", "it-registry")
	cfg.LocalRegistry = true
	ctx := context.Background()
	var out bytes.Buffer
	r, err := New(cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Down(context.Background()); err != nil {
			t.Errorf("down: %v", err)
		}
		t.Logf("run output:\n%s", out.String())
	})
	got := through(t, r, "deploy")
	pushed := got.e.Pushed
	if r.recorded().Pushed == nil || pushed == nil || r.recorded().Pushed.Host != pushed.Host {
		t.Errorf("recorded push %+v, handed on %+v", r.recorded().Pushed, pushed)
	}
	if pushed == nil || len(pushed.Images) != 1 || !strings.HasPrefix(pushed.Images[0].Ref, "localhost:") {
		t.Fatalf("pushed %+v, want one image in the local registry", pushed)
	}
	if r.recorded().Archive != nil {
		t.Errorf("local registry mode wrote an archive: %+v", r.recorded().Archive)
	}
	if _, found, _ := eng.ImageID(ctx, r.recorded().Images[0].Ref); found {
		t.Errorf("prune left %s in the engine", r.recorded().Images[0].Ref)
	}
	if !strings.Contains(out.String(), "skipped: the nodes pull from localhost:") {
		t.Errorf("load did not say the nodes pull:\n%s", out.String())
	}
	kube := clientFor(t, r.recorded().Cluster.Kubeconfig)
	d, err := kube.AppsV1().Deployments("it-registry").Get(ctx, "holmesgpt-api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != pushed.Images[0].Ref || c.ImagePullPolicy != "IfNotPresent" || d.Status.AvailableReplicas != 1 {
		t.Errorf("deployment runs %s (%s, %d available), want the pushed %s, IfNotPresent, 1 available",
			c.Image, c.ImagePullPolicy, d.Status.AvailableReplicas, pushed.Images[0].Ref)
	}
	cm, err := kube.CoreV1().ConfigMaps("kube-public").Get(ctx, "local-registry-hosting", metav1.GetOptions{})
	if err != nil || !strings.Contains(cm.Data["localRegistryHosting.v1"], pushed.Host) {
		t.Errorf("KEP-1755 ConfigMap: %+v, %v", cm, err)
	}

	rec := *r.recorded().Registry
	if err := r.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _ := cluster.Exists(ctx, cfg.ClusterName, "podman"); ok {
		t.Error("down left the cluster")
	}
	l := registry.Local{Name: rec.Name, Engine: rec.Engine}
	if path, err := l.VolumePath(ctx); err == nil {
		t.Errorf("down left the registry's volume at %s", path)
	}
}

// TestRealExternalRegistry pushes to a registry the run does not own (IMAGE_REGISTRY, here a
// registry:3 container the test starts and shows to the nodes, as a team would configure theirs):
// a push that fails leaves every image in the engine and nothing to prune; a push that works is
// read back, pruned, and pulled by the node.
func TestRealExternalRegistry(t *testing.T) {
	eng, cfg := realHoloSuite(t, "docker", "ext", "it-external")
	ctx := context.Background()
	reg, err := registry.Start(ctx, "docker", "kindling-external-it-"+cfg.Suite.Name, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Remove(context.Background()) })

	t.Run("a failed push prunes nothing", func(t *testing.T) {
		bad := cfg
		bad.PushTo = "localhost:1/kindling"
		r, err := New(bad, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Down(context.Background()) })
		e, err := r.Export(ctx, buildFor(t, r))
		if err == nil || !strings.Contains(err.Error(), "localhost:1/kindling/holmesgpt-api") || !strings.Contains(err.Error(), "nothing was pruned") {
			t.Fatalf("export to a registry that does not answer: %v", err)
		}
		if _, err := r.Prune(ctx, e); err == nil {
			t.Error("prune ran after a failed push")
		}
		if _, found, err := eng.ImageID(ctx, r.recorded().Images[0].Ref); err != nil || !found {
			t.Errorf("the built image is gone after a failed push (%v)", err)
		}
	})

	cfg.PushTo, cfg.PushTag = reg.Host()+"/kindling", "commit1"
	var out bytes.Buffer
	r, err := New(cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Down(context.Background())
		t.Logf("run output:\n%s", out.String())
	})
	got := through(t, r, "cluster")
	if _, found, _ := eng.ImageID(ctx, r.recorded().Images[0].Ref); found {
		t.Errorf("prune left %s in the engine", r.recorded().Images[0].Ref)
	}
	ref := r.recorded().Pushed.Images[0].Ref
	if !strings.HasPrefix(ref, reg.Host()+"/kindling/holmesgpt-api:") {
		t.Errorf("pushed as %s", ref)
	}
	// What a matrix job elsewhere pulls with IMAGE_TAG=<suite>-<IMAGE_PUSH_TAG>.
	if _, err := registry.Verify(ctx, reg.Host()+"/kindling/holmesgpt-api:"+cfg.Suite.Name+"-commit1", r.recorded().Images[0].EngineID, true); err != nil {
		t.Errorf("IMAGE_PUSH_TAG: %v", err)
	}
	nodes, err := cluster.Nodes(ctx, cfg.ClusterName, "docker")
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Attach(ctx, cluster.Network("docker"), nodes); err != nil {
		t.Fatal(err)
	}
	l, err := r.Load(ctx, got.c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Deploy(ctx, l); err != nil {
		t.Fatal(err)
	}
	d, err := clientFor(t, r.recorded().Cluster.Kubeconfig).AppsV1().Deployments("it-external").Get(ctx, "holmesgpt-api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Spec.Template.Spec.Containers[0].Image; got != ref || d.Status.AvailableReplicas != 1 {
		t.Errorf("deployment runs %s (%d available), want %s available", got, d.Status.AvailableReplicas, ref)
	}
	id := r.recorded().Images[0].EngineID
	if _, err := registry.Verify(ctx, ref, id, true); err != nil {
		t.Fatalf("before down: %v", err)
	}
	if err := r.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := registry.Verify(ctx, ref, id, true); err != nil {
		t.Errorf("down touched the external registry, which is not the run's: %v", err)
	}
}

// realHoloSuite is a one-service suite on a real engine (holmesgpt-api compiled on the host) whose
// manifests deploy it to namespace ns, and the run's config; it takes the engine test lock.
func realHoloSuite(t *testing.T, engineName, prefix, ns string) (engine.Engine, Config) {
	eng := enginetest.Real(t, engineName)
	nodeImage := testenv.NodeImage(t)
	enginetest.Lock(t)
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	unique := enginetest.Unique(t)
	manifestsDir, err := filepath.Rel(root, manifests(t, map[string]string{
		"00-namespace.yaml":     namespaceYAML(ns),
		"41-holmesgpt-api.yaml": deploymentYAML(ns, "holmesgpt-api", "${HOLMESGPT_API_IMAGE}"),
	}))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	return eng, Config{
		Root: root,
		Suite: suite.Suite{Name: prefix + unique, Manifests: manifestsDir, Services: []build.Service{{Name: "holmesgpt-api",
			Spec: build.Spec{Host: &build.HostBuild{Package: "./services/holmesgpt-api", Containerfile: "services/holmesgpt-api/Containerfile"}}}}},
		Engine: engineName, HostBuild: true, Parallelism: 1, Prune: PruneScoped,
		RunDir: filepath.Join(dir, "run"), ArchiveDir: filepath.Join(dir, "archives"),
		ClusterName: "kindling-" + prefix + "-" + unique, NodeImage: nodeImage, RolloutTimeout: 2 * time.Minute,
	}
}
