package build

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	units "github.com/docker/go-units"
)

// gaugeInterval is how often the gauge measures the filesystem while builds run.
var gaugeInterval = 500 * time.Millisecond

// gauge owns what the builds know about the filesystem of the engine's storage while they run:
// its use, each running build's need and peak, and the room the disk budget leaves. Builds start
// through admit, which holds a build back while the needs of those running and its own would not
// fit the room together, and end through release, which gives the build's peak.
type gauge struct {
	used  func(context.Context) (int64, error)
	room  func(context.Context) (int64, string, error)
	peaks map[string]int64
	log   func(string, ...any)

	mu      sync.Mutex
	running map[string]*window
	wake    chan struct{} // closed and replaced when a build ends
	usedNow int64
	usedOK  bool
}

// window is one running build: the use at its start, the highest use since, what it was predicted
// to need.
type window struct{ start, peak, need int64 }

func newGauge(opts Options) *gauge {
	return &gauge{used: opts.Used, room: opts.Room, peaks: opts.Peaks, log: opts.logf,
		running: map[string]*window{}, wake: make(chan struct{})}
}

// sample measures the filesystem's use and raises the running builds' peaks.
func (g *gauge) sample(ctx context.Context) {
	if g.used == nil {
		return
	}
	n, err := g.used(ctx)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		return
	}
	g.usedNow, g.usedOK = n, true
	for _, w := range g.running {
		w.peak = max(w.peak, n)
	}
}

// watch measures every gaugeInterval until ctx ends, and stops the builds (through stop) when the
// filesystem has no room left, before it runs out of space half way through a layer.
func (g *gauge) watch(ctx context.Context, stop context.CancelCauseFunc) {
	tick := time.NewTicker(gaugeInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		g.sample(ctx)
		if g.room == nil {
			continue
		}
		room, basis, err := g.room(ctx)
		if err == nil && room <= 0 {
			what := "the bases were pulled"
			if names := g.names(); names != "" {
				what = names + " built"
			}
			stop(fmt.Errorf("the filesystem of the engine's storage has no room left (%s) while %s: stopped before it runs out of space; "+
				"what was built is kept; free space there or raise the disk budget", basis, what))
			return
		}
	}
}

// check fails when the largest predicted build alone would not fit the room now.
func (g *gauge) check(ctx context.Context, services []string) error {
	if g.room == nil {
		return nil
	}
	largest := ""
	for _, s := range services {
		if g.peaks[s] > g.peaks[largest] {
			largest = s
		}
	}
	if largest == "" {
		return nil
	}
	room, basis, err := g.room(ctx)
	if err != nil || g.peaks[largest] <= room {
		return err
	}
	return fmt.Errorf("service %s: its build raised the filesystem of the engine's storage by %s last time and the disk budget leaves %s (%s): "+
		"not even this build alone fits, nothing was built; free space there or raise the disk budget", largest, size(g.peaks[largest]), size(room), basis)
}

// admit waits until service's build fits the room beside the builds running, and starts its window.
// With nothing running and no room for it, it fails: waiting would not make room.
func (g *gauge) admit(ctx context.Context, service string) error {
	waited := false
	for {
		g.sample(ctx) // the window starts from the use now
		g.mu.Lock()
		need := g.peaks[service]
		reserved, names := int64(0), g.namesLocked()
		for _, w := range g.running {
			reserved += w.need
		}
		fits, room, basis := true, int64(0), ""
		if g.room != nil && need > 0 {
			var err error
			// The room already lacks what the running builds wrote: counting their whole need
			// again holds the next build back longer than needed, never too short.
			if room, basis, err = g.room(ctx); err == nil {
				fits = reserved+need <= room
			}
		}
		if fits {
			g.running[service] = &window{start: g.usedNow, peak: g.usedNow, need: need}
			if !g.usedOK {
				g.running[service].start = -1
			}
			g.mu.Unlock()
			if waited {
				g.log("%s starts: %s of room for its %s", service, size(room), size(need))
			}
			return nil
		}
		wake := g.wake
		g.mu.Unlock()
		if len(names) == 0 {
			return fmt.Errorf("service %s: its build raised the filesystem of the engine's storage by %s last time and the disk budget leaves %s (%s): "+
				"it does not fit even alone; what was built is kept; free space there or raise the disk budget", service, size(need), size(room), basis)
		}
		if !waited {
			g.log("%s waits for room: %s building need about %s (their last peaks) and it %s, the disk budget leaves %s (%s)",
				service, strings.Join(names, ", "), size(reserved), size(need), size(room), basis)
			waited = true
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// release ends service's window and returns how far the filesystem rose above its use at the
// build's start while it ran; 0 when unmeasured. Builds beside it count in: what they wrote
// raises it, what they freed on ending lowers it.
func (g *gauge) release(ctx context.Context, service string) int64 {
	g.sample(ctx)
	g.mu.Lock()
	defer g.mu.Unlock()
	w := g.running[service]
	delete(g.running, service)
	close(g.wake)
	g.wake = make(chan struct{})
	if w == nil || w.start < 0 {
		return 0
	}
	return w.peak - w.start
}

func (g *gauge) names() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return strings.Join(g.namesLocked(), ", ")
}

func (g *gauge) namesLocked() []string {
	return slices.Sorted(maps.Keys(g.running))
}

func size(n int64) string { return units.BytesSize(float64(n)) }
