package build_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/build"
	"github.com/kindling-dev/kindling/test/infrastructure/engine/enginetest"
)

func fixedRoom(n int64) func(context.Context) (int64, string, error) {
	return func(context.Context) (int64, string, error) { return n, "E2E_DISK_BUDGET=test", nil }
}

// Builds run at once only while their last peaks fit the room together; the others wait, and
// the log says which and why. Each build's peak is measured.
func TestBuildsWaitForRoom(t *testing.T) {
	defer build.QuickGauge()()
	root, services := dockerfileRepo(t, "", "a", "b", "c")
	eng := &enginetest.Engine{BuildDelay: 50 * time.Millisecond, BuildBytes: 100, BuildLeaves: 100}
	log := &logLines{}
	opts := build.Options{Engine: eng, Suite: "s", RunID: "r", RepoRoot: root, WorkDir: t.TempDir(), Parallelism: 3, Independent: true,
		Log: log.add, Used: eng.Used, Room: fixedRoom(250), Peaks: map[string]int64{"a": 100, "b": 100, "c": 100}}
	ps, err := build.Plan(context.Background(), opts, services)
	if err != nil {
		t.Fatal(err)
	}
	built, err := build.Images(context.Background(), opts, ps)
	if err != nil {
		t.Fatal(err)
	}
	if eng.MaxParallel() != 2 || !strings.Contains(log.String(), "waits for room") || !strings.Contains(log.String(), "the disk budget leaves 250B (E2E_DISK_BUDGET=test)") {
		t.Errorf("max parallel %d (room for 2), log:\n%s", eng.MaxParallel(), log)
	}
	for _, r := range built.Results {
		if r.Peak < 100 {
			t.Errorf("%s: peak %d, want at least the 100 bytes its build held", r.Service.Name, r.Peak)
		}
	}

	// With room for all, nothing waits.
	if err := eng.RemoveRefs(context.Background(), []string{ps[0].Ref, ps[1].Ref, ps[2].Ref}); err != nil {
		t.Fatal(err)
	}
	log.lines = nil
	opts.Room = fixedRoom(1000)
	if _, err := build.Images(context.Background(), opts, ps); err != nil || strings.Contains(log.String(), "waits") || eng.MaxParallel() != 3 {
		t.Errorf("room for all: %v, max parallel %d, log:\n%s", err, eng.MaxParallel(), log)
	}
}

// A budget too small for even one build fails before anything is pulled or built, naming the
// service and the way out.
func TestBudgetTooSmallForOneBuild(t *testing.T) {
	root, services := dockerfileRepo(t, "", "a", "b")
	eng := &enginetest.Engine{Pulls: []string{"golang:1.26"}}
	opts := build.Options{Engine: eng, Suite: "s", RunID: "r", RepoRoot: root, WorkDir: t.TempDir(),
		Used: eng.Used, Room: fixedRoom(50), Peaks: map[string]int64{"a": 10, "b": 100}}
	ps, err := build.Plan(context.Background(), opts, services)
	if err != nil {
		t.Fatal(err)
	}
	_, err = build.Images(context.Background(), opts, ps)
	for _, want := range []string{"service b", "by 100B last time", "leaves 50B (E2E_DISK_BUDGET=test)", "not even this build alone fits", "raise the disk budget"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	if len(eng.Builds()) > 0 {
		t.Errorf("built %d images", len(eng.Builds()))
	}
}

// With no peak learned yet, the builds run, and stop once the room is gone: not at ENOSPC half
// way through a layer.
func TestBuildsStopWhenTheRoomRunsOut(t *testing.T) {
	defer build.QuickGauge()()
	root, services := dockerfileRepo(t, "", "a")
	eng := &enginetest.Engine{BuildDelay: time.Minute, BuildBytes: 100, KilledBuildsLeak: true}
	room := func(ctx context.Context) (int64, string, error) {
		used, _ := eng.Used(ctx)
		return max(0, 50-used), "E2E_DISK_BUDGET=50B", nil
	}
	opts := build.Options{Engine: eng, Suite: "s", RunID: "r", RepoRoot: root, WorkDir: t.TempDir(), Used: eng.Used, Room: room}
	ps, err := build.Plan(context.Background(), opts, services)
	if err != nil {
		t.Fatal(err)
	}
	_, err = build.Images(context.Background(), opts, ps)
	for _, want := range []string{"no room left (E2E_DISK_BUDGET=50B) while a built", "stopped before it runs out of space"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	if left, _ := eng.BuildContainers(context.Background()); len(left) > 0 {
		t.Errorf("the stopped build left working containers %v", left)
	}
}
