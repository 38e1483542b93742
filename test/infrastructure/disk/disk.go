// Package disk measures the filesystems that actually hold kindling's bytes (engine graph roots,
// archive and temp directories, Kind node volumes), reports them as text, JSON or markdown, and
// records checkpoints and peak usage while the flow runs.
package disk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	gpcommon "github.com/shirou/gopsutil/v4/common"
	"github.com/shirou/gopsutil/v4/disk"
)

// Place is a directory whose filesystem matters, e.g. {"podman graph root", "/var/lib/containers/storage"}.
type Place struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

// Filesystem is one filesystem and the places that live on it. Byte counts follow df: Used is
// (blocks-bfree)*bsize, Free is what unprivileged users can still write, UsedPercent is
// Used/(Used+Free).
type Filesystem struct {
	Mountpoint  string   `json:"mountpoint"`
	Device      string   `json:"device"`
	Fstype      string   `json:"fstype"`
	Total       uint64   `json:"total_bytes"`
	Used        uint64   `json:"used_bytes"`
	Free        uint64   `json:"free_bytes"`
	UsedPercent float64  `json:"used_percent"`
	Places      []string `json:"places"`
}

// Snapshot is one measurement of a set of places.
type Snapshot struct {
	Time        time.Time    `json:"time"`
	Filesystems []Filesystem `json:"filesystems"`
}

// InMemory reports whether a filesystem type keeps its files in memory (a runner's /tmp is a
// tmpfs): what is written there takes RAM, up to the mount's own size limit.
func InMemory(fstype string) bool { return fstype == "tmpfs" || fstype == "ramfs" }

// key identifies a filesystem across snapshots. A block device is one filesystem wherever it is
// mounted (bind mounts, btrfs subvolumes); anything else (tmpfs, overlay, nfs) is one per mount.
func (f Filesystem) key() string {
	return fsKey(f.Device, f.Mountpoint)
}

// Key identifies the filesystem across snapshots (see key).
func (f Filesystem) Key() string { return f.key() }

// Label names the filesystem in reports: "/var (/dev/sda1)".
func (f Filesystem) Label() string { return f.Mountpoint + " (" + f.Device + ")" }

func fsKey(device, mountpoint string) string {
	if strings.HasPrefix(device, "/dev/") {
		return "dev\x00" + device
	}
	return "mnt\x00" + mountpoint + "\x00" + device
}

// measurer holds the system lookups so the grouping logic can be tested with fakes.
type measurer struct {
	partitions func(ctx context.Context) ([]disk.PartitionStat, error)
	usage      func(ctx context.Context, path string) (*disk.UsageStat, error)
	now        func() time.Time
}

var host = measurer{partitions: hostPartitions, usage: disk.UsageWithContext, now: time.Now}

// hostPartitions lists every mount (binds included) of this process's mount namespace. gopsutil
// reads /proc/1/mountinfo by default, which is another namespace under podman unshare, systemd
// PrivateTmp and the like; explicit HOST_PROC* settings (env or ctx) are respected.
func hostPartitions(ctx context.Context) ([]disk.PartitionStat, error) {
	if runtime.GOOS == "linux" && ctx.Value(gpcommon.EnvKey) == nil &&
		os.Getenv("HOST_PROC") == "" && os.Getenv("HOST_PROC_MOUNTINFO") == "" {
		ctx = context.WithValue(ctx, gpcommon.EnvKey,
			gpcommon.EnvMap{gpcommon.HostProcMountinfo: "/proc/self/mountinfo"})
	}
	return disk.PartitionsWithContext(ctx, true)
}

// Measure finds the filesystem holding each place and measures it once, however many places share
// it. Symlinks are resolved; a place that does not exist yet (or cannot be searched) is measured at
// its nearest existing ancestor, and its entry in Filesystem.Places says so. On error the snapshot
// still holds every filesystem that could be measured.
func Measure(ctx context.Context, places []Place) (Snapshot, error) {
	return host.measure(ctx, places)
}

type located struct {
	label string // entry for Filesystem.Places
	path  string // existing path to statfs
	part  disk.PartitionStat
}

func (m measurer) measure(ctx context.Context, places []Place) (Snapshot, error) {
	snap := Snapshot{Time: m.now()}
	if err := ctx.Err(); err != nil {
		return snap, err
	}
	if len(places) == 0 {
		return snap, nil
	}
	parts, err := m.partitions(ctx)
	if err != nil {
		return snap, fmt.Errorf("read the mount table (is /proc mounted? HOST_PROC_MOUNTINFO overrides it): %w", err)
	}
	var errs []error
	var order []string
	groups := map[string][]located{}
	for _, p := range places {
		existing, note, err := resolve(p.Path)
		if err != nil {
			errs = append(errs, fmt.Errorf("place %q (%s): %w; fix the path or leave the place out", p.Name, p.Path, err))
			continue
		}
		part, ok := findMount(parts, existing)
		if !ok {
			errs = append(errs, fmt.Errorf("place %q: no mount point holds %s in the mount table", p.Name, existing))
			continue
		}
		k := fsKey(part.Device, part.Mountpoint)
		if _, seen := groups[k]; !seen {
			order = append(order, k)
		}
		groups[k] = append(groups[k], located{label: placeLabel(p, existing, note), path: existing, part: part})
	}
	for _, k := range order {
		g := groups[k]
		u, err := m.usage(ctx, g[0].path)
		if err != nil {
			errs = append(errs, fmt.Errorf("measure %s (mount %s): %w", g[0].path, g[0].part.Mountpoint, err))
			continue
		}
		label := labelMount(parts, g[0].part)
		f := Filesystem{
			Mountpoint:  label.Mountpoint,
			Device:      label.Device,
			Fstype:      label.Fstype,
			Total:       u.Total,
			Used:        u.Used,
			Free:        u.Free,
			UsedPercent: u.UsedPercent,
		}
		if f.Fstype == "" {
			f.Fstype = u.Fstype
		}
		seen := map[string]bool{}
		for _, l := range g {
			s := l.label
			if l.part.Mountpoint != f.Mountpoint {
				s += " [mount " + l.part.Mountpoint + "]"
			}
			if !seen[s] {
				seen[s] = true
				f.Places = append(f.Places, s)
			}
		}
		snap.Filesystems = append(snap.Filesystems, f)
	}
	return snap, errors.Join(errs...)
}

func placeLabel(p Place, existing, note string) string {
	name := p.Name
	if name == "" {
		name = p.Path
	}
	switch {
	case note != "":
		return fmt.Sprintf("%s (%s: %s, measured %s)", name, p.Path, note, existing)
	case filepath.Clean(p.Path) != existing:
		return fmt.Sprintf("%s (%s -> %s)", name, p.Path, existing)
	default:
		return fmt.Sprintf("%s (%s)", name, existing)
	}
}

// resolve returns the path with symlinks resolved, or, when it does not exist or cannot be
// searched, its nearest existing ancestor and a note. Dangling symlinks are followed so a
// not-yet-created target is attributed to the target's filesystem, not the link's.
func resolve(path string) (existing, note string, err error) {
	if path == "" {
		return "", "", errors.New("empty path")
	}
	cur, err := filepath.Abs(path)
	if err != nil {
		return "", "", err
	}
	var missing, denied bool
	for hops := 0; ; {
		r, err := filepath.EvalSymlinks(cur)
		if err == nil {
			switch {
			case denied:
				note = "not accessible (permission denied)"
			case missing:
				note = "not created yet"
			}
			return r, note, nil
		}
		switch {
		case errors.Is(err, fs.ErrNotExist):
			missing = true
		case errors.Is(err, fs.ErrPermission):
			denied = true
		default:
			return "", "", err
		}
		if fi, lerr := os.Lstat(cur); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			if hops++; hops > 40 {
				return "", "", fmt.Errorf("too many symlinks resolving %s", path)
			}
			target, rerr := os.Readlink(cur)
			if rerr != nil {
				return "", "", rerr
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(filepath.Dir(cur), target)
			}
			cur = filepath.Clean(target)
			continue
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return "", "", err
		}
		cur = parent
	}
}

// findMount returns the mount with the longest mount point that is a path prefix of path; on a tie
// the later entry wins, as it is mounted over the earlier one.
func findMount(parts []disk.PartitionStat, path string) (disk.PartitionStat, bool) {
	best, bestLen := -1, -1
	for i, p := range parts {
		if !filepath.IsAbs(p.Mountpoint) {
			continue
		}
		mp := filepath.Clean(p.Mountpoint)
		if mp != "/" && path != mp && !strings.HasPrefix(path, mp+"/") {
			continue
		}
		if len(mp) >= bestLen {
			best, bestLen = i, len(mp)
		}
	}
	if best < 0 {
		return disk.PartitionStat{}, false
	}
	p := parts[best]
	p.Mountpoint = filepath.Clean(p.Mountpoint)
	return p, true
}

// labelMount names a block-device filesystem by its shortest whole-filesystem mount (not a bind
// mount), so the name does not depend on which places were measured; otherwise, or when the
// device is only bind-mounted here (containers), by the mount that holds the place.
func labelMount(parts []disk.PartitionStat, holder disk.PartitionStat) disk.PartitionStat {
	if !strings.HasPrefix(holder.Device, "/dev/") {
		return holder
	}
	best := holder
	found := false
	for _, p := range parts {
		if p.Device != holder.Device || isBind(p) || !filepath.IsAbs(p.Mountpoint) {
			continue
		}
		p.Mountpoint = filepath.Clean(p.Mountpoint)
		if !found || len(p.Mountpoint) < len(best.Mountpoint) {
			best, found = p, true
		}
	}
	return best
}

func isBind(p disk.PartitionStat) bool {
	for _, o := range p.Opts {
		if o == "bind" {
			return true
		}
	}
	return false
}
