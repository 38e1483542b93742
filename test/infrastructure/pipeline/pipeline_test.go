package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kindling-dev/kindling/test/infrastructure/budget"
	"github.com/kindling-dev/kindling/test/infrastructure/build"
	"github.com/kindling-dev/kindling/test/infrastructure/disk"
	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/engine/enginetest"
	"github.com/kindling-dev/kindling/test/infrastructure/state"
	"github.com/kindling-dev/kindling/test/infrastructure/suite"
)

// newTestRun makes a run of a one-service suite in a throwaway repository, on a fake engine.
func newTestRun(t *testing.T, root string, eng *enginetest.Engine) (*Run, *bytes.Buffer) {
	t.Helper()
	cfg := Config{
		Root:        root,
		Suite:       suite.Suite{Name: "unit", Services: []build.Service{{Name: "alpha", Spec: build.Spec{Dockerfile: "services/alpha/Dockerfile"}}}},
		RunDir:      filepath.Join(root, ".kindling", "unit"),
		ArchiveDir:  filepath.Join(root, "archives"),
		Prune:       PruneScoped,
		Parallelism: 1,
	}
	var out bytes.Buffer
	r, err := New(cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	r.detected.set(eng, engine.Info{})
	r.where.add(roleGraphRoot, disk.Place{Name: "fake graph root", Path: t.TempDir()})
	return r, &out
}

// observe is the run's first step, failing the test on error.
func observe(t *testing.T, r *Run) Observed {
	t.Helper()
	o, err := r.Observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// products are what the phases handed on, as Mage's graph keeps them.
type products struct {
	o Observed
	b Built
	e Exported
	p Pruned
	c Cluster
	l Loaded
	d Deployed
}

// through runs the phases in order up to and including last, failing the test on an error.
func through(t *testing.T, r *Run, last string) products {
	t.Helper()
	ctx := context.Background()
	var p products
	var err error
	steps := []struct {
		name string
		run  func() error
	}{
		{"build", func() error { p.b, err = r.Build(ctx, p.o); return err }},
		{"export", func() error { p.e, err = r.Export(ctx, p.b); return err }},
		{"prune", func() error { p.p, err = r.Prune(ctx, p.e); return err }},
		{"cluster", func() error { p.c, err = r.Cluster(ctx, p.p, Early{}); return err }},
		{"load", func() error { p.l, err = r.Load(ctx, p.c); return err }},
		{"deploy", func() error { p.d, err = r.Deploy(ctx, p.l); return err }},
	}
	p.o = observe(t, r)
	for _, s := range steps {
		if err := s.run(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if s.name == last {
			return p
		}
	}
	return p
}

// build runs the build phase from a fresh observation.
func buildFor(t *testing.T, r *Run) Built {
	t.Helper()
	b, err := r.Build(context.Background(), observe(t, r))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPruneRefusesImagesWithoutAVerifiedArchive(t *testing.T) {
	eng := &enginetest.Engine{}
	r, _ := newTestRun(t, t.TempDir(), eng)
	ref := "localhost/alpha:unit-0123456789ab"
	id := eng.AddImage(ref, map[string]string{"dev.kindling.suite": "unit", "dev.kindling.run": "run-1"})
	e := Exported{Built: Built{RunID: "run-1"}, Images: []state.Image{{Service: "alpha", Ref: ref, ID: id, EngineID: id}}} // no archive

	_, err := r.Prune(context.Background(), e)
	if err == nil || !strings.Contains(err.Error(), "refusing to prune") || !strings.Contains(err.Error(), ref) {
		t.Fatalf("err = %v, want a refusal naming %s", err, ref)
	}
	if _, found, _ := eng.ImageID(context.Background(), ref); !found {
		t.Error("the image was deleted although no verified archive holds it")
	}
}

func TestPruneRefusesAnUnexportedImageOfTheRun(t *testing.T) {
	eng := &enginetest.Engine{}
	r, _ := newTestRun(t, t.TempDir(), eng)
	ref := "localhost/alpha:unit-0123456789ab"
	id := eng.AddImage(ref, map[string]string{"dev.kindling.suite": "unit", "dev.kindling.run": "run-1"})
	stray := eng.AddImage("localhost/beta:unit-ffffffffffff", map[string]string{"dev.kindling.suite": "unit", "dev.kindling.run": "run-1"})
	e := Exported{Built: Built{RunID: "run-1"}, Images: []state.Image{{Service: "alpha", Ref: ref, ID: id, EngineID: id}}, Archive: state.Archive{Path: "/verified.tar"}}

	_, err := r.Prune(context.Background(), e)
	if err == nil || !strings.Contains(err.Error(), stray) {
		t.Fatalf("err = %v, want a refusal naming the unexported image %s", err, stray)
	}
}

func TestScopedPruneRemovesOnlyThisRunsImages(t *testing.T) {
	eng := &enginetest.Engine{}
	r, out := newTestRun(t, t.TempDir(), eng)
	ref := "localhost/alpha:unit-0123456789ab"
	id := eng.AddImage(ref, map[string]string{"dev.kindling.suite": "unit", "dev.kindling.run": "run-0"}) // reused from an earlier run
	other := eng.AddImage("localhost/alpha:unit-older", map[string]string{"dev.kindling.suite": "unit", "dev.kindling.run": "run-0"})
	unrelated := eng.AddImage("docker.io/library/someone-elses:latest", nil)
	e := Exported{Built: Built{RunID: "run-1"}, Images: []state.Image{{Service: "alpha", Ref: ref, ID: id, EngineID: id}}, Archive: state.Archive{Path: "/verified.tar"}}

	if _, err := r.Prune(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	images, _ := eng.Images(context.Background(), nil)
	var left []string
	for _, img := range images {
		left = append(left, img.ID)
	}
	if strings.Contains(strings.Join(left, " "), id) {
		t.Errorf("this run's image %s survived the prune", ref)
	}
	for _, keep := range []string{other, unrelated} {
		if !strings.Contains(strings.Join(left, " "), keep) {
			t.Errorf("image %s, not this run's, was pruned", keep)
		}
	}
	if r.recorded().Pruned == nil || r.recorded().Pruned.Mode != PruneScoped || len(r.recorded().Pruned.RemovedIDs) != 1 {
		t.Errorf("state after prune = %+v", r.recorded().Pruned)
	}
	if !strings.Contains(out.String(), "engine says it reclaimed") || !strings.Contains(out.String(), "gained") {
		t.Errorf("prune must report both numbers:\n%s", out)
	}
}

// The flow's own trap: after prune the images are gone from the engine on purpose. A later phase in
// a new process must take the verified archive as the build's product, not rebuild.
func TestBuildAfterPruneTakesTheVerifiedArchive(t *testing.T) {
	root := enginetest.Repo(t, "alpha")
	eng := &enginetest.Engine{}
	ctx := context.Background()

	first, _ := newTestRun(t, root, eng)
	buildFor(t, first)
	if n := len(eng.Builds()); n != 1 {
		t.Fatalf("first build ran %d image builds, want 1", n)
	}
	// Export (by hand: the fake engine cannot save; a layout of no blobs stands in) and prune.
	path := filepath.Join(first.cfg.ArchiveDir, "unit-"+first.recorded().RunID)
	os.MkdirAll(filepath.Join(path, "blobs", "sha256"), 0o700)
	index := []byte(`{"images":[]}`)
	os.WriteFile(filepath.Join(path, "images.json"), index, 0o600)
	sum := sha256.Sum256(index)
	if err := first.record(func(st *state.Suite) {
		st.Archive = &state.Archive{Path: path, Size: int64(len(index)), SHA256: hex.EncodeToString(sum[:])}
	}); err != nil {
		t.Fatal(err)
	}
	eng.Remove(ctx, []string{first.recorded().Images[0].ID})

	second, out := newTestRun(t, root, eng)
	built := buildFor(t, second)
	if n := len(eng.Builds()); n != 1 {
		t.Errorf("build after prune rebuilt the images (%d builds in all), want it to take the archive", n)
	}
	if !strings.Contains(out.String(), "verified archive") {
		t.Errorf("build should say the archive is its product:\n%s", out)
	}
	if built.Held.Archive == nil || built.Held.Archive.Path != path {
		t.Errorf("the build's product does not say the archive holds the images: %+v", built.Held)
	}
	if second.recorded().RunID != first.recorded().RunID {
		t.Errorf("same inputs started a new run (%s → %s)", first.recorded().RunID, second.recorded().RunID)
	}

	// A tampered archive is not trusted: the images are built again.
	os.WriteFile(filepath.Join(path, "images.json"), []byte(`{"images":[ ]}`), 0o600)
	third, _ := newTestRun(t, root, eng)
	buildFor(t, third)
	if n := len(eng.Builds()); n != 2 {
		t.Errorf("a changed archive was trusted: %d builds in all, want 2", n)
	}
}

// repoWithCacheMount is a repository whose service alpha keeps Go's build cache in a cache mount,
// as the services' own Dockerfiles do.
func repoWithCacheMount(t *testing.T) string {
	t.Helper()
	root := enginetest.Repo(t, "alpha")
	dockerfile := filepath.Join(root, "services", "alpha", "Dockerfile")
	data, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	withMount := strings.Replace(string(data), "RUN ", "RUN --mount=type=cache,id=kindling-go-build,target=/root/.cache/go-build ", 1)
	if withMount == string(data) {
		t.Fatalf("no RUN in %s", data)
	}
	if err := os.WriteFile(dockerfile, []byte(withMount), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// What the builds left that holds no image (intermediate images, the compile caches beyond
// E2E_BUILD_CACHE_MAX) goes when they end; what they pulled is recorded, and a scoped prune removes
// exactly that, by name (an older name of the same image stays), and any stage left.
func TestScopedPruneRemovesWhatTheBuildsLeft(t *testing.T) {
	root := repoWithCacheMount(t)
	eng := &enginetest.Engine{Pulls: []string{"debian:bookworm"}, Intermediates: 2,
		CacheMounts: []engine.CacheMount{{ID: "kindling-go-build", Target: "/root/.cache/go-build"}}, CompileCacheBytes: 100}
	present := eng.AddImage("golang:1.26-bookworm", nil)
	ctx := context.Background()
	r, out := newTestRun(t, root, eng)
	r.cfg.BuildCacheMax = 0 // as on CI
	built := buildFor(t, r)
	if got := eng.Pulled(); !slices.Equal(got, []string{"debian:bookworm"}) {
		t.Errorf("pulled %v, want only the missing base", got)
	}
	l := built.Leftovers
	if l == nil || len(l.Intermediate) != 0 || len(l.Pulled) != 1 || l.Pulled[0].Ref != "debian:bookworm" {
		t.Fatalf("leftovers %+v, want the pulled base only", l)
	}
	if !strings.Contains(out.String(), "[build]   removed 2 intermediate images of the builds") ||
		!slices.Equal(eng.RemovedCacheMounts, []string{"kindling-go-build"}) || !strings.Contains(out.String(), "E2E_BUILD_CACHE_MAX=0") {
		t.Errorf("the build did not remove its intermediate images and, saying why, its compile cache (%v):\n%s", eng.RemovedCacheMounts, out)
	}
	// Recorded in the state file, for a prune in another process.
	reread, err := state.Read(statePath(r.cfg))
	if err != nil || reread.Leftovers == nil || len(reread.Leftovers.Pulled) != 1 || len(reread.Leftovers.Intermediate) != 0 {
		t.Fatalf("state file leftovers %+v, %v", reread.Leftovers, err)
	}
	// Podman labels every stage of a build: an untagged image with the run's labels is one.
	stage := eng.AddUntagged(map[string]string{build.LabelSuite: "unit", build.LabelRun: r.recorded().RunID})
	built.Leftovers.Intermediate = append(built.Leftovers.Intermediate, stage)
	if _, err := r.Prune(ctx, Exported{Built: built, Images: built.Images, Archive: state.Archive{Path: "/verified.tar"}}); err != nil {
		t.Fatal(err)
	}
	ids, _ := eng.AllImageIDs(ctx)
	if !slices.Equal(ids, []string{present}) {
		t.Errorf("after the scoped prune the engine holds %v, want only the base that was there before (%s)\n%s", ids, present, out)
	}
	if r.recorded().Leftovers != nil {
		t.Errorf("leftovers still recorded after prune: %+v", r.recorded().Leftovers)
	}
}

// The scoped prune keeps the builds' compile caches for the next build within
// E2E_BUILD_CACHE_MAX and when the disk budget has room for the cluster beside them; else it
// removes them and says why.
func TestScopedPruneKeepsCompileCachesWithinTheirBound(t *testing.T) {
	const gib = 1 << 30
	for _, tc := range []struct {
		name       string
		max, bytes int64
		budget     budget.Budget
		keep       bool
		wantInLog  string
	}{
		{"within the bound", 4 * gib, 1 * gib, budget.Budget{Off: true}, true, "kept the builds' compile caches for the next build: kindling-go-build (/var/tmp/buildah-cache/kindling-go-build), 1.0 GiB (E2E_BUILD_CACHE_MAX=4.0 GiB)"},
		{"over the bound", 1 * gib, 2 * gib, budget.Budget{Off: true}, false, "removed the builds' compile caches kindling-go-build (/var/tmp/buildah-cache/kindling-go-build) (2.0 GiB): more than E2E_BUILD_CACHE_MAX=1.0 GiB"},
		{"the budget needs the room", 4 * gib, 1 * gib, budget.Budget{Bytes: 1 << 20}, false, "the cluster and the load need the room (disk budget:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := repoWithCacheMount(t)
			eng := &enginetest.Engine{CacheMounts: []engine.CacheMount{{ID: "kindling-go-build", Target: "/root/.cache/go-build"}}, CompileCacheBytes: tc.bytes}
			r, out := newTestRun(t, root, eng)
			r.cfg.BuildCacheMax, r.cfg.DiskBudget = tc.max, tc.budget
			built := buildFor(t, r)
			if built.Leftovers == nil || (len(built.Leftovers.CompileCaches) == 1) != tc.keep {
				t.Fatalf("leftovers %+v: want the build's cache mount kept: %v", built.Leftovers, tc.keep)
			}
			if _, err := r.Prune(context.Background(), Exported{Built: built, Images: built.Images, Archive: state.Archive{Path: "/verified.tar"}}); err != nil {
				t.Fatal(err)
			}
			if got := eng.HasCompileCache("kindling-go-build"); got != tc.keep {
				t.Errorf("compile cache there after prune: %v, want %v\n%s", got, tc.keep, out)
			}
			if !strings.Contains(out.String(), tc.wantInLog) {
				t.Errorf("the log lacks %q:\n%s", tc.wantInLog, out)
			}
			st, _ := state.Read(statePath(r.cfg))
			if kept := st.Pruned.KeptCaches; (kept != nil) != tc.keep || (kept != nil && kept.Bytes != tc.bytes) {
				t.Errorf("state records kept caches %+v, want kept=%v of %d bytes", kept, tc.keep, tc.bytes)
			}
		})
	}
}

// The aggressive prune removes the compile caches whatever the bound: buildah's directories are
// outside what an image prune removes.
func TestAggressivePruneRemovesCompileCaches(t *testing.T) {
	root := repoWithCacheMount(t)
	eng := &enginetest.Engine{CacheMounts: []engine.CacheMount{{ID: "kindling-go-build", Target: "/root/.cache/go-build"}}, CompileCacheBytes: 100}
	r, out := newTestRun(t, root, eng)
	r.cfg.Prune, r.cfg.BuildCacheMax = PruneAggressive, 1<<30
	built := buildFor(t, r)
	if _, err := r.Prune(context.Background(), Exported{Built: built, Images: built.Images, Archive: state.Archive{Path: "/verified.tar"}}); err != nil {
		t.Fatal(err)
	}
	if eng.HasCompileCache("kindling-go-build") {
		t.Errorf("the aggressive prune kept the compile cache:\n%s", out)
	}
}

// A state file of the previous release recorded cache mounts by id: read, they are compile caches.
func TestStateOfThePreviousReleaseKeepsItsCacheMounts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(path, []byte(`{"version":2,"leftovers":{"cacheMounts":["kindling-go-mod"]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := state.Read(path)
	if err != nil || st.Leftovers == nil || !slices.Equal(st.Leftovers.CompileCaches, []state.CacheMount{{ID: "kindling-go-mod"}}) {
		t.Fatalf("read %+v, %v", st.Leftovers, err)
	}
}

// Registry mode: the images come from a registry, so build, export, prune and load each say in
// one line that they are skipped, and load hands deploy the registry's references.
func TestRegistryModeSkipsTheLocalPhases(t *testing.T) {
	host := testRegistry(t)
	pushRandom(t, host+"/alpha:v1")
	r, out := newTestRun(t, t.TempDir(), &enginetest.Engine{})
	r.cfg.Registry = &Registry{Host: host, Tag: "v1"}
	r.carrier = carrierFor(r.cfg.Transport(), r)
	ctx := context.Background()
	b := buildFor(t, r)
	e, err := r.Export(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Prune(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	l, err := r.carrier.load(ctx, Cluster{Pruned: p})
	if err != nil {
		t.Fatal(err)
	}
	if l.Registry == nil || len(l.Images) != 1 || l.Images[0].Ref != host+"/alpha:v1" {
		t.Errorf("loaded in registry mode = %+v", l)
	}
	for _, phase := range []string{"[build]", "[export]", "[prune]", "[load]"} {
		if n := strings.Count(out.String(), phase+" "); n != 1 || !strings.Contains(out.String(), phase) {
			t.Errorf("%s printed %d lines, want one skip line:\n%s", phase, n, out)
		}
	}
	if strings.Count(out.String(), "skipped") != 4 {
		t.Errorf("want 4 skip lines:\n%s", out)
	}

	// An image the registry lacks fails the load, naming image and registry, before deploy waits.
	r.cfg.Registry.Tag = "v2"
	_, err = r.carrier.load(ctx, Cluster{Pruned: Pruned{Exported: Exported{Images: []state.Image{{Service: "alpha"}}}}})
	if err == nil || !strings.Contains(err.Error(), host+"/alpha:v2") || !strings.Contains(err.Error(), "push the suite's images first") {
		t.Errorf("load of an image the registry lacks: %v", err)
	}
}

// testRegistry serves an in-memory registry on the loopback and returns its host:port.
func testRegistry(t *testing.T) string {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// pushRandom pushes a small random image to ref.
func pushRandom(t *testing.T, ref string) {
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}

// A transient failure to check the recorded cluster must not make the run forget it: it would be
// left running with nothing to delete it.
func TestFailedClusterCheckKeepsTheRecord(t *testing.T) {
	r, _ := newTestRun(t, t.TempDir(), &enginetest.Engine{})
	r.journal.Amend(func(st *state.Suite) {
		st.RunID = "run-1"
		st.Cluster = &state.Cluster{Name: "kindling-old", Provider: "fake", Created: true}
	})
	r.cfg.ClusterName = "kindling-new"
	r.exists = func(context.Context, string, string) (bool, error) {
		return false, errors.New("docker ps: connection reset")
	}
	_, err := r.Observe(context.Background())
	if err == nil || !strings.Contains(err.Error(), "kindling-old") || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("err = %v, want one naming the recorded cluster and the cause", err)
	}
	if r.recorded().Cluster == nil || r.recorded().Cluster.Name != "kindling-old" {
		t.Errorf("the recorded cluster was forgotten: %+v", r.recorded().Cluster)
	}
}

// Mage runs several targets in one process, each ending with a summary that stops the sampler:
// the next phase samples again.
func TestSamplerRunsAgainAfterASummary(t *testing.T) {
	root := enginetest.Repo(t, "alpha")
	r, _ := newTestRun(t, root, &enginetest.Engine{})
	ctx := context.Background()
	buildFor(t, r)
	r.Summary()
	if r.disk.Sampling() {
		t.Fatal("the summary left the sampler running")
	}
	// The summary leaves the disk timeline in the run dir, for CI systems that keep files.
	if svg, err := os.ReadFile(filepath.Join(r.cfg.RunDir, "disk-timeline.svg")); err != nil || !bytes.Contains(svg, []byte("IMAGES_BUILT")) {
		t.Errorf("disk-timeline.svg after the summary: %v", err)
	}
	err := r.timed(ctx, "export", "EXPORTED", func() error {
		if !r.disk.Sampling() {
			t.Error("the phase after a summary runs without the sampler")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r.disk.Stop()
}

// After prune the archive is the images' only copy: a load that fails keeps it.
func TestFailedLoadKeepsTheArchive(t *testing.T) {
	root := t.TempDir()
	r, out := newTestRun(t, root, &enginetest.Engine{})
	path := filepath.Join(root, "archives", "unit-run-1.tar")
	os.MkdirAll(filepath.Dir(path), 0o700)
	os.WriteFile(path, []byte("the only copy"), 0o600)
	img := state.Image{Service: "alpha", Ref: "localhost/alpha:unit-0123456789ab", ID: "sha256:" + strings.Repeat("a", 64)}
	e := Exported{Built: Built{RunID: "run-1"}, Images: []state.Image{img}, Archive: state.Archive{Path: path}}
	// A cluster whose nodes cannot be listed: the load fails before any node has the images.
	c := Cluster{Cluster: state.Cluster{Name: "kindling-gone", Provider: "nonexistent"}, Pruned: Pruned{Exported: e}}
	if _, err := r.Load(context.Background(), c); err == nil {
		t.Fatal("the load succeeded")
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the archive is gone after a failed load: %v\n%s", err, out)
	}
	if !strings.Contains(out.String(), "kept "+path) {
		t.Errorf("the load does not say it kept the archive:\n%s", out)
	}
}

func TestWithTeardownBudget(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := WithTeardownBudget(ctx); err == nil || !strings.Contains(err.Error(), "give -t more than 30s") {
		t.Errorf("-t 10s: err = %v, want one saying the phases get no time", err)
	}
	long, cancelLong := context.WithTimeout(context.Background(), time.Hour)
	defer cancelLong()
	work, cancelWork, err := WithTeardownBudget(long)
	if err != nil {
		t.Fatal(err)
	}
	defer cancelWork()
	outer, _ := long.Deadline()
	if inner, ok := work.Deadline(); !ok || outer.Sub(inner) != TeardownBudget {
		t.Errorf("phase deadline %v, want %s before %v", inner, TeardownBudget, outer)
	}
	if work, _, err := WithTeardownBudget(context.Background()); err != nil || work != context.Background() {
		t.Errorf("no deadline: %v, %v", work, err)
	}
}

// disk:report's view of a run says what it cannot learn on the notes writer (stderr), never on
// the run's output (stdout, which carries the report), e.g. a recorded cluster whose storage
// cannot be found.
func TestDiskViewNotesStayOffStdout(t *testing.T) {
	r, runLog := newTestRun(t, t.TempDir(), &enginetest.Engine{})
	r.journal.Amend(func(st *state.Suite) { st.Cluster = &state.Cluster{Name: "kindling-unit", Provider: "nonexistent"} })
	r.exists = func(context.Context, string, string) (bool, error) { return true, nil }
	var notes bytes.Buffer
	v := r.DiskView(context.Background(), &notes)
	if v.Suite.Name != "unit" || v.Suite.Cluster != "kindling-unit" || len(v.Places) == 0 {
		t.Errorf("view %+v", v)
	}
	if !strings.Contains(notes.String(), "nodes' storage") {
		t.Errorf("notes %q, want the missing node storage said", notes.String())
	}
	if runLog.Len() > 0 {
		t.Errorf("the run logged to stdout: %q", runLog)
	}
}

// A phase whose predicted need exceeds E2E_DISK_BUDGET stops before it writes anything.
func TestBudgetTooSmallFailsBeforeExportWrites(t *testing.T) {
	root := enginetest.Repo(t, "alpha")
	eng := &enginetest.Engine{}
	ctx := context.Background()
	r, _ := newTestRun(t, root, eng)
	b := buildFor(t, r)
	r.cfg.DiskBudget = budget.Budget{Bytes: 500} // the fake image is 1000 bytes
	_, err := r.Export(ctx, b)
	if err == nil || !strings.Contains(err.Error(), "export would not fit the disk budget") || !strings.Contains(err.Error(), "nothing written") {
		t.Fatalf("export with a budget below the image size: %v", err)
	}
	if entries, _ := os.ReadDir(r.cfg.ArchiveDir); len(entries) > 0 {
		t.Errorf("the archive dir holds %d entries after a refused export", len(entries))
	}
	if r.recorded().Archive != nil {
		t.Error("a refused export recorded an archive")
	}
}

// The build's budget check counts only what is to be built: with every image in the engine, a
// budget below the learned peak does not stop it.
func TestBuildBudgetOnlyForImagesToBuild(t *testing.T) {
	root := enginetest.Repo(t, "alpha")
	eng := &enginetest.Engine{}
	r, _ := newTestRun(t, root, eng)
	buildFor(t, r)
	if err := r.ledger.Learn(func(f *budget.Facts) { f.BuildPeaks = map[string]uint64{"alpha": 1 << 40} }); err != nil {
		t.Fatal(err)
	}
	r.cfg.DiskBudget = budget.Budget{Bytes: 1 << 20}
	if _, err := r.Build(context.Background(), observe(t, r)); err != nil {
		t.Fatalf("up-to-date images under a budget below their peak: %v", err)
	}
	if err := eng.RemoveRefs(context.Background(), []string{r.recorded().Images[0].Ref}); err != nil {
		t.Fatal(err)
	}
	_, err := r.Build(context.Background(), observe(t, r))
	if err == nil || !strings.Contains(err.Error(), "build would not fit the disk budget") || !strings.Contains(err.Error(), "(alpha)") {
		t.Fatalf("an image to build under a budget below its peak: %v", err)
	}
}

// On GitHub Actions each phase's log is a folded group, and a failure an annotation.
func TestGitHubActionsGroupsAndAnnotations(t *testing.T) {
	t.Setenv("GITHUB_ACTIONS", "true")
	r, out := newTestRun(t, t.TempDir(), &enginetest.Engine{})
	r.cfg.DiskBudget = budget.Budget{Off: true}
	err := r.timed(context.Background(), "export", "EXPORTED", func() error { return errors.New("disk full\nsecond line 100%") })
	if err == nil {
		t.Fatal("want the phase's error")
	}
	for _, want := range []string{"::group::export\n", "::endgroup::\n", "::error title=export failed::export: disk full%0Asecond line 100%25\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// The build's need is learned from its peak, not from what it left; a warm build (compile
// caches kept by an earlier run) does not lower what a cold one taught.
func TestBuildNeedIsLearnedFromThePeak(t *testing.T) {
	r, _ := newTestRun(t, t.TempDir(), &enginetest.Engine{})
	store := r.budgetPlaces().Engine
	const mib = 1 << 20
	cp := func(startUsed, peak, used uint64) disk.Checkpoint {
		return disk.Checkpoint{Name: "IMAGES_BUILT", Filesystems: []disk.Change{{
			Filesystem: disk.Filesystem{Mountpoint: "/", Used: used, Places: []string{store.Name + " (" + store.Path + ")"}},
			Delta:      int64(used) - int64(startUsed), Peak: peak}}}
	}
	learned := func() uint64 { return r.ledger.Facts().BuildBytes }

	r.learnBuild(cp(1000*mib, 4000*mib, 1500*mib), 500*mib, false) // cold: rose 3000, left 500
	if got := learned(); got != 3000*mib {
		t.Fatalf("cold build learned %d MiB, want its peak, 3000", got/mib)
	}
	r.learnBuild(cp(1000*mib, 1100*mib, 1050*mib), 50*mib, true) // warm: rose 100
	if got := learned(); got != 3000*mib {
		t.Errorf("a warm build lowered the need to %d MiB, want 3000 kept", got/mib)
	}
	r.learnBuild(cp(1000*mib, 3200*mib, 1400*mib), 400*mib, false) // cold again: its peak
	if got := learned(); got != 2200*mib {
		t.Errorf("a cold build learned %d MiB, want its own peak, 2200", got/mib)
	}
	r.learnBuild(cp(1000*mib, 1000*mib, 1000*mib), 700*mib, false) // no rise seen: what it left
	if got := learned(); got != 700*mib {
		t.Errorf("learned %d MiB, want what the build left, 700", got/mib)
	}
}

// A node's bytes are what creating the cluster added less the provider's copy of the node image
// (podman's first cluster copies it from docker): not 3 GiB per node on a fresh podman machine.
func TestNodeBytesLeaveOutTheNodeImageCopy(t *testing.T) {
	r, _ := newTestRun(t, t.TempDir(), &enginetest.Engine{})
	nodes := r.budgetPlaces().Nodes
	const gib = 1 << 30
	cp := disk.Checkpoint{Name: "CLUSTER_CREATED", Filesystems: []disk.Change{{
		Filesystem: disk.Filesystem{Mountpoint: "/", Used: 13 * gib, Places: []string{nodes.Name + " (" + nodes.Path + ")"}},
		Delta:      3 * gib, Peak: 13 * gib}}}
	r.learnNodes(cp, 2*gib, 1)
	if got := r.ledger.Facts().NodeBytes; got != 1*gib {
		t.Errorf("node bytes %d, want the 3 GiB create less the 2 GiB copy", got)
	}
}

// Each build's time is kept for the next run's order; an image found up to date teaches nothing.
func TestBuildTimesAreLearnedForTheOrder(t *testing.T) {
	var f budget.Facts
	learnDurations(&f, []build.Result{
		{Service: build.Service{Name: "a"}, Duration: 161400 * time.Millisecond},
		{Service: build.Service{Name: "b"}, Duration: time.Second, UpToDate: true},
	})
	learnDurations(&f, []build.Result{{Service: build.Service{Name: "c"}, Duration: 3 * time.Second}})
	if want := map[string]float64{"a": 161, "c": 3}; !maps.Equal(f.BuildSeconds, want) {
		t.Fatalf("learned %v, want %v", f.BuildSeconds, want)
	}
	if took := tookLast(f); took["a"] != 161*time.Second || took["c"] != 3*time.Second || len(took) != 2 {
		t.Errorf("took %v", took)
	}
}

// A cold build teaches each build's peak; a warm one only raises it.
func TestBuildPeaksAreLearnedFromColdBuilds(t *testing.T) {
	var f budget.Facts
	learnPeaks(&f, []build.Result{{Service: build.Service{Name: "a"}, Peak: 100}, {Service: build.Service{Name: "b"}, UpToDate: true}}, false)
	learnPeaks(&f, []build.Result{{Service: build.Service{Name: "a"}, Peak: 10}}, true)
	if want := map[string]uint64{"a": 100}; !maps.Equal(f.BuildPeaks, want) {
		t.Fatalf("after a warm build: %v, want %v", f.BuildPeaks, want)
	}
	learnPeaks(&f, []build.Result{{Service: build.Service{Name: "a"}, Peak: 60}}, false)
	if peaks := peaksLast(f); peaks["a"] != 60 || len(peaks) != 1 {
		t.Errorf("after a cold build: %v", peaks)
	}
}
