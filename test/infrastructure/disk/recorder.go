package disk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/table"
)

// DefaultInterval is the sampling interval used when NewRecorder is given zero.
const DefaultInterval = 500 * time.Millisecond

// Change is one filesystem at a checkpoint, compared with the previous checkpoint.
type Change struct {
	Filesystem
	// Delta is Used minus Used at the previous checkpoint; 0 when New.
	Delta int64 `json:"delta_bytes"`
	// New is set when the filesystem was not measured at the previous checkpoint.
	New bool `json:"new"`
	// Peak is the highest Used seen during the phase ending here, both checkpoints included.
	Peak uint64 `json:"peak_used_bytes"`
}

// Checkpoint is the disk state at a named point of the flow.
type Checkpoint struct {
	Name string    `json:"name"`
	Time time.Time `json:"time"`
	// Elapsed is the time since the previous checkpoint (since NewRecorder for the first).
	Elapsed     time.Duration `json:"elapsed_ns"`
	Filesystems []Change      `json:"filesystems"`
	// Parts are what the named directories held here (du), compared with the previous checkpoint.
	Parts []PartChange `json:"parts,omitempty"`
}

// PartChange is one part at a checkpoint; Delta is 0 when New.
type PartChange struct {
	PartUsage
	Delta int64 `json:"delta_bytes"`
	New   bool  `json:"new"`
}

// Phase is the interval ending at a checkpoint, named after it.
type Phase struct {
	Checkpoint
	Start time.Time `json:"start"`
	// Samples counts background samples taken during the phase; FailedSamples those that failed.
	Samples       int `json:"samples"`
	FailedSamples int `json:"failed_samples"`
}

// Recorder measures at named checkpoints and, between Start and Stop, samples in the background
// to catch the peak usage of each phase. It is safe for concurrent use.
type Recorder struct {
	places   func() []Place
	parts    func() []Part
	out      io.Writer
	interval time.Duration
	measure  func(context.Context, []Place) (Snapshot, error)
	now      func() time.Time
	outMu    sync.Mutex // keeps concurrent checkpoint blocks whole

	mu         sync.Mutex
	gen        uint64 // bumped by every checkpoint; samples started earlier are dropped
	phaseStart time.Time
	prevName   string
	prevUsed   map[string]uint64
	prevParts  map[string]int64
	peak       map[string]uint64
	samples    int
	failed     int
	lastErr    error
	phases     []Phase
	series     map[string]*Series
	order      []string
	cancel     context.CancelFunc
	done       chan struct{}
}

// NewRecorder returns a recorder that measures places() each time (places appear during the flow,
// e.g. Kind nodes once the cluster exists; places is called from the sampler goroutine too),
// prints checkpoints to out (nil discards) and samples every interval (0 means DefaultInterval).
func NewRecorder(places func() []Place, out io.Writer, interval time.Duration) *Recorder {
	if out == nil {
		out = io.Discard
	}
	if interval <= 0 {
		interval = DefaultInterval
	}
	if places == nil {
		places = func() []Place { return nil }
	}
	r := &Recorder{places: places, parts: func() []Part { return nil }, out: out, interval: interval, measure: Measure, now: time.Now}
	r.phaseStart = r.now()
	r.peak = map[string]uint64{}
	return r
}

// MeasureParts makes every checkpoint also measure parts() with du: directories too costly to
// walk on every sample, whose bytes say what a filesystem's growth is made of.
func (r *Recorder) MeasureParts(parts func() []Part) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.parts = parts
}

// Start begins background sampling until Stop or ctx is done. Starting twice is a no-op.
func (r *Recorder) Start(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	r.cancel, r.done = cancel, done
	go func() {
		defer close(done)
		t := time.NewTicker(r.interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				r.sample(ctx)
			}
		}
	}()
}

// Sampling reports whether the background sampler runs.
func (r *Recorder) Sampling() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cancel != nil
}

// Stop ends background sampling and waits for the sampler to exit. It is safe to call repeatedly.
func (r *Recorder) Stop() {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.cancel, r.done = nil, nil
	r.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

func (r *Recorder) sample(ctx context.Context) {
	r.mu.Lock()
	gen := r.gen
	r.mu.Unlock()
	snap, err := r.measure(ctx, r.places())
	if ctx.Err() != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if gen != r.gen {
		return // a checkpoint ended the phase while measuring
	}
	r.samples++
	if err != nil {
		r.failed++
		r.lastErr = err
	}
	for _, f := range snap.Filesystems {
		if k := f.key(); f.Used > r.peak[k] {
			r.peak[k] = f.Used
		}
	}
	if snap.Time.IsZero() {
		snap.Time = r.now()
	}
	r.addPoints(snap)
}

// Point is one measurement of a filesystem's used bytes.
type Point struct {
	Time time.Time
	Used uint64
}

// Series is one filesystem's used bytes over the run: every sample and checkpoint.
type Series struct {
	Label  string
	Points []Point
}

// addPoints appends a snapshot to the series; r.mu is held.
func (r *Recorder) addPoints(snap Snapshot) {
	if r.series == nil {
		r.series = map[string]*Series{}
	}
	for _, f := range snap.Filesystems {
		k := f.key()
		s := r.series[k]
		if s == nil {
			s = &Series{Label: f.Label()}
			r.series[k] = s
			r.order = append(r.order, k)
		}
		s.Points = append(s.Points, Point{Time: snap.Time, Used: f.Used})
	}
}

// Series returns each measured filesystem's used bytes over time, in first-seen order.
func (r *Recorder) Series() []Series {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Series, 0, len(r.order))
	for _, k := range r.order {
		s := *r.series[k]
		s.Points = append([]Point(nil), s.Points...)
		out = append(out, s)
	}
	return out
}

// Checkpoint measures now, ends the current phase under name and prints a short block to the
// recorder's writer. On a measurement error whatever could be measured is still recorded and the
// error is returned with it.
func (r *Recorder) Checkpoint(ctx context.Context, name string) (Checkpoint, error) {
	now := r.now()
	snap, err := r.measure(ctx, r.places())
	r.mu.Lock()
	partsOf := r.parts
	r.mu.Unlock()
	parts, perr := Usage(ctx, partsOf())
	err = errors.Join(err, perr)
	r.mu.Lock()
	cp := Checkpoint{Name: name, Time: now, Elapsed: now.Sub(r.phaseStart)}
	partBytes := make(map[string]int64, len(parts))
	for _, u := range parts {
		c := PartChange{PartUsage: u}
		if prev, ok := r.prevParts[u.Path]; ok {
			c.Delta = u.Bytes - prev
		} else {
			c.New = r.prevParts != nil
		}
		cp.Parts = append(cp.Parts, c)
		partBytes[u.Path] = u.Bytes
	}
	r.prevParts = partBytes
	used := make(map[string]uint64, len(snap.Filesystems))
	for _, f := range snap.Filesystems {
		k := f.key()
		c := Change{Filesystem: f, Peak: max(f.Used, r.peak[k])}
		if prev, ok := r.prevUsed[k]; ok {
			c.Delta = int64(f.Used) - int64(prev)
		} else {
			c.New = r.prevUsed != nil
		}
		cp.Filesystems = append(cp.Filesystems, c)
		used[k] = f.Used
	}
	r.phases = append(r.phases, Phase{
		Checkpoint: cp, Start: r.phaseStart, Samples: r.samples, FailedSamples: r.failed,
	})
	snap.Time = now
	r.addPoints(snap)
	prevName := r.prevName
	r.gen++
	r.phaseStart, r.prevName, r.prevUsed = now, name, used
	r.samples, r.failed = 0, 0
	r.peak = make(map[string]uint64, len(used))
	for k, u := range used {
		r.peak[k] = u
	}
	r.mu.Unlock()

	r.outMu.Lock()
	werr := writeCheckpoint(r.out, cp, prevName)
	r.outMu.Unlock()
	if werr != nil && err == nil {
		err = fmt.Errorf("print checkpoint %s: %w", name, werr)
	} else if err != nil {
		err = fmt.Errorf("checkpoint %s: %w", name, err)
	}
	return cp, err
}

func writeCheckpoint(w io.Writer, cp Checkpoint, prevName string) error {
	since := "since start"
	if prevName != "" {
		since = "since " + prevName
	}
	head := fmt.Sprintf("%s %s  %s %s\n", table.Title().Sprint("disk"), table.Title().Sprint(cp.Name),
		HumanDuration(cp.Elapsed), since)
	if err := writeString(w, head); err != nil {
		return err
	}
	rows := make([][]table.Cell, 0, len(cp.Filesystems))
	for _, c := range cp.Filesystems {
		rows = append(rows, []table.Cell{
			table.Plain(c.Mountpoint), table.Plain(c.Device), table.Plain("used " + HumanBytes(c.Used)), c.DeltaCell(),
			table.Plain("free " + HumanBytes(c.Free)), {Text: fmt.Sprintf("%.1f%%", c.UsedPercent), Style: table.PercentStyle(c.UsedPercent)},
		})
	}
	if len(rows) == 0 {
		return writeString(w, "  (no filesystems measured)\n")
	}
	for _, p := range cp.Parts {
		rows = append(rows, []table.Cell{table.Plain("  " + p.Name), table.Plain(p.Path), table.Plain("holds " + HumanBytes(uint64(p.Bytes))), p.DeltaCell(), {}, {}})
	}
	return table.Write(w, "  ", rows)
}

// DeltaCell is what a part grew or shrank by since the previous checkpoint, or "new".
func (p PartChange) DeltaCell() table.Cell {
	if p.New {
		return table.Cell{Text: "new", Style: table.Grow()}
	}
	return table.Cell{Text: HumanDelta(p.Delta), Style: table.DeltaStyle(p.Delta)}
}

// DeltaCell is what a filesystem grew or shrank by since the previous checkpoint, or "new".
func (c Change) DeltaCell() table.Cell {
	if c.New {
		return table.Cell{Text: "new", Style: table.Grow()}
	}
	return table.Cell{Text: HumanDelta(c.Delta), Style: table.DeltaStyle(c.Delta)}
}

// LastError is the sampler's last failed measurement, nil when none failed.
func (r *Recorder) LastError() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

// Phases returns the phases ended so far, oldest first.
func (r *Recorder) Phases() []Phase {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Phase, len(r.phases))
	copy(out, r.phases)
	return out
}

// PartSeries returns each part's bytes at every checkpoint, in first-seen order.
func (r *Recorder) PartSeries() []Series {
	var order []string
	by := map[string]*Series{}
	for _, p := range r.Phases() {
		for _, c := range p.Parts {
			s := by[c.Path]
			if s == nil {
				s = &Series{Label: c.Name + " (du)"}
				by[c.Path] = s
				order = append(order, c.Path)
			}
			s.Points = append(s.Points, Point{Time: p.Time, Used: uint64(c.Bytes)})
		}
	}
	out := make([]Series, 0, len(order))
	for _, k := range order {
		out = append(out, *by[k])
	}
	return out
}
