// Package bench measures the flows that move images from a container engine into Kind nodes,
// side by side on one workload: the original system's (per-image tars, kind-style imports), what
// `kind load docker-image` does, and kindling's. It reports wall time per phase, the peak of used
// bytes above the start on every filesystem involved, what the nodes' containerd keeps, and the
// archive bytes written.
package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
	"github.com/kindling-dev/kindling/test/infrastructure/build"
	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/suite"
)

const mib = 1 << 20

// Synthetic is a generated workload: Images images sharing a base of BaseMiB, each with
// UniqueMiB of its own, plus GarbageMiB left dangling in the engine (the build garbage a real
// build leaves). Random (incompressible) bytes unless Compressible.
type Synthetic struct {
	Images       int
	BaseMiB      int
	UniqueMiB    int
	GarbageMiB   int
	Compressible bool
}

// DefaultSynthetic is the default workload: N=3, B=200, U=100, G=150.
var DefaultSynthetic = Synthetic{Images: 3, BaseMiB: 200, UniqueMiB: 100, GarbageMiB: 150}

func (s Synthetic) String() string {
	kind := "random"
	if s.Compressible {
		kind = "compressible"
	}
	return fmt.Sprintf("synthetic: %d images on a %d MiB base + %d MiB each, %d MiB garbage, %s bytes",
		s.Images, s.BaseMiB, s.UniqueMiB, s.GarbageMiB, kind)
}

// ImageBytes is what the images hold once, shared base counted once.
func (s Synthetic) ImageBytes() int64 {
	return int64(s.BaseMiB+s.Images*s.UniqueMiB) * mib
}

// Workload is a set of images in an engine, ready to be moved to the nodes.
type Workload struct {
	Name string
	Refs []string
	// Bases are the images the workload's images are built on, which its build pulled.
	Bases []string
	Bytes int64 // image bytes, shared layers once
	// Suite and RunID are the labels the images carry, as the product's builds label theirs
	// (build.LabelSuite, build.LabelRun): what the product's scoped prune removes.
	Suite, RunID string
	// Rebuild makes the images (and the garbage) exist again: each strategy starts from them.
	Rebuild func(ctx context.Context) error
	// Remove deletes whatever of the workload is left in the engine.
	Remove func(ctx context.Context) error
	// BuildCache are the IDs of the BuildKit records the last Rebuild left (none on other
	// builders): what the product's scoped prune removes with the images.
	BuildCache func() []string
}

// NewSynthetic writes the build contexts of s under dir and returns the workload; Rebuild builds
// it. The refs are localhost/kindling-bench-<tag>/app-<i>:1 on localhost/kindling-bench-<tag>/base:1.
func NewSynthetic(eng engine.Engine, s Synthetic, dir, tag string) (Workload, error) {
	if s.Images < 1 || s.BaseMiB < 0 || s.UniqueMiB < 0 || s.GarbageMiB < 0 {
		return Workload{}, fmt.Errorf("synthetic workload %+v: want at least one image and no negative size", s)
	}
	repo := "localhost/kindling-bench-" + tag
	base := repo + "/base:1"
	garbage := repo + "/garbage:1"
	rng := rand.New(rand.NewChaCha8([32]byte([]byte(strings.Repeat(tag+"-", 32))[:32])))
	write := func(sub, file string, size int, from string) (string, error) {
		ctxDir := filepath.Join(dir, sub)
		if err := os.MkdirAll(ctxDir, 0o755); err != nil {
			return "", err
		}
		if err := writeBytes(filepath.Join(ctxDir, file), int64(size)*mib, s.Compressible, rng); err != nil {
			return "", err
		}
		containerfile := filepath.Join(ctxDir, "Containerfile")
		return containerfile, os.WriteFile(containerfile, []byte(fmt.Sprintf("FROM %s\nCOPY %s /%s\n", from, file, file)), 0o644)
	}
	baseFile, err := write("base", "base.bin", s.BaseMiB, "scratch")
	if err != nil {
		return Workload{}, err
	}
	var apps []string
	var appFiles []string
	for i := range s.Images {
		f, err := write(fmt.Sprintf("app-%d", i), fmt.Sprintf("unique-%d.bin", i), s.UniqueMiB, base)
		if err != nil {
			return Workload{}, err
		}
		apps = append(apps, fmt.Sprintf("%s/app-%d:1", repo, i))
		appFiles = append(appFiles, f)
	}
	garbageFile, err := write("garbage", "garbage.bin", s.GarbageMiB, "scratch")
	if err != nil {
		return Workload{}, err
	}
	moverFile, err := write("mover", "empty.bin", 0, "scratch")
	if err != nil {
		return Workload{}, err
	}
	label := "bench-" + tag
	buildImage := func(ctx context.Context, ref, containerfile string) error {
		spec := engine.BuildSpec{Ref: ref, Dockerfile: containerfile, ContextDir: filepath.Dir(containerfile), NoLayerCache: true}
		if slices.Contains(apps, ref) {
			spec.Labels = map[string]string{build.LabelSuite: label, build.LabelRun: label}
		}
		return eng.Build(ctx, spec)
	}
	w := Workload{Name: s.String(), Refs: apps, Bases: []string{base}, Bytes: s.ImageBytes(), Suite: label, RunID: label}
	var cache []string
	w.BuildCache = func() []string { return cache }
	w.Rebuild = func(ctx context.Context) error {
		before, err := eng.BuildCache(ctx)
		if err != nil {
			return err
		}
		defer func() {
			if after, err := eng.BuildCache(ctx); err == nil {
				cache = newRecords(before, after)
			}
		}()
		if err := buildImage(ctx, base, baseFile); err != nil {
			return err
		}
		for i, ref := range apps {
			if err := buildImage(ctx, ref, appFiles[i]); err != nil {
				return err
			}
		}
		// The garbage: an image whose tag then moves to another one, leaving it dangling.
		if s.GarbageMiB > 0 {
			if err := buildImage(ctx, garbage, garbageFile); err != nil {
				return err
			}
			if err := buildImage(ctx, garbage, moverFile); err != nil {
				return err
			}
		}
		return eng.RemoveRefs(ctx, []string{garbage})
	}
	w.Remove = func(ctx context.Context) error {
		err := eng.RemoveRefs(ctx, append(slices.Clone(apps), base, garbage))
		if _, derr := eng.PruneDangling(ctx); err == nil {
			err = derr
		}
		if _, cerr := eng.RemoveBuildCache(ctx, cache); err == nil {
			err = cerr
		}
		return err
	}
	return w, nil
}

// newRecords are the IDs of the build cache records in after that were not in before.
func newRecords(before, after []engine.CacheRecord) []string {
	seen := map[string]bool{}
	for _, r := range before {
		seen[r.ID] = true
	}
	var ids []string
	for _, r := range after {
		if !seen[r.ID] {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

// writeBytes writes size bytes: random, or text that compresses about tenfold.
func writeBytes(path string, size int64, compressible bool, rng *rand.Rand) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, mib)
	for written := int64(0); written < size; {
		if compressible {
			for i := 0; i < len(buf); i += 64 {
				line := fmt.Sprintf("%016x kindling benchmark line %020d\n", rng.Uint64(), written+int64(i))
				copy(buf[i:], line)
			}
		} else {
			for i := 0; i+8 <= len(buf); i += 8 {
				v := rng.Uint64()
				for j := range 8 {
					buf[i+j] = byte(v >> (8 * j))
				}
			}
		}
		n := min(int64(len(buf)), size-written)
		if _, err := f.Write(buf[:n]); err != nil {
			return err
		}
		written += n
	}
	return f.Close()
}

// NewSuite builds a suite's images from their Dockerfiles once (or on the host with host set),
// saves them in dir, and returns the workload: Rebuild loads them back into the engine, so every
// strategy starts from the same images without building them again.
func NewSuite(ctx context.Context, eng engine.Engine, root string, s suite.Suite, host bool, dir, tag string, log func(string, ...any)) (Workload, error) {
	opts := build.Options{Engine: eng, Suite: "bench-" + tag, RunID: "bench-" + tag, RepoRoot: root,
		WorkDir: filepath.Join(dir, "build"), Host: host, Log: log}
	planned, err := build.Plan(ctx, opts, s.Services)
	if err != nil {
		return Workload{}, err
	}
	built, err := build.Images(ctx, opts, planned)
	if err != nil {
		return Workload{}, err
	}
	var refs []string
	for _, r := range built.Results {
		refs = append(refs, r.Ref)
	}
	saved := filepath.Join(dir, "suite-images.tar")
	if err := eng.Save(ctx, saved, refs); err != nil {
		return Workload{}, err
	}
	v, err := archive.Verify(saved, refs)
	if err != nil {
		return Workload{}, err
	}
	// The builds' leftovers are not part of what the strategies move: remove them now.
	if err := eng.Remove(ctx, append(slices.Clone(built.Intermediate), baseIDs(built.Pulled)...)); err != nil {
		log("some build leftovers stay: %v", err)
	}
	if _, err := eng.RemoveBuildCache(ctx, built.BuildCache); err != nil {
		log("some build cache stays: %v", err)
	}
	w := Workload{Name: fmt.Sprintf("suite %s: %d images", s.Name, len(refs)), Refs: refs, Bytes: uniqueLayerBytes(v.Images), Suite: opts.Suite, RunID: opts.RunID}
	w.Rebuild = func(ctx context.Context) error {
		f, err := os.Open(saved)
		if err != nil {
			return err
		}
		defer f.Close()
		return eng.LoadImage(ctx, f)
	}
	w.Remove = func(ctx context.Context) error { return eng.RemoveRefs(ctx, refs) }
	return w, nil
}

func baseIDs(bases []build.Base) []string {
	var ids []string
	for _, b := range bases {
		ids = append(ids, b.ID)
	}
	return ids
}

// uniqueLayerBytes is the images' layers, shared ones once, as the uncompressed archive holds them.
func uniqueLayerBytes(images []archive.Image) int64 {
	seen := map[string]bool{}
	var n int64
	for _, img := range images {
		for _, l := range img.Layers {
			if !seen[l.DiffID] {
				seen[l.DiffID] = true
				n += l.Size
			}
		}
	}
	return n
}
