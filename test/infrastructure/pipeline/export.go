package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
	"github.com/kindling-dev/kindling/test/infrastructure/budget"
	"github.com/kindling-dev/kindling/test/infrastructure/disk"
	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/imageref"
	"github.com/kindling-dev/kindling/test/infrastructure/progress"
	"github.com/kindling-dev/kindling/test/infrastructure/state"
)

// Export writes every image of the suite into one archive, verifies it and records it. The archive
// becomes the images' only copy once prune has run, so nothing unverified is ever recorded.
func (r *Run) Export(ctx context.Context, b Built) (Exported, error) {
	var e Exported
	err := r.timed(ctx, "export", "EXPORTED", func() (err error) {
		e, err = r.carrier.export(ctx, b)
		return err
	})
	return e, err
}

// archiveCarrier exports a verified archive, which load streams into every node and then removes.
type archiveCarrier struct{ *Run }

func (archiveCarrier) builds() bool                          { return true }
func (archiveCarrier) clusterPatches() []string              { return nil }
func (archiveCarrier) attach(context.Context, Cluster) error { return nil }

// observe holds the recorded archive when every blob of the images it still holds rehashes as
// exported, and the images a load released from it are still on every node of the cluster.
func (r archiveCarrier) observe(ctx context.Context, st state.Suite, o *Observed) {
	a := st.Archive
	if a == nil {
		return
	}
	if _, err := os.Stat(a.Path); err != nil {
		return
	}
	if !archive.IsLayout(a.Path) {
		r.logf("observe", "recorded archive %s is one tar, written by an earlier kindling: not using it (the images are built and exported again)", a.Path)
		return
	}
	l, err := archive.OpenLayout(a.Path, a.SHA256)
	if err == nil {
		err = l.Check(unreleased(l, a.Released))
	}
	if err != nil {
		r.logf("observe", "recorded archive %s does not hold what was verified: not using it: %v", a.Path, err)
		return
	}
	if len(a.Released) > 0 {
		released := releasedImages(st.Images, a.Released)
		if o.Cluster == nil || !onEveryNode(ctx, *o.Cluster, released) {
			r.logf("observe", "recorded archive %s no longer holds %d image(s) a load put on the nodes, and the nodes no longer hold them: not using it", a.Path, len(released))
			return
		}
	}
	o.Held.Archive = a
}

// unreleased are the layout's images a load has not released.
func unreleased(l archive.Layout, released []string) []archive.LayoutImage {
	return slices.DeleteFunc(slices.Clone(l.Images), func(img archive.LayoutImage) bool { return slices.Contains(released, img.ID) })
}

// releasedImages are the images whose IDs are in released.
func releasedImages(images []state.Image, released []string) []state.Image {
	return slices.DeleteFunc(slices.Clone(images), func(img state.Image) bool { return !slices.Contains(released, img.ID) })
}

func (r archiveCarrier) prune(ctx context.Context, e Exported) error { return r.pruneImages(ctx, e) }

func (r archiveCarrier) export(ctx context.Context, b Built) (Exported, error) {
	log := r.logger("export")
	if l := b.Held.Loaded; l != nil {
		log("skipped: the images are already on every node of cluster %s", l.Cluster)
		return Exported{Built: b, Images: b.Images, OnNodes: true}, nil
	}
	if a := b.Held.Archive; a != nil {
		log("up to date: %s (%s, sha256 %.12s)", a.Path, disk.HumanSize(a.Size), a.SHA256)
		return Exported{Built: b, Images: b.Images, Archive: *a}, nil
	}
	eng, err := r.engine(ctx)
	if err != nil {
		return Exported{}, err
	}
	refs := make([]string, len(b.Images))
	for i, img := range b.Images {
		refs[i] = img.Ref
	}
	facts := r.facts()
	facts.ArchiveBytes = 0 // this run's images, not an earlier archive
	facts.ImageBytes = b.ImageBytes
	if facts.ImageBytes == 0 { // shared layers are counted per image: more than the archive
		if inspected, err := eng.Inspect(ctx, refs); err == nil {
			for _, img := range inspected {
				facts.ImageBytes += uint64(max(img.Size, 0))
			}
		}
	}
	if err := r.fits(ctx, "export", facts); err != nil {
		return Exported{}, err
	}
	v, err := archive.WriteLayout(ctx, r.cfg.ArchiveDir, r.cfg.Suite.Name, b.RunID, refs,
		func(ctx context.Context, w io.Writer) error {
			pw := progress.NewWriter(w, "saved", int64(facts.ImageBytes), progress.Interval, log)
			defer pw.Stop()
			return eng.SaveImage(ctx, pw, refs...)
		})
	for _, f := range v.Removed {
		log("removed stale archive %s (%s)", f.Path, disk.HumanSize(f.Size))
	}
	if err != nil {
		return Exported{}, err
	}
	images, err := withArchiveIDs(b.Images, v.Images, r.engineInfo().IDsAreManifests())
	if err != nil {
		os.RemoveAll(v.Path)
		return Exported{}, fmt.Errorf("archive %s does not hold the built images: %w (deleted it; run the build again)", v.Path, err)
	}
	a := state.Archive{Path: v.Path, Size: v.Size, SHA256: v.SHA256, Verified: time.Now().UTC()}
	log("wrote and verified %s: %d images, %s, sha256 %.12s", a.Path, len(v.Images), disk.HumanSize(a.Size), a.SHA256)
	r.learn(func(f *budget.Facts) { f.ArchiveBytes, f.ImageBytes = uint64(a.Size), facts.ImageBytes })
	r.learnAfterPhase("export", func(cp disk.Checkpoint) { r.learnExport(cp, uint64(a.Size)) })
	if err := r.record(func(st *state.Suite) { st.Archive, st.Images = &a, images }); err != nil {
		return Exported{}, err
	}
	return Exported{Built: b, Images: images, Archive: a}, nil
}

// withArchiveIDs checks that the archive holds every built image under its ref, comparing like
// with like: the engine's ID with the archive's config digest, or, when the engine's IDs are
// manifest or index digests (Docker's containerd store), the host platform's manifest digest
// that the build recorded from the engine's index with the archive's manifest digest. It
// returns the images with their config digests, the IDs the nodes will list.
func withArchiveIDs(built []state.Image, inArchive []archive.Image, manifestIDs bool) ([]state.Image, error) {
	out := make([]state.Image, len(built))
	for i, img := range built {
		var found *archive.Image
		for j := range inArchive {
			if imageref.Same(inArchive[j].Ref, img.Ref) {
				found = &inArchive[j]
			}
		}
		if found == nil {
			return nil, fmt.Errorf("%s is missing", img.Ref)
		}
		got, want, kind := found.ID, img.EngineID, "config digest"
		if manifestIDs {
			got, want, kind = found.Manifest, img.Manifest, fmt.Sprintf("%s manifest digest", engine.HostPlatform)
		}
		if want != "" && got != want {
			return nil, fmt.Errorf("%s has %s %q in the archive but %s in the engine (image ID %s)", img.Ref, kind, got, want, img.EngineID)
		}
		out[i] = img
		out[i].ID = found.ID
	}
	return out, nil
}
