package pipeline

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"sigs.k8s.io/kind/pkg/cluster/nodes"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
	"github.com/kindling-dev/kindling/test/infrastructure/budget"
	"github.com/kindling-dev/kindling/test/infrastructure/build"
	"github.com/kindling-dev/kindling/test/infrastructure/cluster"
	"github.com/kindling-dev/kindling/test/infrastructure/disk"
	"github.com/kindling-dev/kindling/test/infrastructure/load"
	"github.com/kindling-dev/kindling/test/infrastructure/state"
)

// Load streams the verified archive into every node's containerd, checks every node holds every
// image, then removes the archive (unless E2E_KEEP_ARCHIVES=true). A load that fails or is
// interrupted keeps it: after prune it is the images' only copy.
func (r *Run) Load(ctx context.Context, c Cluster) (Loaded, error) {
	var l Loaded
	err := r.timed(ctx, "load", "AFTER_LOAD", func() (err error) {
		l, err = r.carrier.load(ctx, c)
		return err
	})
	r.carrier.loaded(ctx, c, err)
	return l, err
}

// loaded keeps the archive when the load failed, and removes it once its images are on every node.
func (r archiveCarrier) loaded(ctx context.Context, c Cluster, err error) {
	if e := c.Pruned.Exported; e.Archive.Path != "" && !e.OnNodes {
		if err != nil {
			// After prune the archive is the images' only copy: a failed or interrupted load
			// must not take it with it.
			r.logf("load", "kept %s: the load did not finish on every node, and the archive holds the only copy of the images; %q retries it",
				e.Archive.Path, r.cfg.Command("load"))
		} else {
			r.removeArchive(ctx, e.Archive.Path)
		}
	}
}

func (r archiveCarrier) load(ctx context.Context, c Cluster) (Loaded, error) {
	log := r.logger("load")
	e := c.Pruned.Exported
	if l := e.Built.Held.Loaded; e.OnNodes && l != nil && l.Cluster == c.Name {
		log("up to date: every node of %s holds every image", c.Name)
		return Loaded{Cluster: c.Cluster, Images: e.Images}, nil
	}
	if e.Archive.Path == "" {
		return Loaded{}, fmt.Errorf("no archive to load into %s: the images were loaded elsewhere and the archive removed; run \"%s\" and start the suite again", c.Name, r.cfg.Command("down"))
	}
	ns, err := cluster.Nodes(ctx, c.Name, c.Provider)
	if err != nil {
		return Loaded{}, err
	}
	want := loadImages(e.Images)
	opts, err := r.loadOptions(ctx, e.Archive, len(ns))
	if err != nil {
		return Loaded{}, err
	}
	before := containerdBytes(ctx, ns)
	res, err := load.ArchiveWith(ctx, ns, e.Archive.Path, want, opts)
	if err != nil {
		return Loaded{}, err
	}
	if !opts.Progressive {
		r.learnAfterPhase("load", func(cp disk.Checkpoint) { r.learnLoad(cp, uint64(e.Archive.Size), len(ns)) })
	}
	after := containerdBytes(ctx, ns)
	for name, n := range after {
		if b, ok := before[name]; ok {
			log("node %s: containerd's storage grew by %s for an archive of %s", name, disk.HumanSize(n-b), disk.HumanSize(e.Archive.Size))
		}
	}
	// On a cluster that outlives a run, earlier builds of the suite would pile up on the nodes.
	removed, err := load.RemoveStale(ctx, ns, want, r.staleRef, log)
	if err != nil {
		log("could not remove earlier builds from the nodes: %v", err)
	}
	if len(removed) > 0 {
		log("removed %d earlier builds of suite %s from the nodes", len(removed), r.cfg.Suite.Name)
	}
	var names []string
	for _, n := range res.Nodes {
		names = append(names, n.Name)
	}
	return Loaded{Cluster: c.Cluster, Images: e.Images}, r.record(func(st *state.Suite) {
		st.Loaded = &state.Loaded{Cluster: c.Name, Nodes: names, Images: e.Images, At: time.Now().UTC()}
	})
}

// removeArchive deletes the archive once its images are on every node, checked.
func (r *Run) removeArchive(ctx context.Context, path string) {
	log := r.logger("load")
	if r.cfg.KeepArchives {
		log("keeping %s (E2E_KEEP_ARCHIVES=true)", path)
		return
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		log("could not remove %s: %v", path, err)
		return
	}
	log("removed %s: its images are on the nodes", path)
	err := r.record(func(st *state.Suite) {
		if st.Loaded != nil {
			st.Loaded.ArchiveRemoved = true
		}
		st.Archive = nil
	})
	if err != nil {
		log("%v", err)
	}
	if _, err := r.disk.Checkpoint(ctx, "AFTER_CLEANUP"); err != nil {
		log("disk checkpoint AFTER_CLEANUP failed: %v", err)
	}
}

// containerdBytes measures what containerd holds in each node, to compare the loaded images'
// footprint on the node with the archive's size. Nodes that cannot be measured are left out.
func containerdBytes(ctx context.Context, ns []nodes.Node) map[string]int64 {
	out := map[string]int64{}
	for _, n := range ns {
		if b, err := cluster.NodeImageBytes(ctx, n); err == nil {
			out[n.String()] = b
		}
	}
	return out
}

// staleRef reports whether ref names a build of one of the suite's services (any input hash).
func (r *Run) staleRef(ref string) bool {
	return build.IsBuildOf(ref, r.cfg.Suite.Name, r.cfg.Suite.ServiceNames())
}

// loadOptions imports the whole archive at once (the fastest) when that fits the disk budget, and
// image by image when only that fits.
func (r *Run) loadOptions(ctx context.Context, a state.Archive, nodes int) (load.Options, error) {
	opts := load.Options{Log: r.logger("load")}
	f := r.facts()
	f.ArchiveBytes, f.Nodes = uint64(a.Size), nodes
	whole, note := budget.Predict("load", f, r.budgetPlaces())
	err := r.fitsNeeds(ctx, "load", whole, note)
	if err == nil {
		return opts, nil
	}
	parts, serr := archive.Split(a.Path)
	if serr != nil || len(parts) < 2 {
		return opts, err
	}
	var largest uint64
	for _, p := range parts {
		largest = max(largest, uint64(max(p.Size, 0)))
	}
	if perr := r.fitsNeeds(ctx, "load", budget.ProgressiveLoad(f, largest, r.budgetPlaces()), ""); perr != nil {
		return opts, err
	}
	r.logf("load", "importing image by image: the whole archive at once would not fit the disk budget (%v)", oneLine(err))
	opts.Progressive = true
	return opts, nil
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }
