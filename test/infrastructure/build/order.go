package build

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/engine"
)

// Order is how Images runs the builds it has to do: First (an index into the planned builds,
// -1 for none) alone, then the others at most Parallelism at a time.
//
// Separate builds share no work in flight: two podman builds, or two BuildKit sessions racing,
// each run the same layers and compile the same packages into a cache mount they share. So
// when builds share work — a cache mount, or the first instructions of their first stage on
// the same context — the one that does the most of it goes first and alone, and the others
// reuse its layers and compile caches.
type Order struct {
	First int
	// Why says what First shares with the others; "" when there is no First.
	Why string
}

// Shared is what two planned builds have in common: cache mount ids, and how many leading
// steps of their first stage (FROM included) are the same on the same context and args.
type Shared struct {
	CacheMounts []string
	Steps       int
}

func (s Shared) any() bool { return len(s.CacheMounts) > 0 || s.Steps > 1 }

// Share reports what a and b share.
func Share(a, b Planned) Shared {
	var s Shared
	for _, m := range a.CacheMounts {
		if slices.ContainsFunc(b.CacheMounts, func(n engine.CacheMount) bool { return n.ID == m.ID }) {
			s.CacheMounts = append(s.CacheMounts, m.ID)
		}
	}
	if a.Method == MethodDockerfile && b.Method == MethodDockerfile && a.ContextDir == b.ContextDir && maps.Equal(a.Args, b.Args) {
		for s.Steps < min(len(a.Steps), len(b.Steps)) && a.Steps[s.Steps] == b.Steps[s.Steps] {
			s.Steps++
		}
	}
	return s
}

// PlanOrder chooses the order of the builds todo (indices into planned): when one shares work
// with every other, the one that took longest last time (took, by service; else the first in
// the suite) goes first. With one build at a time, or nothing shared, there is no First.
func PlanOrder(planned []Planned, todo []int, parallelism int, took map[string]time.Duration) Order {
	if len(todo) < 2 || parallelism < 2 {
		return Order{First: -1}
	}
	candidates := slices.Clone(todo)
	// Longest first: what the others share with it is then done, and nothing is done twice.
	slices.SortStableFunc(candidates, func(i, j int) int {
		return cmp.Compare(took[planned[j].Service.Name], took[planned[i].Service.Name])
	})
	for _, first := range candidates {
		var shares []string // what first shares with each other build, in todo's order
		byShare := map[string][]string{}
		for _, other := range todo {
			if other == first {
				continue
			}
			s := Share(planned[first], planned[other])
			if !s.any() {
				shares = nil
				break
			}
			d := s.String()
			if byShare[d] == nil {
				shares = append(shares, d)
			}
			byShare[d] = append(byShare[d], planned[other].Service.Name)
		}
		if shares != nil {
			var why []string
			for _, d := range shares {
				why = append(why, "with "+strings.Join(byShare[d], ", ")+": "+d)
			}
			return Order{First: first, Why: strings.Join(why, "; ")}
		}
	}
	return Order{First: -1}
}

// String says what is shared: "cache mounts a, b and its first 5 steps".
func (s Shared) String() string {
	var parts []string
	if len(s.CacheMounts) > 0 {
		parts = append(parts, "cache mounts "+strings.Join(s.CacheMounts, ", "))
	}
	if s.Steps > 1 {
		parts = append(parts, fmt.Sprintf("its first %d steps", s.Steps))
	}
	return strings.Join(parts, " and ")
}
