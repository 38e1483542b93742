// Package suite describes e2e suites as data: which services they build and which manifests and
// Kind config they deploy. A new suite is a new value here, not a new copy of the pipeline.
package suite

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// Suite is one e2e environment.
type Suite struct {
	Name       string   // short, lowercase; part of image tags, archive names and the cluster name
	Services   []string // directories under services/
	Manifests  string   // directory of YAML applied by the deploy phase, relative to the repo root
	KindConfig string   // Kind cluster config, relative to the repo root
	E2E        string   // Go package of the e2e tests (build tag e2e)
}

// AIAnalysis is the suite of the AIAnalysis controller and the two services it talks to.
var AIAnalysis = Suite{
	Name:       "aianalysis",
	Services:   []string{"datastorage", "holmesgpt-api", "aianalysis"},
	Manifests:  "manifests",
	KindConfig: filepath.Join("manifests", "kind", "aianalysis.yaml"),
	E2E:        "./test/e2e/aianalysis",
}

var registry = map[string]Suite{AIAnalysis.Name: AIAnalysis}

// All returns every suite, sorted by name.
func All() []Suite {
	var all []Suite
	for _, s := range registry {
		all = append(all, s)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	return all
}

// Named returns the suites named in a comma-separated list; an empty list means all of them.
func Named(list string) ([]Suite, error) {
	if strings.TrimSpace(list) == "" {
		return All(), nil
	}
	var out []Suite
	for _, name := range strings.Split(list, ",") {
		s, ok := registry[strings.TrimSpace(name)]
		if !ok {
			return nil, fmt.Errorf("unknown suite %q: known suites are %s", name, strings.Join(names(), ", "))
		}
		out = append(out, s)
	}
	return out, nil
}

func names() []string {
	var n []string
	for _, s := range All() {
		n = append(n, s.Name)
	}
	return n
}
