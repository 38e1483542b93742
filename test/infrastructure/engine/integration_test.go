package engine_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/engine/enginetest"
)

func TestRealEngines(t *testing.T) {
	for _, config := range enginetest.Configurations {
		t.Run(config, func(t *testing.T) {
			e := enginetest.Real(t, config)
			enginetest.Lock(t)
			testRealEngine(t, config, e)
		})
	}
}

// kindenvKeep is what every aggressive prune must keep: the Kind node image and setup's caches.
func kindenvKeep() []string {
	keep := []string{"kindenv/*", "localhost/kindenv/*"}
	if node := enginetest.NodeImage(); node != "" {
		keep = append(keep, node)
	}
	return keep
}

func testRealEngine(t *testing.T, config string, e engine.Engine) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := e.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := e.Images(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}

	info, err := e.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("info: %+v", info)
	if !info.Remote {
		for _, dir := range append([]string{info.GraphRoot}, info.Storage...) {
			if st, err := os.Stat(dir); err != nil || !st.IsDir() {
				t.Errorf("storage %q is not a directory: %v", dir, err)
			}
		}
	}
	// Docker 29's containerd store keeps the bytes in containerd's content and snapshot dirs.
	if wantContainerd := config == enginetest.Docker29; info.IDsAreManifests() != wantContainerd ||
		(wantContainerd && len(info.Storage) < 3) {
		t.Errorf("%s: store %q, storage %v", config, info.Store, info.Storage)
	}

	// Docker builds with BuildKit, as on CI runners, unless setup left the plugin out.
	wantBuilder := engine.BuilderBuildah
	if config != engine.Podman {
		wantBuilder = engine.BuilderBuildKit
		if os.Getenv("KINDENV_NO_BUILDX") == "1" {
			wantBuilder = engine.BuilderLegacy
		}
	}
	if info.Builder != wantBuilder {
		t.Errorf("%s: builder %q, want %q (KINDENV_NO_BUILDX=%q)", config, info.Builder, wantBuilder, os.Getenv("KINDENV_NO_BUILDX"))
	}

	unique := enginetest.Unique(t)
	repo := "localhost/kindling-it-" + unique
	run := "it-" + unique
	contextDir, containerfile := enginetest.HelloContext(t)
	var created []string
	t.Cleanup(func() {
		if err := e.Remove(context.Background(), created); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
	build := func(ref string, labels map[string]string) string {
		t.Helper()
		if err := e.Build(ctx, engine.BuildSpec{Ref: ref, Dockerfile: containerfile, ContextDir: contextDir, Labels: labels}); err != nil {
			t.Fatal(err)
		}
		id, found, err := e.ImageID(ctx, ref)
		if err != nil || !found || !strings.HasPrefix(id, "sha256:") || len(id) != len("sha256:")+64 {
			t.Fatalf("ImageID(%s) = %q, %v, %v", ref, id, found, err)
		}
		created = append(created, id)
		return id
	}
	refOne, refTwo, unrelatedRef := repo+"/hello:one", repo+"/hello:two", repo+"/unrelated:1"
	idOne := build(refOne, map[string]string{"dev.kindling.run": run, "dev.kindling.variant": "one"})
	idTwo := build(refTwo, map[string]string{"dev.kindling.run": run, "dev.kindling.variant": "two"})
	build(unrelatedRef, map[string]string{"dev.kindling.run": "other-" + unique})
	if idOne == idTwo {
		t.Fatal("different labels should give different image IDs")
	}

	if _, found, err := e.ImageID(ctx, repo+"/missing:1"); found || err != nil {
		t.Errorf("missing image: found=%v err=%v", found, err)
	}

	t.Run("build failure shows the log tail", func(t *testing.T) {
		broken := filepath.Join(t.TempDir(), "Containerfile")
		if err := os.WriteFile(broken, []byte("FROM scratch\nCOPY no-such-file /x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		err := e.Build(ctx, engine.BuildSpec{Ref: repo + "/broken:1", Dockerfile: broken, ContextDir: contextDir})
		if err == nil || !strings.Contains(err.Error(), "no-such-file") {
			t.Fatalf("want an error quoting the build log, got %v", err)
		}
		t.Logf("build failure: %v", err)
	})

	if info.Builder == engine.BuilderBuildKit {
		t.Run("a FROM image BuildKit cannot resolve says what to do", func(t *testing.T) {
			dockerfile := filepath.Join(t.TempDir(), "Dockerfile")
			if err := os.WriteFile(dockerfile, []byte("FROM kindling.invalid/not-pulled:"+unique+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			err := e.Build(ctx, engine.BuildSpec{Ref: repo + "/unresolved:1", Dockerfile: dockerfile, ContextDir: contextDir})
			if err == nil || !strings.Contains(err.Error(), "could not resolve kindling.invalid/not-pulled:"+unique) ||
				!strings.Contains(err.Error(), "pull kindling.invalid/not-pulled:"+unique) {
				t.Fatalf("want an error naming the image and the pull, got %v", err)
			}
		})
	}

	images, err := e.Images(ctx, map[string]string{"dev.kindling.run": run})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, img := range images {
		ids = append(ids, img.ID)
		if img.Size <= 0 || img.Labels["dev.kindling.run"] != run || len(img.Refs) != 1 {
			t.Errorf("image = %+v", img)
		}
	}
	slices.Sort(ids)
	if want := []string{idOne, idTwo}; !slices.Equal(ids, slices.Sorted(slices.Values(want))) {
		t.Errorf("Images(run=%s) = %v, want %v", run, ids, want)
	}

	usage, err := e.DiskUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("disk usage: %+v", usage)
	if usage.Images <= 0 {
		t.Errorf("disk usage reports no image bytes: %+v", usage)
	}

	path := filepath.Join(t.TempDir(), "two.tar")
	if err := e.Save(ctx, path, []string{refOne, refTwo}); err != nil {
		t.Fatal(err)
	}
	verified, err := archive.Verify(path, []string{refOne, refTwo})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("archive of two images: %d bytes", verified.Size)
	// Like with like: the engine's ID is the archive's config digest; on the containerd store
	// the engine's host-platform manifest (within its index, when BuildKit made one) is the
	// archive's manifest digest.
	for i, id := range []string{idOne, idTwo} {
		img := verified.Images[i]
		manifest, err := e.PlatformManifest(ctx, img.Ref)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case !info.IDsAreManifests() && (img.ID != id || manifest != ""):
			t.Errorf("archive has %s as config %s, the engine as %s (platform manifest %q)", img.Ref, img.ID, id, manifest)
		case info.IDsAreManifests() && (img.Manifest != manifest || manifest == ""):
			t.Errorf("archive has %s as manifest %s, the engine's %s manifest is %q (ID %s)", img.Ref, img.Manifest, engine.HostPlatform, manifest, id)
		case info.IDsAreManifests() && info.Builder == engine.BuilderBuildKit && manifest == id:
			t.Errorf("%s: BuildKit on the containerd store made no index (attestations) of %s: the index path is not exercised", config, img.Ref)
		}
	}
	if info.Builder == engine.BuilderBuildKit {
		testBuildCache(t, ctx, e, unique)
	}
	if info.Builder != engine.BuilderLegacy {
		testCompileCaches(t, ctx, e, unique)
	}

	if err := e.Remove(ctx, []string{idOne, idTwo}); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{refOne, refTwo} {
		if _, found, _ := e.ImageID(ctx, ref); found {
			t.Errorf("%s survived Remove", ref)
		}
	}
	if _, found, _ := e.ImageID(ctx, unrelatedRef); !found {
		t.Fatalf("the unrelated image %s was removed too", unrelatedRef)
	}

	// Re-using a tag leaves the old image dangling.
	danglingRef := repo + "/dangling:1"
	old := build(danglingRef, map[string]string{"dev.kindling.variant": "old"})
	build(danglingRef, map[string]string{"dev.kindling.variant": "new"})
	reclaimed, err := e.PruneDangling(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("PruneDangling reclaimed %d bytes", reclaimed)
	if _, found, _ := e.ImageID(ctx, old); found {
		t.Errorf("dangling image %s survived PruneDangling", old)
	}

	keepRef := "localhost/kindenv/kindling-it-" + unique + ":keep"
	kept := build(keepRef, map[string]string{"dev.kindling.variant": "kept"})
	keep := kindenvKeep()
	var protected []engine.Image
	for _, img := range before {
		if engine.Kept(img, keep) {
			protected = append(protected, img)
		} else {
			// Images this test did not create: spare them from other work on this machine.
			keep = append(keep, img.ID)
		}
	}
	reclaimed, err = e.PruneAll(ctx, keep)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("PruneAll reclaimed %d bytes; kept %d kindenv image(s)", reclaimed, len(protected))
	if _, found, _ := e.ImageID(ctx, unrelatedRef); found {
		t.Errorf("PruneAll left %s", unrelatedRef)
	}
	if id, found, _ := e.ImageID(ctx, keepRef); !found || id != kept {
		t.Errorf("PruneAll removed %s, which matches localhost/kindenv/*", keepRef)
	}
	for _, img := range protected {
		if _, found, _ := e.ImageID(ctx, img.ID); !found {
			t.Errorf("PruneAll removed kindenv image %v", img.Refs)
		}
	}
	if reclaimed <= 0 {
		t.Errorf("PruneAll removed %s but reports %d reclaimed bytes", unrelatedRef, reclaimed)
	}
}

func TestCopyImageBetweenEngines(t *testing.T) {
	docker := enginetest.Real(t, engine.Docker)
	podman := enginetest.Real(t, engine.Podman)
	enginetest.Lock(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	ref := "localhost/kindling-it-" + enginetest.Unique(t) + "/copied:1"
	contextDir, containerfile := enginetest.HelloContext(t)
	if err := docker.Build(ctx, engine.BuildSpec{Ref: ref, Dockerfile: containerfile, ContextDir: contextDir}); err != nil {
		t.Fatal(err)
	}
	dockerID, _, err := docker.ImageID(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = docker.Remove(context.Background(), []string{dockerID}) })

	copyImage(ctx, t, docker, podman, ref)
	podmanID, found, err := podman.ImageID(ctx, ref)
	if err != nil || !found {
		t.Fatalf("podman does not have %s after LoadImage: %v", ref, err)
	}
	t.Cleanup(func() { _ = podman.Remove(context.Background(), []string{podmanID}) })
	if podmanID != dockerID {
		t.Errorf("image ID changed in the copy: docker %s, podman %s", dockerID, podmanID)
	}

	// And back again.
	if err := docker.Remove(ctx, []string{dockerID}); err != nil {
		t.Fatal(err)
	}
	copyImage(ctx, t, podman, docker, ref)
	if id, found, err := docker.ImageID(ctx, ref); err != nil || !found || id != dockerID {
		t.Errorf("after copying back docker has %s as %q (found %v, %v), want %s", ref, id, found, err, dockerID)
	}
}

// copyImage streams ref from one engine into the other without a temporary file.
func copyImage(ctx context.Context, t *testing.T, from, to engine.Engine, ref string) {
	t.Helper()
	reader, writer := io.Pipe()
	saved := make(chan error, 1)
	go func() {
		err := from.SaveImage(ctx, writer, ref)
		writer.CloseWithError(err)
		saved <- err
	}()
	err := to.LoadImage(ctx, reader)
	reader.CloseWithError(io.ErrClosedPipe)
	if saveErr := <-saved; saveErr != nil {
		t.Fatalf("%s save: %v", from.Name(), saveErr)
	}
	if err != nil {
		t.Fatalf("%s load: %v", to.Name(), err)
	}
}

// testBuildCache builds an image from a context of its own (new content: new records whatever
// was built before) and checks that BuildKit's records of that build are listed with bytes, and
// that, once the image is gone, removing them by ID frees them and leaves every other record.
func testBuildCache(t *testing.T, ctx context.Context, e engine.Engine, unique string) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"Dockerfile": "FROM scratch\nCOPY content /content\n",
		"content":    strings.Repeat("kindling build cache "+unique+"\n", 4096),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before, err := e.BuildCache(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ref := "localhost/kindling-it-" + unique + "/cache:1"
	if err := e.Build(ctx, engine.BuildSpec{Ref: ref, Dockerfile: filepath.Join(dir, "Dockerfile"), ContextDir: dir}); err != nil {
		t.Fatal(err)
	}
	after, err := e.BuildCache(ctx)
	if err != nil {
		t.Fatal(err)
	}
	known := func(records []engine.CacheRecord, id string) bool {
		return slices.ContainsFunc(records, func(r engine.CacheRecord) bool { return r.ID == id })
	}
	var added []string
	var bytes int64
	for _, r := range after {
		if !known(before, r.ID) {
			added, bytes = append(added, r.ID), bytes+r.Size
		}
	}
	t.Logf("the build added %d build cache records, %d bytes", len(added), bytes)
	if len(added) == 0 || bytes < 4096*20 {
		t.Fatalf("a BuildKit build of new content left no build cache records holding it: %+v", after)
	}
	if err := e.RemoveRefs(ctx, []string{ref}); err != nil {
		t.Fatal(err)
	}
	reclaimed, err := e.RemoveBuildCache(ctx, added)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("RemoveBuildCache reclaimed %d bytes", reclaimed)
	left, err := e.BuildCache(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range left {
		if slices.Contains(added, r.ID) && r.Reclaimable {
			t.Errorf("record %s (%s, %d bytes) of the build survived RemoveBuildCache", r.ID, r.Description, r.Size)
		}
	}
	for _, r := range before {
		if !known(left, r.ID) {
			t.Errorf("record %s (%s) was there before the build and went with its records", r.ID, r.Description)
		}
	}
}

// testCompileCaches builds with a cache mount of a new id and checks that the cache the builder
// keeps of it (buildah's directory, BuildKit's record) is found with its bytes, that a mount of
// another id is not, and that RemoveCompileCaches removes it.
func testCompileCaches(t *testing.T, ctx context.Context, e engine.Engine, unique string) {
	t.Helper()
	const base = "debian:bookworm-slim"
	if _, found, err := e.ImageID(ctx, base); err != nil {
		t.Fatal(err)
	} else if !found {
		if err := e.Pull(ctx, base); err != nil {
			t.Fatal(err)
		}
	}
	mount := engine.CacheMount{ID: "kindling-it-" + unique, Target: "/cache"}
	dir := t.TempDir()
	dockerfile := "FROM " + base + "\nRUN --mount=type=cache,id=" + mount.ID + ",target=/cache dd if=/dev/zero of=/cache/f bs=1M count=2 && echo " + unique + "\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := e.BuildCache(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ref := "localhost/kindling-it-" + unique + "/compile:1"
	if err := e.Build(ctx, engine.BuildSpec{Ref: ref, Dockerfile: filepath.Join(dir, "Dockerfile"), ContextDir: dir}); err != nil {
		t.Fatal(err)
	}
	after, err := e.BuildCache(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var appeared []string
	for _, r := range after {
		if !slices.ContainsFunc(before, func(b engine.CacheRecord) bool { return b.ID == r.ID }) {
			appeared = append(appeared, r.ID)
		}
	}
	other := engine.CacheMount{ID: "kindling-it-none-" + unique, Target: "/cache"}
	caches, err := e.CompileCaches(ctx, []engine.CacheMount{mount, other}, appeared)
	if err != nil {
		t.Fatal(err)
	}
	if len(caches) != 1 || caches[0].Mount != mount || caches[0].Bytes < 2_000_000 { // 2 MiB, as BuildKit rounds it ("2.097MB")
		t.Fatalf("compile caches %+v: want the cache of %s holding about 2 MiB", caches, mount.ID)
	}
	t.Logf("compile cache %s: %s, %d bytes", mount.ID, caches[0].Where(), caches[0].Bytes)
	if err := e.RemoveRefs(ctx, []string{ref}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.PruneDangling(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := e.RemoveCompileCaches(ctx, caches); err != nil || n < 2_000_000 {
		t.Fatalf("RemoveCompileCaches = %d, %v; want about 2 MiB", n, err)
	}
	if left, err := e.CompileCaches(ctx, []engine.CacheMount{mount}, appeared); err != nil || len(left) > 0 {
		t.Errorf("after RemoveCompileCaches: %+v, %v", left, err)
	}
}
