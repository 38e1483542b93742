// Package build compiles services on the host, derives image references from the build inputs,
// and builds the images in bounded parallel through a container engine.
package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/util/wait"

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

// Plan resolves every service's build inputs and derives its reference
// "localhost/<service>:<suite>-<12 hex>" from a sha256 over them, so identical inputs give the
// identical reference and no rebuild:
//   - Dockerfile: the Dockerfile, target, expanded build args and the context's files after
//     .dockerignore. The Dockerfile is parsed first: a syntax error or an unknown target stage
//     fails here, before any engine runs.
//   - host (Options.Host and a Host block): the binary, compiled on the host (static,
//     linux/GOARCH, trimmed, at most Parallelism at a time) into <WorkDir>/<service>/<service>,
//     and the Containerfile.
func Plan(ctx context.Context, opts Options, services []Service) ([]Planned, error) {
	if !validName.MatchString(opts.Suite) {
		return nil, fmt.Errorf("plan images: suite %q must be lowercase letters and digits separated by '.', '_' or '-'", opts.Suite)
	}
	if opts.RepoRoot == "" || opts.WorkDir == "" {
		return nil, fmt.Errorf("plan images: RepoRoot and WorkDir are required")
	}
	// go build runs in RepoRoot: make both paths independent of the working directory.
	var err error
	if opts.RepoRoot, err = filepath.Abs(opts.RepoRoot); err != nil {
		return nil, fmt.Errorf("plan images: %w", err)
	}
	if opts.WorkDir, err = filepath.Abs(opts.WorkDir); err != nil {
		return nil, fmt.Errorf("plan images: %w", err)
	}
	seen := map[string]bool{}
	contexts := map[string]string{} // context dir → digest, hashed once for all its services
	for _, s := range services {
		if !validName.MatchString(s.Name) {
			return nil, fmt.Errorf("plan images: service name %q must be lowercase letters and digits separated by '.', '_' or '-'", s.Name)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("plan images: service %s is listed twice", s.Name)
		}
		seen[s.Name] = true
		if opts.method(s) == MethodDockerfile {
			contexts[filepath.Join(opts.RepoRoot, s.Context)] = ""
		}
	}
	for dir := range contexts {
		if contexts[dir], err = ContextDigest(dir); err != nil {
			return nil, fmt.Errorf("plan images: %w", err)
		}
	}
	planned := make([]Planned, len(services))
	group, ctx := errgroup.WithContext(ctx)
	group.SetLimit(opts.parallelism())
	for i, s := range services {
		group.Go(func() error {
			var err error
			if opts.method(s) == MethodHost {
				planned[i], err = planHost(ctx, opts, s)
			} else {
				planned[i], err = planDockerfile(opts, s, contexts)
			}
			return err
		})
	}
	if err := group.Wait(); err != nil {
		return nil, err
	}
	return planned, nil
}

func (o Options) method(s Service) string {
	if o.Host && s.Host != nil {
		return MethodHost
	}
	return MethodDockerfile
}

func planDockerfile(opts Options, s Service, contexts map[string]string) (Planned, error) {
	if s.Dockerfile == "" {
		return Planned{}, fmt.Errorf("service %s has no dockerfile to build from", s.Name)
	}
	path := filepath.Join(opts.RepoRoot, s.Dockerfile)
	data, err := os.ReadFile(path)
	if err != nil {
		return Planned{}, fmt.Errorf("service %s: read Dockerfile: %w", s.Name, err)
	}
	args := opts.expandArgs(s.Args)
	df, err := ParseDockerfile(path, s.Target, args)
	if err != nil {
		return Planned{}, fmt.Errorf("service %s: %w", s.Name, err)
	}
	contextDir := filepath.Join(opts.RepoRoot, s.Context)
	digest := dockerfileDigest(data, s.Target, args, contexts[contextDir])
	ref := imageRef(s.Name, opts.Suite, digest)
	opts.logf("%s: image %s (%s, target %s)", s.Name, ref, s.Dockerfile, orLast(s.Target))
	return Planned{Service: s, Ref: ref, Method: MethodDockerfile, Dockerfile: path, ContextDir: contextDir,
		Target: s.Target, Args: args, Bases: df.Bases, Runtime: df.Runtime, Mounts: df.Mounts, CacheMounts: df.CacheMounts, Steps: df.Steps}, nil
}

func orLast(target string) string {
	if target == "" {
		return "the last stage"
	}
	return target
}

// expandArgs resolves the environment references of build args and adds the coverage flag.
func (o Options) expandArgs(args map[string]string) map[string]string {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	out := map[string]string{}
	for k, v := range args {
		out[k] = os.Expand(v, getenv)
	}
	if o.Coverage {
		out[CoverageArg] = strings.TrimSpace(out[CoverageArg] + " -cover")
	}
	return out
}

func planHost(ctx context.Context, opts Options, s Service) (Planned, error) {
	start := time.Now()
	containerfile := filepath.Join(opts.RepoRoot, s.Host.Containerfile)
	containerfileBytes, err := os.ReadFile(containerfile)
	if err != nil {
		return Planned{}, fmt.Errorf("service %s: read Containerfile of the host build: %w", s.Name, err)
	}
	contextDir := filepath.Join(opts.WorkDir, s.Name)
	// The build context holds the binary and nothing else.
	if err := os.RemoveAll(contextDir); err != nil {
		return Planned{}, fmt.Errorf("service %s: clean build context: %w", s.Name, err)
	}
	if err := os.MkdirAll(contextDir, 0o755); err != nil {
		return Planned{}, fmt.Errorf("service %s: create build context: %w", s.Name, err)
	}
	binaryPath := filepath.Join(contextDir, s.Name)
	if err := goBuild(ctx, opts, s, binaryPath); err != nil {
		return Planned{}, err
	}
	digest, err := inputDigest(binaryPath, containerfileBytes)
	if err != nil {
		return Planned{}, fmt.Errorf("service %s: hash build inputs: %w", s.Name, err)
	}
	ref := imageRef(s.Name, opts.Suite, digest)
	opts.logf("%s: compiled on the host in %s, image %s", s.Name, time.Since(start).Round(time.Millisecond), ref)
	df, err := ParseDockerfile(containerfile, "", nil)
	if err != nil {
		return Planned{}, fmt.Errorf("service %s: %w", s.Name, err)
	}
	return Planned{Service: s, Ref: ref, Method: MethodHost, Dockerfile: containerfile, ContextDir: contextDir, Bases: df.Bases, Runtime: df.Runtime}, nil
}

func goBuild(ctx context.Context, opts Options, s Service, output string) error {
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w"}
	if opts.Coverage {
		args = append(args, "-cover")
	}
	args = append(args, "-o", output, s.Host.Package)
	log := engine.NewTailBuffer(64 << 10)
	err := opts.runner().Run(ctx, engine.Cmd{
		Name:   "go",
		Args:   args,
		Dir:    opts.RepoRoot,
		Env:    []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + runtime.GOARCH},
		Stdout: log,
		Stderr: log,
	})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("service %s: go build %s: interrupted: %w", s.Name, s.Host.Package, ctx.Err())
		}
		return fmt.Errorf("service %s: go build %s failed: %w; fix the compile errors below and retry:\n%s",
			s.Name, s.Host.Package, err, engine.LastLines(log.String(), 20))
	}
	return nil
}

// inputDigest hashes the host path's inputs: the binary and the Containerfile.
func inputDigest(binaryPath string, containerfile []byte) (string, error) {
	info, err := os.Stat(binaryPath)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if err := writeFile(h, binaryPath, info.Size()); err != nil {
		return "", err
	}
	writeField(h, containerfile)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Built is what Images did: the images, and what their builds left in the engine beside them.
type Built struct {
	Results []Result
	// Pulled are the base images pulled for the builds: named by a FROM line, absent before.
	Pulled []Base
	// Intermediate are the IDs of the untagged images that appeared during the builds: their
	// stages and layer cache. A build of another run at the same time may have added some.
	Intermediate []string
	// BuildCache are the IDs of the BuildKit build cache records that appeared during the
	// builds (BuildKit leaves no intermediate images: this is its layer cache), with the
	// same caveat; BuildCacheBytes is what buildx du says they hold.
	BuildCache      []string
	BuildCacheBytes int64
	// CacheMounts are the cache mounts the builds used (Go's module and build caches): buildah
	// keeps them in directories of its own, BuildKit as build cache records.
	CacheMounts []engine.CacheMount
	// WarmCaches says that compile caches of those mounts were there before the builds (kept
	// by an earlier run): the builds were warm.
	WarmCaches bool
	// Footprint is what the pulls and builds added to the engine's filesystem.
	Footprint Footprint
	// ImageBytes is what the suite's images hold with the layers they share counted once (about
	// the size of an archive of them); 0 when unknown.
	ImageBytes int64
}

// Base is a base or builder image as the engine names it.
type Base struct {
	Ref string `json:"ref"`
	ID  string `json:"id"`
}

// Footprint splits the bytes a build added to the filesystem holding the engine's storage:
// PulledBases is that filesystem's growth across the pulls; SuiteImages is the built images' own
// layers (each image's size less its runtime base's, which they share); BuildCache is the rest
// of the growth across the builds (intermediate stages, layer cache). Measured is false when
// nothing was built or no measurement was possible.
type Footprint struct {
	PulledBases int64 `json:"pulledBases"`
	BuildCache  int64 `json:"buildCache"`
	SuiteImages int64 `json:"suiteImages"`
	Measured    bool  `json:"measured"`
}

// Images builds the planned images, at most Parallelism at a time, skipping those the engine
// already has under their reference ("up to date": the reference encodes the inputs, so the
// image's run label names the run that first built it). New images get the labels
// dev.kindling.run, dev.kindling.suite and dev.kindling.service. Results are in input order.
//
// Before building, it pulls the base images the builds need and the engine lacks, so an
// unpullable base fails first and by name. It records what was pulled and what the builds left
// (Built.Pulled, Built.Intermediate, Built.Footprint), so a scoped prune can remove exactly that.
func Images(ctx context.Context, opts Options, planned []Planned) (Built, error) {
	if opts.Engine == nil {
		return Built{}, fmt.Errorf("build images: no container engine (Options.Engine)")
	}
	if opts.RunID == "" {
		return Built{}, fmt.Errorf("build images: RunID is required for the %s label", LabelRun)
	}
	if err := checkBuilder(ctx, opts, planned); err != nil {
		return Built{}, err
	}
	var todo []Planned
	var todoIdx []int
	for i, p := range planned {
		_, found, err := opts.Engine.ImageID(ctx, p.Ref)
		if err != nil {
			return Built{}, fmt.Errorf("service %s: %w", p.Service.Name, err)
		}
		if !found {
			todo = append(todo, p)
			todoIdx = append(todoIdx, i)
		}
	}
	order := Order{First: -1}
	if !opts.Independent {
		order = PlanOrder(planned, todoIdx, opts.parallelism(), opts.Took)
	}
	out := Built{Results: make([]Result, len(planned))}
	var mounts []engine.CacheMount
	for _, p := range todo {
		for _, m := range p.CacheMounts {
			if !slices.Contains(mounts, m) {
				mounts = append(mounts, m)
			}
		}
	}
	if len(mounts) > 0 {
		caches, err := opts.Engine.CompileCaches(ctx, mounts, nil)
		if err != nil {
			opts.logf("could not look for the compile caches (%v): building as if they were not there", err)
		}
		out.WarmCaches = len(caches) > 0
	}
	if order.First >= 0 && out.WarmCaches {
		// What the first would do for the others is done: building it alone would only wait.
		opts.logf("the compile caches of %s are there from an earlier run: every build at once", planned[order.First].Service.Name)
		order = Order{First: -1}
	}
	gauge := newGauge(opts)
	building := map[int]bool{}
	for _, i := range todoIdx {
		building[i] = true
	}
	buildOne := func(ctx context.Context, i int) error {
		p := planned[i]
		if !building[i] {
			r, err := buildImage(ctx, opts, p)
			out.Results[i] = r
			return err
		}
		if err := gauge.admit(ctx, p.Service.Name); err != nil {
			return err
		}
		r, err := buildImage(ctx, opts, p)
		r.Peak = gauge.release(context.WithoutCancel(ctx), p.Service.Name)
		out.Results[i] = r
		return err
	}
	build := func(ctx context.Context) error {
		if order.First >= 0 {
			opts.logf("%s builds first, alone, and the others reuse what it shares (%s); then %d at a time",
				planned[order.First].Service.Name, order.Why, opts.parallelism())
			if err := buildOne(ctx, order.First); err != nil {
				return err
			}
		}
		group, ctx := errgroup.WithContext(ctx)
		group.SetLimit(opts.parallelism())
		for i := range planned {
			if i == order.First {
				continue
			}
			group.Go(func() error { return buildOne(ctx, i) })
		}
		return group.Wait()
	}
	if len(todo) == 0 {
		if err := build(ctx); err != nil {
			return out, err
		}
		_, out.ImageBytes, _ = imageBytes(ctx, opts.Engine, planned)
		return out, nil
	}
	out.CacheMounts = mounts
	var names []string
	for _, p := range todo {
		names = append(names, p.Service.Name)
	}
	if err := gauge.check(ctx, names); err != nil {
		return out, err
	}
	// The gauge stops the pulls and builds when the disk budget runs out.
	outer := ctx
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	go gauge.watch(ctx, stop)
	stopped := func(err error) error {
		if cause := context.Cause(ctx); err != nil && outer.Err() == nil && cause != nil && cause != context.Canceled {
			return cause
		}
		return err
	}

	before, err := opts.Engine.AllImageIDs(ctx)
	if err != nil {
		return out, err
	}
	cacheBefore, err := opts.Engine.BuildCache(ctx)
	if err != nil {
		return out, err
	}
	used0, measured := opts.used(ctx)
	pulled, pullErr := pullBases(ctx, opts, todo)
	out.Pulled = pulled
	if pullErr != nil {
		return out, stopped(pullErr)
	}
	used1, ok1 := opts.used(ctx)
	working, workingErr := opts.Engine.BuildContainers(ctx)
	buildErr := stopped(build(ctx))
	if ctx.Err() != nil && workingErr == nil {
		stopInterrupted(context.WithoutCancel(ctx), opts, working)
	}
	used2, ok2 := opts.used(outer)

	// Also after a failed build: what it left is the run's to prune.
	after, err := opts.Engine.AllImageIDs(context.WithoutCancel(ctx))
	if err != nil {
		return out, errors.Join(buildErr, err)
	}
	known := map[string]bool{}
	for _, id := range before {
		known[id] = true
	}
	for _, r := range out.Results {
		known[r.ID] = true
	}
	for _, b := range pulled {
		known[b.ID] = true
	}
	for _, id := range after {
		if !known[id] {
			out.Intermediate = append(out.Intermediate, id)
		}
	}
	cacheAfter, err := opts.Engine.BuildCache(context.WithoutCancel(ctx))
	if err != nil {
		return out, errors.Join(buildErr, err)
	}
	for _, rec := range cacheAfter {
		if !slices.ContainsFunc(cacheBefore, func(b engine.CacheRecord) bool { return b.ID == rec.ID }) {
			out.BuildCache = append(out.BuildCache, rec.ID)
			out.BuildCacheBytes += rec.Size
		}
	}
	if buildErr != nil {
		return out, buildErr
	}
	if measured && ok1 && ok2 {
		own, err := ownBytes(ctx, opts.Engine, todo)
		if err == nil {
			out.Footprint = Footprint{PulledBases: used1 - used0, SuiteImages: own, BuildCache: used2 - used1 - own, Measured: true}
		}
	}
	_, out.ImageBytes, _ = imageBytes(ctx, opts.Engine, planned)
	return out, nil
}

// stopInterrupted ends what the interrupted builds left running: the working containers that were
// not there before (the builder's, podman's), with the RUN steps still running in them.
func stopInterrupted(ctx context.Context, opts Options, before []string) {
	now, err := opts.Engine.BuildContainers(ctx)
	if err != nil {
		opts.logf("could not look for what the interrupted builds left running: %v", err)
		return
	}
	var left []string
	for _, id := range now {
		if !slices.Contains(before, id) {
			left = append(left, id)
		}
	}
	if len(left) == 0 {
		return
	}
	if err := opts.Engine.StopBuildContainers(ctx, left); err != nil {
		opts.logf("could not stop the %d working containers the interrupted builds left: %v; see `%s ps --all --external`", len(left), err, opts.Engine.Name())
		return
	}
	opts.logf("stopped the %d working containers the interrupted builds left, with the steps running in them", len(left))
}

func (o Options) used(ctx context.Context) (int64, bool) {
	if o.Used == nil {
		return 0, false
	}
	n, err := o.Used(ctx)
	return n, err == nil
}

// pullBases pulls the bases of the planned builds that the engine lacks, at most Parallelism at
// a time, and returns those it pulled.
func pullBases(ctx context.Context, opts Options, planned []Planned) ([]Base, error) {
	users := map[string][]string{} // base → the services whose Dockerfiles name it
	var bases []string
	for _, p := range planned {
		for _, ref := range p.Bases {
			if users[ref] == nil {
				bases = append(bases, ref)
			}
			users[ref] = append(users[ref], p.Service.Name+" ("+p.describe(opts.RepoRoot)+")")
		}
	}
	var missing []string
	for _, ref := range bases {
		_, found, err := opts.Engine.ImageID(ctx, ref)
		if err != nil {
			return nil, err
		}
		if !found {
			missing = append(missing, ref)
		}
	}
	pulled := make([]Base, len(missing))
	group, gctx := errgroup.WithContext(ctx)
	group.SetLimit(opts.parallelism())
	for i, ref := range missing {
		group.Go(func() error {
			start := time.Now()
			if err := opts.Engine.Pull(gctx, ref); err != nil {
				return fmt.Errorf("base image %s of service %s: %w", ref, strings.Join(users[ref], ", service "), err)
			}
			id, found, err := opts.Engine.ImageID(gctx, ref)
			if err != nil || !found {
				return fmt.Errorf("base image %s: pulled, but %s does not list it (%v)", ref, opts.Engine.Name(), err)
			}
			pulled[i] = Base{Ref: ref, ID: id}
			opts.logf("pulled %s in %s", ref, time.Since(start).Round(time.Millisecond))
			return nil
		})
	}
	err := group.Wait()
	// What was pulled before a failure is still the run's.
	return slices.DeleteFunc(pulled, func(b Base) bool { return b.Ref == "" }), err
}

// ownBytes sums the built images' sizes less their runtime bases': the bytes only they hold.
func ownBytes(ctx context.Context, eng engine.Engine, built []Planned) (int64, error) {
	own, _, err := imageBytes(ctx, eng, built)
	return own, err
}

// imageBytes is what the planned images hold: own, their own layers (each image's size less its
// runtime base's), and unique, the images with the layers they share counted once (each distinct
// runtime base once, plus own), about the size of an archive of them all.
func imageBytes(ctx context.Context, eng engine.Engine, planned []Planned) (own, unique int64, err error) {
	var refs []string
	for _, p := range planned {
		refs = append(refs, p.Ref)
		if p.Runtime != "" {
			refs = append(refs, p.Runtime)
		}
	}
	images, err := eng.Inspect(ctx, refs)
	if err != nil {
		return 0, 0, err
	}
	size := func(ref string) int64 {
		for _, img := range images {
			if slices.ContainsFunc(img.Refs, func(r string) bool { return imageref.Same(r, ref) }) {
				return img.Size
			}
		}
		return 0
	}
	var bases []string
	for _, p := range planned {
		mine := size(p.Ref)
		if base := size(p.Runtime); p.Runtime != "" && base > 0 {
			mine -= base
			if !slices.Contains(bases, p.Runtime) {
				bases = append(bases, p.Runtime)
				unique += base
			}
		}
		own += max(mine, 0)
	}
	return own, unique + own, nil
}

func buildImage(ctx context.Context, opts Options, p Planned) (Result, error) {
	start := time.Now()
	result := Result{Service: p.Service, Ref: p.Ref}
	id, found, err := opts.Engine.ImageID(ctx, p.Ref)
	if err != nil {
		return result, fmt.Errorf("service %s: %w", p.Service.Name, err)
	}
	if found {
		result.ID, result.UpToDate, result.Duration = id, true, time.Since(start)
		if result.Manifest, err = opts.Engine.PlatformManifest(ctx, p.Ref); err != nil {
			return result, fmt.Errorf("service %s: %w", p.Service.Name, err)
		}
		opts.logf("%s: %s up to date (%s)", p.Service.Name, p.Ref, id)
		return result, nil
	}
	opts.logf("%s: building %s with %s", p.Service.Name, p.Ref, opts.Engine.Name())
	spec := engine.BuildSpec{
		Ref:        p.Ref,
		Dockerfile: p.Dockerfile,
		ContextDir: p.ContextDir,
		Target:     p.Target,
		Args:       p.Args,
		// The host path's context is one binary: an intermediate image would be a second copy.
		NoLayerCache: p.Method == MethodHost,
		Labels: map[string]string{
			LabelRun:     opts.RunID,
			LabelSuite:   opts.Suite,
			LabelService: p.Service.Name,
		},
	}
	// A build that pulls a base or downloads modules fails now and then on the network (a reset
	// connection to the module proxy): the engine's layer cache makes another try cheap.
	var buildErr error
	tries := 0
	err = wait.ExponentialBackoffWithContext(ctx, buildBackoff, func(ctx context.Context) (bool, error) {
		tries++
		buildErr = opts.Engine.Build(ctx, spec)
		if buildErr == nil {
			return true, nil
		}
		cause := transientNetwork(buildErr)
		if cause == "" || ctx.Err() != nil || tries == buildBackoff.Steps {
			return false, buildErr
		}
		opts.logf("%s: the build failed on the network (%s); trying again (%d of %d)", p.Service.Name, cause, tries+1, buildBackoff.Steps)
		return false, nil
	})
	if err != nil && buildErr != nil {
		err = buildErr // not the backoff's own "timed out waiting"
	}
	if err != nil {
		return result, fmt.Errorf("service %s (%s): %w", p.Service.Name, p.describe(opts.RepoRoot), err)
	}
	id, found, err = opts.Engine.ImageID(ctx, p.Ref)
	if err != nil {
		return result, fmt.Errorf("service %s: %w", p.Service.Name, err)
	}
	if !found {
		return result, fmt.Errorf("service %s: %s build reported success but %s does not exist; check `%s images`",
			p.Service.Name, opts.Engine.Name(), p.Ref, opts.Engine.Name())
	}
	if result.Manifest, err = opts.Engine.PlatformManifest(ctx, p.Ref); err != nil {
		return result, fmt.Errorf("service %s: %w", p.Service.Name, err)
	}
	result.ID, result.Duration = id, time.Since(start)
	opts.logf("%s: built %s (%s) in %s", p.Service.Name, p.Ref, id, result.Duration.Round(time.Millisecond))
	return result, nil
}

// checkBuilder fails before any build when a Dockerfile uses RUN --mount and the engine's builder
// is docker's legacy one, which rejects it half way through the build.
func checkBuilder(ctx context.Context, opts Options, planned []Planned) error {
	var users []string
	for _, p := range planned {
		if len(p.Mounts) > 0 {
			users = append(users, fmt.Sprintf("service %s (%s:%d)", p.Service.Name, p.describeFile(opts.RepoRoot), p.Mounts[0]))
		}
	}
	if len(users) == 0 {
		return nil
	}
	info, err := opts.Engine.Info(ctx)
	if err != nil {
		return err
	}
	if info.CacheMountRoot != "" {
		return checkCacheRoot(info.CacheMountRoot, planned, opts.RepoRoot)
	}
	if info.Builder != engine.BuilderLegacy {
		return nil
	}
	return fmt.Errorf("%s use RUN --mount, which docker's legacy builder does not support: install the docker buildx plugin (BuildKit, as on CI runners; ../shared/kindenv/setup installs it), unset DOCKER_BUILDKIT=0, or use podman (CONTAINER_ENGINE=podman)",
		strings.Join(users, ", "))
}

// checkCacheRoot fails when buildah cannot write its cache mounts' directory root: the builds
// with cache mounts would fail half way through.
func checkCacheRoot(root string, planned []Planned, repoRoot string) error {
	var users []string
	for _, p := range planned {
		if len(p.CacheMounts) > 0 {
			users = append(users, fmt.Sprintf("service %s (%s)", p.Service.Name, p.describeFile(repoRoot)))
		}
	}
	if len(users) == 0 {
		return nil
	}
	// buildah creates the root on first use: then its parent must be writable.
	dir := root
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		dir = filepath.Dir(root)
	}
	f, err := os.CreateTemp(dir, ".kindling-write-check-")
	if err == nil {
		f.Close()
		err = os.Remove(f.Name())
	}
	if err != nil {
		return fmt.Errorf("%s use cache mounts, which buildah keeps in %s, and that is not writable (%v): set TMPDIR to a writable directory (buildah keeps them under $TMPDIR) or fix its permissions",
			strings.Join(users, ", "), root, err)
	}
	return nil
}

// buildBackoff spaces the tries of a build that failed on the network: three in all.
var buildBackoff = wait.Backoff{Duration: 5 * time.Second, Factor: 3, Steps: 3}

// transientNetwork returns the line of a build error that says it failed on the network in a way
// that may pass (a reset connection, a timeout, a proxy's 5xx), or "".
func transientNetwork(err error) string {
	for _, line := range strings.Split(err.Error(), "\n") {
		l := strings.ToLower(line)
		for _, sign := range []string{"connection reset by peer", "i/o timeout", "tls handshake timeout",
			"temporary failure in name resolution", "502 bad gateway", "503 service unavailable", "504 gateway timeout"} {
			if strings.Contains(l, sign) {
				return strings.TrimSpace(line)
			}
		}
	}
	return ""
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
