package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kindling-dev/kindling/test/infrastructure/disk"
	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/engine/enginetest"
)

func TestBuildahCompileCaches(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	// Older buildah keeps cache mounts in buildah-cache, newer in buildah-cache-<uid>.
	old := filepath.Join(tmp, "buildah-cache", "kindling-go-build")
	other := filepath.Join(tmp, "buildah-cache", "someone-elses")
	for _, dir := range []string{old, other} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "f"), make([]byte, 1000), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	held, err := disk.Usage(ctx, []disk.Part{{Name: "old", Path: old}})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := newEngine(t, engine.Podman)
	mounts := []engine.CacheMount{{ID: "kindling-go-build"}, {ID: "kindling-go-mod"}, {ID: "../escape"}}
	caches, err := p.CompileCaches(ctx, mounts, nil)
	if err != nil || len(caches) != 1 || caches[0].Dir != old || caches[0].Bytes != held[0].Bytes {
		t.Fatalf("CompileCaches = %+v, %v; want the one that exists, %d bytes (du)", caches, err, held[0].Bytes)
	}
	n, err := p.RemoveCompileCaches(ctx, caches)
	if err != nil || n != held[0].Bytes {
		t.Fatalf("RemoveCompileCaches = %d, %v; want %d", n, err, held[0].Bytes)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("%s survived", old)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a cache mount of another id was removed: %v", err)
	}
}

func TestBuildKitCompileCaches(t *testing.T) {
	ctx := context.Background()
	runner := &enginetest.Runner{}
	runner.On("docker info --format {{json .}}", enginetest.Response{Stdout: `{"DockerRootDir":"/var/lib/docker","Driver":"overlay2"}`})
	runner.On("docker buildx version", enginetest.Response{Stdout: "github.com/docker/buildx v0.38.2\n"})
	// BuildKit v0.10 and later name the id; v0.8 (Docker 20.10) only the target.
	runner.On("docker buildx du --format json", enginetest.Response{Stdout: `{"Description":"cached mount /go/pkg/mod from exec /bin/sh -c go build with id \"/kindling-go-mod\"","ID":"aaa","Size":"1.5GB","Type":"exec.cachemount"}
{"Description":"cached mount /go/pkg/mod from exec /bin/sh -c go build with id \"/someone-elses\"","ID":"bbb","Size":"1GB","Type":"exec.cachemount"}
{"Description":"cached mount /root/.cache/go-build from exec /bin/sh -c go build","ID":"ccc","Size":"2MB","Type":"exec.cachemount"}
{"Description":"cached mount /root/.cache/go-build from exec /bin/sh -c make","ID":"ddd","Size":"3MB","Type":"exec.cachemount"}
{"Description":"[builder 4/4] RUN go build","ID":"eee","Size":"4MB","Type":"regular"}
`})
	d, err := engine.New(engine.Docker, runner)
	if err != nil {
		t.Fatal(err)
	}
	mounts := []engine.CacheMount{{ID: "kindling-go-mod", Target: "/go/pkg/mod"}, {ID: "kindling-go-build", Target: "/root/.cache/go-build"}}
	// ddd has the target but did not appear during this run's builds: another project's.
	caches, err := d.CompileCaches(ctx, mounts, []string{"ccc", "eee"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range caches {
		got = append(got, c.Mount.ID+"="+c.Record)
	}
	if want := []string{"kindling-go-mod=aaa", "kindling-go-build=ccc"}; !slices.Equal(got, want) {
		t.Errorf("CompileCaches = %v, want %v", got, want)
	}
	if caches[0].Bytes != 1_500_000_000 || caches[0].Where() != "BuildKit record aaa" {
		t.Errorf("cache %+v: want 1.5GB in BuildKit record aaa", caches[0])
	}
}
