package build_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/build"
	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/engine/enginetest"
)

// dockerfileRepo lays out services/<name>/Dockerfile: a shared first stage that ends in a RUN
// naming the service, with the cache mount mount when it is not "".
func dockerfileRepo(t *testing.T, mount string, names ...string) (string, []build.Service) {
	t.Helper()
	root := t.TempDir()
	var services []build.Service
	for _, name := range names {
		flag := ""
		if mount != "" {
			flag = "--mount=type=cache,id=" + mount + ",target=/cache "
		}
		df := fmt.Sprintf("FROM golang:1.26 AS builder\nWORKDIR /src\nCOPY . .\nRUN %sgo build -o /out ./%s\nFROM scratch\nCOPY --from=builder /out /out\n", flag, name)
		path := filepath.Join(root, "services", name, "Dockerfile")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(df), 0o644); err != nil {
			t.Fatal(err)
		}
		services = append(services, build.Service{Name: name, Spec: build.Spec{Dockerfile: "services/" + name + "/Dockerfile"}})
	}
	return root, services
}

func TestShareCountsCacheMountsAndCommonSteps(t *testing.T) {
	root, services := dockerfileRepo(t, "gomod", "a", "b")
	opts := build.Options{Suite: "s", RepoRoot: root, WorkDir: t.TempDir()}
	ps, err := build.Plan(context.Background(), opts, services)
	if err != nil {
		t.Fatal(err)
	}
	s := build.Share(ps[0], ps[1])
	// FROM, WORKDIR and COPY; the RUN names the service.
	if fmt.Sprint(s.CacheMounts) != "[gomod]" || s.Steps != 3 {
		t.Errorf("shared = %+v, want cache mount gomod and 3 steps", s)
	}
	ps[1].Args = map[string]string{"GOFLAGS": "-cover"}
	if s := build.Share(ps[0], ps[1]); s.Steps != 0 {
		t.Errorf("builds with other args share %d steps, want 0", s.Steps)
	}
}

func TestPlanOrderPutsTheLongestSharingBuildFirst(t *testing.T) {
	root, services := dockerfileRepo(t, "gomod", "a", "b", "c")
	ps, err := build.Plan(context.Background(), build.Options{Suite: "s", RepoRoot: root, WorkDir: t.TempDir()}, services)
	if err != nil {
		t.Fatal(err)
	}
	all := []int{0, 1, 2}
	for _, tc := range []struct {
		name        string
		todo        []int
		parallelism int
		took        map[string]time.Duration
		first       int
	}{
		{"nothing learned: the suite's first", all, 2, nil, 0},
		{"the longest last time", all, 2, map[string]time.Duration{"a": time.Second, "b": time.Minute, "c": 2 * time.Second}, 1},
		{"only what is to build", []int{0, 2}, 2, map[string]time.Duration{"b": time.Minute, "c": 2 * time.Second}, 2},
		{"one build", []int{1}, 2, nil, -1},
		{"one at a time anyway", all, 1, nil, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			order := build.PlanOrder(ps, tc.todo, tc.parallelism, tc.took)
			if order.First != tc.first {
				t.Fatalf("first = %d (%s), want %d", order.First, order.Why, tc.first)
			}
			if order.First >= 0 && !strings.Contains(order.Why, "cache mounts gomod and its first 3 steps") {
				t.Errorf("why = %q", order.Why)
			}
		})
	}

	// Nothing shared with one of them: no first.
	d := build.Planned{Service: build.Service{Name: "d"}, Method: build.MethodDockerfile, ContextDir: "/elsewhere", Steps: []string{"FROM debian"}}
	if order := build.PlanOrder(append(ps, d), []int{0, 1, 2, 3}, 2, nil); order.First != -1 {
		t.Errorf("first = %d (%s) though d shares nothing", order.First, order.Why)
	}
}

// The first build runs alone: no other build starts before it ends. Independent builds start
// in the suite's order, as many at a time as allowed.
func TestImagesBuildTheFirstAlone(t *testing.T) {
	root, services := dockerfileRepo(t, "gomod", "a", "b", "c")
	for _, independent := range []bool{false, true} {
		eng := &enginetest.Engine{BuildDelay: 30 * time.Millisecond}
		log := &logLines{}
		opts := build.Options{Engine: eng, Suite: "s", RunID: "r", RepoRoot: root, WorkDir: t.TempDir(), Parallelism: 2,
			Independent: independent, Took: map[string]time.Duration{"c": time.Minute}, Log: log.add}
		ps, err := build.Plan(context.Background(), opts, services)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := build.Images(context.Background(), opts, ps); err != nil {
			t.Fatal(err)
		}
		builds := eng.Builds()
		said := log.String()
		if independent {
			if strings.Contains(said, "builds first") || eng.MaxParallel() != 2 {
				t.Errorf("independent builds: max parallel %d, log:\n%s", eng.MaxParallel(), said)
			}
			continue
		}
		if len(builds) != 3 || !strings.HasPrefix(builds[0].Ref, "localhost/c:") {
			t.Fatalf("builds %v, want c's first", refs(builds))
		}
		if !strings.Contains(said, "c builds first, alone") || eng.MaxParallel() != 2 {
			t.Errorf("max parallel %d, log:\n%s", eng.MaxParallel(), said)
		}
		if eng.OverlappedFirst() {
			t.Errorf("a build started while the first one ran")
		}
	}
}

func refs(specs []engine.BuildSpec) []string {
	var out []string
	for _, s := range specs {
		out = append(out, s.Ref)
	}
	return out
}

// buildah keeps cache mounts under $TMPDIR: when that is not writable, every build with a cache
// mount would fail half way; it fails first, naming the services and the way out.
func TestUnwritableCacheRootFailsFirst(t *testing.T) {
	root, services := dockerfileRepo(t, "gomod", "a", "b")
	eng := &enginetest.Engine{Builder: engine.BuilderBuildah, CacheMountRoot: "/proc/kindling-test/buildah-cache"}
	opts := build.Options{Engine: eng, Suite: "s", RunID: "r", RepoRoot: root, WorkDir: t.TempDir()}
	ps, err := build.Plan(context.Background(), opts, services)
	if err != nil {
		t.Fatal(err)
	}
	_, err = build.Images(context.Background(), opts, ps)
	for _, want := range []string{"service a (services/a/Dockerfile), service b", "/proc/kindling-test/buildah-cache", "not writable", "TMPDIR"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	if len(eng.Builds()) > 0 {
		t.Errorf("built %d images before failing", len(eng.Builds()))
	}
	eng.CacheMountRoot = filepath.Join(t.TempDir(), "buildah-cache")
	if _, err := build.Images(context.Background(), opts, ps); err != nil {
		t.Errorf("writable cache root: %v", err)
	}
}

// Once the compile caches are there (an earlier run kept them), the builds are warm and start at once.
func TestWarmCompileCachesStartEveryBuildAtOnce(t *testing.T) {
	root, services := dockerfileRepo(t, "gomod", "a", "b")
	eng := &enginetest.Engine{CacheMounts: []engine.CacheMount{{ID: "gomod", Target: "/cache"}}, CompileCacheBytes: 10}
	log := &logLines{}
	opts := build.Options{Engine: eng, Suite: "s", RunID: "r", RepoRoot: root, WorkDir: t.TempDir(), Parallelism: 2, Log: log.add}
	ps, err := build.Plan(context.Background(), opts, services)
	if err != nil {
		t.Fatal(err)
	}
	cold, err := build.Images(context.Background(), opts, ps)
	if err != nil || cold.WarmCaches {
		t.Fatalf("first build: warm %v, %v", cold.WarmCaches, err)
	}
	if err := eng.RemoveRefs(context.Background(), []string{ps[0].Ref, ps[1].Ref}); err != nil {
		t.Fatal(err)
	}
	warm, err := build.Images(context.Background(), opts, ps)
	if err != nil || !warm.WarmCaches {
		t.Fatalf("second build: warm %v, %v", warm.WarmCaches, err)
	}
	said := log.String()
	if strings.Count(said, "a builds first, alone") != 1 || !strings.Contains(said, "are there from an earlier run: every build at once") {
		t.Errorf("log:\n%s", said)
	}
}

// logLines keeps the lines an Options.Log was given, from any goroutine.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
