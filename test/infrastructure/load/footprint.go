package load

import (
	"context"
	"fmt"
	"strings"

	units "github.com/docker/go-units"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	"sigs.k8s.io/kind/pkg/cluster/nodes"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
)

// Footprint is what a node's containerd keeps of some images.
type Footprint struct {
	Content   int64 // layer blobs and configs in the content store
	Snapshots int64 // their unpacked layers
}

// ImagesFootprint measures what node n keeps of images, and nothing else: the content blobs it
// holds of them (configs and layers, by digest: ctr content ls) and the committed snapshots of
// their layers (by chain ID: ctr snapshots usage). Layers the images share count once.
func ImagesFootprint(ctx context.Context, n nodes.Node, snapshotter string, images []archive.Image) (Footprint, error) {
	blobs := map[string]bool{}
	chains := map[string]bool{}
	for _, img := range images {
		blobs[img.ID] = true
		var diffIDs []digest.Digest
		for _, l := range img.Layers {
			blobs[l.Digest] = true
			diffIDs = append(diffIDs, digest.Digest(l.DiffID))
		}
		for _, c := range identity.ChainIDs(diffIDs) {
			chains[c.String()] = true
		}
	}
	var f Footprint
	out, err := nodeRun(ctx, n, nil, "ctr", "--namespace=k8s.io", "content", "ls")
	if err != nil {
		return f, err
	}
	if f.Content, err = sumSizes(string(out), blobs, units.FromHumanSize); err != nil {
		return f, fmt.Errorf("node %s: ctr content ls: %w", n, err)
	}
	out, err = nodeRun(ctx, n, nil, "ctr", "--namespace=k8s.io", "snapshots", "--snapshotter", snapshotter, "usage")
	if err != nil {
		return f, err
	}
	if f.Snapshots, err = sumSizes(string(out), chains, units.RAMInBytes); err != nil {
		return f, fmt.Errorf("node %s: ctr snapshots usage: %w", n, err)
	}
	return f, nil
}

// sumSizes adds the sizes of the rows whose first column is one of keys. The size is the
// second column, or the second and third when the unit stands apart ("92.0 KiB").
func sumSizes(out string, keys map[string]bool, parse func(string) (int64, error)) (int64, error) {
	var total int64
	for _, line := range strings.Split(out, "\n")[1:] {
		fields := strings.Fields(line)
		if len(fields) < 2 || !keys[fields[0]] {
			continue
		}
		size := fields[1]
		if len(fields) > 2 && sizeUnits[fields[2]] {
			size += fields[2]
		}
		n, err := parse(size)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

var sizeUnits = map[string]bool{"B": true, "KiB": true, "MiB": true, "GiB": true, "TiB": true, "kB": true, "MB": true, "GB": true, "TB": true}

// Snapshotter is the CRI snapshotter of node n (from its containerd config).
func Snapshotter(ctx context.Context, n nodes.Node) (string, error) { return detectSnapshotter(ctx, n) }
