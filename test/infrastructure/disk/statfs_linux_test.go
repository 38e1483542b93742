package disk

import (
	"context"
	"syscall"
	"testing"
)

func statfs(t *testing.T, path string) (total, used uint64, st syscall.Statfs_t) {
	t.Helper()
	if err := syscall.Statfs(path, &st); err != nil {
		t.Fatalf("statfs %s: %v", path, err)
	}
	bs := uint64(st.Bsize)
	return st.Blocks * bs, (st.Blocks - st.Bfree) * bs, st
}

func within(got, lo, hi uint64) bool {
	tol := hi / 100
	return got+tol >= lo && got <= hi+tol
}

// Against the real machine: the filesystem Measure names for a temp dir is the one statfs sees.
func TestMeasureAgreesWithStatfs(t *testing.T) {
	dir := t.TempDir()
	total0, used0, st := statfs(t, dir)
	snap, err := Measure(context.Background(), []Place{{"temp dir", dir}})
	total1, used1, _ := statfs(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Filesystems) != 1 {
		t.Fatalf("want one filesystem, got %+v", snap.Filesystems)
	}
	f := snap.Filesystems[0]
	t.Logf("%s on %s (%s): total %s used %s", dir, f.Mountpoint, f.Device, HumanBytes(f.Total), HumanBytes(f.Used))
	// Others may write between the calls: used must lie within 1% of the range seen around Measure.
	if !within(f.Used, min(used0, used1), max(used0, used1)) {
		t.Errorf("used %d, statfs says %d..%d (more than 1%% apart)", f.Used, used0, used1)
	}
	if !within(f.Total, min(total0, total1), max(total0, total1)) {
		t.Errorf("total %d, statfs says %d", f.Total, total0)
	}
	// The named mount point must be that filesystem, not merely a path prefix.
	mtotal, _, mst := statfs(t, f.Mountpoint)
	if mst.Type != st.Type || mtotal != total0 {
		t.Errorf("mount point %s is another filesystem (type %#x, %d bytes) than %s (type %#x, %d bytes)",
			f.Mountpoint, mst.Type, mtotal, dir, st.Type, total0)
	}
	if f.Device == "" || f.Fstype == "" {
		t.Errorf("device or fstype missing: %+v", f)
	}
}
