package pipeline

import (
	"context"
	"slices"
	"sync"

	"github.com/kindling-dev/kindling/test/infrastructure/disk"
	"github.com/kindling-dev/kindling/test/infrastructure/engine"
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
