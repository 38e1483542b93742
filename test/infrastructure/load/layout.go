package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	units "github.com/docker/go-units"
	"sigs.k8s.io/kind/pkg/cluster/nodes"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
)

// Layout imports a layout's images into every node, image by image: for each, the nodes that
// lack it import it at once (each reading the blobs, checked against their digests as they go),
// collect the discarded blobs, and are checked to list it; then done runs with the image before
// the next begins — the caller records it and releases the blobs no image still to load needs.
// So a node holds one image's blobs at a time, and the host only what is still to load. A failed
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
	results := make([]NodeResult, len(ns))
	for i, n := range ns {
		results[i].Name = n.String()
	}
	var all []Image
	start := time.Now()
	for k, img := range l.Images {
		var want []Image
		for _, ref := range img.Refs {
			want = append(want, Image{Ref: ref, ID: img.ID})
		}
		if err := validate(want); err != nil {
			return Result{Nodes: results}, fmt.Errorf("load %s: %w", l.Dir, err)
		}
		all = append(all, want...)
		for i, n := range ns {
			wg.Go(func() {
				imported, err := layoutImage(ctx, n, l, img, want, snapshotters[i], !o.KindStyle, fmt.Sprintf("%d/%d", k+1, len(l.Images)), logf)
				results[i].Imported = results[i].Imported || imported
				results[i].Duration = time.Since(start)
				errs[i] = err
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return Result{Nodes: results}, err
		}
		if done != nil {
			if err := done(img); err != nil {
				return Result{Nodes: results}, err
			}
		}
	}
	return Result{Nodes: results, Images: all}, nil
}

// layoutImage imports img into n unless n lists it already, and checks n lists it after.
func layoutImage(ctx context.Context, n nodes.Node, l archive.Layout, img archive.LayoutImage, want []Image, snapshotter string, discard bool, which string, logf func(string, ...any)) (bool, error) {
	if miss, err := Missing(ctx, n, want); err != nil {
		return false, err
	} else if len(miss) == 0 {
		logf("node %s: image %s %v already present", n, which, img.Refs)
		return false, nil
	}
	logf("node %s: importing image %s %v (%s)", n, which, img.Refs, units.BytesSize(float64(img.Size())))
	write := func(w io.Writer) error { return l.WriteImage(w, img) }
	label := fmt.Sprintf("node %s: image %s streamed", n, which)
	if err := importStream(ctx, n, piped(write), img.Size(), label, snapshotter, discard, logf); err != nil {
		return true, fmt.Errorf("import %v from %s: %w", img.Refs, l.Dir, err)
	}
	if err := verify(ctx, n, want); err != nil {
		return true, fmt.Errorf("after importing %v: %w", img.Refs, err)
	}
	return true, nil
}
