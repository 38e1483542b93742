package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/build"
	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/engine/enginetest"
	"github.com/kindling-dev/kindling/test/infrastructure/suite"
)

// benchBase is the builder base of the test's services: nothing else here uses golang:1.26 (the
// services use golang:1.26-bookworm), so the cold builds may remove it.
const benchBase = "golang:1.26"

// benchDockerfile builds a service as the suite's do, with cache mounts of the test's own ids.
func benchDockerfile(service string) string {
	return fmt.Sprintf(`FROM %[2]s AS builder
WORKDIR /src
COPY go.mod ./
COPY services/ services/
RUN --mount=type=cache,id=kindling-bench-test-mod,target=/go/pkg/mod \
    --mount=type=cache,id=kindling-bench-test-build,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -o /out/%[1]s ./services/%[1]s
FROM scratch
COPY --from=builder /out/%[1]s /%[1]s
`, service, benchBase)
}

// bench:build on real engines, two small services: every variant and state measured, the
// planned order used, and the engine left as it was found.
func TestBuildsOnRealEngines(t *testing.T) {
	for _, config := range []string{engine.Podman, enginetest.Docker29} {
		t.Run(config, func(t *testing.T) {
			eng := enginetest.Real(t, config)
			enginetest.Lock(t)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			defer cancel()
			root := enginetest.Repo(t, "hello", "hello2")
			var services []build.Service
			for _, name := range []string{"hello", "hello2"} {
				path := filepath.Join("services", name, "Dockerfile")
				if err := os.WriteFile(filepath.Join(root, path), []byte(benchDockerfile(name)), 0o644); err != nil {
					t.Fatal(err)
				}
				services = append(services, build.Service{Name: name, Spec: build.Spec{Dockerfile: path,
					Host: &build.HostBuild{Package: "./services/" + name, Containerfile: filepath.Join("services", name, "Containerfile")}}})
			}
			_, hadBase, err := eng.ImageID(ctx, benchBase)
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var said []string
			logf := func(format string, args ...any) {
				mu.Lock()
				defer mu.Unlock()
				said = append(said, fmt.Sprintf(format, args...))
				t.Logf(format, args...)
			}
			rep, err := Builds(ctx, BuildRun{Engine: eng, Suite: suite.Suite{Name: "benchtest", Services: services}, Root: root, Dir: t.TempDir(),
				Variants: []string{VariantCacheMounts, VariantPlanned}, States: BuildStates, Log: logf})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Floor.Time <= 0 || rep.Floor.Filesystem == "" {
				t.Errorf("floor %+v", rep.Floor)
			}
			var got []string
			for _, row := range rep.Rows {
				got = append(got, row.Variant+"/"+row.State)
				if row.Time <= 0 || row.Filesystem == "" {
					t.Errorf("row %+v", row)
				}
				// A cold build pulls the builder base: the store grows.
				if row.State == StateCold && row.Peak <= 0 {
					t.Errorf("%s: cold build peaked %d bytes above the start", row.Variant, row.Peak)
				}
			}
			if want := []string{"cache-mounts/cold", "cache-mounts/warm", "cache-mounts/one-file", "planned/cold", "planned/warm", "planned/one-file"}; !slices.Equal(got, want) {
				t.Errorf("rows %v, want %v", got, want)
			}
			all := strings.Join(said, "\n")
			// Cold, the first builds alone; warm, its compile caches are there and all build at once.
			if n, m := strings.Count(all, "hello builds first, alone"), strings.Count(all, "are there from an earlier run: every build at once"); n != 1 || m != 2 {
				t.Errorf("the first built alone %d times, all at once with warm caches %d times; want 1 and 2:\n%s", n, m, all)
			}

			// Left as found: no image of the benchmark, no compile cache of its mounts, the base as before.
			images, err := eng.Images(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, img := range images {
				for _, ref := range img.Refs {
					if strings.Contains(ref, ":bench-") {
						t.Errorf("the benchmark left %s", ref)
					}
				}
			}
			mounts := []engine.CacheMount{{ID: "kindling-bench-test-mod", Target: "/go/pkg/mod"}, {ID: "kindling-bench-test-build", Target: "/root/.cache/go-build"}}
			if caches, err := eng.CompileCaches(ctx, mounts, nil); err != nil || len(caches) > 0 {
				t.Errorf("the benchmark left compile caches %+v (%v)", caches, err)
			}
			if _, has, err := eng.ImageID(ctx, benchBase); err != nil || has != hadBase {
				t.Errorf("%s there: %v before, %v after (%v)", benchBase, hadBase, has, err)
			}
		})
	}
}
