package summary

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/disk"
)

func fs(mount string, used, peak uint64, delta int64, isNew bool) disk.Change {
	return disk.Change{Filesystem: disk.Filesystem{Mountpoint: mount, Device: "/dev" + strings.ReplaceAll(mount, "/", "_"),
		Total: 10000, Used: used, Free: 9000 - used, Places: []string{"p"}}, Peak: peak, Delta: delta, New: isNew}
}

// Three phases: one that peaks well above both its checkpoints, then one where a filesystem
// appears.
func samplePhases() []disk.Phase {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	return []disk.Phase{
		{Checkpoint: disk.Checkpoint{Name: "START", Time: t0, Elapsed: time.Second, Filesystems: []disk.Change{fs("/", 1000, 1000, 0, false)}}},
		{Checkpoint: disk.Checkpoint{Name: "IMAGES_BUILT", Time: t0.Add(time.Second), Elapsed: time.Second,
			Filesystems: []disk.Change{fs("/", 2000, 5000, 1000, false)},
			Parts:       []disk.PartChange{{PartUsage: disk.PartUsage{Part: disk.Part{Name: "containerd snapshots", Path: "/var/lib/x"}, Bytes: 1 << 20}, Delta: 1 << 20}}},
			Start: t0, Samples: 2},
		{Checkpoint: disk.Checkpoint{Name: "AFTER_PRUNE", Time: t0.Add(2 * time.Second), Elapsed: time.Second,
			Filesystems: []disk.Change{fs("/", 1500, 2000, -500, false), fs("/var/lib/docker", 700, 700, 0, true)}},
			Start: t0.Add(time.Second), Samples: 1, FailedSamples: 1},
	}
}

func TestDiskText(t *testing.T) {
	var sum bytes.Buffer
	if err := writeDisk(&sum, samplePhases(), errors.New("statfs: boom")); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + sum.String())
	lines := strings.Split(sum.String(), "\n")
	if f := strings.Fields(lines[1]); strings.Join(f, " ") != "PHASE DURATION FILESYSTEM USED PEAK DELTA SAMPLES" {
		t.Errorf("summary header = %q", lines[1])
	}
	if f := strings.Fields(lines[3]); strings.Join(f, " ") != "IMAGES_BUILT 1s / (/dev_) 2.0 KiB 4.9 KiB +1000 B 2" {
		t.Errorf("IMAGES_BUILT row = %q", lines[3])
	}
	for _, want := range []string{
		"4.9 KiB       55.6%  IMAGES_BUILT  / (/dev_)", // the overall peak of / and when
		"1 (1 failed)", "new", "-500 B",
		"DIRECTORY (du)", "containerd snapshots", "/var/lib/x",
		"sampler: last failed measurement: statfs: boom",
	} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary lacks %q", want)
		}
	}
}

func TestDiskMarkdown(t *testing.T) {
	var md bytes.Buffer
	if err := writeDiskMarkdown(&md, samplePhases()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| IMAGES_BUILT | 1s | / (/dev_) | 2.0 KiB | 4.9 KiB | +1000 B | 2 |",
		"| / (/dev_) | 4.9 KiB | 55.6% | IMAGES_BUILT |",
		"```mermaid\nxychart-beta\n", `x-axis ["START", "IMAGES_BUILT", "AFTER_PRUNE"]`,
		"`/var/lib/x`",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
}

func TestDiskWithoutCheckpoints(t *testing.T) {
	var b bytes.Buffer
	if err := writeDisk(&b, nil, nil); err != nil || !strings.Contains(b.String(), "no checkpoints") {
		t.Errorf("%q %v", b.String(), err)
	}
	b.Reset()
	if err := writeDiskMarkdown(&b, nil); err != nil || !strings.Contains(b.String(), "no checkpoints") {
		t.Errorf("%q %v", b.String(), err)
	}
}
