package disk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Part is a directory whose own bytes a report names, inside a place: the containerd store's
// content (compressed blobs) and snapshots (unpacked layers), a Kind node's /var.
type Part struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

// PartUsage is a part's bytes as `du -sx` counts them: allocated blocks, each hard-linked file
// once, not crossing into other filesystems (container rootfs mounts inside a graph root).
type PartUsage struct {
	Part
	Bytes int64 `json:"bytes"`
	// Missing is set when the directory does not exist (a node not created yet).
	Missing bool `json:"missing,omitempty"`
}

// Usage measures each part. A part that does not exist is reported Missing with 0 bytes; files
// that vanish while walking (garbage collection) are skipped, as du does.
func Usage(ctx context.Context, parts []Part) ([]PartUsage, error) {
	out := make([]PartUsage, 0, len(parts))
	var errs []error
	for _, p := range parts {
		n, err := dirBytes(ctx, p.Path)
		u := PartUsage{Part: p, Bytes: n}
		switch {
		case errors.Is(err, fs.ErrNotExist):
			u.Missing = true
		case err != nil:
			errs = append(errs, fmt.Errorf("measure %s (%s): %w", p.Name, p.Path, err))
			continue
		}
		out = append(out, u)
	}
	return out, errors.Join(errs...)
}

// dirBytes is du -sx by hand: continuity's fs.DiskUsage would cross into the overlay mounts of
// running containers that podman keeps inside its graph root, counting their layers twice.
func dirBytes(ctx context.Context, root string) (int64, error) {
	fi, err := os.Lstat(root)
	if err != nil {
		return 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("%s: no stat information on this platform", root)
	}
	dev := st.Dev
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	var total int64
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path != root {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		s := info.Sys().(*syscall.Stat_t)
		if s.Dev != dev {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if s.Nlink > 1 && !d.IsDir() {
			k := inode{uint64(s.Dev), s.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		total += s.Blocks * 512
		return nil
	})
	return total, err
}
