// Package budget predicts how many bytes each phase of a run writes and on which filesystem, and
// stops a phase before it writes anything when that does not fit what the run may still use.
package budget

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	units "github.com/docker/go-units"

	"github.com/kindling-dev/kindling/test/infrastructure/disk"
)

// Env is the variable a Budget is read from.
const Env = "E2E_DISK_BUDGET"

// Margin is kept free on every filesystem, whatever the budget says; on one smaller than
// 10 GiB (a tmpfs such as a runner's /tmp) a tenth of its size.
const Margin = 1 << 30

func margin(fs disk.Filesystem) uint64 { return min(Margin, fs.Total/10) }

// Budget is how many bytes a run may add to each filesystem above what it used when the run
// started. The zero value is the default: the free space at the start minus Margin.
type Budget struct {
	Bytes   uint64  // an absolute limit
	Percent float64 // a share of the free space at the start, 0 < Percent <= 100
	Off     bool    // no check at all
}

// Parse reads "" (the default), "off", a size ("20GiB", "500MB", "12g") or a percentage ("80%").
func Parse(s string) (Budget, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "":
		return Budget{}, nil
	case "off":
		return Budget{Off: true}, nil
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || v <= 0 || v > 100 || math.IsNaN(v) {
			return Budget{}, fmt.Errorf("%s=%q: a percentage of the free space must be above 0 and at most 100", Env, s)
		}
		return Budget{Percent: v}, nil
	}
	n, err := units.RAMInBytes(s)
	if err != nil || n <= 0 {
		return Budget{}, fmt.Errorf("%s=%q: use a size such as 20GiB or 500MB, a percentage of the free space such as 80%%, or off", Env, s)
	}
	return Budget{Bytes: uint64(n)}, nil
}

func (b Budget) String() string {
	switch {
	case b.Off:
		return "off"
	case b.Bytes > 0:
		return units.BytesSize(float64(b.Bytes))
	case b.Percent > 0:
		return strconv.FormatFloat(b.Percent, 'f', -1, 64) + "% of the free space"
	}
	return "the free space minus " + units.BytesSize(Margin)
}

// Limit is how many bytes the run may add to a filesystem as it was at the run's start.
func (b Budget) Limit(start disk.Filesystem) uint64 {
	switch {
	case b.Bytes > 0:
		return b.Bytes
	case b.Percent > 0:
		return uint64(float64(start.Free) * b.Percent / 100)
	}
	return sub(start.Free, margin(start))
}

// Need is what a phase is predicted to write to the filesystem holding Place.
type Need struct {
	Place disk.Place
	Bytes uint64
	Why   string
}

// Checker compares a phase's needs with what each filesystem can still take.
type Checker struct {
	Budget Budget
	// Start is the usage when the run started; a filesystem it lacks counts from its first check.
	Start disk.Snapshot
	// Measure is disk.Measure; tests replace it.
	Measure func(context.Context, []disk.Place) (disk.Snapshot, error)
}

// Check returns an error naming phase, filesystem, need and have when the needs of a phase do not
// fit a filesystem: what is free now minus Margin, or what the budget leaves after the run's growth.
func (c *Checker) Check(ctx context.Context, phase string, needs []Need) error {
	problems, err := c.Shortfalls(ctx, phase, needs)
	if err != nil || len(problems) == 0 {
		return err
	}
	return fmt.Errorf("%s would not fit the disk budget (%s=%s), nothing written:\n  %s\n  free space there, lower the need (fewer or smaller images, E2E_PRUNE=aggressive), raise %s, or set %s=off",
		phase, Env, c.Budget, strings.Join(problems, "\n  "), Env, Env)
}

// Shortfalls says, for each filesystem whose needs do not fit, what it needs, has and why.
func (c *Checker) Shortfalls(ctx context.Context, phase string, needs []Need) ([]string, error) {
	if c.Budget.Off || len(needs) == 0 {
		return nil, nil
	}
	measure := c.Measure
	if measure == nil {
		measure = disk.Measure
	}
	type group struct {
		fs    disk.Filesystem
		bytes uint64
		why   []string
	}
	var order []string
	groups := map[string]*group{}
	for _, n := range needs {
		if n.Bytes == 0 {
			continue
		}
		snap, err := measure(ctx, []disk.Place{n.Place})
		if err != nil || len(snap.Filesystems) != 1 {
			return nil, fmt.Errorf("%s: cannot measure the filesystem of %s (%s) to check the disk budget: %v", phase, n.Place.Name, n.Place.Path, err)
		}
		fs := snap.Filesystems[0]
		k := fs.Device + "\x00" + fs.Mountpoint
		g := groups[k]
		if g == nil {
			g = &group{fs: fs}
			groups[k] = g
			order = append(order, k)
		}
		g.bytes += n.Bytes
		g.why = append(g.why, n.Place.Name+": "+n.Why)
	}
	var problems []string
	for _, k := range order {
		g := groups[k]
		have, basis := c.have(g.fs)
		if g.bytes <= have {
			continue
		}
		problems = append(problems, fmt.Sprintf("%s (%s) needs %s, has %s (%s); needed for %s",
			g.fs.Mountpoint, g.fs.Device, size(g.bytes), size(have), basis, strings.Join(g.why, "; ")))
	}
	return problems, nil
}

// Room is what the filesystem holding place can still take now, and why (naming the budget).
func (c *Checker) Room(ctx context.Context, place disk.Place) (uint64, string, error) {
	measure := c.Measure
	if measure == nil {
		measure = disk.Measure
	}
	snap, err := measure(ctx, []disk.Place{place})
	if err != nil || len(snap.Filesystems) != 1 {
		return 0, "", fmt.Errorf("cannot measure the filesystem of %s (%s) to check the disk budget: %v", place.Name, place.Path, err)
	}
	have, basis := c.have(snap.Filesystems[0])
	return have, fmt.Sprintf("%s=%s on %s: %s", Env, c.Budget, snap.Filesystems[0].Mountpoint, basis), nil
}

// have is what the filesystem can still take, and why.
func (c *Checker) have(fs disk.Filesystem) (uint64, string) {
	m := margin(fs)
	free := sub(fs.Free, m)
	basis := fmt.Sprintf("%s free minus a margin of %s", size(fs.Free), size(m))
	if disk.InMemory(fs.Fstype) {
		basis = fmt.Sprintf("a %s in memory, %s free minus a margin of %s", fs.Fstype, size(fs.Free), size(m))
	}
	start, ok := c.startOf(fs)
	if !ok {
		start = fs
	}
	limit := c.Budget.Limit(start)
	grown := sub(fs.Used, start.Used)
	if left := sub(limit, grown); left < free {
		return left, fmt.Sprintf("budget %s, of which the run used %s", size(limit), size(grown))
	}
	return free, basis
}

func (c *Checker) startOf(fs disk.Filesystem) (disk.Filesystem, bool) {
	for _, f := range c.Start.Filesystems {
		if f.Device == fs.Device && f.Mountpoint == fs.Mountpoint {
			return f, true
		}
	}
	return disk.Filesystem{}, false
}

func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

func size(n uint64) string { return units.BytesSize(float64(n)) }
