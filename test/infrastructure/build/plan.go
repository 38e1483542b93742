package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"golang.org/x/sync/errgroup"
)

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
