package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	units "github.com/docker/go-units"
	digest "github.com/opencontainers/go-digest"
	"sigs.k8s.io/kind/pkg/cluster/nodes"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
)

// Layout imports a layout's images into every node, image by image: for each, the nodes that
// lack it import it at once in parts (archive.Parts: at most the layout's PartBytes of layer blobs
// each, leaving out the layers an earlier image unpacked), each reading the blobs, checked against
// their digests as they go, and collecting the discarded blobs after each part; then each node is
// checked to list the image, its partial images are removed, and done runs with the image before
// the next begins — the caller records it and releases the blobs no image still to load needs.
// So a node holds one part's blobs at a time, and the host only what is still to load. A failed
// or interrupted load returns before done, and the image's blobs stay.
func Layout(ctx context.Context, ns []nodes.Node, l archive.Layout, o Options, done func(archive.LayoutImage) error) (Result, error) {
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if len(ns) == 0 {
		return Result{}, fmt.Errorf("load %s: no nodes given", l.Dir)
	}
	snapshotters := make([]string, len(ns))
	errs := make([]error, len(ns))
	var wg sync.WaitGroup
	for i, n := range ns {
		wg.Go(func() { snapshotters[i], errs[i] = detectSnapshotter(ctx, n) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Result{}, err
	}
	// What each node lists before the load: it loses no image during it.
	had := make([][]nodeImage, len(ns))
	for i, n := range ns {
		wg.Go(func() { had[i], errs[i] = listImages(ctx, n) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Result{}, err
	}
	results := make([]NodeResult, len(ns))
	for i, n := range ns {
		results[i].Name = n.String()
	}
	var all []Image
	start := time.Now()
	unpacked := map[digest.Digest]bool{} // on every node: the chains of the images before
	most := l.PartBytes()
	for k, img := range l.Images {
		var want []Image
		for _, ref := range img.Refs {
			want = append(want, Image{Ref: ref, ID: img.ID})
		}
		if err := validate(want); err != nil {
			return Result{Nodes: results}, fmt.Errorf("load %s: %w", l.Dir, err)
		}
		all = append(all, want...)
		parts := archive.Parts(img, unpacked, most)
		for i, n := range ns {
			wg.Go(func() {
				if len(missing(had[i], want)) == 0 {
					logf("node %s: image %d/%d %v already present", n, k+1, len(l.Images), img.Refs)
					errs[i] = nil
					return
				}
				imported, err := layoutImage(ctx, n, l, parts, want, snapshotters[i], !o.KindStyle, fmt.Sprintf("%d/%d", k+1, len(l.Images)), logf)
				results[i].Imported = results[i].Imported || imported
				results[i].Duration = time.Since(start)
				errs[i] = err
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return Result{Nodes: results}, err
		}
		for _, c := range img.Chains() {
			unpacked[c] = true
		}
		if done != nil {
			if err := done(img); err != nil {
				return Result{Nodes: results}, err
			}
		}
	}
	return Result{Nodes: results, Images: all}, nil
}

// layoutImage imports an image's parts into n, each part's discarded blobs collected before the
// next comes, checks n lists the image after, and removes its partial images.
func layoutImage(ctx context.Context, n nodes.Node, l archive.Layout, parts []archive.Part, want []Image, snapshotter string, discard bool, which string, logf func(string, ...any)) (bool, error) {
	img := parts[len(parts)-1].Image
	var partials []string
	for i, p := range parts {
		what := fmt.Sprintf("image %s %v", which, img.Refs)
		if len(parts) > 1 {
			what += fmt.Sprintf(" part %d/%d", i+1, len(parts))
		}
		logf("node %s: importing %s (%s of layers)", n, what, units.BytesSize(float64(p.Bytes())))
		write := func(w io.Writer) error { return l.WritePart(w, p) }
		discarded, err := importStream(ctx, n, piped(write), p.Bytes(), fmt.Sprintf("node %s: %s streamed", n, what), importArgs(snapshotter, discard, p.Whole()), logf)
		if err != nil {
			return true, fmt.Errorf("import %s from %s: %w", what, l.Dir, err)
		}
		if !p.Whole() {
			partials = append(partials, p.Refs()...)
		}
		if p.Whole() && len(partials) > 0 { // the image's snapshots keep the layers its partial images brought
			if _, err := nodeRun(ctx, n, nil, append([]string{"ctr", "--namespace=k8s.io", "images", "rm"}, partials...)...); err != nil {
				logf("node %s: could not remove the partial images %v: %v", n, partials, err)
			}
		}
		if discarded {
			collectGarbage(ctx, n, logf)
		}
	}
	if err := verify(ctx, n, want); err != nil {
		return true, fmt.Errorf("after importing %v: %w", img.Refs, err)
	}
	return true, nil
}
