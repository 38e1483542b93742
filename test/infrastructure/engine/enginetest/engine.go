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

	mu          sync.Mutex
	images      map[string]engine.Image // by ref
	builds      []engine.BuildSpec
	running     int
	maxParallel int
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
	e.images[ref] = engine.Image{ID: id, Refs: []string{ref}, Size: 1000, Labels: maps.Clone(labels)}
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

func (e *Engine) Name() string                   { return "fake" }
func (e *Engine) Ping(ctx context.Context) error { return nil }

func (e *Engine) Build(ctx context.Context, spec engine.BuildSpec) error {
	e.mu.Lock()
	e.builds = append(e.builds, spec)
	e.running++
	e.maxParallel = max(e.maxParallel, e.running)
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.running--
		e.mu.Unlock()
	}()
	select {
	case <-time.After(e.BuildDelay):
	case <-ctx.Done():
		return ctx.Err()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.BuildErrors[spec.Ref]; err != nil {
		return err
	}
	e.addLocked(spec.Ref, spec.Labels)
	return nil
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
	return nil
}

func (e *Engine) Save(ctx context.Context, path string, refs []string) error {
	return fmt.Errorf("enginetest.Engine cannot save archives")
}

func (e *Engine) PruneDangling(ctx context.Context) (int64, error) { return 0, nil }

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
	return engine.Info{GraphRoot: "/nonexistent/fake", Version: "0"}, nil
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

func (e *Engine) SaveImage(ctx context.Context, w io.Writer, ref string) error {
	return fmt.Errorf("enginetest.Engine cannot save archives")
}

func (e *Engine) LoadImage(ctx context.Context, r io.Reader) error {
	return fmt.Errorf("enginetest.Engine cannot load archives")
}
