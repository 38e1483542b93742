package build_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/build"
	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/engine/enginetest"
)

const containerfile = "FROM scratch\nCOPY %[1]s /%[1]s\nENTRYPOINT [\"/%[1]s\"]\n"

// repo lays out services/<name>/Containerfile for each service.
func repo(t *testing.T, names ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, name := range names {
		dir := filepath.Join(root, "services", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "Containerfile"), fmt.Appendf(nil, containerfile, name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// fakeGo answers "go build ... -o <path> <pkg>" by writing binaries[pkg] to path.
type fakeGo struct {
	mu       sync.Mutex
	binaries map[string]string
	fail     map[string]string
	runner   *enginetest.Runner
}

func newFakeGo() *fakeGo {
	f := &fakeGo{binaries: map[string]string{}, fail: map[string]string{}}
	f.runner = &enginetest.Runner{Func: f.handle}
	return f
}

func (f *fakeGo) handle(cmd engine.Cmd) (enginetest.Response, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pkg := cmd.Args[len(cmd.Args)-1]
	if msg, ok := f.fail[pkg]; ok {
		return enginetest.Response{Stderr: msg, Err: enginetest.ExitError{Code: 1}}, true
	}
	out := cmd.Args[slices.Index(cmd.Args, "-o")+1]
	if err := os.WriteFile(out, []byte(f.binaries[pkg]+"binary of "+pkg), 0o755); err != nil {
		return enginetest.Response{Err: err}, true
	}
	return enginetest.Response{}, true
}

func options(t *testing.T, root string, runner engine.Runner, eng engine.Engine) build.Options {
	return build.Options{
		Engine:   eng,
		Suite:    "aianalysis",
		RunID:    "run1",
		RepoRoot: root,
		WorkDir:  t.TempDir(),
		Runner:   runner,
		Log:      t.Logf,
		Host:     true,
	}
}

// hostServices are services built on the host, as repo lays them out.
func hostServices(names ...string) []build.Service {
	var out []build.Service
	for _, name := range names {
		out = append(out, build.Service{Name: name, Spec: build.Spec{Host: &build.HostBuild{
			Package:       "./services/" + name,
			Containerfile: filepath.Join("services", name, "Containerfile"),
		}}})
	}
	return out
}

func TestPlanCompilesAndTagsByInputs(t *testing.T) {
	root := repo(t, "datastorage", "aianalysis")
	goCmd := newFakeGo()
	opts := options(t, root, goCmd.runner, nil)
	services := hostServices("datastorage", "aianalysis")
	planned, err := build.Plan(context.Background(), opts, services)
	if err != nil {
		t.Fatal(err)
	}
	if len(planned) != 2 || planned[0].Service.Name != "datastorage" || planned[1].Service.Name != "aianalysis" {
		t.Fatalf("planned = %+v", planned)
	}
	p := planned[0]
	if !strings.HasPrefix(p.Ref, "localhost/datastorage:aianalysis-") || len(p.Ref) != len("localhost/datastorage:aianalysis-")+12 {
		t.Errorf("ref = %s", p.Ref)
	}
	if p.ContextDir != filepath.Join(opts.WorkDir, "datastorage") || p.Method != build.MethodHost || p.Dockerfile != filepath.Join(root, "services", "datastorage", "Containerfile") {
		t.Errorf("planned = %+v", p)
	}
	entries, _ := os.ReadDir(p.ContextDir)
	if len(entries) != 1 || entries[0].Name() != "datastorage" {
		t.Errorf("build context holds %v, want only the binary", entries)
	}

	calls := goCmd.runner.Calls()
	if len(calls) != 2 {
		t.Fatalf("calls = %v", goCmd.runner.Argvs())
	}
	var ds engine.Cmd
	for _, c := range calls {
		if c.Args[len(c.Args)-1] == "./services/datastorage" {
			ds = c
		}
	}
	wantArgs := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w", "-o", filepath.Join(opts.WorkDir, "datastorage", "datastorage"), "./services/datastorage"}
	if ds.Name != "go" || !slices.Equal(ds.Args, wantArgs) || ds.Dir != root {
		t.Errorf("go command = %s %q in %s", ds.Name, ds.Args, ds.Dir)
	}
	wantEnv := []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + runtime.GOARCH}
	if !slices.Equal(ds.Env, wantEnv) {
		t.Errorf("env = %q", ds.Env)
	}

	// Same inputs, same reference, even in another work directory.
	opts.WorkDir = t.TempDir()
	again, err := build.Plan(context.Background(), opts, services)
	if err != nil || again[0].Ref != p.Ref || again[1].Ref != planned[1].Ref {
		t.Errorf("second plan = %+v, %v", again, err)
	}
	// A changed binary changes the reference; so does a changed Containerfile.
	goCmd.binaries["./services/datastorage"] = "v2 "
	changed, _ := build.Plan(context.Background(), opts, services)
	if changed[0].Ref == p.Ref || changed[1].Ref != planned[1].Ref {
		t.Errorf("after a code change: %s vs %s", changed[0].Ref, p.Ref)
	}
	cf := filepath.Join(root, "services", "aianalysis", "Containerfile")
	if err := os.WriteFile(cf, []byte("FROM scratch\nCOPY aianalysis /x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed2, _ := build.Plan(context.Background(), opts, services)
	if changed2[1].Ref == planned[1].Ref {
		t.Error("a changed Containerfile must change the reference")
	}
}

func TestPlanGoBuildFailure(t *testing.T) {
	root := repo(t, "datastorage")
	goCmd := newFakeGo()
	var log strings.Builder
	for i := range 40 {
		fmt.Fprintf(&log, "services/datastorage/main.go:%d: undefined: x\n", i)
	}
	goCmd.fail["./services/datastorage"] = log.String()
	_, err := build.Plan(context.Background(), options(t, root, goCmd.runner, nil), hostServices("datastorage"))
	if err == nil || !strings.Contains(err.Error(), "service datastorage") || !strings.Contains(err.Error(), "main.go:39: undefined") ||
		strings.Contains(err.Error(), "main.go:19:") {
		t.Fatalf("want the service and the output tail, got %v", err)
	}
}

func TestPlanValidates(t *testing.T) {
	root := repo(t, "ok")
	goCmd := newFakeGo()
	opts := options(t, root, goCmd.runner, nil)
	for _, services := range [][]build.Service{hostServices("Bad"), hostServices("../x"), hostServices("ok", "ok"), hostServices("missing")} {
		if _, err := build.Plan(context.Background(), opts, services); err == nil {
			t.Errorf("Plan(%v) succeeded", services)
		}
	}
	opts.Suite = "Suite With Spaces"
	if _, err := build.Plan(context.Background(), opts, hostServices("ok")); err == nil {
		t.Error("invalid suite accepted")
	}
}

func planned(names ...string) []build.Planned {
	var ps []build.Planned
	for _, name := range names {
		ps = append(ps, build.Planned{
			Service: build.Service{Name: name}, Ref: "localhost/" + name + ":s-000000000000", Method: build.MethodHost,
			ContextDir: "/work/" + name, Dockerfile: "/repo/services/" + name + "/Containerfile",
		})
	}
	return ps
}

func TestImagesBuildsBoundedAndSkipsUpToDate(t *testing.T) {
	eng := &enginetest.Engine{BuildDelay: 20 * time.Millisecond}
	existing := eng.AddImage("localhost/b:s-000000000000", nil)
	opts := options(t, t.TempDir(), nil, eng)
	opts.Parallelism = 2
	built, err := build.Images(context.Background(), opts, planned("a", "b", "c", "d", "e"))
	if err != nil {
		t.Fatal(err)
	}
	results := built.Results
	if len(results) != 5 || results[1].Service.Name != "b" || !results[1].UpToDate || results[1].ID != existing {
		t.Fatalf("results = %+v", results)
	}
	for _, r := range slices.Delete(slices.Clone(results), 1, 2) {
		if r.UpToDate || !strings.HasPrefix(r.ID, "sha256:") || r.Duration <= 0 {
			t.Errorf("result = %+v", r)
		}
	}
	if got := eng.MaxParallel(); got != 2 {
		t.Errorf("max parallel builds = %d, want 2", got)
	}
	builds := eng.Builds()
	if len(builds) != 4 {
		t.Fatalf("builds = %+v", builds)
	}
	spec := builds[slices.IndexFunc(builds, func(s engine.BuildSpec) bool { return s.Ref == "localhost/a:s-000000000000" })]
	wantLabels := map[string]string{build.LabelRun: "run1", build.LabelSuite: "aianalysis", build.LabelService: "a"}
	if spec.ContextDir != "/work/a" || spec.Dockerfile != "/repo/services/a/Containerfile" || !spec.NoLayerCache || fmt.Sprint(spec.Labels) != fmt.Sprint(wantLabels) {
		t.Errorf("spec = %+v", spec)
	}

	again, err := build.Images(context.Background(), opts, planned("a", "b", "c", "d", "e"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range again.Results {
		if !r.UpToDate {
			t.Errorf("second run rebuilt %s", r.Ref)
		}
	}
	if len(eng.Builds()) != 4 {
		t.Errorf("second run built again: %d builds", len(eng.Builds()))
	}
}

func TestImagesFailureNamesServiceAndFile(t *testing.T) {
	eng := &enginetest.Engine{BuildErrors: map[string]error{
		"localhost/b:s-000000000000": errors.New("podman build of localhost/b:s-000000000000 failed: exit status 125; Last lines of the build log:\nError: COPY b: no such file"),
	}}
	_, err := build.Images(context.Background(), options(t, t.TempDir(), nil, eng), planned("a", "b"))
	if err == nil || !strings.Contains(err.Error(), "service b") || !strings.Contains(err.Error(), "/repo/services/b/Containerfile") ||
		!strings.Contains(err.Error(), "no such file") {
		t.Fatalf("got %v", err)
	}
}

// A build that fails on the network is tried again, up to three times in all; one that fails for
// another reason is not.
func TestImagesRetryNetworkFailures(t *testing.T) {
	defer build.QuickRetries()()
	reset := errors.New("docker build of localhost/a:s-000000000000 failed: exit status 1; Last lines of the build log:\n" +
		`go: github.com/google/uuid@v1.6.0: Get "https://proxy.golang.org/github.com/google/uuid/@v/v1.6.0.zip": read tcp 10.88.0.11:40456->203.0.113.80:443: read: connection reset by peer`)
	eng := &enginetest.Engine{FlakyBuilds: map[string][]error{"localhost/a:s-000000000000": {reset, reset}}}
	var log strings.Builder
	opts := options(t, t.TempDir(), nil, eng)
	opts.Log = func(format string, args ...any) { fmt.Fprintf(&log, format+"\n", args...) }
	if _, err := build.Images(context.Background(), opts, planned("a")); err != nil {
		t.Fatalf("two network failures, then a build: %v", err)
	}
	if n := len(eng.Builds()); n != 3 {
		t.Errorf("%d builds, want 3", n)
	}
	if !strings.Contains(log.String(), "failed on the network") || !strings.Contains(log.String(), "connection reset by peer") {
		t.Errorf("the retries are not logged:\n%s", log.String())
	}

	always := &enginetest.Engine{FlakyBuilds: map[string][]error{"localhost/a:s-000000000000": {reset, reset, reset, reset}}}
	_, err := build.Images(context.Background(), options(t, t.TempDir(), nil, always), planned("a"))
	if err == nil || !strings.Contains(err.Error(), "connection reset by peer") || len(always.Builds()) != 3 {
		t.Errorf("three network failures: %v after %d builds, want the build's error after 3", err, len(always.Builds()))
	}

	broken := &enginetest.Engine{FlakyBuilds: map[string][]error{"localhost/a:s-000000000000": {errors.New("Error: COPY b: no such file")}}}
	if _, err := build.Images(context.Background(), options(t, t.TempDir(), nil, broken), planned("a")); err == nil || len(broken.Builds()) != 1 {
		t.Errorf("a Dockerfile error: %v after %d builds, want it at once", err, len(broken.Builds()))
	}
}

func TestParseParallelism(t *testing.T) {
	if n, err := build.ParseParallelism(""); err != nil || n != runtime.NumCPU() {
		t.Errorf("empty = %d, %v", n, err)
	}
	if n, err := build.ParseParallelism(" 3 "); err != nil || n != 3 {
		t.Errorf("3 = %d, %v", n, err)
	}
	for _, bad := range []string{"0", "-1", "two", "1.5"} {
		_, err := build.ParseParallelism(bad)
		if err == nil || !strings.Contains(err.Error(), "E2E_PARALLELISM") {
			t.Errorf("ParseParallelism(%q) = %v", bad, err)
		}
	}
}

func TestIsBuildOf(t *testing.T) {
	services := []string{"datastorage", "holmesgpt-api"}
	for ref, want := range map[string]bool{
		"localhost/datastorage:aianalysis-0123456789ab":                 true,
		"localhost/holmesgpt-api:aianalysis-fedcba987654":               true,
		"localhost/datastorage:aianalysis-0123456789ab@sha256:" + hex64: true,
		"localhost/datastorage:triage-0123456789ab":                     false, // another suite's
		"localhost/aianalysis:aianalysis-0123456789ab":                  false, // not one of these services
		"docker.io/library/datastorage:aianalysis-0123456789ab":         false, // not built here
		"datastorage:aianalysis-0123456789ab":                           false, // that is docker.io/library/
		"localhost/datastorage:aianalysis-latest":                       false,
		"localhost/datastorage:aianalysis-0123456789ab0":                false,
		"localhost/datastorage":                                         false,
		"not a reference!":                                              false,
	} {
		if got := build.IsBuildOf(ref, "aianalysis", services); got != want {
			t.Errorf("IsBuildOf(%q) = %v, want %v", ref, got, want)
		}
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// RUN --mount on docker's legacy builder fails before any build, naming the service, its
// Dockerfile and line and the way out; BuildKit and buildah build it, and their records of
// what the builds left are the run's.
func TestRunMountNeedsBuildKitOrBuildah(t *testing.T) {
	ps := planned("a", "b")
	ps[1].Mounts = []int{7}
	legacy := &enginetest.Engine{Builder: engine.BuilderLegacy}
	opts := options(t, t.TempDir(), nil, legacy)
	opts.RepoRoot = "/repo"
	_, err := build.Images(context.Background(), opts, ps)
	if err == nil {
		t.Fatal("the legacy builder was given RUN --mount")
	}
	for _, want := range []string{"service b (services/b/Containerfile:7)", "RUN --mount", "buildx", "CONTAINER_ENGINE=podman"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if len(legacy.Builds()) > 0 {
		t.Errorf("built %d images before failing", len(legacy.Builds()))
	}

	buildkit := &enginetest.Engine{Builder: engine.BuilderBuildKit, CacheRecords: 2}
	built, err := build.Images(context.Background(), options(t, t.TempDir(), nil, buildkit), ps)
	if err != nil {
		t.Fatal(err)
	}
	if len(built.BuildCache) != 4 || built.BuildCacheBytes != 400 {
		t.Errorf("build cache %v, %d bytes; want the 4 records of the 2 builds", built.BuildCache, built.BuildCacheBytes)
	}
}

// Images that share a runtime base hold it once: Built.ImageBytes counts it once, as an archive
// of them does, not once per image as their sizes do.
func TestImageBytesCountSharedBasesOnce(t *testing.T) {
	root := t.TempDir()
	var services []build.Service
	for _, name := range []string{"a", "b"} {
		dir := filepath.Join(root, "services", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM debian:bookworm-slim\nCOPY . /"+name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		services = append(services, build.Service{Name: name, Spec: build.Spec{Dockerfile: "services/" + name + "/Dockerfile"}})
	}
	eng := &enginetest.Engine{Sizes: map[string]int64{"debian:bookworm-slim": 800}}
	eng.AddImage("debian:bookworm-slim", nil)
	opts := build.Options{Engine: eng, Suite: "s", RunID: "r", RepoRoot: root, WorkDir: t.TempDir()}
	ps, err := build.Plan(context.Background(), opts, services)
	if err != nil {
		t.Fatal(err)
	}
	built, err := build.Images(context.Background(), opts, ps)
	if err != nil {
		t.Fatal(err)
	}
	// 1000 bytes each, of which the 800 of the base: 800 + 200 + 200.
	if built.ImageBytes != 1200 {
		t.Errorf("image bytes %d, want 1200", built.ImageBytes)
	}
}
