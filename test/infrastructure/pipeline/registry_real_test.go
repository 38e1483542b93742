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
	"github.com/kindling-dev/kindling/test/infrastructure/engine/enginetest"
	"github.com/kindling-dev/kindling/test/infrastructure/registry"
	"github.com/kindling-dev/kindling/test/infrastructure/suite"
	"github.com/kindling-dev/kindling/test/infrastructure/testenv"
)

// TestRealLocalRegistryMode runs a suite through every phase with E2E_REGISTRY=local on podman:
// the image is pushed to the suite's registry:3 and read back, pruned from the engine, and pulled
// by the node when the pod starts; down removes the registry with the cluster.
func TestRealLocalRegistryMode(t *testing.T) {
	eng := enginetest.Real(t, "podman")
	nodeImage := testenv.NodeImage(t)
	enginetest.Lock(t)
	ctx := context.Background()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	unique := enginetest.Unique(t)
	dir := t.TempDir()
	manifestsDir, err := filepath.Rel(root, manifests(t, map[string]string{
		"00-namespace.yaml":     namespaceYAML("it-registry"),
		"41-holmesgpt-api.yaml": deploymentYAML("it-registry", "holmesgpt-api", "${HOLMESGPT_API_IMAGE}"),
	}))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Root: root,
		Suite: suite.Suite{Name: "reg" + unique, Manifests: manifestsDir, Services: []build.Service{{Name: "holmesgpt-api", Spec: build.Spec{Host: &build.HostBuild{
			Package: "./services/holmesgpt-api", Containerfile: "services/holmesgpt-api/Containerfile"}}}}},
		Engine:         "podman",
		HostBuild:      true,
		LocalRegistry:  true,
		Parallelism:    1,
		Prune:          PruneScoped,
		RunDir:         filepath.Join(dir, "run"),
		ArchiveDir:     filepath.Join(dir, "archives"),
		ClusterName:    "kindling-reg-" + unique,
		NodeImage:      nodeImage,
		RolloutTimeout: 2 * time.Minute,
	}
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
	for _, phase := range []func(context.Context) error{r.Build, r.Export, r.Prune, r.Cluster, r.Load, r.Deploy} {
		if err := phase(ctx); err != nil {
			t.Fatal(err)
		}
	}
	pushed := r.st.Pushed
	if pushed == nil || len(pushed.Images) != 1 || !strings.HasPrefix(pushed.Images[0].Ref, "localhost:") {
		t.Fatalf("pushed %+v, want one image in the local registry", pushed)
	}
	if r.st.Archive != nil {
		t.Errorf("local registry mode wrote an archive: %+v", r.st.Archive)
	}
	if _, found, _ := eng.ImageID(ctx, r.st.Images[0].Ref); found {
		t.Errorf("prune left %s in the engine", r.st.Images[0].Ref)
	}
	if !strings.Contains(out.String(), "the nodes pull from the local registry") {
		t.Errorf("load did not say the nodes pull:\n%s", out.String())
	}
	kube := clientFor(t, r.st.Cluster.Kubeconfig)
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

	rec := *r.st.Registry
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
