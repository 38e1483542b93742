package build

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/util/wait"
)

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
		_, out.ImageBytes, _ = imageBytes(ctx, opts.Engine, planned, func(Planned) bool { return false })
		return out, nil
	}
	out.CacheMounts = mounts
	if opts.BeforeBuilding != nil {
		if err := opts.BeforeBuilding(ctx); err != nil {
			return out, err
		}
	}
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
	own, unique, err := imageBytes(ctx, opts.Engine, planned, func(p Planned) bool {
		return slices.ContainsFunc(todo, func(t Planned) bool { return t.Ref == p.Ref })
	})
	if err == nil {
		out.ImageBytes = unique
		if measured && ok1 && ok2 {
			out.Footprint = Footprint{PulledBases: used1 - used0, SuiteImages: own, BuildCache: used2 - used1 - own, Measured: true}
		}
	}
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
