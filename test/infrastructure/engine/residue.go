package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	units "github.com/docker/go-units"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// StoreObjects are what images hold in the containerd store: the blobs of their index,
// manifests, configs and layers that are present (digest → size), and the snapshots of their
// unpacked layers (chain IDs). Empty for other stores.
type StoreObjects struct {
	Blobs     map[string]int64 `json:"blobs,omitempty"`
	Snapshots []string         `json:"snapshots,omitempty"`
}

// Residue is what a delete left behind in the containerd store: blobs and snapshots of deleted
// images that no remaining image uses (the leak class of moby#52539 and containerd#10548), with
// the commands that remove exactly those.
type Residue struct {
	Blobs     map[string]int64 `json:"blobs,omitempty"`
	Snapshots map[string]int64 `json:"snapshots,omitempty"`
	Reclaim   [][]string       `json:"reclaim,omitempty"` // argv of each command
}

// Bytes is the residue's size.
func (r Residue) Bytes() int64 {
	var n int64
	for _, b := range r.Blobs {
		n += b
	}
	for _, b := range r.Snapshots {
		n += b
	}
	return n
}

// Empty reports whether nothing was left behind.
func (r Residue) Empty() bool { return len(r.Blobs) == 0 && len(r.Snapshots) == 0 }

// ctr runs ctr against the containerd of the containerd store, in Docker's namespace.
func (e *cli) ctr(ctx context.Context, info Info, args ...string) ([]byte, error) {
	var out strings.Builder
	argv := append([]string{"--address", info.Containerd, "--namespace", "moby"}, args...)
	if err := e.runner.Run(ctx, Cmd{Name: "ctr", Args: argv, Stdout: &out, Stderr: NewTailBuffer(4 << 10)}); err != nil {
		return nil, fmt.Errorf("ctr %s: %w", strings.Join(args, " "), err)
	}
	return []byte(out.String()), nil
}

func (e *cli) containerdInfo(ctx context.Context) (Info, bool, error) {
	info, err := e.cachedInfo(ctx)
	if err != nil {
		return Info{}, false, err
	}
	return info, info.IDsAreManifests() && info.Containerd != "", nil
}

// StoreObjects lists what the images with these IDs hold in the containerd store.
func (e *cli) StoreObjects(ctx context.Context, ids []string) (StoreObjects, error) {
	info, ok, err := e.containerdInfo(ctx)
	if err != nil || !ok {
		return StoreObjects{}, err
	}
	present, err := e.presentBlobs(ctx, info)
	if err != nil {
		return StoreObjects{}, err
	}
	objs := StoreObjects{Blobs: map[string]int64{}}
	for _, id := range ids {
		if err := e.walkImage(ctx, info, id, present, &objs); err != nil {
			return StoreObjects{}, err
		}
	}
	return objs, nil
}

func (e *cli) presentBlobs(ctx context.Context, info Info) (map[string]bool, error) {
	out, err := e.ctr(ctx, info, "content", "ls", "--quiet")
	if err != nil {
		return nil, err
	}
	present := map[string]bool{}
	for _, d := range strings.Fields(string(out)) {
		present[d] = true
	}
	return present, nil
}

// walkImage follows an image's index or manifest down to its layers. Blobs that are absent (the
// other platforms of a pulled multi-platform image) are skipped.
func (e *cli) walkImage(ctx context.Context, info Info, id string, present map[string]bool, objs *StoreObjects) error {
	d := id
	if !strings.HasPrefix(d, "sha256:") {
		d = "sha256:" + d
	}
	return e.walkBlob(ctx, info, ocispec.Descriptor{Digest: digest.Digest(d)}, present, objs)
}

func (e *cli) walkBlob(ctx context.Context, info Info, desc ocispec.Descriptor, present map[string]bool, objs *StoreObjects) error {
	d := desc.Digest.String()
	if !present[d] {
		return nil
	}
	raw, err := e.ctr(ctx, info, "content", "get", d)
	if err != nil {
		return err
	}
	objs.Blobs[d] = int64(len(raw))
	var doc struct {
		Manifests []ocispec.Descriptor `json:"manifests"`
		Config    *ocispec.Descriptor  `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("blob %s is not an index or manifest: %w", d, err)
	}
	for _, m := range doc.Manifests {
		if err := e.walkBlob(ctx, info, m, present, objs); err != nil {
			return err
		}
	}
	if doc.Config == nil {
		return nil
	}
	for _, l := range doc.Layers {
		if present[l.Digest.String()] {
			objs.Blobs[l.Digest.String()] = l.Size
		}
	}
	c := doc.Config.Digest.String()
	if !present[c] {
		return nil
	}
	cfg, err := e.ctr(ctx, info, "content", "get", c)
	if err != nil {
		return err
	}
	objs.Blobs[c] = int64(len(cfg))
	var image ocispec.Image
	if err := json.Unmarshal(cfg, &image); err != nil {
		return fmt.Errorf("config %s: %w", c, err)
	}
	for _, chain := range identity.ChainIDs(slices.Clone(image.RootFS.DiffIDs)) {
		if !slices.Contains(objs.Snapshots, chain.String()) {
			objs.Snapshots = append(objs.Snapshots, chain.String())
		}
	}
	return nil
}

// StoreResidue says which of gone's objects are still in the containerd store although no
// remaining image uses them.
func (e *cli) StoreResidue(ctx context.Context, gone StoreObjects) (Residue, error) {
	info, ok, err := e.containerdInfo(ctx)
	if err != nil || !ok || (len(gone.Blobs) == 0 && len(gone.Snapshots) == 0) {
		return Residue{}, err
	}
	idsOut, err := e.output(ctx, "image", "ls", "--all", "--quiet", "--no-trunc")
	if err != nil {
		return Residue{}, err
	}
	kept, err := e.StoreObjects(ctx, strings.Fields(string(idsOut)))
	if err != nil {
		return Residue{}, err
	}
	present, err := e.presentBlobs(ctx, info)
	if err != nil {
		return Residue{}, err
	}
	snapOut, err := e.ctr(ctx, info, "snapshots", "--snapshotter", info.Snapshotter, "usage")
	if err != nil {
		return Residue{}, err
	}
	snapshots := parseSnapshotUsage(string(snapOut))
	res := Residue{Blobs: map[string]int64{}, Snapshots: map[string]int64{}}
	for d, size := range gone.Blobs {
		if _, used := kept.Blobs[d]; present[d] && !used {
			res.Blobs[d] = size
		}
	}
	var leaked []string
	for _, s := range gone.Snapshots {
		if size, ok := snapshots[s]; ok && !slices.Contains(kept.Snapshots, s) {
			res.Snapshots[s] = size
			leaked = append(leaked, s)
		}
	}
	base := []string{"ctr", "--address", info.Containerd, "--namespace", "moby"}
	if len(leaked) > 0 {
		slices.Reverse(leaked) // a snapshot goes before its parent
		res.Reclaim = append(res.Reclaim, append(append(slices.Clone(base), "snapshots", "--snapshotter", info.Snapshotter, "rm"), leaked...))
	}
	if len(res.Blobs) > 0 {
		res.Reclaim = append(res.Reclaim, append(append(slices.Clone(base), "content", "rm"), slices.Sorted(maps.Keys(res.Blobs))...))
	}
	return res, nil
}

// parseSnapshotUsage reads `ctr snapshots usage`: KEY SIZE INODES, sizes as "8.0 KiB".
func parseSnapshotUsage(out string) map[string]int64 {
	sizes := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[0] == "KEY" {
			continue
		}
		n, err := units.RAMInBytes(strings.Join(f[1:len(f)-1], ""))
		if err != nil {
			continue
		}
		sizes[f[0]] = n
	}
	return sizes
}
