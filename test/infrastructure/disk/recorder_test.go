package disk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// scripted is a fake measure function whose used bytes per mount point the test sets.
type scripted struct {
	mu    sync.Mutex
	used  map[string]uint64 // mount point -> used; device is "/dev/" + name
	order []string
	err   error
	calls atomic.Int64
	hook  func() // runs inside measure, outside the lock
}

func (s *scripted) set(mount string, used uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used == nil {
		s.used = map[string]uint64{}
	}
	if _, ok := s.used[mount]; !ok {
		s.order = append(s.order, mount)
	}
	s.used[mount] = used
}

func (s *scripted) measure(_ context.Context, _ []Place) (Snapshot, error) {
	s.calls.Add(1)
	s.mu.Lock()
	hook := s.hook
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := Snapshot{Time: fixedTime}
	for _, m := range s.order {
		u := s.used[m]
		snap.Filesystems = append(snap.Filesystems, Filesystem{
			Mountpoint: m, Device: "/dev" + strings.ReplaceAll(m, "/", "_"), Fstype: "ext4",
			Total: 10000, Used: u, Free: 9000 - u, UsedPercent: float64(u) / 90, Places: []string{"p"},
		})
	}
	return snap, s.err
}

func newTestRecorder(s *scripted, out io.Writer) *Recorder {
	r := NewRecorder(func() []Place { return []Place{{"x", "/x"}} }, out, time.Millisecond)
	r.measure = s.measure
	clock := fixedTime
	r.now = func() time.Time { clock = clock.Add(time.Second); return clock }
	r.phaseStart = fixedTime
	return r
}

func TestRecorderDeltaAndPeak(t *testing.T) {
	withColor(t, false)
	ctx := context.Background()
	s := &scripted{}
	var out bytes.Buffer
	r := newTestRecorder(s, &out)

	s.set("/", 1000)
	if _, err := r.Checkpoint(ctx, "START"); err != nil {
		t.Fatal(err)
	}
	// The phase peaks well above both of its checkpoints.
	s.set("/", 5000)
	r.sample(ctx)
	s.set("/", 3000)
	r.sample(ctx)
	s.set("/", 2000)
	cp, err := r.Checkpoint(ctx, "IMAGES_BUILT")
	if err != nil {
		t.Fatal(err)
	}
	if c := cp.Filesystems[0]; c.Used != 2000 || c.Peak != 5000 || c.Delta != 1000 || c.New {
		t.Errorf("IMAGES_BUILT = %+v", c)
	}
	// Shrinking, with a new filesystem appearing (a Kind node volume elsewhere).
	s.set("/", 1500)
	s.set("/var/lib/docker", 700)
	cp, err = r.Checkpoint(ctx, "AFTER_PRUNE")
	if err != nil {
		t.Fatal(err)
	}
	if c := cp.Filesystems[0]; c.Delta != -500 || c.Peak != 2000 {
		t.Errorf("AFTER_PRUNE / = %+v (peak must include the phase's starting value)", c)
	}
	if c := cp.Filesystems[1]; !c.New || c.Delta != 0 || c.Peak != 700 {
		t.Errorf("AFTER_PRUNE new filesystem = %+v", c)
	}

	phases := r.Phases()
	if len(phases) != 3 {
		t.Fatalf("phases = %+v", phases)
	}
	if p := phases[0]; p.Name != "START" || p.Filesystems[0].New || p.Filesystems[0].Peak != 1000 || p.Samples != 0 {
		t.Errorf("START = %+v", p)
	}
	if p := phases[1]; p.Samples != 2 || p.Elapsed != time.Second || !p.Start.Equal(phases[0].Time) {
		t.Errorf("IMAGES_BUILT phase = %+v", p)
	}

	o := out.String()
	t.Log("\n" + o)
	for _, want := range []string{"disk START  1s since start", "disk IMAGES_BUILT  1s since START", "+1000 B", "-500 B", "new"} {
		if !strings.Contains(o, want) {
			t.Errorf("checkpoint output lacks %q", want)
		}
	}

	b, err := json.Marshal(phases)
	if err != nil || !strings.Contains(string(b), `"peak_used_bytes":5000`) || !strings.Contains(string(b), `"delta_bytes":1000`) {
		t.Errorf("phases JSON: %s %v", b, err)
	}
}

// A sample that straddles a checkpoint belongs to the phase that already ended: it is dropped.
func TestRecorderDropsSampleAcrossCheckpoint(t *testing.T) {
	ctx := context.Background()
	s := &scripted{}
	r := newTestRecorder(s, nil)
	s.set("/", 100)
	if _, err := r.Checkpoint(ctx, "START"); err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	s.mu.Lock()
	s.hook = func() { entered <- struct{}{}; <-release }
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { defer close(done); r.sample(ctx) }()
	<-entered
	s.mu.Lock()
	s.hook = nil
	s.mu.Unlock()
	if _, err := r.Checkpoint(ctx, "A"); err != nil {
		t.Fatal(err)
	}
	s.set("/", 9999) // what the straddling sample will see
	close(release)
	<-done
	s.set("/", 100)
	cp, err := r.Checkpoint(ctx, "B")
	if err != nil {
		t.Fatal(err)
	}
	if p := r.Phases()[2]; p.Samples != 0 || cp.Filesystems[0].Peak != 100 {
		t.Errorf("straddling sample leaked into phase B: %+v", p)
	}
}

func TestRecorderMeasureErrors(t *testing.T) {
	ctx := context.Background()
	s := &scripted{err: errors.New("statfs: boom")}
	r := newTestRecorder(s, nil)
	s.set("/", 100)
	cp, err := r.Checkpoint(ctx, "START")
	if err == nil || !strings.Contains(err.Error(), "checkpoint START") || len(cp.Filesystems) != 1 {
		t.Errorf("partial checkpoint: %+v %v", cp, err)
	}
	r.sample(ctx)
	if _, err := r.Checkpoint(ctx, "NEXT"); err == nil {
		t.Error("want the error again")
	}
	if p := r.Phases()[1]; p.Samples != 1 || p.FailedSamples != 1 {
		t.Errorf("failed samples not counted: %+v", p)
	}
	if err := r.LastError(); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("LastError = %v, want the sampler's failure", err)
	}
}

func TestRecorderSamplerStartStop(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx := context.Background()
	s := &scripted{}
	s.set("/", 10)
	var out bytes.Buffer // shared by concurrent checkpoints
	r := newTestRecorder(s, &out)
	r.Start(ctx)
	r.Start(ctx) // no second sampler
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.set("/", uint64(100*(i+1)))
			if _, err := r.Checkpoint(ctx, "C"); err != nil {
				t.Error(err)
			}
			_ = r.Phases()
			_ = r.LastError()
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for s.calls.Load() < 10 {
		if time.Now().After(deadline) {
			t.Fatal("sampler is not sampling")
		}
		time.Sleep(time.Millisecond)
	}
	r.Stop()
	r.Stop()
	n := s.calls.Load()
	time.Sleep(20 * time.Millisecond)
	if got := s.calls.Load(); got != n {
		t.Errorf("sampler still running after Stop: %d -> %d calls", n, got)
	}
	if len(r.Phases()) != 4 || strings.Count(out.String(), "disk C ") != 4 {
		t.Errorf("phases = %d, want 4 checkpoints printed whole:\n%s", len(r.Phases()), out.String())
	}
	// Stop waited for the sampler goroutine; allow the runtime a moment to reap helpers.
	for time.Now().Before(deadline) && runtime.NumGoroutine() > before {
		time.Sleep(time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("goroutines: %d before, %d after Stop", before, after)
	}

	// A cancelled parent context also ends the sampler; Stop still returns.
	cctx, cancel := context.WithCancel(ctx)
	r.Start(cctx)
	cancel()
	r.Stop()
}

func TestRecorderNoCheckpoints(t *testing.T) {
	r := NewRecorder(nil, nil, 0)
	if r.interval != DefaultInterval {
		t.Errorf("interval = %v", r.interval)
	}
	if len(r.Phases()) != 0 || r.LastError() != nil {
		t.Errorf("a new recorder has phases %v, error %v", r.Phases(), r.LastError())
	}
}

func TestCheckpointMeasuresParts(t *testing.T) {
	s := &scripted{}
	s.set("/", 100)
	var out bytes.Buffer
	r := newTestRecorder(s, &out)
	dir := t.TempDir()
	r.MeasureParts(func() []Part { return []Part{{Name: "containerd snapshots", Path: dir}} })
	if _, err := r.Checkpoint(context.Background(), "START"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "layer"), bytes.Repeat([]byte{1}, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	cp, err := r.Checkpoint(context.Background(), "IMAGES_BUILT")
	if err != nil {
		t.Fatal(err)
	}
	if len(cp.Parts) != 1 || cp.Parts[0].Delta < 1<<20 || cp.Parts[0].New {
		t.Fatalf("parts at IMAGES_BUILT = %+v, want one part grown by the 1 MiB written", cp.Parts)
	}
	if p := r.Phases()[1].Parts; len(p) != 1 || p[0].Name != "containerd snapshots" || p[0].Path != dir {
		t.Errorf("the phase's parts = %+v", p)
	}
	if !strings.Contains(out.String(), "holds ") {
		t.Errorf("the checkpoint block does not say what the part holds:\n%s", out.String())
	}
	if series := r.PartSeries(); len(series) != 1 || len(series[0].Points) != 2 {
		t.Errorf("PartSeries = %+v, want one series with a point per checkpoint", series)
	}
}
