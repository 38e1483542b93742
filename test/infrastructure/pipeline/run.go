// Package pipeline composes the phases of a suite's run: build → export → prune → cluster → load →
// deploy → test. Each phase takes the typed product of the one before it and never asks an earlier
// phase to produce anything again; the deploy phase in particular has no path to the container
// engine: it sees only what load put on the nodes.
//
// Products are also written to a state file, so the phases can run as separate processes (CI steps).
// Reading that record back is one step at the start, Observe: it checks each recorded product
// against reality once and hands the build phase what still holds; no phase reads the record.
package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fatih/color"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
	"github.com/kindling-dev/kindling/test/infrastructure/budget"
	"github.com/kindling-dev/kindling/test/infrastructure/cluster"
	"github.com/kindling-dev/kindling/test/infrastructure/disk"
	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/state"
)

// Built is the build phase's product: the suite's images, by service, and where they are already
// safe outside the engine when an earlier process got further with these same images.
type Built struct {
	Observed Observed
	RunID    string
	Images   []state.Image
	Held     Held
	// Leftovers are what this suite's builds pulled and left, for prune.
	Leftovers *state.Leftovers
	// ImageBytes is what the images hold with shared layers counted once; 0 when unknown.
	ImageBytes uint64
}

// Exported is the export phase's product: the images and where they are safe outside the engine —
// a verified archive, a verified push, or every node of the recorded cluster (OnNodes).
type Exported struct {
	Built   Built
	Images  []state.Image
	Archive state.Archive
	OnNodes bool
	// Pushed are the images under their references in a registry, read back and verified.
	Pushed *state.Pushed
	// Registry is the suite's local registry that holds Pushed (E2E_REGISTRY=local).
	Registry *state.Registry
}

// safe reports whether every image is held outside the engine: what prune needs before it deletes.
func (e Exported) safe() bool {
	return e.OnNodes || e.Archive.Path != "" || (e.Pushed != nil && len(e.Pushed.Images) == len(e.Images))
}

// Pruned proves the prune phase ran: the images now live only where Exported says.
type Pruned struct {
	Exported Exported
}

// Cluster is the cluster phase's product: the cluster, and what it is to receive.
type Cluster struct {
	state.Cluster
	Pruned Pruned
}

// Loaded is the load phase's product, and all the deploy phase ever sees: the cluster and the
// images that are on every one of its nodes (or that its nodes pull from Registry).
type Loaded struct {
	Cluster  state.Cluster
	Images   []state.Image
	Registry *Registry
}

// Run is one suite's run in this process: its configuration and output, and the owners of what
// its phases share, each guarding its own: the state file (journal), the facts file (ledger),
// the engine, the measured places, the disk recorder, what the summary will say, what phases
// learn from their checkpoints, the e2e tests' compilation. Run has no lock of its own and holds
// no phase's product: each phase takes the product of the one before it and returns its own,
// and the caller (Mage's graph) hands it on.
type Run struct {
	cfg     Config
	carrier carrier // the transport's steps, chosen once from cfg
	out     *console
	started time.Time

	journal  *state.Journal // the record the phases write, for the next process's Observe
	ledger   *budget.Ledger // the suite's facts file: what its earlier runs measured
	detected detectedEngine
	where    placeSet // what the disk reports measure, beyond the temp and archive dirs
	disk     *disk.Recorder
	report   runReport
	lessons  lessons
	tests    testBinary

	// exists is cluster.Exists; tests make it fail.
	exists func(ctx context.Context, name, provider string) (bool, error)
	// create is cluster.Create; tests stand in for kind.
	create func(context.Context, cluster.Options) (cluster.Cluster, error)
	// measure is disk.Measure for the budget checks; tests fake it.
	measure   func(context.Context, []disk.Place) (disk.Snapshot, error)
	startOnce sync.Once
}

type phaseTime struct {
	Name     string
	Duration time.Duration
}

// New starts a run of cfg.Suite, reading its state file. Output goes to out.
func New(cfg Config, out io.Writer) (*Run, error) {
	journal, err := state.Open(statePath(cfg))
	if err != nil {
		return nil, err
	}
	st := journal.Snapshot()
	if cfg.ArchiveDir == "" {
		if cfg.ArchiveDir, err = archive.DefaultDir(); err != nil {
			return nil, err
		}
	}
	r := &Run{cfg: cfg, out: &console{w: out}, journal: journal, started: time.Now(),
		exists: cluster.Exists, create: cluster.Create, measure: disk.Measure, ledger: budget.NewLedger(filepath.Join(cfg.RunDir, "disk-facts.json"))}
	r.report.began(st.RunID)
	r.report.built(st.Footprint)
	r.carrier = carrierFor(cfg.Transport(), r)
	// 100 ms, as the benchmark samples: a save's temporary copy or an import's blobs live a
	// second or two, and a coarser sampler misses their peak by a varying amount.
	r.disk = disk.NewRecorder(r.places, r.out, 100*time.Millisecond)
	r.disk.MeasureParts(r.parts)
	return r, nil
}

// Config returns the run's configuration.
func (r *Run) Config() Config { return r.cfg }

func statePath(cfg Config) string { return filepath.Join(cfg.RunDir, "state.json") }

// record changes the state and writes it, for the next process's Observe.
func (r *Run) record(update func(*state.Suite)) error { return r.journal.Update(update) }

func (r *Run) save() error { return r.record(func(*state.Suite) {}) }

// learnAfterPhase keeps what phase's checkpoint will measure, once the phase succeeded.
func (r *Run) learnAfterPhase(phase string, learn func(disk.Checkpoint)) {
	r.lessons.after(phase, learn)
}

var phaseColor = color.New(color.FgCyan, color.Bold)

// logf prints one line for a phase: "[build]   message".
func (r *Run) logf(phase, format string, args ...any) {
	fmt.Fprintf(r.out, "%s %s\n", phaseColor.Sprintf("%-9s", "["+phase+"]"), fmt.Sprintf(format, args...))
}

func (r *Run) logger(phase string) func(string, ...any) {
	return func(format string, args ...any) { r.logf(phase, format, args...) }
}

// timed runs one phase, records its duration and a disk checkpoint: the phase's own on success,
// <CHECKPOINT>_FAILED on failure, since a phase that runs out of disk is the one to see.
func (r *Run) timed(ctx context.Context, phase, checkpoint string, fn func() error) error {
	if err := r.begin(ctx); err != nil {
		return err
	}
	gha := os.Getenv("GITHUB_ACTIONS") == "true"
	// Fold each phase's log in the GitHub Actions log; groups cannot interleave, so a phase
	// beside another (E2E_OVERLAP) has none.
	if gha && ctx.Value(besideKey{}) == nil {
		fmt.Fprintf(r.out, "::group::%s\n", phase)
		defer fmt.Fprintf(r.out, "::endgroup::\n")
	}
	start := time.Now()
	err := fn()
	r.report.ended(phase, time.Since(start))
	if err != nil {
		checkpoint += "_FAILED"
		if !strings.HasPrefix(err.Error(), phase+":") {
			err = fmt.Errorf("%s: %w", phase, err)
		}
	}
	cp, cerr := r.disk.Checkpoint(context.WithoutCancel(ctx), checkpoint)
	if cerr != nil {
		r.logf(phase, "disk checkpoint %s failed: %v", checkpoint, cerr)
	}
	learn := r.lessons.take(phase)
	if learn != nil && err == nil && cerr == nil {
		learn(cp)
	}
	if err != nil && gha {
		fmt.Fprintf(r.out, "::error title=%s failed::%s\n", phase, workflowEscape(err.Error()))
	}
	return err
}

// besideKey marks the context of a phase that runs beside another.
type besideKey struct{}

// begin checks the engine choice, before any output since nothing else can go right without it,
// and starts the disk measurements once.
func (r *Run) begin(ctx context.Context) error {
	if _, err := r.engineName(); err != nil {
		return err
	}
	r.startOnce.Do(func() { r.start(ctx) })
	// Again after a target's summary stopped it: mage runs several targets in one process.
	r.disk.Start(context.WithoutCancel(ctx))
	return nil
}

// start takes the START checkpoint and starts the peak sampler. It first learns every place it
// can already know — the engine's graph root, the recorded cluster's nodes — so that START
// measures the filesystems the phases will fill.
func (r *Run) start(ctx context.Context) {
	if r.carrier.builds() {
		if _, err := r.engine(ctx); err != nil {
			r.logf("disk", "no engine yet, the disk reports miss its graph root: %v", err)
		}
	}
	if _, err := r.disk.Checkpoint(ctx, "START"); err != nil {
		r.logf("disk", "START checkpoint failed: %v", err)
	}
	r.disk.Start(context.WithoutCancel(ctx))
}

// engine returns the run's container engine, chosen once per run and recorded in the state file,
// because the same choice later drives the Kind provider and the load.
func (r *Run) engine(ctx context.Context) (engine.Engine, error) {
	return r.detected.get(ctx, r.detectEngine)
}

// detectEngine finds the engine and learns where it keeps its bytes.
func (r *Run) detectEngine(ctx context.Context) (engine.Engine, engine.Info, error) {
	want, err := r.engineName()
	if err != nil {
		return nil, engine.Info{}, err
	}
	eng, err := engine.Detect(ctx, want)
	if err != nil {
		return nil, engine.Info{}, err
	}
	info, err := eng.Info(ctx)
	if err != nil || info.GraphRoot == "" {
		return nil, engine.Info{}, fmt.Errorf("%s info gave no graph root (%v): cannot tell which filesystem holds the images", eng.Name(), err)
	}
	for _, dir := range info.Storage {
		r.where.add(storageRole(info, dir), disk.Place{Name: storageName(eng.Name(), info, dir), Path: dir})
	}
	r.where.addParts(storeParts(eng.Name(), info)...)
	// Recorded at once only in a run already under way; a new run records it with its first product.
	started := false
	r.journal.Amend(func(st *state.Suite) {
		if st.Engine == "" {
			st.Engine, st.EngineHost, started = eng.Name(), engine.HostOf(eng.Name()), st.RunID != ""
		}
	})
	if started {
		return eng, info, r.save()
	}
	return eng, info, nil
}

// engineInfo is what the detected engine's info said; empty before detection.
func (r *Run) engineInfo() engine.Info {
	_, info, _ := r.detected.known()
	return info
}

// storageRole is what a directory of the engine's storage holds.
func storageRole(info engine.Info, dir string) role {
	switch dir {
	case info.GraphRoot:
		return roleGraphRoot
	case info.ContentRoot:
		return roleContent
	case info.SnapshotRoot:
		return roleSnapshots
	}
	return roleOtherStorage
}

// storageName names a directory of the engine's storage for the disk reports.
func storageName(engineName string, info engine.Info, dir string) string {
	switch {
	case dir == info.GraphRoot && info.IDsAreManifests():
		return engineName + " data root (metadata, volumes)"
	case dir == info.GraphRoot:
		return engineName + " graph root"
	case dir == info.ContentRoot:
		return engineName + " containerd content"
	case dir == info.SnapshotRoot:
		return engineName + " containerd snapshots"
	}
	return engineName + " storage"
}

// storeParts are the directories of the engine's store whose bytes the reports name: with the
// containerd store its content (compressed blobs) and snapshots (unpacked layers, containers'
// writable layers, BuildKit's cache), where Docker's data root keeps only metadata and volumes;
// otherwise the graph root, which holds all of those and the nodes' volumes too.
func storeParts(engineName string, info engine.Info) []disk.Part {
	if info.IDsAreManifests() && info.ContentRoot != "" && info.SnapshotRoot != "" {
		return []disk.Part{
			{Name: engineName + " containerd content (compressed blobs)", Path: info.ContentRoot},
			{Name: engineName + " containerd snapshots (unpacked layers, containers, BuildKit cache)", Path: info.SnapshotRoot},
		}
	}
	parts := []disk.Part{{Name: engineName + " graph root (images, containers, volumes)", Path: info.GraphRoot}}
	if info.CacheMountRoot != "" {
		parts = append(parts, disk.Part{Name: "buildah cache mounts (Go's module and build caches)", Path: info.CacheMountRoot})
	}
	return parts
}

// engineName is the engine this run must use: the recorded one, which CONTAINER_ENGINE may not
// contradict, else CONTAINER_ENGINE, else "" (detect).
func (r *Run) engineName() (string, error) {
	want, recorded := r.cfg.Engine, r.recorded().Engine
	if recorded != "" {
		if want != "" && want != recorded {
			return "", fmt.Errorf("CONTAINER_ENGINE=%s, but this run of suite %s uses %s (recorded in %s): unset CONTAINER_ENGINE, or run \"%s\" to start over",
				want, r.cfg.Suite.Name, recorded, statePath(r.cfg), r.cfg.Command("down"))
		}
		want = recorded
		if err := r.sameDaemon(); err != nil {
			return "", err
		}
	}
	return want, nil
}

// sameDaemon refuses to go on with a run whose images, archive and cluster are on another
// daemon than the one the environment names now.
func (r *Run) sameDaemon() error {
	st := r.recorded()
	if st.Engine == "" || st.EngineHost == engine.HostOf(st.Engine) {
		return nil
	}
	variable := "DOCKER_HOST"
	if st.Engine == engine.Podman {
		variable = "CONTAINER_HOST"
	}
	was, now := daemonName(variable, st.EngineHost), daemonName(variable, engine.HostOf(st.Engine))
	return fmt.Errorf("this run of suite %s used %s at %s (recorded in %s), but the environment now names %s: its images and cluster are on the first; set %s as it was to go on or to run \"%s\" there, or start over with \"%s\" after removing %s",
		r.cfg.Suite.Name, st.Engine, was, statePath(r.cfg), now, variable, r.cfg.Command("down"), r.cfg.Command("e2e"), statePath(r.cfg))
}

func daemonName(variable, host string) string {
	if host == "" {
		return "the default daemon (" + variable + " unset)"
	}
	return variable + "=" + host
}

// recorded is a copy of the state as the phases recorded it so far.
func (r *Run) recorded() state.Suite { return r.journal.Snapshot() }

// beginRun starts a new run id in the state, keeping the record of a cluster this suite created,
// and returns it.
func (r *Run) beginRun(engineName string) string {
	var runID string
	r.journal.Amend(func(st *state.Suite) {
		*st = state.Suite{
			Suite:      r.cfg.Suite.Name,
			RunID:      newRunID(),
			Engine:     engineName,
			EngineHost: engine.HostOf(engineName),
			Started:    time.Now().UTC(),
			Cluster:    st.Cluster,
			// The suite's local registry stays the suite's to remove.
			Registry: st.Registry,
			// What earlier builds pulled and left stays the suite's to prune.
			Leftovers: st.Leftovers,
		}
		runID = st.RunID
	})
	r.report.began(runID)
	return runID
}

func newRunID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return time.Now().UTC().Format("20060102t150405") + "-" + hex.EncodeToString(b)
}

// places are the filesystems the disk reports measure: where the bytes actually live. The list
// grows as the run learns more (the engine's graph root, then the Kind nodes' storage); it is
// computed once per discovery, not on every sample.
func (r *Run) places() []disk.Place {
	p := []disk.Place{{Name: "temp dir", Path: os.TempDir()}}
	p = append(p, disk.Place{Name: "archive dir", Path: r.cfg.ArchiveDir})
	return append(p, r.where.all()...)
}

// parts are the directories measured with du at each checkpoint: the engine's store and the
// nodes' /var.
func (r *Run) parts() []disk.Part { return r.where.partList() }

// appendMissing appends the items that list does not hold yet.
func appendMissing[T comparable](list []T, items ...T) []T {
	for _, it := range items {
		if !slices.Contains(list, it) {
			list = append(list, it)
		}
	}
	return list
}

// workflowEscape escapes a message for a GitHub Actions workflow command.
func workflowEscape(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}
