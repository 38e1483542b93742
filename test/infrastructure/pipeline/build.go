package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/budget"
	"github.com/kindling-dev/kindling/test/infrastructure/build"
	"github.com/kindling-dev/kindling/test/infrastructure/disk"
	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/state"
)

// Build compiles the suite's binaries, derives the image tags from them and builds the images that
// are not there yet. After prune the images are gone from the engine on purpose: when the observed
// record says a verified archive, a verified push or the cluster's nodes hold images with the same
// tags, that is the build's product and nothing is rebuilt.
func (r *Run) Build(ctx context.Context, o Observed) (Built, error) {
	var b Built
	err := r.timed(ctx, "build", "IMAGES_BUILT", func() (err error) {
		b, err = r.build(ctx, o)
		return err
	})
	return b, err
}

func (r *Run) build(ctx context.Context, o Observed) (Built, error) {
	log := r.logger("build")
	if !r.carrier.builds() {
		reg := r.cfg.Registry
		log("skipped: registry mode, images come from %s with tag %s", reg.Host, reg.Tag)
		return Built{Observed: o, RunID: o.RunID, Images: registryImages(r.cfg, *reg)}, nil
	}
	eng, err := r.engine(ctx)
	if err != nil {
		return Built{}, err
	}
	log("engine %s", r.engineLabel())
	opts := build.Options{
		Engine:      eng,
		Suite:       r.cfg.Suite.Name,
		RepoRoot:    r.cfg.Root,
		WorkDir:     filepath.Join(r.cfg.RunDir, "build"),
		Parallelism: r.cfg.Parallelism,
		Log:         log,
		Host:        r.cfg.HostBuild,
		Coverage:    r.cfg.Coverage,
		Used:        r.graphRootUsed,
	}
	planned, err := build.Plan(ctx, opts, r.cfg.Suite.Services)
	// The build contexts hold a copy of every binary: gone once the images are built or found.
	defer os.RemoveAll(opts.WorkDir)
	if err != nil {
		return Built{}, r.suiteError(err)
	}
	same := sameRefs(o.Images, planned)
	opts.RunID = o.RunID
	if !same {
		opts.RunID = r.beginRun(eng.Name())
	}
	if same {
		held := Built{Observed: o, RunID: o.RunID, Images: o.Images, Held: o.Held, Leftovers: o.Leftovers}
		switch h := o.Held; {
		case h.Loaded != nil:
			log("up to date: the images are on every node of cluster %s", h.Loaded.Cluster)
			return held, nil
		case h.Archive != nil:
			log("up to date: the images are in the verified archive %s", h.Archive.Path)
			return held, nil
		case h.Pushed != nil:
			log("up to date: the images are in %s, verified", h.Pushed.Host)
			return held, nil
		}
	}

	facts := r.facts()
	// Only when an image is to be built: up-to-date images need no room.
	opts.BeforeBuilding = func(ctx context.Context) error { return r.fits(ctx, "build", facts) }
	opts.Took, opts.Peaks = tookLast(facts), peaksLast(facts)
	if place := r.budgetPlaces().Engine; !r.cfg.DiskBudget.Off && place.Path != "" {
		budget := r.checker()
		opts.Room = func(ctx context.Context) (int64, string, error) {
			n, why, err := budget.Room(ctx, place)
			return int64(n), why, err
		}
	}
	built, err := build.Images(ctx, opts, planned)
	r.learn(func(f *budget.Facts) {
		learnDurations(f, built.Results)
		learnPeaks(f, built.Results, built.WarmCaches)
		if built.Footprint.Measured {
			f.PulledBytes = uint64(max(0, built.Footprint.PulledBases))
		}
	})
	if f := built.Footprint; err == nil && f.Measured {
		left := max(0, f.PulledBases+f.BuildCache+f.SuiteImages)
		r.learnAfterPhase("build", func(cp disk.Checkpoint) { r.learnBuild(cp, uint64(left), built.WarmCaches) })
	}
	if err != nil {
		r.record(func(st *state.Suite) { r.recordLeftovers(st, built, log) })
		return Built{}, r.suiteError(err)
	}
	images := make([]state.Image, len(built.Results))
	for i, res := range built.Results {
		images[i] = state.Image{Service: res.Service.Name, Ref: res.Ref, EngineID: res.ID, Manifest: res.Manifest}
		if !r.engineInfo().IDsAreManifests() {
			images[i].ID = res.ID
		}
	}
	var b Built
	err = r.record(func(st *state.Suite) {
		r.recordLeftovers(st, built, log)
		st.Images, st.Archive, st.Pruned, st.Loaded, st.Pushed = images, nil, nil, nil, nil
		b = Built{Observed: o, RunID: st.RunID, Images: images, Leftovers: copyLeftovers(st.Leftovers), ImageBytes: uint64(max(built.ImageBytes, 0))}
	})
	if err != nil {
		return b, err
	}
	return r.dropGarbage(ctx, eng, b, log)
}

// dropGarbage ends a build: what the builds left that holds no image goes now, not at prune, so
// that the archive is not written beside it.
func (r *Run) dropGarbage(ctx context.Context, eng engine.Engine, b Built, log func(string, ...any)) (Built, error) {
	if b.Leftovers == nil {
		return b, nil
	}
	rest, _, _ := r.dropBuildGarbage(ctx, eng, b.Leftovers, log)
	b.Leftovers = rest
	return b, r.record(func(st *state.Suite) { st.Leftovers = copyLeftovers(rest) })
}

// Adopt takes images another tool built (the benchmark's workload) as the build phase's product:
// it records them as this run's, and drops what their builds left as the build phase does.
func (r *Run) Adopt(ctx context.Context, b Built) (Built, error) {
	var out Built
	err := r.timed(ctx, "build", "IMAGES_BUILT", func() error {
		eng, err := r.engine(ctx)
		if err != nil {
			return err
		}
		if err := r.record(func(st *state.Suite) {
			st.RunID, st.Images, st.Leftovers = b.RunID, b.Images, copyLeftovers(b.Leftovers)
			st.Archive, st.Pruned, st.Loaded, st.Pushed = nil, nil, nil, nil
		}); err != nil {
			return err
		}
		out, err = r.dropGarbage(ctx, eng, b, r.logger("build"))
		return err
	})
	return out, err
}

// learnBuild keeps what the builds need on the image store's filesystem: the larger of what
// they left and how far it rose above the phase's start (the peak: stages, layer cache and
// compile caches come and go within the build). Warm compile caches make a build need less
// than a cold one; a warm build does not lower what the last cold one taught.
func (r *Run) learnBuild(cp disk.Checkpoint, left uint64, warm bool) {
	need := left
	// With E2E_OVERLAP the cluster grows the same filesystem during the build.
	if grown, ok := growth(cp, r.budgetPlaces().Engine); ok && !r.cfg.Overlap {
		need = max(need, grown)
	}
	r.learn(func(f *budget.Facts) {
		if warm {
			need = max(need, f.BuildBytes)
		}
		f.BuildBytes = need
	})
}

// tookLast is how long each service's build took last time.
func tookLast(f budget.Facts) map[string]time.Duration {
	took := map[string]time.Duration{}
	for svc, s := range f.BuildSeconds {
		took[svc] = time.Duration(s * float64(time.Second))
	}
	return took
}

// peaksLast is how far each service's last cold build raised the engine's filesystem.
func peaksLast(f budget.Facts) map[string]int64 {
	peaks := map[string]int64{}
	for svc, n := range f.BuildPeaks {
		peaks[svc] = int64(n)
	}
	return peaks
}

// learnPeaks keeps each build's peak; as for the phase's, a warm build does not lower what the
// last cold one taught.
func learnPeaks(f *budget.Facts, results []build.Result, warm bool) {
	for _, res := range results {
		if res.Peak <= 0 {
			continue
		}
		if f.BuildPeaks == nil {
			f.BuildPeaks = map[string]uint64{}
		}
		peak := uint64(res.Peak)
		if warm {
			peak = max(peak, f.BuildPeaks[res.Service.Name])
		}
		f.BuildPeaks[res.Service.Name] = peak
	}
}

// learnDurations keeps how long each image build took; an image found up to date teaches nothing.
func learnDurations(f *budget.Facts, results []build.Result) {
	for _, res := range results {
		if res.UpToDate || res.Duration == 0 {
			continue
		}
		if f.BuildSeconds == nil {
			f.BuildSeconds = map[string]float64{}
		}
		f.BuildSeconds[res.Service.Name] = res.Duration.Round(time.Second).Seconds()
	}
}

func copyLeftovers(l *state.Leftovers) *state.Leftovers {
	if l == nil {
		return nil
	}
	return &state.Leftovers{Pulled: slices.Clone(l.Pulled), Intermediate: slices.Clone(l.Intermediate), BuildCache: slices.Clone(l.BuildCache),
		CompileCaches: slices.Clone(l.CompileCaches)}
}

// recordLeftovers adds what the builds pulled and left to the run's record st, for prune.
func (r *Run) recordLeftovers(st *state.Suite, b build.Built, log func(string, ...any)) {
	if f := b.Footprint; f.Measured {
		st.Footprint = &state.Footprint{Filesystem: r.graphRootName(), PulledBytes: f.PulledBases,
			BuildCacheBytes: f.BuildCache, SuiteImageBytes: f.SuiteImages}
		r.report.built(st.Footprint)
		log("the builds added %s to the filesystem of %s: pulled bases %s, build cache %s (%s), suite images %s (their own layers)",
			disk.HumanSize(f.PulledBases+f.BuildCache+f.SuiteImages), r.graphRootName(), disk.HumanSize(f.PulledBases),
			disk.HumanSize(f.BuildCache), cacheKind(b), disk.HumanSize(f.SuiteImages))
	}
	if len(b.Pulled) == 0 && len(b.Intermediate) == 0 && len(b.BuildCache) == 0 && len(b.CacheMounts) == 0 {
		return
	}
	l := st.Leftovers
	if l == nil {
		l = &state.Leftovers{}
		st.Leftovers = l
	}
	for _, p := range b.Pulled {
		l.Pulled = append(l.Pulled, state.Image{Ref: p.Ref, EngineID: p.ID})
	}
	l.Intermediate = append(l.Intermediate, b.Intermediate...)
	l.BuildCache = append(l.BuildCache, b.BuildCache...)
	for _, m := range b.CacheMounts {
		l.CompileCaches = appendMissing(l.CompileCaches, state.CacheMount(m))
	}
}

// cacheKind says what the builds' cache is: BuildKit's records or intermediate images.
func cacheKind(b build.Built) string {
	if len(b.BuildCache) > 0 {
		return fmt.Sprintf("%d BuildKit cache records of %s", len(b.BuildCache), disk.HumanSize(b.BuildCacheBytes))
	}
	return fmt.Sprintf("%d intermediate images", len(b.Intermediate))
}

// sameRefs reports whether the recorded images are exactly the planned ones.
func sameRefs(recorded []state.Image, planned []build.Planned) bool {
	if len(recorded) != len(planned) {
		return false
	}
	var a, b []string
	for i := range recorded {
		a = append(a, recorded[i].Ref)
		b = append(b, planned[i].Ref)
	}
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func registryImages(cfg Config, reg Registry) []state.Image {
	var images []state.Image
	for _, svc := range cfg.Suite.ServiceNames() {
		images = append(images, state.Image{Service: svc, Ref: fmt.Sprintf("%s/%s:%s", reg.Host, svc, reg.Tag)})
	}
	return images
}

// suiteError names the suite and its file: a build error is about what the file describes.
func (r *Run) suiteError(err error) error {
	if r.cfg.Suite.File == "" {
		return fmt.Errorf("suite %s: %w", r.cfg.Suite.Name, err)
	}
	return fmt.Errorf("suite %s (%s): %w", r.cfg.Suite.Name, r.cfg.Suite.File, err)
}
