package build_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
	"github.com/kindling-dev/kindling/test/infrastructure/build"
	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/engine/enginetest"
)

// TestBuildExportVerifyRemove runs build → export → verify → scoped removal on each real engine.
func TestBuildExportVerifyRemove(t *testing.T) {
	for _, name := range []string{engine.Podman, engine.Docker} {
		t.Run(name, func(t *testing.T) {
			e := enginetest.Real(t, name)
			enginetest.Lock(t)
			testBuildExportVerifyRemove(t, e)
		})
	}
}

func testBuildExportVerifyRemove(t *testing.T, e engine.Engine) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	unique := enginetest.Unique(t)
	services := []build.Service{{Name: "kindling-it-hello"}, {Name: "kindling-it-world"}}
	opts := build.Options{
		Engine:      e,
		Suite:       "it-" + unique,
		RunID:       "run-" + unique,
		RepoRoot:    enginetest.Repo(t, services[0].Name, services[1].Name),
		WorkDir:     t.TempDir(),
		Parallelism: 2,
		Log:         t.Logf,
	}
	t.Cleanup(func() {
		// Whatever this run labelled, plus the unrelated image below.
		images, _ := e.Images(context.Background(), map[string]string{build.LabelSuite: opts.Suite})
		var ids []string
		for _, img := range images {
			ids = append(ids, img.ID)
		}
		if err := e.Remove(context.Background(), ids); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})

	planned, err := build.Plan(ctx, opts, services)
	if err != nil {
		t.Fatal(err)
	}
	results, err := build.Images(ctx, opts, planned)
	if err != nil {
		t.Fatal(err)
	}
	var refs, ids []string
	for _, r := range results {
		if r.UpToDate {
			t.Errorf("%s: first build reported up to date", r.Ref)
		}
		refs, ids = append(refs, r.Ref), append(ids, r.ID)
	}

	// A second plan compiles again, reproducibly; the images are then up to date.
	opts.WorkDir = t.TempDir()
	replanned, err := build.Plan(ctx, opts, services)
	if err != nil {
		t.Fatal(err)
	}
	for i := range planned {
		if replanned[i].Ref != planned[i].Ref {
			t.Errorf("rebuild of unchanged %s gave %s, then %s", services[i].Name, planned[i].Ref, replanned[i].Ref)
		}
	}
	again, err := build.Images(ctx, opts, replanned)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range again {
		if !r.UpToDate || r.ID != ids[i] {
			t.Errorf("second Images: %+v, want up to date with ID %s", r, ids[i])
		}
	}

	labelled, err := e.Images(ctx, map[string]string{build.LabelRun: opts.RunID, build.LabelSuite: opts.Suite})
	if err != nil {
		t.Fatal(err)
	}
	var labelledIDs []string
	for _, img := range labelled {
		labelledIDs = append(labelledIDs, img.ID)
		if service := img.Labels[build.LabelService]; !slices.ContainsFunc(services, func(s build.Service) bool { return s.Name == service }) {
			t.Errorf("image %v has service label %q", img.Refs, service)
		}
	}
	if !slices.Equal(slices.Sorted(slices.Values(labelledIDs)), slices.Sorted(slices.Values(ids))) {
		t.Errorf("images labelled with the run: %v, built: %v", labelledIDs, ids)
	}

	// An image of another run, which scoped removal must not touch.
	unrelatedRef := "localhost/kindling-it-" + unique + "/unrelated:1"
	contextDir, containerfile := enginetest.HelloContext(t)
	if err := e.Build(ctx, engine.BuildSpec{Ref: unrelatedRef, Containerfile: containerfile, ContextDir: contextDir,
		Labels: map[string]string{build.LabelRun: "other-" + unique, build.LabelSuite: opts.Suite}}); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "archives")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, opts.Suite+"-previous.tar")
	if err := os.WriteFile(stale, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	verified, err := archive.Write(ctx, dir, opts.Suite, opts.RunID, refs, func(ctx context.Context, path string) error {
		return e.Save(ctx, path, refs)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s archive %s: %d bytes, sha256 %s", e.Name(), filepath.Base(verified.Path), verified.Size, verified.SHA256)
	if len(verified.Removed) != 1 || verified.Removed[0].Path != stale {
		t.Errorf("removed = %+v, want the stale archive", verified.Removed)
	}
	for i, img := range verified.Images {
		if img.Ref != refs[i] || img.ID != ids[i] {
			t.Errorf("archive has %s as %s, the engine %s as %s", img.Ref, img.ID, refs[i], ids[i])
		}
	}
	if digest, size, err := archive.Rehash(verified.Path); err != nil || digest != verified.SHA256 || size != verified.Size {
		t.Errorf("Rehash = %s %d %v", digest, size, err)
	}
	files, err := archive.List(dir)
	if err != nil || len(files) != 1 || files[0].Path != verified.Path {
		t.Errorf("archives in %s: %+v, %v", dir, files, err)
	}

	if err := e.Remove(ctx, labelledIDs); err != nil {
		t.Fatal(err)
	}
	for _, ref := range refs {
		if _, found, err := e.ImageID(ctx, ref); found || err != nil {
			t.Errorf("%s survived scoped removal (%v)", ref, err)
		}
	}
	if _, found, err := e.ImageID(ctx, unrelatedRef); !found || err != nil {
		t.Errorf("scoped removal also removed %s (%v)", unrelatedRef, err)
	}
}
