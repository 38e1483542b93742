package enginetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/engine"
)

// Engine is an in-memory engine.Engine for unit tests. Builds create images whose ID is derived
// from the reference; BuildErrors fails chosen references. Safe for concurrent use.
type Engine struct {
	// BuildDelay makes every Build take this long, to observe parallelism.
	BuildDelay time.Duration
	// BuildErrors maps a reference to the error its Build returns.
	BuildErrors map[string]error
	// FlakyBuilds maps a reference to errors its first Builds return, one each, before it builds.
	FlakyBuilds map[string][]error
	// Pulls are base images every Build pulls when they are missing (the fake reads no FROM).
	Pulls []string
	// PullErrors maps a reference to the error its Pull returns.
	PullErrors map[string]error
	// PushErrors maps a destination to the error its Push returns.
	PushErrors map[string]error
	// Intermediates is the number of untagged images every Build leaves behind.
	Intermediates int
	// BuildBytes is what every Build adds to Used while it runs; BuildLeaves what stays after.
	BuildBytes, BuildLeaves int64
	// Sizes are the sizes of the images with these refs; the others have 1000 bytes.
	Sizes map[string]int64
	// KilledBuildsLeak makes a cancelled Build leave a working container, as podman's do.
	KilledBuildsLeak bool
	// CacheRecords is the number of BuildKit build cache records every Build leaves behind.
	CacheRecords int
	// Builder and CacheMountRoot are Info's.
	Builder        string
	CacheMountRoot string
	// CacheMounts are the cache mounts every Build leaves a cache of, CompileCacheBytes each
	// (the fake reads no Dockerfile).
	CacheMounts       []engine.CacheMount
	CompileCacheBytes int64
	// RemovedCacheMounts are the ids of the compile caches RemoveCompileCaches removed.
	RemovedCacheMounts []string
	// Objects is what StoreObjects returns; Leaked what StoreResidue returns.
	Objects engine.StoreObjects
	Leaked  engine.Residue

	mu          sync.Mutex
	images      map[string]engine.Image // by ref
	untagged    []string                // IDs of intermediate images
	cache       []engine.CacheRecord
	compile     []engine.CompileCache
	pulls       []string
	pushes      []string
	builds      []engine.BuildSpec
	running     int
	maxParallel int
	firstDone   bool // the first build ended
	used        int64
	working     []string // working containers of killed builds
	overlapped  bool     // a build started while the first ran
}

var _ engine.Engine = (*Engine)(nil)

// AddImage makes ref exist with the given labels and returns its ID.
func (e *Engine) AddImage(ref string, labels map[string]string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.addLocked(ref, labels)
}

func (e *Engine) addLocked(ref string, labels map[string]string) string {
	if e.images == nil {
		e.images = map[string]engine.Image{}
	}
	digest := sha256.Sum256([]byte(ref))
	id := "sha256:" + hex.EncodeToString(digest[:])
	size := int64(1000)
	if n, ok := e.Sizes[ref]; ok {
		size = n
	}
	e.images[ref] = engine.Image{ID: id, Refs: []string{ref}, Size: size, Labels: maps.Clone(labels)}
	return id
}

// AddUntagged adds an image without a name (a build stage) with the given labels and returns its ID.
func (e *Engine) AddUntagged(labels map[string]string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	key := fmt.Sprintf("untagged-%d", len(e.images))
	id := e.addLocked(key, labels)
	img := e.images[key]
	img.Refs = nil
	e.images[key] = img
	return id
}

// Builds returns the builds run so far.
func (e *Engine) Builds() []engine.BuildSpec {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.builds)
}

// MaxParallel is the highest number of builds that ran at once.
func (e *Engine) MaxParallel() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.maxParallel
}

// OverlappedFirst reports whether a build started before the first one ended.
func (e *Engine) OverlappedFirst() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.overlapped
}

func (e *Engine) BuildContainers(context.Context) ([]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.working), nil
}

func (e *Engine) StopBuildContainers(_ context.Context, ids []string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.working = slices.DeleteFunc(e.working, func(id string) bool { return slices.Contains(ids, id) })
	return nil
}

// Used is the bytes the builds hold: BuildBytes per running build, BuildLeaves per ended one.
func (e *Engine) Used(context.Context) (int64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.used, nil
}

func (e *Engine) Name() string                   { return "fake" }
func (e *Engine) Ping(ctx context.Context) error { return nil }

func (e *Engine) Build(ctx context.Context, spec engine.BuildSpec) error {
	e.mu.Lock()
	e.builds = append(e.builds, spec)
	first := len(e.builds) == 1
	if len(e.builds) > 1 && !e.firstDone {
		e.overlapped = true
	}
	e.running++
	e.maxParallel = max(e.maxParallel, e.running)
	e.used += e.BuildBytes
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.running--
		e.used += e.BuildLeaves - e.BuildBytes
		e.firstDone = e.firstDone || first
		e.mu.Unlock()
	}()
	select {
	case <-time.After(e.BuildDelay):
	case <-ctx.Done():
		if e.KilledBuildsLeak {
			e.mu.Lock()
			e.working = append(e.working, "working-"+spec.Ref)
			e.mu.Unlock()
		}
		return ctx.Err()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, base := range e.Pulls {
		if _, ok := e.images[base]; !ok {
			e.addLocked(base, nil)
		}
	}
	if err := e.BuildErrors[spec.Ref]; err != nil {
		return err
	}
	if errs := e.FlakyBuilds[spec.Ref]; len(errs) > 0 {
		e.FlakyBuilds[spec.Ref] = errs[1:]
		return errs[0]
	}
	for i := range e.Intermediates {
		digest := sha256.Sum256(fmt.Appendf(nil, "%s intermediate %d", spec.Ref, i))
		e.untagged = append(e.untagged, "sha256:"+hex.EncodeToString(digest[:]))
	}
	for range e.CacheRecords {
		e.cache = append(e.cache, engine.CacheRecord{ID: fmt.Sprintf("cache%d", len(e.cache)), Size: 100, Type: "regular"})
	}
	for _, m := range e.CacheMounts {
		if !slices.ContainsFunc(e.compile, func(c engine.CompileCache) bool { return c.Mount == m }) {
			e.compile = append(e.compile, engine.CompileCache{Mount: m, Dir: "/var/tmp/buildah-cache/" + m.ID, Bytes: e.CompileCacheBytes})
		}
	}
	e.addLocked(spec.Ref, spec.Labels)
	return nil
}

// Pull makes ref exist, unless PullErrors fails it.
func (e *Engine) Pull(ctx context.Context, ref string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.PullErrors[ref]; err != nil {
		return err
	}
	e.pulls = append(e.pulls, ref)
	if _, ok := e.images[ref]; !ok {
		e.addLocked(ref, nil)
	}
	return nil
}

// Push records dst as pushed, unless PushErrors fails it.
func (e *Engine) Push(ctx context.Context, src, dst string, insecure bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.PushErrors[dst]; err != nil {
		return err
	}
	if _, ok := e.images[src]; !ok {
		return fmt.Errorf("push %s: no such image", src)
	}
	e.pushes = append(e.pushes, dst)
	return nil
}

// Pushed lists the destinations of the pushes.
func (e *Engine) Pushed() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.pushes)
}

// Pulled lists the refs Pull was called with.
func (e *Engine) Pulled() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.pulls)
}

func (e *Engine) Inspect(ctx context.Context, refs []string) ([]engine.Image, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []engine.Image
	for _, ref := range refs {
		if img, ok := e.images[ref]; ok {
			out = append(out, img)
		}
	}
	return out, nil
}

func (e *Engine) RemoveRefs(ctx context.Context, refs []string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ref := range refs {
		delete(e.images, ref)
	}
	return nil
}

func (e *Engine) AllImageIDs(ctx context.Context) ([]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ids := slices.Clone(e.untagged)
	for _, img := range e.images {
		ids = append(ids, img.ID)
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

func (e *Engine) ImageID(ctx context.Context, ref string) (string, bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	img, ok := e.images[ref]
	return img.ID, ok, nil
}

func (e *Engine) Images(ctx context.Context, labelFilter map[string]string) ([]engine.Image, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var images []engine.Image
	for _, ref := range slices.Sorted(maps.Keys(e.images)) {
		img := e.images[ref]
		matches := true
		for key, value := range labelFilter {
			if got, ok := img.Labels[key]; !ok || (value != "" && got != value) {
				matches = false
			}
		}
		if matches {
			images = append(images, img)
		}
	}
	return images, nil
}

func (e *Engine) Remove(ctx context.Context, ids []string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for ref, img := range e.images {
		if slices.Contains(ids, img.ID) {
			delete(e.images, ref)
		}
	}
	e.untagged = slices.DeleteFunc(e.untagged, func(id string) bool { return slices.Contains(ids, id) })
	return nil
}

func (e *Engine) Save(ctx context.Context, path string, refs []string) error {
	return fmt.Errorf("enginetest.Engine cannot save archives")
}

func (e *Engine) PruneDangling(ctx context.Context) (int64, error) { return 0, nil }

func (e *Engine) PlatformManifest(ctx context.Context, ref string) (string, error) { return "", nil }

func (e *Engine) BuildCache(ctx context.Context) ([]engine.CacheRecord, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.cache), nil
}

// StoreObjects returns Objects, the store as the test set it.
func (e *Engine) StoreObjects(ctx context.Context, ids []string) (engine.StoreObjects, error) {
	return e.Objects, nil
}

// CompileCaches returns the caches of these mounts that builds left.
func (e *Engine) CompileCaches(ctx context.Context, mounts []engine.CacheMount, appeared []string) ([]engine.CompileCache, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []engine.CompileCache
	for _, c := range e.compile {
		if slices.Contains(mounts, c.Mount) {
			out = append(out, c)
		}
	}
	return out, nil
}

// RemoveCompileCaches removes them and records their ids.
func (e *Engine) RemoveCompileCaches(ctx context.Context, caches []engine.CompileCache) (int64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var n int64
	for _, c := range caches {
		if i := slices.Index(e.compile, c); i >= 0 {
			e.compile = slices.Delete(e.compile, i, i+1)
			e.RemovedCacheMounts = append(e.RemovedCacheMounts, c.Mount.ID)
			n += c.Bytes
		}
	}
	return n, nil
}

// HasCompileCache reports whether a cache of the mount with this id is there.
func (e *Engine) HasCompileCache(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.ContainsFunc(e.compile, func(c engine.CompileCache) bool { return c.Mount.ID == id })
}

// StoreResidue returns Leaked.
func (e *Engine) StoreResidue(ctx context.Context, gone engine.StoreObjects) (engine.Residue, error) {
	return e.Leaked, nil
}

func (e *Engine) RemoveBuildCache(ctx context.Context, ids []string) (int64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var reclaimed int64
	e.cache = slices.DeleteFunc(e.cache, func(r engine.CacheRecord) bool {
		if slices.Contains(ids, r.ID) {
			reclaimed += r.Size
			return true
		}
		return false
	})
	return reclaimed, nil
}

func (e *Engine) PruneAll(ctx context.Context, keep []string) (int64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var reclaimed int64
	for ref, img := range e.images {
		if !engine.Kept(img, keep) {
			reclaimed += img.Size
			delete(e.images, ref)
		}
	}
	return reclaimed, nil
}

func (e *Engine) Info(ctx context.Context) (engine.Info, error) {
	return engine.Info{GraphRoot: "/nonexistent/fake", Builder: e.Builder, Version: "0", CacheMountRoot: e.CacheMountRoot}, nil
}

func (e *Engine) DiskUsage(ctx context.Context) (engine.Usage, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var usage engine.Usage
	for _, img := range e.images {
		usage.Images += img.Size
	}
	return usage, nil
}

func (e *Engine) SaveImage(ctx context.Context, w io.Writer, refs ...string) error {
	return fmt.Errorf("enginetest.Engine cannot save archives")
}

func (e *Engine) LoadImage(ctx context.Context, r io.Reader) error {
	return fmt.Errorf("enginetest.Engine cannot load archives")
}
