package bench

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"sigs.k8s.io/kind/pkg/cluster/nodes"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
	"github.com/kindling-dev/kindling/test/infrastructure/cluster"
	"github.com/kindling-dev/kindling/test/infrastructure/disk"
	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/load"
	"github.com/kindling-dev/kindling/test/infrastructure/pipeline"
	"github.com/kindling-dev/kindling/test/infrastructure/state"
)

// Strategy names. Only the baselines are written here; every kindling strategy runs the
// product's own phases (see kindlingProduct): the default archive, the cluster created while the
// images build (overlap), and the suite's local registry instead of an archive.
const (
	Original         = "original"
	KindDockerImage  = "kind-docker-image"
	Kindling         = "kindling"
	KindlingOverlap  = "kindling+overlap"
	KindlingRegistry = "kindling+registry"
)

// Strategies lists every strategy, the baseline first.
var Strategies = []string{Original, KindDockerImage, Kindling, KindlingOverlap, KindlingRegistry}

// Env is what every strategy runs with.
type Env struct {
	Engine    engine.Engine
	NodeImage string // as the provider (the engine) knows it
	Dir       string // the benchmark's archives and temporary files
	Cluster   string // the name of the clusters it creates, one at a time
	Workers   int    // worker nodes beside the control plane
	Workload  Workload
	// Preexisting are the IDs of the images the engine held before the benchmark: the original
	// flow's system prune spares them, so the user's images survive it.
	Preexisting []string
	// Interval is the disk sampling interval; the issue asks for 100 ms at most.
	Interval time.Duration
	Log      func(format string, args ...any)
}

// Result is one strategy's run.
type Result struct {
	Strategy string        `json:"strategy"`
	Phases   []PhaseTime   `json:"phases"`
	Total    time.Duration `json:"total_ns"`
	// Peaks are the highest used bytes above the start, per filesystem (mountpoint).
	Peaks []Peak `json:"peaks"`
	// NodeContent and NodeSnapshots are what the nodes' containerd grew by, summed over Nodes.
	NodeContent   int64 `json:"node_content_bytes"`
	NodeSnapshots int64 `json:"node_snapshots_bytes"`
	Nodes         int   `json:"nodes"`
	// ArchiveBytes are the bytes of archives written to disk.
	ArchiveBytes int64 `json:"archive_bytes"`
	// EngineLeft is what the engine's filesystem still holds above the start at the end.
	Samples int `json:"samples"`
}

// PhaseTime is one phase's wall time.
type PhaseTime struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration_ns"`
}

// Peak is the highest used bytes above the start on one filesystem, and during which phase.
type Peak struct {
	Filesystem string `json:"filesystem"`
	Bytes      int64  `json:"bytes"`
	Phase      string `json:"phase"`
}

// NodeBytes is what the nodes keep: content plus snapshots.
func (r Result) NodeBytes() int64 { return r.NodeContent + r.NodeSnapshots }

// MaxPeak is the highest peak over the filesystems.
func (r Result) MaxPeak() int64 {
	var m int64
	for _, p := range r.Peaks {
		m = max(m, p.Bytes)
	}
	return m
}

// run is one strategy in progress: its clock, its disk recorder and its cleanup.
type run struct {
	env      Env
	result   Result
	recorder *disk.Recorder
	mu       sync.Mutex // places grow while the sampler reads them
	places   []disk.Place
	start    time.Time
	phase    time.Time
	nodes    []nodes.Node
	images   []archive.Image // what the strategy loads, as the archives describe it
}

func (e Env) logf(format string, args ...any) {
	if e.Log != nil {
		e.Log(format, args...)
	}
}

func newRun(ctx context.Context, env Env, strategy string) (*run, error) {
	info, err := env.Engine.Info(ctx)
	if err != nil {
		return nil, err
	}
	r := &run{env: env, result: Result{Strategy: strategy}}
	r.places = append(r.places, disk.Place{Name: "benchmark dir", Path: env.Dir}, disk.Place{Name: "temp dir", Path: os.TempDir()})
	for _, dir := range info.Storage {
		r.places = append(r.places, disk.Place{Name: env.Engine.Name() + " storage", Path: dir})
	}
	interval := env.Interval
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	r.recorder = disk.NewRecorder(func() []disk.Place {
		r.mu.Lock()
		defer r.mu.Unlock()
		return slices.Clone(r.places)
	}, io.Discard, interval)
	if _, err := r.recorder.Checkpoint(ctx, "START"); err != nil {
		return nil, err
	}
	r.recorder.Start(context.WithoutCancel(ctx))
	r.start, r.phase = time.Now(), time.Now()
	return r, nil
}

// done ends a phase: its time, and a disk checkpoint that closes its peak.
func (r *run) done(ctx context.Context, name string) {
	now := time.Now()
	r.result.Phases = append(r.result.Phases, PhaseTime{Name: name, Duration: now.Sub(r.phase)})
	r.phase = now
	if _, err := r.recorder.Checkpoint(context.WithoutCancel(ctx), name); err != nil {
		r.env.logf("%s: disk checkpoint %s: %v", r.result.Strategy, name, err)
	}
}

// finish stops the clock and the sampler and computes the peaks above the start.
func (r *run) finish() Result {
	r.result.Total = time.Since(r.start)
	r.recorder.Stop()
	phases := r.recorder.Phases()
	start := map[string]uint64{}
	for _, f := range phases[0].Filesystems {
		start[f.Mountpoint] = f.Used
	}
	peaks := map[string]Peak{}
	for _, p := range phases[1:] {
		r.result.Samples += p.Samples
		for _, f := range p.Filesystems {
			above := int64(f.Peak) - int64(start[f.Mountpoint])
			if cur, ok := peaks[f.Mountpoint]; !ok || above > cur.Bytes {
				peaks[f.Mountpoint] = Peak{Filesystem: f.Mountpoint, Bytes: above, Phase: p.Name}
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(peaks)) {
		r.result.Peaks = append(r.result.Peaks, peaks[k])
	}
	return r.result
}

// createCluster creates the strategy's cluster and starts measuring the nodes' storage.
func (r *run) createCluster(ctx context.Context) error {
	c, err := cluster.Create(ctx, cluster.Options{
		Name:           r.env.Cluster,
		Provider:       r.env.Engine.Name(),
		NodeImage:      r.env.NodeImage,
		Workers:        r.env.Workers,
		KubeconfigPath: filepath.Join(r.env.Dir, "kubeconfig"),
		WaitForReady:   3 * time.Minute,
	})
	if err != nil {
		return err
	}
	return r.measureNodes(ctx, state.Cluster{Name: c.Name, Provider: c.Provider})
}

// nodeGrowth records what the nodes' containerd keeps of the workload's images: the content
// blobs and the unpacked snapshots of exactly those images (not of the system pods, which start
// meanwhile).
func (r *run) nodeGrowth(ctx context.Context) error {
	for _, n := range r.nodes {
		snapshotter, err := load.Snapshotter(ctx, n)
		if err != nil {
			return err
		}
		f, err := load.ImagesFootprint(ctx, n, snapshotter, r.images)
		if err != nil {
			return err
		}
		r.result.Nodes++
		r.result.NodeContent += f.Content
		r.result.NodeSnapshots += f.Snapshots
	}
	return nil
}

func (r *run) deleteCluster() {
	if err := cluster.Delete(context.Background(), r.env.Cluster, r.env.Engine.Name(), filepath.Join(r.env.Dir, "kubeconfig")); err != nil {
		r.env.logf("%s: delete cluster %s: %v", r.result.Strategy, r.env.Cluster, err)
	}
}

// Run builds the workload and runs one strategy on it; it leaves no cluster, archive or image of
// the workload behind, also when it fails or ctx is cancelled. The disk is measured from before
// the build (so every strategy's peak counts from the same point), the time from its end: the
// build is the same for all, but the overlap variant creates its cluster meanwhile.
func Run(ctx context.Context, env Env, strategy string) (Result, error) {
	if !slices.Contains(Strategies, strategy) {
		return Result{}, fmt.Errorf("unknown strategy %q: use one of %v", strategy, Strategies)
	}
	r, err := newRun(ctx, env, strategy)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		r.recorder.Stop()
		r.deleteCluster()
		_ = env.Workload.Remove(context.WithoutCancel(ctx))
	}()
	var product *pipeline.Run
	var early <-chan earlyCluster
	if strategy != Original && strategy != KindDockerImage {
		if product, err = newProduct(env, strategy); err != nil {
			return r.finish(), err
		}
		// After the result is taken: the teardown is not the flow's time.
		defer func() {
			if err := product.Down(context.WithoutCancel(ctx)); err != nil {
				env.logf("%s: down: %v", strategy, err)
			}
		}()
		if strategy == KindlingOverlap {
			early = r.overlap(ctx, product)
		}
	}
	if err := env.Workload.Rebuild(ctx); err != nil {
		if early != nil {
			<-early
		}
		return r.finish(), fmt.Errorf("build the workload for %s: %w", strategy, err)
	}
	r.done(ctx, "build")
	r.start = time.Now()
	switch strategy {
	case Original:
		err = r.original(ctx)
	case KindDockerImage:
		err = r.kindDockerImage(ctx)
	default:
		err = r.kindlingProduct(ctx, product, early)
	}
	if err != nil {
		return r.finish(), fmt.Errorf("strategy %s: %w", strategy, err)
	}
	return r.finish(), nil
}

// original is the flow kindling replaces, as its users ran it: one tar per image, `system prune
// -a -f --volumes` (every image, stopped container, unused volume and the build cache; here every
// image but the ones the engine held before the benchmark), the cluster, kind's import of every
// tar into every node (ctr import --all-platforms, blobs kept), the tars removed.
func (r *run) original(ctx context.Context) error {
	var tars []string
	var want [][]load.Image
	defer func() {
		for _, t := range tars {
			os.Remove(t)
		}
	}()
	for i, ref := range r.env.Workload.Refs {
		path := filepath.Join(r.env.Dir, fmt.Sprintf("original-%d.tar", i))
		tars = append(tars, path)
		if err := r.env.Engine.Save(ctx, path, []string{ref}); err != nil {
			return err
		}
		v, err := archive.Verify(path, []string{ref})
		if err != nil {
			return err
		}
		want = append(want, []load.Image{{Ref: ref, ID: v.Images[0].ID}})
		r.images = append(r.images, v.Images...)
		r.result.ArchiveBytes += v.Size
	}
	r.done(ctx, "export")
	if _, err := r.env.Engine.PruneAll(ctx, r.env.Preexisting); err != nil {
		return err
	}
	r.done(ctx, "prune")
	if err := r.createCluster(ctx); err != nil {
		return err
	}
	r.done(ctx, "cluster")
	for i, t := range tars {
		if _, err := load.ArchiveWith(ctx, r.nodes, t, want[i], load.Options{KindStyle: true}); err != nil {
			return err
		}
	}
	r.done(ctx, "load")
	if err := r.nodeGrowth(ctx); err != nil {
		return err
	}
	for _, t := range tars {
		if err := os.Remove(t); err != nil {
			return err
		}
	}
	r.done(ctx, "cleanup")
	return nil
}

// kindDockerImage is what `kind load docker-image` does: one temporary tar of all the images,
// imported kind-style into every node, the images left in the engine.
func (r *run) kindDockerImage(ctx context.Context) error {
	if err := r.createCluster(ctx); err != nil {
		return err
	}
	r.done(ctx, "cluster")
	path := filepath.Join(r.env.Dir, "kind-docker-image.tar")
	defer os.Remove(path)
	if err := r.env.Engine.Save(ctx, path, r.env.Workload.Refs); err != nil {
		return err
	}
	v, err := archive.Verify(path, r.env.Workload.Refs)
	if err != nil {
		return err
	}
	r.result.ArchiveBytes, r.images = v.Size, v.Images
	r.done(ctx, "export")
	var want []load.Image
	for _, img := range v.Images {
		want = append(want, load.Image{Ref: img.Ref, ID: img.ID})
	}
	if _, err := load.ArchiveWith(ctx, r.nodes, path, want, load.Options{KindStyle: true}); err != nil {
		return err
	}
	r.done(ctx, "load")
	if err := r.nodeGrowth(ctx); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		return err
	}
	r.done(ctx, "cleanup")
	return nil
}
