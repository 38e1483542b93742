// Package build compiles services on the host, derives image references from the build inputs,
// and builds the images in bounded parallel through a container engine.
package build

import (
	"context"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/imageref"
)

// Image labels set on every built image.
const (
	LabelRun     = "dev.kindling.run"
	LabelSuite   = "dev.kindling.suite"
	LabelService = "dev.kindling.service"
)

// ParallelismEnv sets Options.Parallelism (see ParseParallelism).
const ParallelismEnv = "E2E_PARALLELISM"

// Service is one image of a suite and how it is built.
type Service struct {
	Name string `json:"name"`
	Spec
}

// Spec says how an image is built: from a Dockerfile, as real projects build theirs, or — for a
// Go service that also has a Host block — by compiling on the host (fast: the host's Go build
// cache) and copying the binary into the image of a small Containerfile.
type Spec struct {
	// Dockerfile is the Dockerfile (or Containerfile), relative to the repository root.
	Dockerfile string `json:"dockerfile,omitempty"`
	// Context is the build context relative to the repository root; "" is the root. Its
	// .dockerignore applies, to the build and to the input hash alike.
	Context string `json:"context,omitempty"`
	// Target is the stage to build; "" is the last.
	Target string `json:"target,omitempty"`
	// Args are build args. A value may name environment variables, ${NAME} or $NAME, which are
	// expanded when the build is planned (unset: empty).
	Args map[string]string `json:"args,omitempty"`
	// Host, when set, allows building the service on the host instead (Options.Host).
	Host *HostBuild `json:"host,omitempty"`
}

// HostBuild compiles a Go main package on the host (static, linux) and builds Containerfile with
// a context that holds only the binary, named like the service.
type HostBuild struct {
	Package       string `json:"package"`
	Containerfile string `json:"containerfile"`
}

// Build methods, as Planned.Method says.
const (
	MethodDockerfile = "dockerfile"
	MethodHost       = "host"
)

// CoverageArg is the build arg a coverage build sets (GOFLAGS=-cover), as the original system
// builds its e2e images; a Dockerfile passes it on with "ARG GOFLAGS".
const CoverageArg = "GOFLAGS"

// Options configure Plan and Images.
type Options struct {
	Engine engine.Engine
	Suite  string
	RunID  string
	// RepoRoot holds go.mod and services/.
	RepoRoot string
	// WorkDir receives the host path's build contexts: <WorkDir>/<service>/<service>.
	WorkDir string
	// Host builds the services that have a Host block on the host.
	Host bool
	// Coverage builds coverage-instrumented binaries: go build -cover on the host, the build arg
	// GOFLAGS=-cover (added to any GOFLAGS of the spec) for Dockerfiles.
	Coverage bool
	// Getenv expands the ${NAME} of build args; nil means os.Getenv.
	Getenv func(string) string
	// Used measures the used bytes of the filesystem that holds the engine's storage, for
	// Built.Footprint; nil leaves the footprint unmeasured.
	Used func(context.Context) (int64, error)
	// Room is how many bytes the builds may still add to that filesystem, measured now, and why
	// (what the disk budget leaves); nil means no budget. A build waits while its Peaks and those
	// of the builds running would not fit it together, and the builds stop when it runs out.
	Room func(context.Context) (int64, string, error)
	// BeforeBuilding, when set, runs once before anything is pulled or built, and only when an
	// image is to be built (not when all are up to date); its error stops Images.
	BeforeBuilding func(context.Context) error
	// Peaks is each service's Result.Peak of its last cold build, by service.
	Peaks map[string]int64
	// Parallelism bounds concurrent go builds and image builds; <= 0 means runtime.NumCPU().
	Parallelism int
	// Independent builds every image at once, up to Parallelism, in the suite's order: no build
	// goes first for the others to reuse its work (see Order).
	Independent bool
	// Took is how long each service's build took last time, by service: the longest of those
	// that share work goes first (see PlanOrder).
	Took map[string]time.Duration
	// Log receives progress lines; nil discards them.
	Log func(format string, args ...any)
	// Runner runs the go command; nil means engine.ExecRunner.
	Runner engine.Runner
}

func (o Options) parallelism() int {
	if o.Parallelism > 0 {
		return o.Parallelism
	}
	return runtime.NumCPU()
}

func (o Options) logf(format string, args ...any) {
	if o.Log != nil {
		o.Log(format, args...)
	}
}

func (o Options) runner() engine.Runner {
	if o.Runner != nil {
		return o.Runner
	}
	return engine.ExecRunner{}
}

// Planned is a service ready for its image build: the inputs resolved and hashed into Ref.
type Planned struct {
	Service Service
	Ref     string
	Method  string // MethodDockerfile or MethodHost
	// Dockerfile is the absolute path of the Dockerfile (the host path's Containerfile).
	Dockerfile string
	ContextDir string // absolute
	Target     string
	Args       map[string]string // expanded
	// Bases are the images the build pulls when the engine lacks them (see Dockerfile.Bases).
	Bases []string
	// Runtime is the base the image is built on (see Dockerfile.Runtime).
	Runtime string
	// Mounts are the lines of the Dockerfile's RUN --mount instructions (see Dockerfile.Mounts).
	Mounts []int
	// CacheMounts are the Dockerfile's cache mounts.
	CacheMounts []engine.CacheMount
	// Steps are the first stage's steps (see Dockerfile.Steps).
	Steps []string
}

// Result is one image build (or the decision that none was needed).
type Result struct {
	Service Service
	Ref     string
	ID      string
	// Manifest is the host platform's manifest digest where the engine's ID is a manifest or
	// an index digest (see engine.Engine.PlatformManifest), else "".
	Manifest string
	UpToDate bool
	Duration time.Duration
	// Peak is how far the filesystem of the engine's storage rose above its use at the build's
	// start while it ran, what builds beside it wrote included; 0 when unmeasured.
	Peak int64
}

// Lowercase so that "<name>" and "<suite>-<hex>" are valid image repository and tag names.
var validName = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

// imageRef is the reference of a service's image built from inputs with this digest.
func imageRef(service, suite, digest string) string {
	return "localhost/" + service + ":" + suite + "-" + digest[:12]
}

// IsBuildOf reports whether ref names a build of one of suite's services, of any inputs: what
// imageRef gives, however the runtime spells it.
func IsBuildOf(ref, suite string, services []string) bool {
	r, err := imageref.Parse(ref)
	if err != nil || r.Domain() != "localhost" || !slices.Contains(services, r.Path()) {
		return false
	}
	hash, ok := strings.CutPrefix(r.Tag(), suite+"-")
	_, err = hex.DecodeString(hash)
	return ok && len(hash) == 12 && err == nil
}

// describeFile is the build's Dockerfile, relative to root when it is inside it.
func (p Planned) describeFile(root string) string {
	if rel, err := filepath.Rel(root, p.Dockerfile); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return p.Dockerfile
}

// describe names the build's file and target for error messages.
func (p Planned) describe(root string) string {
	file := p.describeFile(root)
	if p.Method == MethodHost {
		return "host build, Containerfile " + file
	}
	return "Dockerfile " + file + ", target " + orLast(p.Target)
}

// ParseParallelism reads a value of E2E_PARALLELISM: empty means runtime.NumCPU(), otherwise a
// positive integer.
func ParseParallelism(value string) (int, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return runtime.NumCPU(), nil
	}
	n, err := strconv.Atoi(value)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s=%q is not a positive integer: set it to the number of parallel builds (e.g. 2) or unset it to use the number of CPUs (%d)",
			ParallelismEnv, value, runtime.NumCPU())
	}
	return n, nil
}
