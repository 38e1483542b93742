// Package suite reads e2e suites from their files: one YAML file each under test/suites/, naming
// the services and how each is built, the manifests, the Kind config, the e2e package, the
// namespace and the host ports. A new suite is a new file (plus its manifests and tests), not new
// Go code. Every file is read and checked at start, all problems in one error.
package suite

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"

	"github.com/kindling-dev/kindling/test/infrastructure/build"
)

// Dir holds the suite files, relative to the repository root.
const Dir = "test/suites"

// Suite is one e2e environment.
type Suite struct {
	// Name is short and lowercase: part of image tags, archive names and the cluster name.
	Name string `json:"name"`
	// Namespace is where the suite's workloads run (diagnostics, coverage, the e2e tests).
	Namespace string `json:"namespace"`
	// Manifests is the directory of YAML the deploy phase applies, relative to the repository root.
	Manifests string `json:"manifests"`
	// KindConfig is the Kind cluster config, relative to the repository root.
	KindConfig string `json:"kindConfig"`
	// E2E is the Go package of the e2e tests (build tag e2e), e.g. ./test/e2e/aianalysis.
	E2E string `json:"e2e"`
	// HostPorts name the ports the Kind config maps to the host. The e2e tests get each as
	// <NAME>_URL=http://127.0.0.1:<port>; no two suites may share one, so suites run side by side.
	HostPorts map[string]int32 `json:"hostPorts,omitempty"`
	// Services are the images the suite builds, and how.
	Services []build.Service `json:"services"`

	// File is the suite file, relative to the repository root.
	File string `json:"-"`
}

// ServiceNames lists the suite's services in order.
func (s Suite) ServiceNames() []string {
	var names []string
	for _, svc := range s.Services {
		names = append(names, svc.Name)
	}
	return names
}

// E2EEnv is the environment the e2e tests get besides KUBECONFIG: the namespace as E2E_NAMESPACE
// and each host port as <NAME>_URL.
func (s Suite) E2EEnv() []string {
	env := []string{"E2E_NAMESPACE=" + s.Namespace}
	urls := s.URLs()
	for _, name := range slices.Sorted(maps.Keys(urls)) {
		env = append(env, name+"="+urls[name])
	}
	return env
}

// URLs are the host ports as the e2e tests get them: <NAME>_URL → http://127.0.0.1:<port>.
func (s Suite) URLs() map[string]string {
	urls := make(map[string]string, len(s.HostPorts))
	for name, port := range s.HostPorts {
		urls[envName(name)+"_URL"] = fmt.Sprintf("http://127.0.0.1:%d", port)
	}
	return urls
}

func envName(name string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
}

// LoadAll reads and checks every suite file in root/test/suites. Problems in any file, and
// problems between files (two suites of one name, one host port in two suites), come back
// together in one error that names each file.
func LoadAll(root string) ([]Suite, error) {
	files, err := filepath.Glob(filepath.Join(root, Dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no suite files in %s: describe a suite in %s/<name>.yaml (see README, \"Suites\")", filepath.Join(root, Dir), Dir)
	}
	var suites []Suite
	var problems []string
	for _, file := range files {
		s, err := Load(root, file)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		suites = append(suites, s)
	}
	problems = append(problems, conflicts(suites)...)
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	sort.Slice(suites, func(i, j int) bool { return suites[i].Name < suites[j].Name })
	return suites, nil
}

// conflicts finds what two suites may not share: the name and host ports.
func conflicts(suites []Suite) []string {
	var problems []string
	names := map[string]string{}
	ports := map[int32]string{}
	for _, s := range suites {
		if other, ok := names[s.Name]; ok {
			problems = append(problems, fmt.Sprintf("suite files %s and %s both name suite %q: rename one", other, s.File, s.Name))
		}
		names[s.Name] = s.File
		for _, name := range slices.Sorted(maps.Keys(s.HostPorts)) {
			port := s.HostPorts[name]
			if other, ok := ports[port]; ok {
				problems = append(problems, fmt.Sprintf("%s: host port %d (%s) is also used by %s: suites must use distinct host ports to run side by side", s.File, port, name, other))
			}
			ports[port] = fmt.Sprintf("suite %s (%s)", s.Name, s.File)
		}
	}
	return problems
}

var (
	validName      = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)
	validGoPackage = regexp.MustCompile(`^\./[A-Za-z0-9_./-]+$`)
)

// Load reads and checks one suite file; every problem is in the one error, prefixed by the file.
func Load(root, file string) (Suite, error) {
	rel, err := filepath.Rel(root, file)
	if err != nil || strings.HasPrefix(rel, "..") {
		rel = file
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return Suite{}, fmt.Errorf("suite file %s: %w", rel, err)
	}
	var s Suite
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		return Suite{}, fmt.Errorf("suite file %s: %v", rel, err)
	}
	s.File = rel
	if problems := s.check(root); len(problems) > 0 {
		return Suite{}, fmt.Errorf("suite file %s (suite %q):\n  %s", rel, s.Name, strings.Join(problems, "\n  "))
	}
	return s, nil
}

func (s Suite) check(root string) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	exists := func(field, path string, dir bool) bool {
		if path == "" {
			bad("%s is required", field)
			return false
		}
		if filepath.IsAbs(path) || strings.HasPrefix(filepath.Clean(path), "..") {
			bad("%s %q must be relative to the repository root and inside it", field, path)
			return false
		}
		info, err := os.Stat(filepath.Join(root, path))
		switch {
		case err != nil:
			bad("%s %s: %v", field, path, errors.Unwrap(err))
		case dir && !info.IsDir():
			bad("%s %s is not a directory", field, path)
		case !dir && info.IsDir():
			bad("%s %s is a directory, not a file", field, path)
		default:
			return true
		}
		return false
	}

	if !validName.MatchString(s.Name) {
		bad("name %q: use lowercase letters and digits separated by '.', '_' or '-'", s.Name)
	}
	for _, msg := range validation.IsDNS1123Label(s.Namespace) {
		bad("namespace %q: %s", s.Namespace, msg)
	}
	if exists("manifests", s.Manifests, true) {
		yamls, _ := filepath.Glob(filepath.Join(root, s.Manifests, "*.yaml"))
		if len(yamls) == 0 {
			bad("manifests %s holds no *.yaml file", s.Manifests)
		}
	}
	var kind v1alpha4.Cluster
	if exists("kindConfig", s.KindConfig, false) {
		raw, _ := os.ReadFile(filepath.Join(root, s.KindConfig))
		if err := yaml.UnmarshalStrict(raw, &kind); err != nil {
			bad("kindConfig %s is not a Kind v1alpha4 Cluster: %v", s.KindConfig, err)
		}
	}
	if !validGoPackage.MatchString(s.E2E) {
		bad("e2e %q: name the Go package from the repository root, like ./test/e2e/%s", s.E2E, s.Name)
	} else {
		exists("e2e", strings.TrimPrefix(s.E2E, "./"), true)
	}
	mapped := map[int32]bool{}
	for _, n := range kind.Nodes {
		for _, m := range n.ExtraPortMappings {
			mapped[m.HostPort] = true
		}
	}
	seenPorts := map[int32]string{}
	for _, name := range slices.Sorted(maps.Keys(s.HostPorts)) {
		port := s.HostPorts[name]
		switch {
		case !validName.MatchString(name):
			bad("hostPorts: %q is not a valid name (lowercase letters, digits, '-')", name)
		case port < 1 || port > 65535:
			bad("hostPorts: %s: %d is not a port", name, port)
		case seenPorts[port] != "":
			bad("hostPorts: %s and %s both use host port %d", seenPorts[port], name, port)
		case s.KindConfig != "" && !mapped[port]:
			bad("hostPorts: %s: the Kind config %s maps no node port to host port %d; add an extraPortMappings entry with hostPort: %d", name, s.KindConfig, port, port)
		}
		seenPorts[port] = name
	}
	if len(s.Services) == 0 {
		bad("services: a suite builds at least one service")
	}
	seen := map[string]bool{}
	for i, svc := range s.Services {
		where := fmt.Sprintf("services[%d] (%s)", i, svc.Name)
		if !validName.MatchString(svc.Name) {
			bad("%s: name %q: use lowercase letters and digits separated by '.', '_' or '-'", where, svc.Name)
		}
		if seen[svc.Name] {
			bad("%s: service %s is listed twice", where, svc.Name)
		}
		seen[svc.Name] = true
		if svc.Dockerfile == "" && svc.Host == nil {
			bad("%s: give a dockerfile (or a host build)", where)
		}
		if svc.Dockerfile != "" {
			exists(where+": dockerfile", svc.Dockerfile, false)
		}
		if svc.Context != "" {
			exists(where+": context", svc.Context, true)
		}
		if h := svc.Host; h != nil {
			if !validGoPackage.MatchString(h.Package) {
				bad("%s: host.package %q: name the main package from the repository root, like ./services/%s", where, h.Package, svc.Name)
			} else {
				exists(where+": host.package", strings.TrimPrefix(h.Package, "./"), true)
			}
			exists(where+": host.containerfile", h.Containerfile, false)
		}
	}
	return problems
}

// Select returns the suites named in a comma-separated list; an empty list means all of them.
func Select(all []Suite, list string) ([]Suite, error) {
	if strings.TrimSpace(list) == "" {
		return all, nil
	}
	var out []Suite
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(all, func(s Suite) bool { return s.Name == name })
		if i < 0 {
			var known []string
			for _, s := range all {
				known = append(known, s.Name)
			}
			return nil, fmt.Errorf("unknown suite %q: the suites in %s are %s", name, Dir, strings.Join(known, ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}
