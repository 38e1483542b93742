package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/engine/enginetest"
)

func TestSyntheticWorkload(t *testing.T) {
	eng := &enginetest.Engine{}
	dir := t.TempDir()
	s := Synthetic{Images: 2, BaseMiB: 2, UniqueMiB: 1, GarbageMiB: 1}
	w, err := NewSynthetic(eng, s, dir, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if w.Bytes != 4<<20 || len(w.Refs) != 2 || len(w.Bases) != 1 {
		t.Fatalf("workload %+v", w)
	}
	for _, f := range []string{"base/base.bin", "app-0/unique-0.bin", "app-1/unique-1.bin", "garbage/garbage.bin"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		want := int64(1 << 20)
		if strings.HasPrefix(f, "base") {
			want = 2 << 20
		}
		if fi.Size() != want {
			t.Errorf("%s: %d bytes, want %d", f, fi.Size(), want)
		}
	}
	// The apps are built on the base; the garbage is built, then its tag moves on and goes.
	if err := w.Rebuild(context.Background()); err != nil {
		t.Fatal(err)
	}
	var built []string
	for _, b := range eng.Builds() {
		built = append(built, b.Ref)
	}
	want := []string{w.Bases[0], w.Refs[0], w.Refs[1], "localhost/kindling-bench-t1/garbage:1", "localhost/kindling-bench-t1/garbage:1"}
	if !slices.Equal(built, want) {
		t.Errorf("builds %q, want %q", built, want)
	}
	app, _ := os.ReadFile(filepath.Join(dir, "app-0", "Containerfile"))
	if !strings.HasPrefix(string(app), "FROM "+w.Bases[0]+"\n") {
		t.Errorf("app Containerfile %q", app)
	}
	if _, found, _ := eng.ImageID(context.Background(), "localhost/kindling-bench-t1/garbage:1"); found {
		t.Error("the garbage tag is still there")
	}
	if err := w.Remove(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ids, _ := eng.AllImageIDs(context.Background()); len(ids) != 0 {
		t.Errorf("Remove left %v", ids)
	}
}

func TestRandomBytesDoNotCompressButTheTextDoes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ratio := func(compressible bool) float64 {
		path := filepath.Join(t.TempDir(), "f")
		if err := writeBytes(path, 1<<20, compressible, rng); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(path)
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(data)
		zw.Close()
		return float64(z.Len()) / float64(len(data))
	}
	if r := ratio(false); r < 0.99 {
		t.Errorf("random bytes compress to %.2f", r)
	}
	if r := ratio(true); r > 0.5 {
		t.Errorf("compressible bytes compress to %.2f only", r)
	}
}

func TestReportRatiosAndGoals(t *testing.T) {
	mib := int64(1 << 20)
	rep := Report{Workload: "synthetic", Engine: "docker", ImageBytes: 500 * mib, Results: []Result{
		{Strategy: Original, Total: 100 * time.Second, Peaks: []Peak{{Filesystem: "/", Bytes: 3000 * mib, Phase: "load"}},
			NodeContent: 500 * mib, NodeSnapshots: 500 * mib, ArchiveBytes: 900 * mib,
			Phases: []PhaseTime{{"export", 10 * time.Second}, {"load", 30 * time.Second}}},
		{Strategy: Kindling, Total: 50 * time.Second, Peaks: []Peak{{Filesystem: "/", Bytes: 2400 * mib, Phase: "load"}},
			NodeContent: 10 * mib, NodeSnapshots: 500 * mib, ArchiveBytes: 500 * mib},
	}}
	peak, wall := rep.Ratios(rep.Results[1])
	if peak != 0.8 || wall != 0.5 {
		t.Errorf("ratios %.2f %.2f, want 0.80 0.50", peak, wall)
	}
	goals := strings.Join(rep.Goals(), "\n")
	for _, want := range []string{"kindling: peak 0.80x the original's (goal <= 0.70x): NOT reached", "kindling: wall time 0.50x the original's (goal <= 0.60x): reached", "kindling: node store 1.02x the image bytes (goal <= 1.10x): reached"} {
		if !strings.Contains(goals, want) {
			t.Errorf("goals lack %q:\n%s", want, goals)
		}
	}
	var text, md, js bytes.Buffer
	// On three nodes the node store is a node's: the sum over the nodes, divided by them.
	three := rep.Results[1]
	three.Nodes, three.NodeContent, three.NodeSnapshots = 3, 30*mib, 1500*mib
	if got := rep.NodeRatio(three); got < 1.01 || got > 1.03 {
		t.Errorf("node ratio on three nodes %.2f, want 1.02", got)
	}
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"strategy", "original", "kindling", "2.3 GiB", "0.80x", "0.50x", "10s", "peak on / 2.9 GiB above the start, during load"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	if err := rep.WriteMarkdown(&md); err != nil || !strings.Contains(md.String(), "| kindling | 50s |") {
		t.Errorf("markdown %v:\n%s", err, md.String())
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Results[1].MaxPeak() != 2400*mib {
		t.Errorf("JSON round trip: %v %+v", err, back)
	}
}

func TestConfigFromEnv(t *testing.T) {
	for _, v := range []string{"BENCH_IMAGES", "BENCH_BASE_MIB", "BENCH_UNIQUE_MIB", "BENCH_GARBAGE_MIB", "BENCH_COMPRESSIBLE", "BENCH_STRATEGIES", "BENCH_FORMAT", "BENCH_WORKERS"} {
		t.Setenv(v, "")
	}
	c, err := ConfigFromEnv()
	if err != nil || c.Synthetic != DefaultSynthetic || len(c.Strategies) != len(Strategies) || c.Format != "text" {
		t.Fatalf("defaults %+v, %v", c, err)
	}
	t.Setenv("BENCH_IMAGES", "0")
	t.Setenv("BENCH_STRATEGIES", "kindling,fastest")
	t.Setenv("BENCH_FORMAT", "xml")
	t.Setenv("BENCH_WORKERS", "-1")
	_, err = ConfigFromEnv()
	for _, want := range []string{"BENCH_IMAGES", "fastest", "BENCH_FORMAT", "BENCH_WORKERS"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err %v does not name %s", err, want)
		}
	}
}
