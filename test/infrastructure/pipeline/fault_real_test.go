package pipeline

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
	"github.com/kindling-dev/kindling/test/infrastructure/budget"
	"github.com/kindling-dev/kindling/test/infrastructure/build"
	"github.com/kindling-dev/kindling/test/infrastructure/cluster"
	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/load"
	"github.com/kindling-dev/kindling/test/infrastructure/testenv"
)

// TestRealArchiveDirFull exports into a 2 MiB tmpfs. With the budget on, the export is refused
// before anything is written; with it off, the engine's save runs out of space. Either way nothing
// is lost: no archive is recorded or left behind, prune refuses, the image stays in the engine,
// and with room again a rerun exports.
func TestRealArchiveDirFull(t *testing.T) {
	testenv.Short(t)
	if os.Geteuid() != 0 {
		testenv.Missing(t, "mounting a tmpfs needs root")
	}
	eng, cfg := realHoloSuite(t, "docker", "full", "it-full")
	ctx := context.Background()
	small := t.TempDir()
	if err := syscall.Mount("tmpfs", small, "tmpfs", 0, "size=2m"); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v", small, err)
	}
	t.Cleanup(func() { syscall.Unmount(small, 0) })
	cfg.ArchiveDir = small
	var out bytes.Buffer
	r, err := New(cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Down(context.Background()) })
	b := buildFor(t, r)
	nothingLost := func(t *testing.T, e Exported) {
		t.Helper()
		if r.recorded().Archive != nil || e.Archive.Path != "" {
			t.Errorf("a failed export recorded or handed on an archive: %+v %+v", r.recorded().Archive, e.Archive)
		}
		if entries, _ := os.ReadDir(small); len(entries) > 0 {
			t.Errorf("the archive dir holds %d entries after the failed export", len(entries))
		}
		if _, err := r.Prune(ctx, e); err == nil {
			t.Error("prune ran after a failed export")
		}
		if _, found, err := eng.ImageID(ctx, r.recorded().Images[0].Ref); err != nil || !found {
			t.Errorf("the image is gone from the engine (%v)", err)
		}
	}

	t.Run("the budget refuses before anything is written", func(t *testing.T) {
		e, err := r.Export(ctx, b)
		if err == nil || !strings.Contains(err.Error(), "export would not fit the disk budget") || !strings.Contains(err.Error(), small) {
			t.Fatalf("export into 2 MiB with the default budget: %v", err)
		}
		nothingLost(t, e)
	})

	t.Run("without the budget the save runs out of space", func(t *testing.T) {
		r.cfg.DiskBudget = budget.Budget{Off: true}
		e, err := r.Export(ctx, b)
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "no space left") {
			t.Fatalf("export into 2 MiB without a budget: %v", err)
		}
		nothingLost(t, e)
	})

	t.Run("with room again the export resumes", func(t *testing.T) {
		r.cfg.ArchiveDir = t.TempDir()
		if _, err := r.Export(ctx, b); err != nil {
			t.Fatal(err)
		}
		if r.recorded().Archive == nil || !strings.HasPrefix(r.recorded().Archive.Path, r.cfg.ArchiveDir) {
			t.Errorf("archive %+v", r.recorded().Archive)
		}
	})
}

// A state file that is not JSON stops the run with the file named and how to start over; it is
// never overwritten by a new run behind the user's back.
func TestCorruptedStateFile(t *testing.T) {
	root := t.TempDir()
	cfg := testConfig(t, "", 0)
	cfg.Root = root
	path := statePath(cfg)
	os.MkdirAll(filepath.Dir(path), 0o700)
	os.WriteFile(path, []byte("{\"version\": 2, \"suite\": \"unit\", trunc"), 0o600)
	_, err := New(cfg, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "delete it to start the suite over") {
		t.Fatalf("New with a corrupted state file: %v", err)
	}
	if data, _ := os.ReadFile(path); !strings.Contains(string(data), "trunc") {
		t.Error("the corrupted state file was overwritten")
	}
	// Another version's file is not trusted, and not an error.
	os.WriteFile(path, []byte(`{"version": 1, "suite": "unit", "runId": "old"}`), 0o600)
	r, err := New(cfg, &bytes.Buffer{})
	if err != nil || r.recorded().RunID != "" {
		t.Fatalf("a state file of another version: run %q, %v", r.recorded().RunID, err)
	}
}

// cancelOn is a run's output that cancels a context when a line contains marker: an interrupt
// (what mage does on SIGINT) at a known point inside a phase.
type cancelOn struct {
	bytes.Buffer
	marker string
	cancel context.CancelFunc
}

func (w *cancelOn) Write(p []byte) (int, error) {
	if w.marker != "" && bytes.Contains(p, []byte(w.marker)) {
		w.cancel()
	}
	return w.Buffer.Write(p)
}

// processes returns a function that starts a new process of cfg's run (a Run, a context and its
// output) that cancels the context once the output holds marker; the run is taken down after t.
func processes(t *testing.T, cfg Config) func(marker string) (*Run, context.Context, *cancelOn) {
	process := func(marker string) (*Run, context.Context, *cancelOn) {
		c, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		out := &cancelOn{marker: marker, cancel: cancel}
		r, err := New(cfg, out)
		if err != nil {
			t.Fatal(err)
		}
		return r, c, out
	}
	t.Cleanup(func() {
		r, _, _ := process("")
		if err := r.Down(context.Background()); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	return process
}

// TestRealInterruptsLoseNothing interrupts a run (mage cancels the targets' context on SIGINT) at
// the boundaries where the images change hands — before export, before prune, before the cluster,
// in the middle of the load, before deploy — and removes the cluster's node between two processes. After each, the images are
// in the engine, in the verified archive or on every node, and a new process resumes from there.
func TestRealInterruptsLoseNothing(t *testing.T) {
	testenv.Short(t)
	eng, cfg := realHoloSuite(t, "docker", "sig", "it-interrupt")
	ctx := context.Background()
	process := processes(t, cfg)
	inEngine := func(t *testing.T, ref string) bool {
		t.Helper()
		_, found, err := eng.ImageID(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		return found
	}
	archiveHolds := func(t *testing.T, o Observed) {
		t.Helper()
		if o.Held.Archive == nil {
			t.Fatalf("the next process finds no verified archive: %+v", o.Held)
		}
		if _, err := os.Stat(o.Held.Archive.Path); err != nil {
			t.Fatal(err)
		}
	}

	var ref string
	t.Run("between build and export", func(t *testing.T) {
		r, c, out := process("")
		b, err := r.Build(c, observe(t, r))
		if err != nil {
			t.Fatal(err)
		}
		ref = b.Images[0].Ref
		out.cancel()
		if _, err := r.Export(c, b); err == nil {
			t.Fatal("an interrupted export succeeded")
		}
		if !inEngine(t, ref) {
			t.Errorf("%s is gone from the engine after an interrupted export", ref)
		}
		if r.recorded().Archive != nil {
			t.Errorf("an interrupted export recorded an archive: %+v", r.recorded().Archive)
		}
		if files, _ := os.ReadDir(cfg.ArchiveDir); len(files) > 0 {
			t.Errorf("an interrupted export left %d files in the archive dir", len(files))
		}
	})

	t.Run("between export and prune", func(t *testing.T) {
		r, c, out := process("")
		p := through(t, r, "export")
		out.cancel()
		if _, err := r.Prune(c, p.e); err == nil {
			t.Fatal("an interrupted prune succeeded")
		}
		if !inEngine(t, ref) {
			t.Errorf("%s is gone from the engine after an interrupted prune", ref)
		}
		next, _, _ := process("")
		archiveHolds(t, observe(t, next))
	})

	t.Run("between prune and cluster", func(t *testing.T) {
		r, c, out := process("")
		p := through(t, r, "prune")
		if inEngine(t, ref) {
			t.Fatalf("prune left %s", ref)
		}
		out.cancel()
		if _, err := r.Cluster(c, p.p, Early{}); err == nil {
			t.Fatal("an interrupted cluster phase succeeded")
		}
		next, _, _ := process("")
		archiveHolds(t, observe(t, next))
	})

	t.Run("in the middle of the load", func(t *testing.T) {
		// Cancelled as the first node starts importing.
		r, c, out := process("importing ")
		got := through(t, r, "cluster")
		_, err := r.Load(c, got.c)
		if err == nil || c.Err() == nil {
			t.Fatalf("the load was not interrupted (%v):\n%s", err, out.String())
		}
		t.Logf("interrupted load: %v", err)
		if !strings.Contains(out.String(), "kept "+got.e.Archive.Path) {
			t.Errorf("the load does not say it kept the archive:\n%s", out.String())
		}
		next, _, _ := process("")
		o := observe(t, next)
		archiveHolds(t, o)
		if o.Held.Loaded != nil {
			t.Errorf("an interrupted load is recorded as done: %+v", o.Held.Loaded)
		}
	})

	t.Run("the node removed between cluster and load", func(t *testing.T) {
		r, _, _ := process("")
		o := observe(t, r)
		if o.Cluster == nil {
			t.Fatal("the cluster of the last process is not observed")
		}
		node := o.Cluster.Name + "-control-plane"
		if out, err := exec.CommandContext(ctx, "docker", "rm", "-f", node).CombinedOutput(); err != nil {
			t.Fatalf("docker rm -f %s: %v\n%s", node, err, out)
		}
		next, _, out := process("")
		got := through(t, next, "load")
		if got.o.Cluster != nil {
			t.Errorf("a cluster without nodes is observed as existing: %+v", got.o.Cluster)
		}
		if len(got.l.Images) != 1 || got.l.Images[0].Ref != ref {
			t.Errorf("loaded %+v, want %s", got.l.Images, ref)
		}
		nodes, err := cluster.Nodes(ctx, cfg.ClusterName, "docker")
		if err != nil || len(nodes) == 0 {
			t.Fatalf("nodes of the new cluster: %v", err)
		}
		for _, n := range nodes {
			if missing, err := load.Missing(ctx, n, loadImages(got.l.Images)); err != nil || len(missing) > 0 {
				t.Errorf("node %s lacks %v (%v)", n, missing, err)
			}
		}
		if _, err := os.Stat(got.e.Archive.Path); !os.IsNotExist(err) {
			t.Errorf("the archive is still there after a finished load (%v):\n%s", err, out.String())
		}
	})

	t.Run("between load and deploy", func(t *testing.T) {
		r, c, out := process("")
		got := through(t, r, "load")
		out.cancel()
		if _, err := r.Deploy(c, got.l); err == nil {
			t.Fatal("an interrupted deploy succeeded")
		}
		next, _, _ := process("")
		o := observe(t, next)
		if o.Held.Loaded == nil || o.Cluster == nil {
			t.Fatalf("the next process does not find the images on the nodes: %+v", o.Held)
		}
		if _, err := next.Build(ctx, o); err != nil {
			t.Fatal(err)
		}
	})
}

// dyingDaemon stands between the docker CLI and the daemon on a socket of its own and, once the
// CLI asks for an image export (docker save), cuts every connection after a few bytes of the
// answer: to the CLI, the daemon stopped in the middle of the export.
type dyingDaemon struct {
	sock string
	cut  atomic.Bool // set when a save starts; then answers die
	l    net.Listener
}

func startDyingDaemon(t *testing.T, upstream string) *dyingDaemon {
	d := &dyingDaemon{sock: filepath.Join(t.TempDir(), "docker.sock")}
	l, err := net.Listen("unix", d.sock)
	if err != nil {
		t.Fatal(err)
	}
	d.l = l
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			client, err := l.Accept()
			if err != nil {
				return
			}
			go d.serve(client, upstream)
		}
	}()
	return d
}

func (d *dyingDaemon) serve(client net.Conn, upstream string) {
	defer client.Close()
	daemon, err := net.Dial("unix", upstream)
	if err != nil {
		return
	}
	defer daemon.Close()
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				if bytes.Contains(buf[:n], []byte("/images/get")) {
					d.cut.Store(true)
				}
				daemon.Write(buf[:n])
			}
			if err != nil {
				daemon.Close()
				return
			}
		}
	}()
	var sent int
	buf := make([]byte, 32<<10)
	for {
		n, err := daemon.Read(buf)
		if n > 0 {
			client.Write(buf[:n])
			sent += n
		}
		if err != nil || (d.cut.Load() && sent > 64<<10) {
			return
		}
	}
}

// TestRealDaemonStopsDuringExport: the daemon goes away in the middle of docker save. The export
// fails, nothing is recorded or left in the archive dir, prune refuses, the image is still in
// the engine, and with the daemon back a rerun exports.
func TestRealDaemonStopsDuringExport(t *testing.T) {
	testenv.Short(t)
	_, cfg := realHoloSuite(t, "docker", "daemon", "it-daemon")
	ctx := context.Background()
	d := startDyingDaemon(t, "/var/run/docker.sock")
	dying, err := engine.New("docker", nil, "DOCKER_HOST=unix://"+d.sock)
	if err != nil {
		t.Fatal(err)
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
	})
	b := buildFor(t, r)
	ref := b.Images[0].Ref
	healthy, info, _ := r.detected.known()
	r.detected.set(dying, info)
	e, err := r.Export(ctx, b)
	if err == nil {
		t.Fatalf("an export whose daemon went away succeeded:\n%s", out.String())
	}
	if !d.cut.Load() {
		t.Fatalf("the export failed before the save began: %v", err)
	}
	t.Logf("export with the daemon gone: %v", err)
	if r.recorded().Archive != nil || e.Archive.Path != "" {
		t.Errorf("the failed export recorded an archive: %+v", r.recorded().Archive)
	}
	if files, _ := os.ReadDir(cfg.ArchiveDir); len(files) > 0 {
		t.Errorf("the failed export left %d files in the archive dir", len(files))
	}
	if _, err := r.Prune(ctx, e); err == nil {
		t.Error("prune ran after the failed export")
	}
	r.detected.set(healthy, info)
	if _, found, err := healthy.ImageID(ctx, ref); err != nil || !found {
		t.Fatalf("%s is gone from the engine (%v)", ref, err)
	}
	if e, err := r.Export(ctx, b); err != nil || e.Archive.Path == "" {
		t.Fatalf("the export with the daemon back: %+v, %v", e.Archive, err)
	}
}

// TestRealBuildStopsAtTheBudget builds, with E2E_DISK_BUDGET=1MiB, an image whose build writes
// 100 MB and then waits: a suite never built has no prediction, so the build starts, and the
// gauge stops it once the budget is gone instead of letting it run on, and nothing of it runs on.
// What it measured is kept, so the next run refuses before building anything.
func TestRealBuildStopsAtTheBudget(t *testing.T) {
	for _, name := range []string{"docker", "podman"} {
		t.Run(name, func(t *testing.T) {
			eng, cfg := realHoloSuite(t, name, "budget", "it-budget")
			ctx := context.Background()
			const base = "debian:bookworm-slim"
			if err := eng.Pull(ctx, base); err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			df := "FROM " + base + "\nARG NONCE\nRUN echo $NONCE && head -c 100000000 /dev/urandom > /grown && sleep 600\n"
			if err := os.MkdirAll(filepath.Join(root, "grower"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, "grower", "Dockerfile"), []byte(df), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg.Root, cfg.HostBuild, cfg.DiskBudget = root, false, budget.Budget{Bytes: 1 << 20}
			cfg.Suite.Services = []build.Service{{Name: "grower", Spec: build.Spec{Dockerfile: "grower/Dockerfile", Context: "grower",
				Args: map[string]string{"NONCE": cfg.Suite.Name}}}}
			var out bytes.Buffer
			r, err := New(cfg, &out)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Down(context.Background()) })

			_, err = r.Build(ctx, observe(t, r))
			for _, want := range []string{"no room left (E2E_DISK_BUDGET=1MiB", "while grower built", "stopped before it runs out of space"} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("build past a 1 MiB budget: error %v does not say %q\n%s", err, want, out.String())
				}
			}
			// Nothing of the stopped build runs on: podman leaves its RUN step running unless killed.
			if steps, err := exec.Command("pgrep", "-f", "grown && sleep 600").Output(); err == nil {
				t.Errorf("the stopped build's step runs on: pids %s", steps)
			}
			if working, err := eng.BuildContainers(ctx); err != nil || len(working) > 0 {
				t.Errorf("working containers left: %v %v", working, err)
			}
			if peak := r.facts().BuildPeaks["grower"]; peak <= 1<<20 {
				t.Fatalf("learned peak %d, want above the budget", peak)
			}

			r2, err := New(cfg, &out)
			if err != nil {
				t.Fatal(err)
			}
			_, err = r2.Build(ctx, observe(t, r2))
			for _, want := range []string{"build would not fit the disk budget", "one build at a time at least", "(grower)"} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("the next run: error %v does not say %q", err, want)
				}
			}
		})
	}
}

// TestRealShrinkingLoadResumes interrupts a load once the first of two images is on the node and
// its blobs are gone from the archive; a new process finds the archive holding the rest, loads
// only that, and ends with both images on the node and no archive: nothing lost.
func TestRealShrinkingLoadResumes(t *testing.T) {
	testenv.Short(t)
	_, cfg := realHoloSuite(t, "docker", "shr", "it-shrink")
	cfg.Suite.Services = append(cfg.Suite.Services, build.Service{Name: "datastorage",
		Spec: build.Spec{Host: &build.HostBuild{Package: "./services/datastorage", Containerfile: "services/datastorage/Containerfile"}}})
	process := processes(t, cfg)

	// Cancelled as the load deletes the first image's blobs from the archive.
	r, c, out := process("deleted ")
	got := through(t, r, "cluster")
	if _, err := r.Load(c, got.c); err == nil || c.Err() == nil {
		t.Fatalf("the load was not interrupted (%v):\n%s", err, out.String())
	}
	a := r.recorded().Archive
	if a == nil || len(a.Released) != 1 {
		t.Fatalf("after the interrupted load the record says %+v, want one image released from the archive:\n%s", a, out.String())
	}
	l, err := archive.OpenLayout(a.Path, a.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Check(unreleased(l, a.Released)); err != nil {
		t.Errorf("the archive does not hold the image still to load: %v", err)
	}
	if err := l.Check(l.Images); err == nil {
		t.Error("the released image's own blobs are still in the archive")
	}

	next, _, nextOut := process("")
	o := observe(t, next)
	if o.Held.Archive == nil || len(o.Held.Archive.Released) != 1 {
		t.Fatalf("the next process does not take the archive with one image released: %+v\n%s", o.Held, nextOut.String())
	}
	resumed := through(t, next, "load")
	if !strings.Contains(nextOut.String(), "already present") || strings.Count(nextOut.String(), ": importing image") != 1 {
		t.Errorf("the resumed load should import only the second image:\n%s", nextOut.String())
	}
	if !onEveryNode(context.Background(), resumed.l.Cluster, got.e.Images) {
		t.Errorf("the node lacks an image of %v", got.e.Images)
	}
	if _, err := os.Stat(a.Path); !os.IsNotExist(err) {
		t.Errorf("the archive is still there after the load: %v", err)
	}
}
