// Package build compiles services on the host, derives image references from the build inputs,
// and builds the images in bounded parallel through a container engine.
package build

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/kindling-dev/kindling/test/infrastructure/engine"
)

// Image labels set on every built image.
const (
	LabelRun     = "dev.kindling.run"
	LabelSuite   = "dev.kindling.suite"
	LabelService = "dev.kindling.service"
)

// ParallelismEnv sets Options.Parallelism (see ParseParallelism).
const ParallelismEnv = "E2E_PARALLELISM"

// Service is a service under services/<Name> with a main package and a Containerfile.
type Service struct{ Name string }

// Dir is the service's directory relative to the repository root.
func (s Service) Dir() string { return filepath.Join("services", s.Name) }

// Package is the service's main package as the go command names it from the repository root.
func (s Service) Package() string { return "./services/" + s.Name }

// Containerfile is the service's Containerfile relative to the repository root.
func (s Service) Containerfile() string { return filepath.Join(s.Dir(), "Containerfile") }

// Options configure Plan and Images.
type Options struct {
	Engine engine.Engine
	Suite  string
	RunID  string
	// RepoRoot holds go.mod and services/.
	RepoRoot string
	// WorkDir receives one build context per service: <WorkDir>/<service>/<service>.
	WorkDir string
	// Parallelism bounds concurrent go builds and image builds; <= 0 means runtime.NumCPU().
	Parallelism int
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

// Planned is a compiled service ready for its image build.
type Planned struct {
	Service       Service
	Ref           string
	ContextDir    string
	Containerfile string
}

// Result is one image build (or the decision that none was needed).
type Result struct {
	Service  Service
	Ref      string
	ID       string
	UpToDate bool
	Duration time.Duration
}

// Lowercase so that "<name>" and "<suite>-<hex>" are valid image repository and tag names.
var validName = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

// Plan compiles every service's main package on the host (static, linux/GOARCH, trimmed, at most
// Parallelism at a time) into <WorkDir>/<service>/<service>, the service's whole build context, and
// derives its reference "localhost/<service>:<suite>-<12 hex>" from a sha256 over the binary and
// the Containerfile: identical inputs give the identical reference.
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
	for _, s := range services {
		if !validName.MatchString(s.Name) {
			return nil, fmt.Errorf("plan images: service name %q must be lowercase letters and digits separated by '.', '_' or '-'", s.Name)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("plan images: service %s is listed twice", s.Name)
		}
		seen[s.Name] = true
	}
	planned := make([]Planned, len(services))
	group, ctx := errgroup.WithContext(ctx)
	group.SetLimit(opts.parallelism())
	for i, s := range services {
		group.Go(func() error {
			p, err := plan(ctx, opts, s)
			planned[i] = p
			return err
		})
	}
	if err := group.Wait(); err != nil {
		return nil, err
	}
	return planned, nil
}

func plan(ctx context.Context, opts Options, s Service) (Planned, error) {
	start := time.Now()
	containerfile := filepath.Join(opts.RepoRoot, s.Containerfile())
	containerfileBytes, err := os.ReadFile(containerfile)
	if err != nil {
		return Planned{}, fmt.Errorf("service %s: read Containerfile: %w; every service needs %s", s.Name, err, s.Containerfile())
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
	ref := fmt.Sprintf("localhost/%s:%s-%s", s.Name, opts.Suite, digest[:12])
	opts.logf("%s: compiled in %s, image %s", s.Name, time.Since(start).Round(time.Millisecond), ref)
	return Planned{Service: s, Ref: ref, ContextDir: contextDir, Containerfile: containerfile}, nil
}

func goBuild(ctx context.Context, opts Options, s Service, output string) error {
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w", "-o", output, s.Package()}
	log := &tail{max: 64 << 10}
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
			return fmt.Errorf("service %s: go build %s: interrupted: %w", s.Name, s.Package(), ctx.Err())
		}
		return fmt.Errorf("service %s: go build %s failed: %w; fix the compile errors below and retry:\n%s",
			s.Name, s.Package(), err, engine.LastLines(log.String(), 20))
	}
	return nil
}

// inputDigest hashes the build inputs, each length-prefixed so that no two input sets collide.
func inputDigest(binaryPath string, containerfile []byte) (string, error) {
	f, err := os.Open(binaryPath)
	if err != nil {
		return "", err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", err
	}
	digest := sha256.New()
	_ = binary.Write(digest, binary.BigEndian, uint64(info.Size()))
	if _, err := io.Copy(digest, f); err != nil {
		return "", err
	}
	_ = binary.Write(digest, binary.BigEndian, uint64(len(containerfile)))
	digest.Write(containerfile)
	return hex.EncodeToString(digest.Sum(nil)), nil
}

// Images builds the planned images, at most Parallelism at a time, skipping those the engine
// already has under their reference ("up to date": the reference encodes the inputs, so the
// image's run label names the run that first built it). New images get the labels
// dev.kindling.run, dev.kindling.suite and dev.kindling.service. Results are in input order.
func Images(ctx context.Context, opts Options, planned []Planned) ([]Result, error) {
	if opts.Engine == nil {
		return nil, fmt.Errorf("build images: no container engine (Options.Engine)")
	}
	if opts.RunID == "" {
		return nil, fmt.Errorf("build images: RunID is required for the %s label", LabelRun)
	}
	results := make([]Result, len(planned))
	group, ctx := errgroup.WithContext(ctx)
	group.SetLimit(opts.parallelism())
	for i, p := range planned {
		group.Go(func() error {
			r, err := buildImage(ctx, opts, p)
			results[i] = r
			return err
		})
	}
	if err := group.Wait(); err != nil {
		return nil, err
	}
	return results, nil
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
		opts.logf("%s: %s up to date (%s)", p.Service.Name, p.Ref, id)
		return result, nil
	}
	opts.logf("%s: building %s with %s", p.Service.Name, p.Ref, opts.Engine.Name())
	err = opts.Engine.Build(ctx, engine.BuildSpec{
		Ref:           p.Ref,
		Containerfile: p.Containerfile,
		ContextDir:    p.ContextDir,
		Labels: map[string]string{
			LabelRun:     opts.RunID,
			LabelSuite:   opts.Suite,
			LabelService: p.Service.Name,
		},
	})
	if err != nil {
		return result, fmt.Errorf("service %s (Containerfile %s): %w", p.Service.Name, p.Containerfile, err)
	}
	id, found, err = opts.Engine.ImageID(ctx, p.Ref)
	if err != nil {
		return result, fmt.Errorf("service %s: %w", p.Service.Name, err)
	}
	if !found {
		return result, fmt.Errorf("service %s: %s build reported success but %s does not exist; check `%s images`",
			p.Service.Name, opts.Engine.Name(), p.Ref, opts.Engine.Name())
	}
	result.ID, result.Duration = id, time.Since(start)
	opts.logf("%s: built %s (%s) in %s", p.Service.Name, p.Ref, id, result.Duration.Round(time.Millisecond))
	return result, nil
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

// tail keeps the last max bytes of a command's combined output.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
