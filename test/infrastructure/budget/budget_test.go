package budget

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/kindling-dev/kindling/test/infrastructure/disk"
)

const gib = 1 << 30

func TestParse(t *testing.T) {
	for in, want := range map[string]Budget{
		"":      {},
		"off":   {Off: true},
		"OFF":   {Off: true},
		"20GiB": {Bytes: 20 * gib},
		"512MB": {Bytes: 512 << 20},
		"12g":   {Bytes: 12 * gib},
		"80%":   {Percent: 80},
		" 50 %": {Percent: 50},
	} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"lots", "0", "-5GiB", "0%", "150%", "x%", "20 parsecs"} {
		if _, err := Parse(in); err == nil || !strings.Contains(err.Error(), Env) {
			t.Errorf("Parse(%q) = %v, want an error naming %s", in, err, Env)
		}
	}
}

func TestLimit(t *testing.T) {
	disk10 := disk.Filesystem{Total: 100 * gib, Free: 10 * gib}
	if got := (Budget{}).Limit(disk10); got != 9*gib {
		t.Errorf("default limit of 10 GiB free = %d, want free minus the margin", got)
	}
	if got := (Budget{}).Limit(disk.Filesystem{Total: 100 * gib, Free: Margin / 2}); got != 0 {
		t.Errorf("default limit below the margin = %d, want 0", got)
	}
	tmpfs := disk.Filesystem{Fstype: "tmpfs", Total: 64 << 20, Free: 60 << 20}
	if got := (Budget{}).Limit(tmpfs); got != 60<<20-(64<<20)/10 {
		t.Errorf("default limit of a 64 MiB tmpfs = %d, want its free space minus a tenth of its size", got)
	}
	if got := (Budget{Percent: 50}).Limit(disk10); got != 5*gib {
		t.Errorf("50%% of 10 GiB = %d", got)
	}
	if got := (Budget{Bytes: 3 * gib}).Limit(disk10); got != 3*gib {
		t.Errorf("3 GiB budget = %d", got)
	}
}

// fakeFS puts every place on one filesystem with the given usage.
func fakeFS(used, free uint64) func(context.Context, []disk.Place) (disk.Snapshot, error) {
	return func(_ context.Context, places []disk.Place) (disk.Snapshot, error) {
		return disk.Snapshot{Filesystems: []disk.Filesystem{{Mountpoint: "/", Device: "/dev/vda", Total: used + free, Used: used, Free: free}}}, nil
	}
}

func TestCheck(t *testing.T) {
	engine := disk.Place{Name: "docker graph root", Path: "/var/lib/docker"}
	archive := disk.Place{Name: "archive dir", Path: "/cache"}
	start := disk.Snapshot{Filesystems: []disk.Filesystem{{Mountpoint: "/", Device: "/dev/vda", Total: 30 * gib, Used: 10 * gib, Free: 20 * gib}}}
	ctx := context.Background()

	t.Run("fits the free space", func(t *testing.T) {
		c := Checker{Start: start, Measure: fakeFS(10*gib, 20*gib)}
		if err := c.Check(ctx, "export", []Need{{Place: archive, Bytes: 18 * gib}}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("needs of one filesystem add up", func(t *testing.T) {
		c := Checker{Start: start, Measure: fakeFS(10*gib, 20*gib)}
		err := c.Check(ctx, "load", []Need{{Place: archive, Bytes: 10 * gib, Why: "a"}, {Place: engine, Bytes: 10 * gib, Why: "b"}})
		if err == nil {
			t.Fatal("20 GiB on a filesystem with 20 GiB free (1 GiB margin) passed")
		}
		for _, want := range []string{"load would not fit", "/ (/dev/vda) needs 20GiB, has 19GiB", "archive dir: a", "docker graph root: b", Env + "=off"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
	})
	t.Run("the budget counts what the run already added", func(t *testing.T) {
		c := Checker{Budget: Budget{Bytes: 5 * gib}, Start: start, Measure: fakeFS(13*gib, 17*gib)}
		if err := c.Check(ctx, "export", []Need{{Place: archive, Bytes: 2 * gib}}); err != nil {
			t.Fatalf("2 GiB of a 5 GiB budget after 3 GiB: %v", err)
		}
		err := c.Check(ctx, "export", []Need{{Place: archive, Bytes: 3 * gib}})
		if err == nil || !strings.Contains(err.Error(), "has 2GiB (budget 5GiB, of which the run used 3GiB)") {
			t.Fatalf("3 GiB of a 5 GiB budget after 3 GiB: %v", err)
		}
	})
	t.Run("a small tmpfs is memory with its own limit", func(t *testing.T) {
		tmp := func(context.Context, []disk.Place) (disk.Snapshot, error) {
			return disk.Snapshot{Filesystems: []disk.Filesystem{{Mountpoint: "/tmp", Device: "tmpfs", Fstype: "tmpfs", Total: 64 << 20, Used: 4 << 20, Free: 60 << 20}}}, nil
		}
		c := Checker{Measure: tmp}
		if err := c.Check(ctx, "export", []Need{{Place: archive, Bytes: 50 << 20}}); err != nil {
			t.Fatalf("50 MiB into 60 MiB free of a 64 MiB tmpfs: %v", err)
		}
		err := c.Check(ctx, "export", []Need{{Place: archive, Bytes: 57 << 20, Why: "the archive"}})
		for _, want := range []string{"/tmp (tmpfs) needs 57MiB, has 53.6MiB (a tmpfs in memory, 60MiB free minus a margin of 6.4MiB)", "archive dir: the archive"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("57 MiB into a 64 MiB tmpfs: error %v, want it to say %q", err, want)
			}
		}
	})
	t.Run("off checks nothing", func(t *testing.T) {
		c := Checker{Budget: Budget{Off: true}, Start: start, Measure: fakeFS(10*gib, 0)}
		if err := c.Check(ctx, "export", []Need{{Place: archive, Bytes: 100 * gib}}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestPredict(t *testing.T) {
	p := Places{Engine: disk.Place{Name: "engine"}, Archive: disk.Place{Name: "archive"}, Nodes: disk.Place{Name: "nodes"}}
	first := Plan(Facts{ImageBytes: 300 << 20}, p)
	byPhase := map[string]Step{}
	for _, s := range first {
		byPhase[s.Phase] = s
	}
	if s := byPhase["build"]; len(s.Needs) != 0 || s.Note == "" {
		t.Errorf("build of a suite never built: %+v, want no prediction and a note", s)
	}
	if s := byPhase["export"]; len(s.Needs) != 1 || s.Needs[0].Bytes != 300<<20 || s.Needs[0].Place.Name != "archive" {
		t.Errorf("export: %+v, want the image bytes in the archive dir", s)
	}
	if s := byPhase["cluster"]; s.Needs[0].Bytes != DefaultNodeBytes || s.Needs[0].Place.Name != "nodes" {
		t.Errorf("cluster: %+v, want one default node", s)
	}
	if s := byPhase["load"]; s.Needs[0].Bytes != 600<<20 {
		t.Errorf("load: %+v, want 2 × the images", s)
	}

	measured := Facts{BuildBytes: 2 * gib, ImageBytes: 300 << 20, ArchiveBytes: 200 << 20, NodeBytes: 900 << 20, LoadFactor: 1.5, Nodes: 3}
	for phase, want := range map[string]uint64{"build": 2 * gib, "export": 200 << 20, "cluster": 3 * 900 << 20, "load": 3 * 300 << 20} {
		needs, note := Predict(phase, measured, p)
		if len(needs) != 1 || needs[0].Bytes != want || note != "" {
			t.Errorf("%s: %+v %q, want %d bytes", phase, needs, note, want)
		}
	}
}

// Builds wait for room beside each other, so the phase needs room for one build at least: the
// bases and the largest build's peak.
func TestPredictBuildOneAtATime(t *testing.T) {
	f := Facts{BuildBytes: 3 * gib, PulledBytes: 500 << 20, BuildPeaks: map[string]uint64{"a": 1 * gib, "b": 2 * gib}}
	needs, _ := Predict("build", f, Places{Engine: disk.Place{Name: "engine"}})
	if len(needs) != 1 || needs[0].Bytes != 500<<20+2*gib {
		t.Fatalf("needs %+v, want the bases and b's peak", needs)
	}
	for _, want := range []string{"one build at a time at least", "2GiB (b)", "peaked at 3GiB"} {
		if !strings.Contains(needs[0].Why, want) {
			t.Errorf("why %q lacks %q", needs[0].Why, want)
		}
	}
}

// Room is what the filesystem can take now, and says which budget.
func TestRoom(t *testing.T) {
	start := disk.Snapshot{Filesystems: []disk.Filesystem{{Mountpoint: "/", Device: "/dev/vda", Total: 30 * gib, Used: 10 * gib, Free: 20 * gib}}}
	c := Checker{Budget: Budget{Bytes: 5 * gib}, Start: start, Measure: fakeFS(13*gib, 17*gib)}
	n, why, err := c.Room(context.Background(), disk.Place{Name: "engine", Path: "/var/lib/docker"})
	if err != nil || n != 2*gib || why != "E2E_DISK_BUDGET=5GiB on /: budget 5GiB, of which the run used 3GiB" {
		t.Fatalf("room %d %q %v", n, why, err)
	}
}

func TestFactsRoundTrip(t *testing.T) {
	l := NewLedger(t.TempDir() + "/facts.json")
	if f := l.Facts(); !reflect.DeepEqual(f, Facts{}) {
		t.Fatalf("missing file gave %+v", f)
	}
	want := Facts{BuildBytes: 1, ArchiveBytes: 2, NodeBytes: 3, LoadFactor: 1.25, Nodes: 3, BuildSeconds: map[string]float64{"a": 161},
		BuildPeaks: map[string]uint64{"a": 4}, PulledBytes: 5}
	if err := l.Learn(func(f *Facts) { *f = want }); err != nil {
		t.Fatal(err)
	}
	if got := l.Facts(); !reflect.DeepEqual(got, want) {
		t.Fatalf("read %+v, wrote %+v", got, want)
	}
}
