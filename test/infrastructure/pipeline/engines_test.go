package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
	"github.com/kindling-dev/kindling/test/infrastructure/disk"
	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/engine/enginetest"
	"github.com/kindling-dev/kindling/test/infrastructure/state"
	"github.com/kindling-dev/kindling/test/infrastructure/suite"
)

// TestRealBuildExportPrune runs the first half of the flow on the real podman and the real docker:
// the three services of the AIAnalysis suite are built (on the host), answer /healthz from their
// containers,
// go into one verified archive, and a scoped prune removes exactly this run's images and what its
// builds left.
func TestRealBuildExportPrune(t *testing.T) {
	for _, config := range enginetest.Configurations {
		t.Run(config, func(t *testing.T) {
			eng := enginetest.Real(t, config)
			if config == enginetest.Docker29 {
				// The run detects its engine as a user's would: DOCKER_HOST names the daemon.
				t.Setenv("DOCKER_HOST", enginetest.KindenvValue("KINDENV_DOCKER29_HOST"))
			}
			enginetest.Lock(t)
			realBuildExportPrune(t, eng)
		})
	}
}

func realBuildExportPrune(t *testing.T, eng engine.Engine) {
	ctx := context.Background()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	unique := enginetest.Unique(t)
	all, err := suite.LoadAll(root)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := suite.Select(all, "aianalysis")
	if err != nil {
		t.Fatal(err)
	}
	s := ss[0]
	s.Name = "it" + unique // tags, labels and archive names of this test only
	// Compiled on the host: a cold build of the three Dockerfiles takes a quarter of an hour on
	// two cores, which the main job pays (and CI with it); the build package builds a multi-stage
	// Dockerfile on every engine, with what it pulls and leaves accounted.
	dir := t.TempDir()
	cfg := Config{Root: root, Suite: s, Engine: eng.Name(), Parallelism: 2, Prune: PruneScoped, HostBuild: true,
		RunDir: filepath.Join(dir, "run"), ArchiveDir: filepath.Join(dir, "archives")}
	var out bytes.Buffer
	r, err := New(cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("run output:\n%s", out.String())
		}
	})

	// An image of someone else's, which no prune of this run may touch.
	ctxDir, containerfile := enginetest.HelloContext(t)
	unrelated := "localhost/kindling-it-" + unique + "/unrelated:v1"
	if err := eng.Build(ctx, engine.BuildSpec{Ref: unrelated, Dockerfile: containerfile, ContextDir: ctxDir,
		Labels: map[string]string{"dev.kindling.suite": s.Name, "dev.kindling.run": "another-run"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if id, found, _ := eng.ImageID(context.Background(), unrelated); found {
			eng.Remove(context.Background(), []string{id})
		}
	})

	b := buildFor(t, r)
	built := b.Images
	t.Cleanup(func() {
		for _, img := range built {
			if _, found, _ := eng.ImageID(context.Background(), img.Ref); found {
				eng.Remove(context.Background(), []string{img.ID})
			}
		}
	})
	if len(built) != 3 {
		t.Fatalf("built %d images, want 3: %+v", len(built), built)
	}
	left := b.Leftovers
	if left == nil {
		left = &state.Leftovers{}
	}
	foot := r.recorded().Footprint
	if foot == nil || foot.SuiteImageBytes <= 0 {
		t.Fatalf("the build recorded no footprint: %+v", foot)
	}
	t.Logf("%s: pulled %v; %d intermediate images, %d build cache records; footprint: pulled bases %s, build cache %s, suite images %s", eng.Name(),
		left.Pulled, len(left.Intermediate), len(left.BuildCache), disk.HumanSize(foot.PulledBytes), disk.HumanSize(foot.BuildCacheBytes), disk.HumanSize(foot.SuiteImageBytes))
	var perImage int64
	for _, img := range built {
		checkImageConfig(t, eng.Name(), img.Ref)
		if img.Service != "aianalysis" { // the controller needs a Kubernetes API; the e2e suite runs it
			checkHealthz(t, eng.Name(), img.Ref)
		}
		size := savedSize(t, eng, img.Ref)
		perImage += size
		t.Logf("%s %s: image %s, saved alone %s", eng.Name(), img.Service, img.Ref, disk.HumanSize(size))
	}

	e, err := r.Export(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	a := e.Archive
	refs := []string{built[0].Ref, built[1].Ref, built[2].Ref}
	l, err := archive.OpenLayout(a.Path, a.SHA256)
	if err == nil {
		err = l.Check(l.Images)
	}
	if err != nil {
		t.Fatalf("the recorded archive does not check on its own: %v", err)
	}
	for i, ref := range refs {
		if len(l.Images) != 3 || l.Images[i].Refs[0] != ref {
			t.Fatalf("the archive's images %+v, want %v", l.Images, refs)
		}
	}
	t.Logf("%s: one archive of the 3 images %s, the images saved one by one %s", eng.Name(), disk.HumanSize(a.Size), disk.HumanSize(perImage))
	if a.Size > perImage {
		t.Errorf("the suite archive (%d bytes) is larger than the images saved one by one (%d bytes): shared blobs stored twice?", a.Size, perImage)
	}

	if _, err := r.Prune(ctx, e); err != nil {
		t.Fatal(err)
	}
	for _, img := range built {
		if _, found, _ := eng.ImageID(ctx, img.Ref); found {
			t.Errorf("%s survived the scoped prune", img.Ref)
		}
	}
	if _, found, _ := eng.ImageID(ctx, unrelated); !found {
		t.Errorf("the unrelated image %s was pruned", unrelated)
	}
	for _, id := range left.Intermediate {
		if _, found, _ := eng.ImageID(ctx, id); found {
			t.Errorf("intermediate image %s of the build survived the scoped prune", id)
		}
	}
	for _, b := range left.Pulled {
		if _, found, _ := eng.ImageID(ctx, b.Ref); found {
			t.Errorf("base image %s, pulled by the build, survived the scoped prune", b.Ref)
		}
	}
	cache, err := eng.BuildCache(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range cache {
		if slices.Contains(left.BuildCache, rec.ID) && rec.Reclaimable {
			t.Errorf("build cache record %s (%s, %s) of the build survived the scoped prune", rec.ID, rec.Description, disk.HumanSize(rec.Size))
		}
	}
	if r.recorded().Leftovers != nil {
		t.Errorf("prune kept the leftovers record: %+v", r.recorded().Leftovers)
	}
	p := r.recorded().Pruned
	t.Logf("%s scoped prune: engine says %s reclaimed, the graph root's filesystem gained %s", eng.Name(), disk.HumanSize(p.EngineReclaimed), disk.HumanSize(p.FilesystemGained))
	if p.EngineReclaimed <= 0 {
		t.Errorf("engine-reported reclaimed bytes = %d, want > 0 after removing 3 images", p.EngineReclaimed)
	}
	if r.engineInfo().IDsAreManifests() {
		// Both copies of every layer, the blob and the snapshot, are checked gone.
		if p.Residue != nil || !strings.Contains(out.String(), "snapshots of the removed images are gone") {
			t.Errorf("the prune did not confirm the images' blobs and snapshots gone (residue %+v)", p.Residue)
		}
	}
	// The report names what the store's directories hold, as du counts it.
	view := r.DiskView(ctx, io.Discard)
	parts, err := disk.Usage(ctx, view.Parts)
	if err != nil || len(parts) == 0 {
		t.Fatalf("disk:report measures no directories of the store: %v", err)
	}
	for _, part := range parts {
		out, err := exec.Command("du", "-sxB1", part.Path).Output()
		if err != nil {
			t.Fatalf("du %s: %v", part.Path, err)
		}
		want, _ := strconv.ParseInt(strings.Fields(string(out))[0], 10, 64)
		t.Logf("%s: %s holds %s, du says %s", eng.Name(), part.Name, disk.HumanSize(part.Bytes), disk.HumanSize(want))
		if diff(uint64(part.Bytes), uint64(want)) > uint64(want)/20 {
			t.Errorf("%s (%s): report says %d bytes, du %d (want within 5%%)", part.Name, part.Path, part.Bytes, want)
		}
	}

	// A new process after prune: the build takes the archive, nothing is rebuilt.
	again, err := New(cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	if b := buildFor(t, again); b.Held.Archive == nil {
		t.Errorf("the build after prune does not hand on the archive: %+v", b.Held)
	}
	for _, img := range built {
		if _, found, _ := eng.ImageID(ctx, img.Ref); found {
			t.Errorf("%s was rebuilt after prune", img.Ref)
		}
	}

	// The disk report measures the graph root itself, and agrees with statfs on it.
	info, err := eng.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := disk.Measure(ctx, []disk.Place{{Name: "graph root", Path: info.GraphRoot}})
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(info.GraphRoot, &st); err != nil {
		t.Fatal(err)
	}
	fs := snap.Filesystems[0]
	total, used := st.Blocks*uint64(st.Bsize), (st.Blocks-st.Bfree)*uint64(st.Bsize)
	if diff(fs.Total, total) > total/100 || diff(fs.Used, used) > total/100 {
		t.Errorf("report for %s: total %d used %d; statfs: total %d used %d (want within 1%%)", info.GraphRoot, fs.Total, fs.Used, total, used)
	}
}

func diff(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return b - a
}

// checkImageConfig checks what the image runs: a non-root numeric user and the service's binary.
func checkImageConfig(t *testing.T, engineName, ref string) {
	t.Helper()
	out, err := exec.Command(engineName, "image", "inspect", "--format", "{{json .Config}}", ref).Output()
	if err != nil {
		t.Fatalf("%s image inspect %s: %v", engineName, ref, err)
	}
	var cfg struct {
		User       string
		Entrypoint []string
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("image config of %s: %v: %s", ref, err, out)
	}
	if cfg.User != "65532:65532" || len(cfg.Entrypoint) != 1 || !strings.HasPrefix(cfg.Entrypoint[0], "/") {
		t.Errorf("%s: user %q entrypoint %v, want 65532:65532 and the service binary", ref, cfg.User, cfg.Entrypoint)
	}
}

// checkHealthz runs the image with the engine, publishing its port on loopback, and asks /healthz.
func checkHealthz(t *testing.T, engineName, ref string) {
	t.Helper()
	args := []string{"run", "-d", "--rm", "-p", "127.0.0.1::8080"}
	if strings.Contains(ref, "datastorage") {
		args = append(args, "--tmpfs", "/data:mode=1777")
	}
	out, err := exec.Command(engineName, append(args, ref)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s run %s: %v\n%s", engineName, ref, err, out)
	}
	id := strings.TrimSpace(string(out))
	defer exec.Command(engineName, "rm", "-f", id).Run()
	port, err := exec.Command(engineName, "port", id, "8080").Output()
	if err != nil {
		t.Fatalf("%s port %s: %v", engineName, id, err)
	}
	addr := strings.TrimSpace(strings.Split(string(port), "\n")[0])
	url := "http://" + strings.Replace(addr, "0.0.0.0", "127.0.0.1", 1) + "/healthz"
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			logs, _ := exec.Command(engineName, "logs", id).CombinedOutput()
			t.Fatalf("%s in %s: GET %s: %v\ncontainer logs:\n%s", ref, engineName, url, err, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func savedSize(t *testing.T, eng engine.Engine, ref string) int64 {
	t.Helper()
	path := filepath.Join(t.TempDir(), "one.tar")
	if err := eng.Save(context.Background(), path, []string{ref}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	return fi.Size()
}
