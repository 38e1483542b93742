package pipeline

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/budget"
	"github.com/kindling-dev/kindling/test/infrastructure/build"
	"github.com/kindling-dev/kindling/test/infrastructure/disk"
	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/registry"
	"github.com/kindling-dev/kindling/test/infrastructure/state"
)

// Prune frees the engine's storage before the cluster is created. It refuses to delete any image
// that is not in a verified archive (or already on the cluster's nodes), and reports two numbers
// that are never confused: what the engine says it reclaimed, and what the filesystem holding the
// engine's storage actually gained.
func (r *Run) Prune(ctx context.Context, e Exported) (Pruned, error) {
	err := r.timed(ctx, "prune", "AFTER_PRUNE", func() error { return r.carrier.prune(ctx, e) })
	if err != nil {
		return Pruned{}, err
	}
	return Pruned{Exported: e}, nil
}

// pruneImages removes the engine's copies of the images e holds safe elsewhere, and what the builds left.
func (r *Run) pruneImages(ctx context.Context, e Exported) error {
	log := r.logger("prune")
	if p := e.Built.Held.Pruned; p != nil {
		log("up to date: this run's images were pruned at %s", p.At.Format(time.RFC3339))
		return nil
	}
	if len(e.Images) == 0 { // a failed export's zero product
		return fmt.Errorf("refusing to prune: the export phase handed on no images; run \"%s\" first", r.cfg.Command("export"))
	}
	eng, err := r.engine(ctx)
	if err != nil {
		return err
	}
	safe := map[string]bool{} // image IDs whose bytes are safe elsewhere
	if e.safe() {
		for _, img := range e.Images {
			safe[img.EngineID] = true
		}
	}
	// This run's images: the ones it recorded, and any other image labelled with its run id.
	recorded := map[string]bool{}
	for _, img := range e.Images {
		recorded[img.EngineID] = true
	}
	suiteImages, err := eng.Images(ctx, map[string]string{build.LabelSuite: r.cfg.Suite.Name})
	if err != nil {
		return err
	}
	victims := map[string]string{} // ID → refs, for messages
	for _, img := range suiteImages {
		// An untagged image with the run's labels is a stage of its builds (podman labels every
		// stage): an intermediate image, removed with the leftovers, not an image to export.
		if recorded[img.ID] || (img.Labels[build.LabelRun] == e.Built.RunID && len(img.Refs) > 0) {
			victims[img.ID] = strings.Join(img.Refs, ",")
		}
	}
	for id, ref := range victims {
		if !safe[id] {
			return fmt.Errorf("refusing to prune: image %s (%s) is not in a verified archive or registry; run \"%s\" first", ref, id, r.cfg.Command("export"))
		}
	}

	graph, err := r.graphRoot()
	if err != nil {
		return err
	}
	before, err := disk.Measure(ctx, graph)
	if err != nil {
		return err
	}
	usageBefore, usageErr := eng.DiskUsage(ctx)
	var victimIDs []string
	for id := range victims {
		victimIDs = append(victimIDs, id)
	}
	// What the images hold in a containerd store, to check after the delete that blobs and
	// snapshots are both gone.
	objects, objErr := eng.StoreObjects(ctx, victimIDs)
	var reclaimed int64
	var removed []string
	var kept *state.KeptCaches
	switch r.cfg.Prune {
	case PruneAggressive:
		log("aggressive: removing every image, stopped container, unused volume and build cache %s can reclaim (keeping %v)", eng.Name(), r.cfg.PruneKeep)
		if reclaimed, err = eng.PruneAll(ctx, r.pruneKeep(e.Registry)); err != nil {
			return err
		}
		// buildah keeps cache mounts outside what an image prune removes.
		if l := e.Built.Leftovers; l != nil {
			if caches, err := eng.CompileCaches(ctx, cacheMounts(l), nil); err == nil && len(caches) > 0 {
				n, err := eng.RemoveCompileCaches(ctx, caches)
				if err != nil {
					log("kept some compile caches of the builds: %v", err)
				}
				log("removed the builds' compile caches (%s)", disk.HumanSize(n))
				reclaimed += n
			}
		}
	default:
		removed = victimIDs
		if len(removed) > 0 {
			if err := eng.Remove(ctx, removed); err != nil {
				return err
			}
		}
		n, err := eng.PruneDangling(ctx)
		if err != nil {
			return err
		}
		log("scoped: removed %d images of run %s and the dangling images", len(removed), e.Built.RunID)
		removedCache, k := r.removeLeftovers(ctx, eng, e.Built.Leftovers, log)
		n += removedCache
		kept = k
		// rmi prints no size: what the engine's own accounting (system df) lost is what it
		// reclaimed, or what BuildKit said it freed where system df does not count that (the
		// containerd store).
		reclaimed = n
		if usageAfter, err := eng.DiskUsage(ctx); err == nil && usageErr == nil {
			reclaimed = max(n, usageBefore.Images+usageBefore.BuildCache-usageAfter.Images-usageAfter.BuildCache)
		}
	}
	after, err := disk.Measure(ctx, graph)
	if err != nil {
		return err
	}
	gained := usedOf(before) - usedOf(after)
	log("engine says it reclaimed %s; the filesystems holding %s gained %s", disk.HumanSize(reclaimed), r.graphRootName(), disk.HumanSize(gained))
	residue := r.checkResidue(ctx, eng, objects, objErr, log)
	return r.record(func(st *state.Suite) {
		if r.cfg.Prune == PruneAggressive {
			st.Leftovers = nil
		}
		st.Pruned = &state.Prune{Mode: r.cfg.Prune, RemovedIDs: removed, EngineReclaimed: reclaimed, FilesystemGained: gained,
			At: time.Now().UTC(), Residue: residue, KeptCaches: kept}
	})
}

// checkResidue checks, on the containerd store, that the removed images' blobs and snapshots
// are gone, and reports what the engine left behind with the commands that remove only that.
func (r *Run) checkResidue(ctx context.Context, eng engine.Engine, gone engine.StoreObjects, listErr error, log func(string, ...any)) *state.Residue {
	if listErr != nil {
		log("could not list the images' blobs and snapshots, so their removal is not checked: %v", listErr)
		return nil
	}
	if len(gone.Blobs) == 0 && len(gone.Snapshots) == 0 {
		return nil
	}
	res, err := eng.StoreResidue(ctx, gone)
	if err != nil {
		log("could not check that the images' blobs and snapshots are gone: %v", err)
		return nil
	}
	if res.Empty() {
		log("containerd store: the %d blobs and %d snapshots of the removed images are gone, or used by images that stay", len(gone.Blobs), len(gone.Snapshots))
		return nil
	}
	var cmds []string
	for _, argv := range res.Reclaim {
		cmds = append(cmds, strings.Join(argv, " "))
	}
	log("containerd store kept %d blobs and %d snapshots (%s) of the removed images that no image uses (moby#52539, containerd#10548); remove exactly those with: %s "+
		"(BuildKit's cache may still use them: a later build then fails with \"content digest … not found\" until \"docker buildx prune\" drops its records)",
		len(res.Blobs), len(res.Snapshots), disk.HumanSize(res.Bytes()), strings.Join(cmds, " && "))
	return &state.Residue{Blobs: res.Blobs, Snapshots: res.Snapshots, Bytes: res.Bytes(), Reclaim: res.Reclaim}
}

// removeLeftovers removes what the suite's builds pulled and left: their garbage first
// (dropBuildGarbage: intermediate images build on the bases), then the pulled bases by name, so a
// base that was already there under another name keeps that name. What another build still uses
// stays, and is reported. It returns the bytes of build cache removed and the compile caches kept.
func (r *Run) removeLeftovers(ctx context.Context, eng engine.Engine, l *state.Leftovers, log func(string, ...any)) (int64, *state.KeptCaches) {
	if l == nil {
		return 0, nil
	}
	rest, cacheBytes, kept := r.dropBuildGarbage(ctx, eng, l, log)
	var refs []string
	for _, b := range rest.Pulled {
		// Only if the name still means what the build pulled.
		if id, found, err := eng.ImageID(ctx, b.Ref); err == nil && found && id == b.EngineID {
			refs = append(refs, b.Ref)
		}
	}
	if err := eng.RemoveRefs(ctx, refs); err != nil {
		log("kept some pulled base images: %v", err)
	} else if len(refs) > 0 {
		log("removed the base images the builds pulled: %s", strings.Join(refs, ", "))
	}
	if err := r.record(func(st *state.Suite) { st.Leftovers = nil }); err != nil {
		log("%v", err)
	}
	return cacheBytes, kept
}

// dropBuildGarbage removes what the builds left that holds no image of the run: their
// intermediate images, the BuildKit cache records that appeared while they ran (records that were
// there before — cache hits, other runs' builds — stay), and the builds' compile caches unless
// settleCompileCaches keeps them. It returns what is left of l (the pulled bases, the compile
// caches kept and their records), the bytes of build cache removed and the caches kept.
func (r *Run) dropBuildGarbage(ctx context.Context, eng engine.Engine, l *state.Leftovers, log func(string, ...any)) (*state.Leftovers, int64, *state.KeptCaches) {
	if err := eng.Remove(ctx, l.Intermediate); err != nil {
		log("kept some intermediate images: %v", err)
	} else if len(l.Intermediate) > 0 {
		log("removed %d intermediate images of the builds", len(l.Intermediate))
	}
	// Go's module and build caches first: a BuildKit record kept for the next build is not
	// removed with the other records below.
	kept, keptRecords, cacheBytes := r.settleCompileCaches(ctx, eng, l, log)
	records := slices.DeleteFunc(slices.Clone(l.BuildCache), func(id string) bool { return slices.Contains(keptRecords, id) })
	n, err := eng.RemoveBuildCache(ctx, records)
	if err != nil {
		log("kept some build cache of the builds: %v", err)
	} else if len(records) > 0 {
		log("removed the %d BuildKit cache records of the builds (%s)", len(records), disk.HumanSize(n))
	}
	rest := &state.Leftovers{Pulled: slices.Clone(l.Pulled)}
	if kept != nil {
		rest.CompileCaches, rest.BuildCache = slices.Clone(l.CompileCaches), keptRecords
	}
	return rest, cacheBytes + n, kept
}

// settleCompileCaches keeps the builds' compile caches (their cache mounts) for the next build
// when they fit E2E_BUILD_CACHE_MAX and the disk budget has room for the cluster and the load
// beside them, and removes them otherwise. It returns what it kept, the BuildKit records among
// that, and the bytes it removed.
func (r *Run) settleCompileCaches(ctx context.Context, eng engine.Engine, l *state.Leftovers, log func(string, ...any)) (*state.KeptCaches, []string, int64) {
	caches, err := eng.CompileCaches(ctx, cacheMounts(l), l.BuildCache)
	if err != nil {
		log("could not find the builds' compile caches, so they stay: %v", err)
		return nil, nil, 0
	}
	if len(caches) == 0 {
		return nil, nil, 0
	}
	var total int64
	var where, records []string
	for _, c := range caches {
		total += c.Bytes
		where = append(where, c.Mount.ID+" ("+c.Where()+")")
		if c.Record != "" {
			records = append(records, c.Record)
		}
	}
	why := ""
	switch limit := r.cfg.BuildCacheMax; {
	case total > limit && limit == 0:
		why = "E2E_BUILD_CACHE_MAX=0"
	case total > limit:
		why = "more than E2E_BUILD_CACHE_MAX=" + disk.HumanSize(limit)
	default:
		if short := r.nodesShortfalls(ctx); len(short) > 0 {
			why = "the cluster and the load need the room (disk budget: " + strings.Join(short, "; ") + ")"
		}
	}
	if why == "" {
		log("kept the builds' compile caches for the next build: %s, %s (E2E_BUILD_CACHE_MAX=%s)",
			strings.Join(where, ", "), disk.HumanSize(total), disk.HumanSize(r.cfg.BuildCacheMax))
		return &state.KeptCaches{Where: where, Bytes: total, Max: r.cfg.BuildCacheMax}, records, 0
	}
	n, err := eng.RemoveCompileCaches(ctx, caches)
	if err != nil {
		log("kept some compile caches of the builds: %v", err)
	}
	log("removed the builds' compile caches %s (%s): %s", strings.Join(where, ", "), disk.HumanSize(max(n, total)), why)
	return nil, nil, n
}

// cacheMounts are the cache mounts the builds recorded in l.
func cacheMounts(l *state.Leftovers) []engine.CacheMount {
	var mounts []engine.CacheMount
	for _, m := range l.CompileCaches {
		mounts = append(mounts, engine.CacheMount(m))
	}
	return mounts
}

// nodesShortfalls says where the disk budget lacks room for what the cluster and the load are
// predicted to need.
func (r *Run) nodesShortfalls(ctx context.Context) []string {
	if r.cfg.DiskBudget.Off {
		return nil
	}
	var needs []budget.Need
	for _, phase := range []string{"cluster", "load"} {
		n, _ := budget.Predict(phase, r.facts(), r.budgetPlaces())
		needs = append(needs, n...)
	}
	short, err := r.checker().Shortfalls(ctx, "prune", needs)
	if err != nil {
		return []string{err.Error()}
	}
	return short
}

// graphRootUsed measures the used bytes of the filesystem that holds the engine's images.
func (r *Run) graphRootUsed(ctx context.Context) (int64, error) {
	graph, err := r.graphRoot()
	if err != nil {
		return 0, err
	}
	s, err := disk.Measure(ctx, graph)
	if err != nil {
		return 0, err
	}
	return usedOf(s), nil
}

// graphRootName names the engine's storage for messages.
func (r *Run) graphRootName() string {
	if graph, err := r.graphRoot(); err == nil {
		var paths []string
		for _, p := range graph {
			paths = append(paths, p.Path)
		}
		return strings.Join(paths, ", ")
	}
	return "the engine's storage"
}

// graphRoot are the places that hold the engine's images, the ones prune must measure: the
// graph root, and with the containerd store containerd's content and snapshots, which may be on
// another filesystem than Docker's data root. Measured together, a filesystem counts once.
func (r *Run) graphRoot() ([]disk.Place, error) {
	places := r.where.with(roleGraphRoot, roleContent, roleSnapshots)
	if len(places) == 0 {
		name := "the engine"
		if eng, _, ok := r.detected.known(); ok {
			name = eng.Name()
		}
		return nil, fmt.Errorf("%s did not report its graph root (%s info): cannot measure what prune gains", name, name)
	}
	return places, nil
}

// imageStore is where the engine writes image bytes: containerd's snapshots with the containerd
// store, else the graph root.
func (r *Run) imageStore() (disk.Place, bool) {
	if snapshots := r.where.with(roleSnapshots); len(snapshots) > 0 {
		return snapshots[0], true
	}
	places, err := r.graphRoot()
	if err != nil {
		return disk.Place{}, false
	}
	return places[0], true
}

func usedOf(s disk.Snapshot) int64 {
	var n int64
	for _, fs := range s.Filesystems {
		n += int64(fs.Used)
	}
	return n
}

// pruneKeep is what an aggressive prune keeps: E2E_PRUNE_KEEP (with the Kind node image), and the
// image of the local registry that holds the run's images.
func (r *Run) pruneKeep(local *state.Registry) []string {
	if local == nil {
		return r.cfg.PruneKeep
	}
	return append(slices.Clone(r.cfg.PruneKeep), registry.Image)
}
