package pipeline

import (
	"context"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/coverage"
	"github.com/kindling-dev/kindling/test/infrastructure/disk"
	"github.com/kindling-dev/kindling/test/infrastructure/e2etest"
	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/state"
	"github.com/kindling-dev/kindling/test/infrastructure/summary"
)

// detectedEngine owns the run's container engine: detected once, by whichever phase asks first
// (with E2E_OVERLAP the build and the cluster may ask at once), with what its info says.
type detectedEngine struct {
	mu   sync.Mutex
	eng  engine.Engine
	info engine.Info
}

// get returns the engine, detecting it with detect the first time; a failed detection is tried
// again by the next caller.
func (d *detectedEngine) get(ctx context.Context, detect func(context.Context) (engine.Engine, engine.Info, error)) (engine.Engine, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.eng != nil {
		return d.eng, nil
	}
	eng, info, err := detect(ctx)
	if err != nil {
		return nil, err
	}
	d.eng, d.info = eng, info
	return eng, nil
}

// set stands in an engine already detected (tests, a process that knows it).
func (d *detectedEngine) set(eng engine.Engine, info engine.Info) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.eng, d.info = eng, info
}

// known returns the engine and its info once detected; ok is false before.
func (d *detectedEngine) known() (eng engine.Engine, info engine.Info, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.eng, d.info, d.eng != nil
}

// role is what a place the run measures holds.
type role int

const (
	roleGraphRoot    role = iota // the engine's graph root (or Docker's data root with the containerd store)
	roleContent                  // containerd's content store: compressed blobs
	roleSnapshots                // containerd's snapshots: unpacked layers
	roleOtherStorage             // another directory of the engine's storage
	roleNode                     // a Kind node's /var
	roleRegistry                 // the suite's local registry's volume
)

// placeSet owns the places the run measures beyond its temp and archive dirs, each with its role,
// and the directories measured with du at each checkpoint. Both grow as the run learns where its
// bytes live: the engine's storage, then the nodes', the registry's.
type placeSet struct {
	mu     sync.Mutex
	places []rolePlace
	parts  []disk.Part
}

type rolePlace struct {
	disk.Place
	role role
}

func (s *placeSet) add(r role, places ...disk.Place) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range places {
		if !slices.ContainsFunc(s.places, func(have rolePlace) bool { return have.Place == p }) {
			s.places = append(s.places, rolePlace{Place: p, role: r})
		}
	}
}

// all are the places, in the order they were learned.
func (s *placeSet) all() []disk.Place {
	return s.with()
}

// with are the places of these roles (every place when none is given), in the order learned.
func (s *placeSet) with(roles ...role) []disk.Place {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []disk.Place
	for _, p := range s.places {
		if len(roles) == 0 || slices.Contains(roles, p.role) {
			out = append(out, p.Place)
		}
	}
	return out
}

func (s *placeSet) addParts(parts ...disk.Part) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.parts = appendMissing(s.parts, parts...)
}

func (s *placeSet) partList() []disk.Part {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.parts)
}

// console owns the run's output: lines that phases running beside each other (E2E_OVERLAP) write
// at once come out whole.
type console struct {
	mu sync.Mutex
	w  io.Writer
}

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.w.Write(p)
}

// runReport owns what the run's summary says: the run's id, each phase's time, the tests' counts
// and coverage, what the builds added. Phases add to it as they end; it outlives down, which
// forgets the state.
type runReport struct {
	mu        sync.Mutex
	runID     string
	phases    []phaseTime
	tests     *e2etest.Counts
	coverage  []coverage.Result
	footprint *state.Footprint
}

func (p *runReport) began(runID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.runID = runID
}

func (p *runReport) ended(phase string, took time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phases = append(p.phases, phaseTime{Name: phase, Duration: took})
}

func (p *runReport) tested(t Tested) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tests, p.coverage = &t.Counts, t.Coverage
}

func (p *runReport) built(f *state.Footprint) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.footprint = f
}

func (p *runReport) builtFootprint() *state.Footprint {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.footprint
}

// fill copies the report into a summary.
func (p *runReport) fill(s *summary.Run) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s.RunID, s.Tests, s.Coverage, s.Footprint = p.runID, p.tests, p.coverage, p.footprint
	for _, ph := range p.phases {
		s.Phases = append(s.Phases, summary.Phase{Name: ph.Name, Duration: ph.Duration})
	}
}

// lessons owns what each phase will learn from its own checkpoint, once it succeeded: a create's
// or a load's growth is only known when the checkpoint after it is taken.
type lessons struct {
	mu      sync.Mutex
	byPhase map[string]func(disk.Checkpoint)
}

func (l *lessons) after(phase string, learn func(disk.Checkpoint)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byPhase == nil {
		l.byPhase = map[string]func(disk.Checkpoint){}
	}
	l.byPhase[phase] = learn
}

// take returns what phase will learn, once.
func (l *lessons) take(phase string) func(disk.Checkpoint) {
	l.mu.Lock()
	defer l.mu.Unlock()
	learn := l.byPhase[phase]
	delete(l.byPhase, phase)
	return learn
}

// testBinary owns the e2e tests' compilation, started once while the cluster is created.
type testBinary struct {
	mu        sync.Mutex
	compiling *e2etest.Compilation
}

func (b *testBinary) start(compile func() *e2etest.Compilation) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.compiling == nil {
		b.compiling = compile()
	}
}

func (b *testBinary) started() *e2etest.Compilation {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.compiling
}
