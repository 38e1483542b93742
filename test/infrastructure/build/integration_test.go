package build_test

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
	"github.com/kindling-dev/kindling/test/infrastructure/build"
	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/engine/enginetest"
)

// TestBuildExportVerifyRemove runs build → export → verify → scoped removal on each real engine.
func TestBuildExportVerifyRemove(t *testing.T) {
	for _, config := range enginetest.Configurations {
		t.Run(config, func(t *testing.T) {
			e := enginetest.Real(t, config)
			enginetest.Lock(t)
			testBuildExportVerifyRemove(t, config, e)
		})
	}
}

func testBuildExportVerifyRemove(t *testing.T, config string, e engine.Engine) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	unique := enginetest.Unique(t)
	// One service from its multi-stage Dockerfile, one compiled on the host.
	hello, world := "kindling-it-hello", "kindling-it-world"
	services := []build.Service{
		{Name: hello, Spec: build.Spec{Dockerfile: "services/" + hello + "/Dockerfile", Target: "production",
			Args: map[string]string{"GOFLAGS": "${KINDLING_IT_GOFLAGS}"}}},
		{Name: world, Spec: build.Spec{Dockerfile: "services/" + world + "/Dockerfile",
			Host: &build.HostBuild{Package: "./services/" + world, Containerfile: "services/" + world + "/Containerfile"}}},
	}
	opts := build.Options{
		Engine:      e,
		Suite:       "it-" + unique,
		RunID:       "run-" + unique,
		RepoRoot:    enginetest.Repo(t, hello, world),
		WorkDir:     t.TempDir(),
		Parallelism: 2,
		Log:         t.Logf,
		Host:        true,
		Getenv:      func(name string) string { return map[string]string{"KINDLING_IT_GOFLAGS": "-buildvcs=false"}[name] },
	}
	var built build.Built
	t.Cleanup(func() {
		// Whatever this run labelled or left, plus the unrelated image below.
		images, _ := e.Images(context.Background(), map[string]string{build.LabelSuite: opts.Suite})
		ids := built.Intermediate
		for _, img := range images {
			ids = append(ids, img.ID)
		}
		if err := e.Remove(context.Background(), ids); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
	// The runtime base must be pulled by this build, and accounted for as pulled.
	if err := e.RemoveRefs(ctx, []string{enginetest.RuntimeBase}); err != nil {
		t.Fatalf("remove %s before the build: %v", enginetest.RuntimeBase, err)
	}
	_, builderPresent, err := e.ImageID(ctx, "golang:1.26-bookworm")
	if err != nil {
		t.Fatal(err)
	}

	planned, err := build.Plan(ctx, opts, services)
	if err != nil {
		t.Fatal(err)
	}
	if planned[0].Method != build.MethodDockerfile || planned[1].Method != build.MethodHost {
		t.Fatalf("methods %s, %s", planned[0].Method, planned[1].Method)
	}
	if want := []string{"golang:1.26-bookworm", enginetest.RuntimeBase}; !slices.Equal(planned[0].Bases, want) {
		t.Errorf("bases %v, want %v", planned[0].Bases, want)
	}
	start := time.Now()
	built, err = build.Images(ctx, opts, planned)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: built in %s; pulled %v; %d intermediate images", e.Name(), time.Since(start).Round(time.Millisecond), built.Pulled, len(built.Intermediate))
	var refs, ids []string
	for _, r := range built.Results {
		if r.UpToDate {
			t.Errorf("%s: first build reported up to date", r.Ref)
		}
		refs, ids = append(refs, r.Ref), append(ids, r.ID)
	}
	var pulled []string
	for _, b := range built.Pulled {
		pulled = append(pulled, b.Ref)
		if !strings.HasPrefix(b.ID, "sha256:") {
			t.Errorf("pulled %s has ID %q", b.Ref, b.ID)
		}
	}
	wantPulled := []string{enginetest.RuntimeBase}
	if !builderPresent {
		wantPulled = []string{"golang:1.26-bookworm", enginetest.RuntimeBase}
	}
	if !slices.Equal(pulled, wantPulled) {
		t.Errorf("pulled %v, want %v", pulled, wantPulled)
	}
	// What a build leaves beside its image: intermediate images (buildah, docker's legacy
	// builder) or BuildKit's build cache records, never both.
	info, err := e.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s (builder %s): %d build cache records, %d bytes", config, info.Builder, len(built.BuildCache), built.BuildCacheBytes)
	if info.Builder == engine.BuilderBuildKit {
		if len(built.BuildCache) == 0 || built.BuildCacheBytes <= 0 || len(built.Intermediate) > 0 {
			t.Errorf("BuildKit: build cache %v (%d bytes), intermediate images %v; want records with bytes and no images",
				built.BuildCache, built.BuildCacheBytes, built.Intermediate)
		}
	} else if len(built.Intermediate) == 0 || len(built.BuildCache) > 0 {
		t.Errorf("%s: intermediate images %v, build cache %v; want images of the builder stage and no BuildKit records",
			info.Builder, built.Intermediate, built.BuildCache)
	}
	for _, id := range built.Intermediate {
		if slices.Contains(ids, id) {
			t.Errorf("intermediate images include the built image %s", id)
		}
	}
	// The image runs the binary the builder stage compiled, as the non-root user.
	if out, err := enginetest.Command(ctx, config, "run", "--rm", refs[0]).CombinedOutput(); err != nil || !strings.Contains(string(out), "hello") {
		t.Errorf("%s run %s: %v\n%s", e.Name(), refs[0], err, out)
	}

	// A second plan gives the same references (the host path compiles again, reproducibly); the
	// images are then up to date, and nothing new is accounted.
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
	for i, r := range again.Results {
		if !r.UpToDate || r.ID != ids[i] {
			t.Errorf("second Images: %+v, want up to date with ID %s", r, ids[i])
		}
	}
	if len(again.Pulled) > 0 || len(again.Intermediate) > 0 || len(again.BuildCache) > 0 {
		t.Errorf("nothing built, yet accounted %+v", again)
	}

	labelled, err := e.Images(ctx, map[string]string{build.LabelRun: opts.RunID, build.LabelSuite: opts.Suite})
	if err != nil {
		t.Fatal(err)
	}
	// Podman labels the untagged image of every stage, not only the target: those are the
	// run's intermediate images.
	var labelledIDs []string
	for _, img := range labelled {
		labelledIDs = append(labelledIDs, img.ID)
		if service := img.Labels[build.LabelService]; !slices.ContainsFunc(services, func(s build.Service) bool { return s.Name == service }) {
			t.Errorf("image %v has service label %q", img.Refs, service)
		}
		if !slices.Contains(ids, img.ID) && !slices.Contains(built.Intermediate, img.ID) {
			t.Errorf("image %s %v is labelled with the run, but neither built nor an intermediate image of the build", img.ID, img.Refs)
		}
	}
	for _, id := range ids {
		if !slices.Contains(labelledIDs, id) {
			t.Errorf("built image %s is not labelled with the run", id)
		}
	}

	// An image of another run, which scoped removal must not touch.
	unrelatedRef := "localhost/kindling-it-" + unique + "/unrelated:1"
	contextDir, containerfile := enginetest.HelloContext(t)
	if err := e.Build(ctx, engine.BuildSpec{Ref: unrelatedRef, Dockerfile: containerfile, ContextDir: contextDir,
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
	verified, err := archive.WriteLayout(ctx, dir, opts.Suite, opts.RunID, refs, func(ctx context.Context, w io.Writer) error {
		return e.SaveImage(ctx, w, refs...)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s archive %s: %d bytes, sha256 %s", e.Name(), filepath.Base(verified.Path), verified.Size, verified.SHA256)
	if len(verified.Removed) != 1 || verified.Removed[0].Path != stale {
		t.Errorf("removed = %+v, want the stale archive", verified.Removed)
	}
	for i, img := range verified.Images {
		// Like with like: a config digest, the engine's ID on podman and docker's legacy store;
		// on the containerd store the host platform's manifest, within the engine's index.
		got, want := img.ID, ids[i]
		if info.IDsAreManifests() {
			got, want = img.Manifest, built.Results[i].Manifest
		}
		if img.Ref != refs[i] || got != want || want == "" {
			t.Errorf("archive has %s as %s (manifest %s), the engine %s as %s (manifest %s)", img.Ref, img.ID, img.Manifest, refs[i], ids[i], built.Results[i].Manifest)
		}
	}
	if l, err := archive.OpenLayout(verified.Path, verified.SHA256); err != nil || l.Check(l.Images) != nil {
		t.Errorf("the layout does not check: %v", err)
	}
	files, err := archive.List(dir)
	if err != nil || len(files) != 1 || files[0].Path != verified.Path {
		t.Errorf("archives in %s: %+v, %v", dir, files, err)
	}

	if err := e.Remove(ctx, labelledIDs); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RemoveBuildCache(ctx, built.BuildCache); err != nil {
		t.Fatal(err)
	}
	if cache, err := e.BuildCache(ctx); err != nil {
		t.Fatal(err)
	} else {
		for _, r := range cache {
			switch {
			case !slices.Contains(built.BuildCache, r.ID):
			case !r.Reclaimable:
				// A record another one holds.
				t.Logf("kept record %s (%s, %d bytes): shared %v, reclaimable %v", r.ID, r.Description, r.Size, r.Shared, r.Reclaimable)
			default:
				t.Errorf("record %s (%s, %d bytes) of the builds survived their removal", r.ID, r.Description, r.Size)
			}
		}
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

// A failing RUN and an unpullable base are one error each, naming the service, its Dockerfile and
// what failed, with the engine's last lines; nothing is built.
func TestBuildFailuresOnRealEngines(t *testing.T) {
	for _, config := range enginetest.Configurations {
		t.Run(config, func(t *testing.T) {
			e := enginetest.Real(t, config)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			unique := enginetest.Unique(t)
			root := enginetest.Repo(t, "broken")
			opts := build.Options{Engine: e, Suite: "it-" + unique, RunID: "run-" + unique, RepoRoot: root,
				WorkDir: t.TempDir(), Log: t.Logf}
			for _, tc := range []struct {
				name, dockerfile string
				want             []string
			}{
				{"failing RUN", "FROM debian:bookworm-slim AS production\nRUN echo kindling-it-about-to-fail && false\n",
					[]string{"service broken", "services/broken/Dockerfile", "target production", "kindling-it-about-to-fail"}},
				{"unpullable base", "FROM kindling.invalid/nothing-here:" + unique + " AS production\n",
					[]string{"base image kindling.invalid/nothing-here:" + unique, "service broken", "services/broken/Dockerfile"}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					path := filepath.Join(root, "services", "broken", "Dockerfile")
					if err := os.WriteFile(path, []byte(tc.dockerfile), 0o644); err != nil {
						t.Fatal(err)
					}
					planned, err := build.Plan(ctx, opts, []build.Service{{Name: "broken",
						Spec: build.Spec{Dockerfile: "services/broken/Dockerfile", Target: "production"}}})
					if err != nil {
						t.Fatal(err)
					}
					_, err = build.Images(ctx, opts, planned)
					if err == nil {
						t.Fatal("the build succeeded")
					}
					t.Log(err)
					for _, want := range tc.want {
						if !strings.Contains(err.Error(), want) {
							t.Errorf("error does not say %q", want)
						}
					}
					if _, found, _ := e.ImageID(ctx, planned[0].Ref); found {
						t.Errorf("%s exists after the failed build", planned[0].Ref)
					}
					if out, err := enginetest.Command(ctx, config, "ps", "-a", "-q", "--filter", "status=exited").Output(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
						t.Errorf("the failed build left containers: %q (%v)", out, err)
					}
				})
			}
		})
	}
}
