package pipeline

import (
	"context"
	"fmt"
	"os"
	"slices"
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

// Load streams the verified archive into every node's containerd image by image; once every node
// holds an image, checked, it records that and deletes the blobs no image still to load needs
// (unless E2E_KEEP_ARCHIVES=true), so the archive shrinks as the nodes take it. A load that fails
// or is interrupted keeps what the archive still holds: after prune it is those images' only
// copy, and the next load imports only them.
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
			r.logf("load", "kept %s: the load did not finish on every node, and the archive holds the only copy of the images not yet on every node; %q loads them",
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
	if _, err := os.Stat(e.Archive.Path); err != nil {
		return Loaded{}, fmt.Errorf("the archive is gone (%w): it held the only copy of the images not on every node yet; run \"%s\" and start the suite again", err, r.cfg.Command("down"))
	}
	if !archive.IsLayout(e.Archive.Path) {
		return Loaded{}, fmt.Errorf("archive %s is one tar, written by an earlier kindling, which this one does not load; load it with that version, or run \"%s\" and start the suite again", e.Archive.Path, r.cfg.Command("down"))
	}
	l, err := archive.OpenLayout(e.Archive.Path, e.Archive.SHA256)
	if err != nil {
		return Loaded{}, fmt.Errorf("%w; run \"%s\" and start the suite again", err, r.cfg.Command("down"))
	}
	if err := r.loadFits(ctx, e.Archive, l, len(ns)); err != nil {
		return Loaded{}, err
	}
	before := containerdBytes(ctx, ns)
	res, err := load.Layout(ctx, ns, l, load.Options{Log: log}, r.release(l, e.Archive.Released))
	if err != nil {
		return Loaded{}, err
	}
	r.learnAfterPhase("load", func(cp disk.Checkpoint) { r.learnLoad(cp, uint64(e.Archive.Size), len(ns)) })
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
	if err := os.RemoveAll(path); err != nil {
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

// release is what the load does once every node holds an image: it records the image as
// released from the archive, then deletes the blobs that no image still to load needs. Recorded
// first, so an archive is never missing a blob its record says it holds.
func (r archiveCarrier) release(l archive.Layout, released []string) func(archive.LayoutImage) error {
	released = slices.Clone(released)
	return func(img archive.LayoutImage) error {
		if r.cfg.KeepArchives {
			return nil
		}
		if !slices.Contains(released, img.ID) {
			released = append(released, img.ID)
			if err := r.record(func(st *state.Suite) {
				if st.Archive != nil && st.Archive.Path == l.Dir {
					st.Archive.Released = slices.Clone(released)
				}
			}); err != nil {
				return err
			}
		}
		rest := unreleased(l, released)
		freed, err := l.Release(rest)
		if err != nil {
			return err
		}
		if freed > 0 {
			r.logf("load", "every node holds %s: deleted %s of the archive that no image still to load needs (%d to go)", strings.Join(img.Refs, ", "), disk.HumanSize(freed), len(rest))
		}
		return nil
	}
}

// loadFits checks the disk budget for the load: the learned (or default) factor of the archive
// on every node, or else what image by image needs at most: the archive unpacked and the largest
// part's blobs beside it.
func (r *Run) loadFits(ctx context.Context, a state.Archive, l archive.Layout, nodes int) error {
	f := r.facts()
	f.ArchiveBytes, f.Nodes = uint64(a.Size), nodes
	whole, note := budget.Predict("load", f, r.budgetPlaces())
	err := r.fitsNeeds(ctx, "load", whole, note)
	if err == nil {
		return nil
	}
	if perr := r.fitsNeeds(ctx, "load", budget.ProgressiveLoad(f, uint64(l.PartBytes()), r.budgetPlaces()), ""); perr != nil {
		return err
	}
	return nil
}
