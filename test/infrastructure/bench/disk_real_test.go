package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/kindling-dev/kindling/test/infrastructure/engine/enginetest"
	"github.com/kindling-dev/kindling/test/infrastructure/testenv"
)

// bench:disk on a real engine and real clusters, a small workload, every strategy: the kindling
// ones run the product's phases (export, prune, cluster, load), and nothing of the benchmark is
// left behind.
func TestRealDiskBenchRunsTheProduct(t *testing.T) {
	testenv.Short(t)
	enginetest.Real(t, "docker")
	nodeImage := testenv.NodeImage(t)
	enginetest.Lock(t)
	c := Config{Synthetic: Synthetic{Images: 2, BaseMiB: 4, UniqueMiB: 2, GarbageMiB: 2}, Strategies: Strategies,
		Format: "json", Engine: "docker", NodeImage: nodeImage, Dir: t.TempDir()}
	var out, log bytes.Buffer
	if err := Main(context.Background(), c, &out, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || len(rep.Results) != len(Strategies) {
		t.Fatalf("report %s: %v", out.String(), err)
	}
	for _, res := range rep.Results {
		ratio := rep.NodeRatio(res)
		t.Logf("%s: %s, peak %d, node / image bytes %.2f, archives %d", res.Strategy, res.Total, res.MaxPeak(), ratio, res.ArchiveBytes)
		if res.Nodes != 1 || res.ArchiveBytes <= 0 || res.MaxPeak() <= 0 {
			t.Errorf("%s: %+v", res.Strategy, res)
		}
		// kind's import keeps the blobs beside the snapshots; the product's archive import
		// discards them and has the node collect them at once. The kubelet's pulls from the
		// registry discard them too, but containerd collects them on its own schedule: seen at
		// 1.00–1.25× here, where one leftover 2 MiB blob is a quarter of the images.
		switch {
		case res.Strategy == KindlingRegistry:
			if ratio < 0.9 || ratio > 1.6 {
				t.Errorf("%s: the node keeps %.2f× the image bytes", res.Strategy, ratio)
			}
		case strings.HasPrefix(res.Strategy, Kindling):
			if ratio < 0.9 || ratio > 1.2 {
				t.Errorf("%s: the node keeps %.2f× the image bytes", res.Strategy, ratio)
			}
		case ratio < 1.8:
			t.Errorf("%s: the node keeps %.2f× the image bytes, want kind's 2×", res.Strategy, ratio)
		}
	}
	for _, want := range []string{"kindling: [export]", "kindling: [load]    every node holds", "kindling+overlap: [cluster] E2E_OVERLAP", "kindling+registry: [export]  pushed"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the product's output lacks %q:\n%s", want, log.String())
		}
	}
	if got, _ := exec.Command("docker", "ps", "-a", "--format", "{{.Names}}").Output(); strings.Contains(string(got), "kindling-bench-") || strings.Contains(string(got), "kindling-registry-bench") {
		t.Errorf("containers left: %s", got)
	}
	if got, _ := exec.Command("docker", "images", "--format", "{{.Repository}}").Output(); strings.Contains(string(got), "kindling-bench-") {
		t.Errorf("images left: %s", got)
	}
}
