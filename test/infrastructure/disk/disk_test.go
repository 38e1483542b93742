package disk

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v4/disk"
)

var fixedTime = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// fakeFS answers partition and usage lookups from tables; usage is keyed by mount point.
type fakeFS struct {
	parts      []disk.PartitionStat
	usage      map[string]disk.UsageStat
	usageErr   map[string]error
	partsErr   error
	usageCalls []string
}

func (f *fakeFS) measurer() measurer {
	return measurer{
		partitions: func(context.Context) ([]disk.PartitionStat, error) { return f.parts, f.partsErr },
		usage: func(_ context.Context, path string) (*disk.UsageStat, error) {
			f.usageCalls = append(f.usageCalls, path)
			p, ok := findMount(f.parts, path)
			if !ok {
				return nil, errors.New("fake: no mount")
			}
			if err := f.usageErr[p.Mountpoint]; err != nil {
				return nil, err
			}
			u := f.usage[p.Mountpoint]
			return &u, nil
		},
		now: func() time.Time { return fixedTime },
	}
}

func tempRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func mkdirs(t testing.TB, root string, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func usage(total, used, free uint64) disk.UsageStat {
	return disk.UsageStat{Total: total, Used: used, Free: free, UsedPercent: float64(used) / float64(used+free) * 100}
}

func TestMeasureGroupsPlacesOnOneFilesystem(t *testing.T) {
	root := tempRoot(t)
	mkdirs(t, root, "graph", "archives", "other")
	ffs := &fakeFS{
		parts: []disk.PartitionStat{
			{Device: "/dev/sda1", Mountpoint: "/", Fstype: "ext4"},
			{Device: "/dev/sdb1", Mountpoint: root + "/other", Fstype: "xfs"},
		},
		usage: map[string]disk.UsageStat{"/": usage(1000, 600, 300), root + "/other": usage(50, 10, 40)},
	}
	snap, err := ffs.measurer().measure(context.Background(), []Place{
		{"podman graph root", root + "/graph"},
		{"archive dir", root + "/archives"},
		{"other", root + "/other"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !snap.Time.Equal(fixedTime) {
		t.Errorf("time = %v", snap.Time)
	}
	if len(snap.Filesystems) != 2 {
		t.Fatalf("want 2 filesystems, got %+v", snap.Filesystems)
	}
	if len(ffs.usageCalls) != 2 {
		t.Errorf("usage measured %d times, want once per filesystem: %v", len(ffs.usageCalls), ffs.usageCalls)
	}
	f := snap.Filesystems[0]
	if f.Mountpoint != "/" || f.Device != "/dev/sda1" || f.Fstype != "ext4" || f.Total != 1000 || f.Used != 600 || f.Free != 300 {
		t.Errorf("first filesystem = %+v", f)
	}
	want := []string{"podman graph root (" + root + "/graph)", "archive dir (" + root + "/archives)"}
	if strings.Join(f.Places, "|") != strings.Join(want, "|") {
		t.Errorf("places = %q, want %q", f.Places, want)
	}
	if g := snap.Filesystems[1]; g.Device != "/dev/sdb1" || len(g.Places) != 1 {
		t.Errorf("second filesystem = %+v", g)
	}
}

func TestMeasureNestedMountsUseLongestPrefix(t *testing.T) {
	root := tempRoot(t)
	mkdirs(t, root, "var/lib/containers/storage/volumes/node/_data", "var/lib/kindling", "var/li")
	ffs := &fakeFS{
		parts: []disk.PartitionStat{
			{Device: "/dev/sda1", Mountpoint: "/", Fstype: "ext4"},
			{Device: "/dev/sdb1", Mountpoint: root + "/var/lib/containers", Fstype: "xfs"},
			{Device: "/dev/sdc1", Mountpoint: root + "/var/lib/containers/storage/volumes", Fstype: "btrfs"},
			{Device: "/dev/sdd1", Mountpoint: root + "/var/li", Fstype: "ext4"},
		},
		usage: map[string]disk.UsageStat{},
	}
	snap, err := ffs.measurer().measure(context.Background(), []Place{
		{"node", root + "/var/lib/containers/storage/volumes/node/_data"},
		{"graph root", root + "/var/lib/containers/storage"},
		{"kindling", root + "/var/lib/kindling"},
		{"containers itself", root + "/var/lib/containers"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range snap.Filesystems {
		for _, p := range f.Places {
			got[strings.SplitN(p, " (", 2)[0]] = f.Device
		}
	}
	want := map[string]string{
		"node": "/dev/sdc1", "graph root": "/dev/sdb1", "kindling": "/dev/sda1", "containers itself": "/dev/sdb1",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s measured on %q, want %q (mount /var/li must not hold /var/lib)", k, got[k], v)
		}
	}
}

func TestFindMount(t *testing.T) {
	parts := []disk.PartitionStat{
		{Device: "a", Mountpoint: "/"},
		{Device: "b", Mountpoint: "/var/li"},
		{Device: "c", Mountpoint: "/var/lib/"},
		{Device: "d", Mountpoint: "relative"},
		{Device: "e", Mountpoint: "/tmp"},
		{Device: "f", Mountpoint: "/tmp"}, // mounted over e
	}
	for path, want := range map[string]string{
		"/":              "a",
		"/var/lib":       "c",
		"/var/lib/x":     "c",
		"/var/libx":      "a",
		"/var/li":        "b",
		"/var/li/x":      "b",
		"/tmp/x":         "f",
		"/relative/x":    "a",
		"/var/library/y": "a",
	} {
		p, ok := findMount(parts, path)
		if !ok || p.Device != want {
			t.Errorf("findMount(%q) = %q, %v; want %q", path, p.Device, ok, want)
		}
	}
	if p, _ := findMount(parts, "/var/lib/x"); p.Mountpoint != "/var/lib" {
		t.Errorf("mount point not cleaned: %q", p.Mountpoint)
	}
	if _, ok := findMount(nil, "/x"); ok {
		t.Error("empty mount table matched")
	}
}

func TestMeasureMergesBindMountsOfOneDevice(t *testing.T) {
	root := tempRoot(t)
	mkdirs(t, root, "tmp", "docker/volumes", "t1", "t2")
	ffs := &fakeFS{
		parts: []disk.PartitionStat{
			{Device: "/dev/vda", Mountpoint: "/", Fstype: "ext4", Opts: []string{"rw"}},
			{Device: "/dev/vda", Mountpoint: root + "/docker", Fstype: "ext4", Opts: []string{"rw", "bind"}},
			{Device: "tmpfs", Mountpoint: root + "/t1", Fstype: "tmpfs"},
			{Device: "tmpfs", Mountpoint: root + "/t2", Fstype: "tmpfs"},
		},
		usage: map[string]disk.UsageStat{"/": usage(100, 50, 50), root + "/docker": usage(100, 50, 50)},
	}
	snap, err := ffs.measurer().measure(context.Background(), []Place{
		{"docker root", root + "/docker"},
		{"temp dir", root + "/tmp"},
		{"tmpfs one", root + "/t1"},
		{"tmpfs two", root + "/t2"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Filesystems) != 3 {
		t.Fatalf("want /dev/vda once and two separate tmpfs, got %+v", snap.Filesystems)
	}
	f := snap.Filesystems[0]
	if f.Mountpoint != "/" || f.Device != "/dev/vda" || len(f.Places) != 2 {
		t.Fatalf("bind mount not merged into the whole-filesystem mount: %+v", f)
	}
	if !strings.Contains(f.Places[0], "[mount "+root+"/docker]") {
		t.Errorf("place on a bind mount should name that mount: %q", f.Places[0])
	}
	if snap.Filesystems[1].Mountpoint == snap.Filesystems[2].Mountpoint {
		t.Errorf("tmpfs instances merged: %+v", snap.Filesystems[1:])
	}
}

func TestMeasureResolvesSymlinks(t *testing.T) {
	root := tempRoot(t)
	mkdirs(t, root, "big/storage")
	if err := os.Symlink(root+"/big/storage", root+"/link"); err != nil {
		t.Fatal(err)
	}
	ffs := &fakeFS{parts: []disk.PartitionStat{
		{Device: "/dev/sda1", Mountpoint: "/"},
		{Device: "/dev/big", Mountpoint: root + "/big"},
	}}
	snap, err := ffs.measurer().measure(context.Background(), []Place{{"graph root", root + "/link"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Filesystems) != 1 || snap.Filesystems[0].Device != "/dev/big" {
		t.Fatalf("symlink not followed to its target's filesystem: %+v", snap.Filesystems)
	}
	if want := "graph root (" + root + "/link -> " + root + "/big/storage)"; snap.Filesystems[0].Places[0] != want {
		t.Errorf("place = %q, want %q", snap.Filesystems[0].Places[0], want)
	}
}

func TestMeasureNotCreatedYet(t *testing.T) {
	root := tempRoot(t)
	mkdirs(t, root, "big")
	// A dangling link must be attributed to its target's filesystem, not the link's.
	if err := os.Symlink(root+"/big/later", root+"/dangling"); err != nil {
		t.Fatal(err)
	}
	ffs := &fakeFS{parts: []disk.PartitionStat{
		{Device: "/dev/sda1", Mountpoint: "/"},
		{Device: "/dev/big", Mountpoint: root + "/big"},
	}}
	snap, err := ffs.measurer().measure(context.Background(), []Place{
		{"archive dir", root + "/big/not/yet"},
		{"node volume", root + "/dangling/_data"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Filesystems) != 1 || snap.Filesystems[0].Device != "/dev/big" {
		t.Fatalf("want both on /dev/big, got %+v", snap.Filesystems)
	}
	for _, p := range snap.Filesystems[0].Places {
		if !strings.Contains(p, "not created yet") || !strings.Contains(p, "measured "+root+"/big)") {
			t.Errorf("place should say it is not created yet and where it was measured: %q", p)
		}
	}
	if len(ffs.usageCalls) != 1 || ffs.usageCalls[0] != root+"/big" {
		t.Errorf("usage measured at %v, want the nearest existing directory", ffs.usageCalls)
	}
}

func TestResolve(t *testing.T) {
	root := tempRoot(t)
	mkdirs(t, root, "a")
	if err := os.Symlink("loop2", root+"/loop1"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("loop1", root+"/loop2"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a", root+"/rel"); err != nil {
		t.Fatal(err)
	}
	if got, note, err := resolve(root + "/rel"); err != nil || got != root+"/a" || note != "" {
		t.Errorf("relative symlink: %q %q %v", got, note, err)
	}
	if _, _, err := resolve(root + "/loop1/x"); err == nil {
		t.Error("symlink loop: want an error")
	}
	if _, _, err := resolve(""); err == nil {
		t.Error("empty path: want an error")
	}
	if err := os.WriteFile(root+"/file", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := resolve(root + "/file/x"); err == nil {
		t.Error("path below a regular file: want an error")
	}
}

func TestResolvePermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root bypasses directory permissions")
	}
	root := tempRoot(t)
	mkdirs(t, root, "locked/inner")
	if err := os.Chmod(root+"/locked", 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(root+"/locked", 0o755) })
	got, note, err := resolve(root + "/locked/inner")
	if err != nil || got != root+"/locked" || !strings.Contains(note, "permission denied") {
		t.Errorf("resolve = %q %q %v", got, note, err)
	}
}

func TestMeasureErrors(t *testing.T) {
	root := tempRoot(t)
	mkdirs(t, root, "ok", "bad")
	ctx := context.Background()

	ffs := &fakeFS{partsErr: errors.New("boom")}
	if _, err := ffs.measurer().measure(ctx, []Place{{"x", root}}); err == nil || !strings.Contains(err.Error(), "mount table") {
		t.Errorf("partition error: %v", err)
	}

	ffs = &fakeFS{
		parts: []disk.PartitionStat{
			{Device: "/dev/sda1", Mountpoint: "/"},
			{Device: "/dev/bad", Mountpoint: root + "/bad"},
		},
		usageErr: map[string]error{root + "/bad": errors.New("statfs failed")},
	}
	snap, err := ffs.measurer().measure(ctx, []Place{{"ok", root + "/ok"}, {"bad", root + "/bad"}, {"empty", ""}})
	if err == nil || !strings.Contains(err.Error(), "statfs failed") || !strings.Contains(err.Error(), `place "empty"`) {
		t.Errorf("want both failures in the error, got %v", err)
	}
	if len(snap.Filesystems) != 1 || snap.Filesystems[0].Device != "/dev/sda1" {
		t.Errorf("partial snapshot = %+v", snap.Filesystems)
	}

	if snap, err := ffs.measurer().measure(ctx, nil); err != nil || len(snap.Filesystems) != 0 {
		t.Errorf("no places: %+v %v", snap, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := ffs.measurer().measure(cctx, []Place{{"ok", root}}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

func BenchmarkMeasure(b *testing.B) {
	dir := b.TempDir()
	cwd, err := os.Getwd()
	if err != nil {
		b.Fatal(err)
	}
	places := []Place{
		{"bench dir", dir},
		{"temp dir", os.TempDir()},
		{"work dir", cwd},
		{"not created yet", filepath.Join(dir, "later", "archives")},
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Measure(ctx, places); err != nil {
			b.Fatal(err)
		}
	}
}

func TestUsageCountsLikeDu(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a"), bytes.Repeat([]byte{1}, 100<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "c"), bytes.Repeat([]byte{2}, 50<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Usage(context.Background(), []Part{{Name: "dir", Path: dir}, {Name: "gone", Path: filepath.Join(dir, "nope")}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("du", "-sxB1", dir).Output()
	if err != nil {
		t.Fatalf("du: %v", err)
	}
	want, err := strconv.ParseInt(strings.Fields(string(out))[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Bytes != want || got[0].Missing {
		t.Fatalf("Usage = %+v, du says %d", got, want)
	}
	if got[0].Bytes < 150<<10 || got[0].Bytes > 200<<10 {
		t.Errorf("the hard link was counted twice or not at all: %d bytes", got[0].Bytes)
	}
	if !got[1].Missing || got[1].Bytes != 0 {
		t.Errorf("a missing part should be Missing with 0 bytes: %+v", got[1])
	}
}
