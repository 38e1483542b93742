package engine_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/engine/enginetest"
)

const (
	hexA = "0a6a5be2ea372ad1e7267d269c285ad3aa67a386e9672b7120d344fc004a4aaf"
	hexB = "1af3a21c85e47b3c0b45ff22c2414c82016f42de3af29f3e3006ed052efca8cd"
	hexC = "bbecc4578dabfed3cb53602807cabf39b3701bf91a5bda564b2483a9dfd293c7"
	hexD = "92e0ba1cf7a7fdc7674d403efc76a0349487b3e0a89689facc42ad60059dd5c8"
)

var notInstalled = &exec.Error{Name: "podman", Err: exec.ErrNotFound}

func newEngine(t *testing.T, name string) (engine.Engine, *enginetest.Runner) {
	t.Helper()
	runner := &enginetest.Runner{}
	// A legacy-store docker without the buildx plugin (the legacy builder), which Build and
	// Save ask once.
	runner.On("docker info --format {{json .}}", enginetest.Response{Stdout: `{"DockerRootDir":"/var/lib/docker","Driver":"overlay2"}`})
	runner.On("docker buildx version", enginetest.Response{Stderr: "docker: unknown command: docker buildx", Err: exit(1)})
	e, err := engine.New(name, runner)
	if err != nil {
		t.Fatal(err)
	}
	return e, runner
}

// work is the argv of the commands that do the work, without the questions about the daemon.
func work(r *enginetest.Runner) []string {
	return slices.DeleteFunc(r.Argvs(), func(argv string) bool {
		return strings.HasPrefix(argv, "docker info") || strings.HasPrefix(argv, "docker network inspect") ||
			argv == "docker buildx version"
	})
}

func exit(code int) error { return enginetest.ExitError{Code: code} }

func TestNewRejectsUnknownEngine(t *testing.T) {
	_, err := engine.New("containerd", nil)
	if err == nil || !strings.Contains(err.Error(), `"podman"`) || !strings.Contains(err.Error(), `"docker"`) {
		t.Fatalf("want an error listing the valid engines, got %v", err)
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"0B", 0},
		{"0", 0},
		{"1.2GB", 1_200_000_000},
		{"345.6MB", 345_600_000},
		{"1.59 MB", 1_590_000},
		{"348.1MB (100%)", 348_100_000},
		{" 12kB ", 12_000},
		{"2KiB", 2048},
		{"1.5GiB", 1_610_612_736},
		{"1024", 1024},
		{"3.2TB", 3_200_000_000_000},
	} {
		got, err := engine.ParseSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "N/A", "12 parsecs", "MB"} {
		if _, err := engine.ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) succeeded, want an error", bad)
		}
	}
}

func TestPingNotInstalled(t *testing.T) {
	e, runner := newEngine(t, engine.Podman)
	runner.On("podman", enginetest.Response{Err: notInstalled})
	err := e.Ping(context.Background())
	if !errors.Is(err, engine.ErrNotInstalled) || !errors.Is(err, exec.ErrNotFound) {
		t.Fatalf("want ErrNotInstalled wrapping exec.ErrNotFound, got %v", err)
	}
	for _, want := range []string{"podman is not installed", "install it", "CONTAINER_ENGINE=docker"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestPingDaemonDown(t *testing.T) {
	t.Setenv("DOCKER_HOST", "")
	e, runner := newEngine(t, engine.Docker)
	runner.On("docker version", enginetest.Response{
		Stderr: "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n",
		Err:    exit(1),
	})
	err := e.Ping(context.Background())
	if !errors.Is(err, engine.ErrNotRunning) {
		t.Fatalf("want ErrNotRunning, got %v", err)
	}
	for _, want := range []string{"does not answer", "Cannot connect to the Docker daemon", "start dockerd"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if got := runner.Argvs(); !slices.Equal(got, []string{"docker version --format {{.Server.Version}}"}) {
		t.Errorf("argv = %q", got)
	}

	// DOCKER_HOST names a daemon that does not answer: the way out is about that variable.
	t.Setenv("DOCKER_HOST", "unix:///run/nobody/docker.sock")
	err = e.Ping(context.Background())
	for _, want := range []string{"DOCKER_HOST=unix:///run/nobody/docker.sock names that daemon", "unset DOCKER_HOST"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not contain %q", err, want)
		}
	}
}

func TestPingPodmanSocketDown(t *testing.T) {
	e, runner := newEngine(t, engine.Podman)
	runner.On("podman info", enginetest.Response{
		Stderr: "Cannot connect to Podman. Please verify your connection to the Linux system\nError: unable to connect to Podman socket: dial unix /run/podman/podman.sock: connect: no such file or directory\n",
		Err:    exit(125),
	})
	err := e.Ping(context.Background())
	if !errors.Is(err, engine.ErrNotRunning) || !strings.Contains(err.Error(), "podman.socket") {
		t.Fatalf("want ErrNotRunning telling how to start podman, got %v", err)
	}
}

func TestDetect(t *testing.T) {
	ctx := context.Background()
	t.Run("invalid value", func(t *testing.T) {
		_, err := engine.DetectWith(ctx, "nerdctl", &enginetest.Runner{})
		if err == nil || !strings.Contains(err.Error(), "CONTAINER_ENGINE") || !strings.Contains(err.Error(), `"docker"`) {
			t.Fatalf("want an error listing valid values, got %v", err)
		}
	})
	t.Run("falls back to docker", func(t *testing.T) {
		runner := (&enginetest.Runner{}).
			On("podman", enginetest.Response{Err: notInstalled}).
			On("docker version", enginetest.Response{Stdout: "20.10.24\n"})
		e, err := engine.DetectWith(ctx, "", runner)
		if err != nil || e.Name() != engine.Docker {
			t.Fatalf("got %v, %v; want docker", e, err)
		}
	})
	t.Run("prefers podman", func(t *testing.T) {
		runner := (&enginetest.Runner{}).On("podman info", enginetest.Response{Stdout: "4.3.1\n"})
		e, err := engine.DetectWith(ctx, "", runner)
		if err != nil || e.Name() != engine.Podman {
			t.Fatalf("got %v, %v; want podman", e, err)
		}
	})
	t.Run("preferred does not work", func(t *testing.T) {
		runner := (&enginetest.Runner{}).On("docker", enginetest.Response{Err: &exec.Error{Name: "docker", Err: exec.ErrNotFound}})
		_, err := engine.DetectWith(ctx, "docker", runner)
		if !errors.Is(err, engine.ErrNotInstalled) || !strings.Contains(err.Error(), "CONTAINER_ENGINE=podman") {
			t.Fatalf("got %v", err)
		}
		if got := runner.Argvs(); len(got) != 1 {
			t.Errorf("only docker should be tried, ran %q", got)
		}
	})
	t.Run("none", func(t *testing.T) {
		runner := (&enginetest.Runner{}).
			On("podman", enginetest.Response{Err: notInstalled}).
			On("docker", enginetest.Response{Stderr: "Cannot connect to the Docker daemon", Err: exit(1)})
		_, err := engine.DetectWith(ctx, "", runner)
		if err == nil {
			t.Fatal("want an error")
		}
		for _, want := range []string{"podman is not installed", "docker is installed but its daemon", "../shared/kindenv/setup"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
		if !errors.Is(err, engine.ErrNotInstalled) || !errors.Is(err, engine.ErrNotRunning) {
			t.Errorf("error should wrap both causes: %v", err)
		}
	})
}

func TestBuildArgvAndLogTail(t *testing.T) {
	e, runner := newEngine(t, engine.Podman)
	spec := engine.BuildSpec{
		Ref:          "localhost/hello:s-0123456789ab",
		Dockerfile:   "/repo/services/hello/Containerfile",
		ContextDir:   "/work/hello",
		Labels:       map[string]string{"dev.kindling.suite": "s", "dev.kindling.run": "r1"},
		NoLayerCache: true,
	}
	if err := e.Build(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	want := "podman build -f /repo/services/hello/Containerfile -t localhost/hello:s-0123456789ab --layers=false --label dev.kindling.run=r1 --label dev.kindling.suite=s /work/hello"
	if got := runner.Argvs(); !slices.Equal(got, []string{want}) {
		t.Fatalf("argv = %q\nwant %q", got, want)
	}
	docker, dockerRunner := newEngine(t, engine.Docker)
	multi := engine.BuildSpec{Ref: "localhost/a:s-1", Dockerfile: "/repo/services/a/Dockerfile", ContextDir: "/repo",
		Target: "production", Args: map[string]string{"GOFLAGS": "-cover", "A": "x y"}}
	for _, eng := range []engine.Engine{e, docker} {
		if err := eng.Build(context.Background(), multi); err != nil {
			t.Fatal(err)
		}
	}
	wantMulti := " build -f /repo/services/a/Dockerfile -t localhost/a:s-1%s --target production --build-arg A=x y --build-arg GOFLAGS=-cover /repo"
	if got, want := runner.Argvs()[1], "podman"+fmt.Sprintf(wantMulti, ""); got != want {
		t.Errorf("argv = %q\nwant %q", got, want)
	}
	// docker's legacy builder keeps a failed step's container without --force-rm.
	if got, want := work(dockerRunner)[0], "docker"+fmt.Sprintf(wantMulti, " --force-rm"); got != want {
		t.Errorf("argv = %q\nwant %q", got, want)
	}

	var log strings.Builder
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&log, "log line %d\n", i)
	}
	runner.On("podman build", enginetest.Response{Stderr: log.String(), Err: exit(125)})
	err := e.Build(context.Background(), spec)
	if err == nil {
		t.Fatal("want an error")
	}
	if !strings.Contains(err.Error(), "log line 30") || !strings.Contains(err.Error(), "log line 11\n") ||
		strings.Contains(err.Error(), "log line 10\n") {
		t.Errorf("error should end with the last 20 log lines: %v", err)
	}
}

func TestImageID(t *testing.T) {
	ctx := context.Background()
	p, podman := newEngine(t, engine.Podman)
	podman.On("podman image inspect --format {{.Id}} localhost/a:1", enginetest.Response{Stdout: hexA + "\n"})
	podman.On("podman image inspect --format {{.Id}} localhost/missing:1", enginetest.Response{
		Stderr: "Error: inspecting object: localhost/missing:1: image not known\n", Err: exit(125)})
	id, found, err := p.ImageID(ctx, "localhost/a:1")
	if err != nil || !found || id != "sha256:"+hexA {
		t.Errorf("podman ImageID = %q, %v, %v", id, found, err)
	}
	if _, found, err := p.ImageID(ctx, "localhost/missing:1"); found || err != nil {
		t.Errorf("missing image: found=%v err=%v", found, err)
	}

	d, docker := newEngine(t, engine.Docker)
	docker.On("docker image inspect", enginetest.Response{Stdout: "sha256:" + hexC + "\n"})
	docker.On("docker image inspect --format {{.Id}} localhost/missing:1", enginetest.Response{
		Stderr: "Error response from daemon: No such image: localhost/missing:1\n", Err: exit(1)})
	if id, _, _ := d.ImageID(ctx, "localhost/a:1"); id != "sha256:"+hexC {
		t.Errorf("docker ImageID = %q", id)
	}
	if _, found, err := d.ImageID(ctx, "localhost/missing:1"); found || err != nil {
		t.Errorf("missing image: found=%v err=%v", found, err)
	}
	docker.On("docker image inspect --format {{.Id}} broken", enginetest.Response{Stderr: "permission denied", Err: exit(1)})
	if _, _, err := d.ImageID(ctx, "broken"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("want the engine's error, got %v", err)
	}
}

// podmanInspect is trimmed `podman image inspect` output.
const podmanInspect = `[
  {"Id": "` + hexA + `", "RepoTags": ["localhost/a:1"], "Size": 1589164,
   "Labels": {"dev.kindling.run": "r1"}, "Config": {"Labels": {"dev.kindling.run": "r1"}}},
  {"Id": "` + hexB + `", "RepoTags": [], "Size": 1589100, "Labels": null, "Config": {}}
]`

func TestImagesPodman(t *testing.T) {
	e, runner := newEngine(t, engine.Podman)
	runner.On("podman images", enginetest.Response{Stdout: "sha256:" + hexA + "\nsha256:" + hexB + "\nsha256:" + hexA + "\n"})
	runner.On("podman image inspect", enginetest.Response{Stdout: podmanInspect})
	images, err := e.Images(context.Background(), map[string]string{"dev.kindling.run": "r1", "dev.kindling.suite": ""})
	if err != nil {
		t.Fatal(err)
	}
	wantArgv := []string{
		"podman images --quiet --no-trunc --filter label=dev.kindling.run=r1 --filter label=dev.kindling.suite",
		"podman image inspect sha256:" + hexA + " sha256:" + hexB,
	}
	if got := runner.Argvs(); !slices.Equal(got, wantArgv) {
		t.Errorf("argv = %q\nwant %q", got, wantArgv)
	}
	if len(images) != 2 || images[0].ID != "sha256:"+hexA || images[0].Size != 1589164 ||
		!slices.Equal(images[0].Refs, []string{"localhost/a:1"}) || images[0].Labels["dev.kindling.run"] != "r1" ||
		images[1].ID != "sha256:"+hexB || len(images[1].Refs) != 0 {
		t.Errorf("images = %+v", images)
	}
}

func TestImagesSkipsVanishedImages(t *testing.T) {
	e, runner := newEngine(t, engine.Docker)
	runner.On("docker images", enginetest.Response{Stdout: "sha256:" + hexA + "\nsha256:" + hexB + "\n"})
	runner.On("docker image inspect sha256:"+hexA+" ", enginetest.Response{Stderr: "Error: No such image: sha256:" + hexB, Err: exit(1)})
	runner.On("docker image inspect sha256:"+hexA, enginetest.Response{Stdout: `[{"Id":"sha256:` + hexA + `","RepoTags":["localhost/a:1"],"Size":5}]`})
	runner.On("docker image inspect sha256:"+hexB, enginetest.Response{Stderr: "Error: No such image: sha256:" + hexB, Err: exit(1)})
	images, err := e.Images(context.Background(), nil)
	if err != nil || len(images) != 1 || images[0].ID != "sha256:"+hexA {
		t.Fatalf("images = %+v, %v", images, err)
	}
}

func TestSaveArgv(t *testing.T) {
	ctx := context.Background()
	p, podman := newEngine(t, engine.Podman)
	d, docker := newEngine(t, engine.Docker)
	refs := []string{"localhost/a:1", "localhost/b:1"}
	if err := p.Save(ctx, "/tmp/x.tmp", refs); err != nil {
		t.Fatal(err)
	}
	if err := d.Save(ctx, "/tmp/x.tmp", refs); err != nil {
		t.Fatal(err)
	}
	if got, want := podman.Argvs(), []string{"podman save --quiet --format docker-archive --multi-image-archive -o /tmp/x.tmp localhost/a:1 localhost/b:1"}; !slices.Equal(got, want) {
		t.Errorf("podman argv = %q", got)
	}
	if got, want := work(docker), []string{"docker save -o /tmp/x.tmp localhost/a:1 localhost/b:1"}; !slices.Equal(got, want) {
		t.Errorf("docker argv = %q", got)
	}
	if err := p.Save(ctx, "/tmp/x", nil); err == nil {
		t.Error("Save without refs should fail")
	}
}

func TestRemoveUntagsEveryName(t *testing.T) {
	e, runner := newEngine(t, engine.Podman)
	runner.On("podman image inspect", enginetest.Response{Stdout: `[
		{"Id":"` + hexA + `","RepoTags":["localhost/a:1","localhost/alias:2"],"Size":10},
		{"Id":"` + hexB + `","RepoTags":[],"Size":20}]`})
	if err := e.Remove(context.Background(), []string{hexA, "sha256:" + hexB, hexA}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"podman image inspect sha256:" + hexA + " sha256:" + hexB,
		"podman rmi localhost/a:1 localhost/alias:2 sha256:" + hexB,
	}
	if got := runner.Argvs(); !slices.Equal(got, want) {
		t.Errorf("argv = %q\nwant %q", got, want)
	}
}

func TestRemoveReportsImagesStillPresent(t *testing.T) {
	e, runner := newEngine(t, engine.Docker)
	runner.On("docker image inspect sha256:", enginetest.Response{Stdout: `[
		{"Id":"sha256:` + hexA + `","RepoTags":["localhost/a:1"],"Size":10},
		{"Id":"sha256:` + hexB + `","RepoTags":["localhost/b:1"],"Size":20}]`})
	runner.On("docker rmi", enginetest.Response{
		Stdout: "Untagged: localhost/a:1\nDeleted: sha256:" + hexA + "\n",
		Stderr: "Error response from daemon: conflict: unable to remove repository reference \"localhost/b:1\" (must force) - container 1234 is using its referenced image",
		Err:    exit(1),
	})
	runner.On("docker image inspect --format {{.Id}} sha256:"+hexA, enginetest.Response{Stderr: "No such image", Err: exit(1)})
	runner.On("docker image inspect --format {{.Id}} sha256:"+hexB, enginetest.Response{Stdout: "sha256:" + hexB})
	err := e.Remove(context.Background(), []string{hexA, hexB})
	if err == nil || !strings.Contains(err.Error(), "localhost/b:1") || strings.Contains(err.Error(), "(localhost/a:1") ||
		!strings.Contains(err.Error(), "docker ps -a") {
		t.Fatalf("want an error naming only localhost/b:1, got %v", err)
	}
}

func TestPruneDanglingDocker(t *testing.T) {
	e, runner := newEngine(t, engine.Docker)
	runner.On("docker image prune", enginetest.Response{Stdout: "Deleted Images:\ndeleted: sha256:" + hexC + "\n\nTotal reclaimed space: 1.59MB\n"})
	n, err := e.PruneDangling(context.Background())
	if err != nil || n != 1_590_000 {
		t.Fatalf("PruneDangling = %d, %v", n, err)
	}
	// Not "builder prune": to BuildKit every unused record is dangling, other runs' included.
	if got, want := runner.Argvs(), []string{"docker image prune -f"}; !slices.Equal(got, want) {
		t.Errorf("argv = %q", got)
	}
}

func TestPruneDanglingPodmanUsesListedSizes(t *testing.T) {
	e, runner := newEngine(t, engine.Podman)
	runner.On("podman images --quiet --no-trunc --filter dangling=true", enginetest.Response{Stdout: "sha256:" + hexA + "\nsha256:" + hexB + "\n"})
	runner.On("podman image inspect", enginetest.Response{Stdout: podmanInspect})
	// podman prints the dangling image and the intermediate parents it removed with it.
	runner.On("podman image prune -f", enginetest.Response{Stdout: hexA + "\n" + hexC + "\n"})
	n, err := e.PruneDangling(context.Background())
	if err != nil || n != 1589164 {
		t.Fatalf("PruneDangling = %d, %v; want the listed size of the one removed dangling image", n, err)
	}
}

// Another build holding a dangling image makes podman prune none: the others go one by one.
func TestPruneDanglingPodmanAroundAnImageInUse(t *testing.T) {
	e, runner := newEngine(t, engine.Podman)
	runner.On("podman images --quiet --no-trunc --filter dangling=true", enginetest.Response{Stdout: "sha256:" + hexA + "\nsha256:" + hexB + "\n"})
	runner.On("podman image inspect", enginetest.Response{Stdout: podmanInspect})
	runner.On("podman image prune -f", enginetest.Response{Stderr: "Error: image used by cc12: image is in use by a container", Err: enginetest.ExitError{Code: 125}})
	runner.On("podman rmi sha256:"+hexB, enginetest.Response{Stderr: "image is in use by a container", Err: enginetest.ExitError{Code: 2}})
	n, err := e.PruneDangling(context.Background())
	if err != nil || n != 1589164 {
		t.Fatalf("PruneDangling = %d, %v; want the size of the one image not in use", n, err)
	}
	if !slices.Contains(runner.Argvs(), "podman rmi sha256:"+hexA) {
		t.Errorf("no rmi of the image not in use: %v", runner.Argvs())
	}
}

func TestPruneAllKeepsMatchingImages(t *testing.T) {
	e, runner := newEngine(t, engine.Docker)
	runner.On("docker system prune", enginetest.Response{Stdout: "Deleted Containers:\nabc\n\nTotal reclaimed space: 1kB\n"})
	runner.On("docker images --quiet --no-trunc", enginetest.Response{Stdout: strings.Join([]string{
		"sha256:" + hexA, "sha256:" + hexB, "sha256:" + hexC, "sha256:" + hexD}, "\n")})
	runner.On("docker image inspect", enginetest.Response{Stdout: `[
		{"Id":"sha256:` + hexA + `","RepoTags":["kindenv/node:v1.34.4"],"Size":1000000},
		{"Id":"sha256:` + hexB + `","RepoTags":["localhost/old:1", "kindenv/rootfs:2cd7"],"Size":2000},
		{"Id":"sha256:` + hexC + `","RepoTags":["localhost/unrelated:1"],"Size":300},
		{"Id":"sha256:` + hexD + `","RepoTags":[],"Size":40}]`})
	runner.On("docker rmi", enginetest.Response{Stdout: "Untagged: localhost/unrelated:1\nDeleted: sha256:" + hexC + "\nDeleted: sha256:" + hexD + "\nDeleted: sha256:" + hexB[:60] + "0000\n"})
	runner.On("docker builder prune", enginetest.Response{Stdout: "Total reclaimed space: 0B\n"})
	n, err := e.PruneAll(context.Background(), []string{"kindenv/*", "localhost/kindenv/*"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"docker system prune -f --volumes",
		"docker images --quiet --no-trunc",
		"docker image inspect sha256:" + hexA + " sha256:" + hexB + " sha256:" + hexC + " sha256:" + hexD,
		"docker rmi localhost/unrelated:1 sha256:" + hexD,
		"docker builder prune -a -f",
	}
	if got := runner.Argvs(); !slices.Equal(got, want) {
		t.Errorf("argv = %q\nwant %q", got, want)
	}
	if n != 1000+300+40 {
		t.Errorf("reclaimed = %d, want 1340", n)
	}
	if _, err := e.PruneAll(context.Background(), []string{"kindenv/[*"}); err == nil {
		t.Error("a malformed keep pattern should be rejected")
	}
}

func TestKept(t *testing.T) {
	node := engine.Image{ID: "sha256:" + hexA, Refs: []string{"kindenv/node:v1.34.4"}}
	podmanNode := engine.Image{ID: "sha256:" + hexA, Refs: []string{"localhost/kindenv/node:v1.34.4"}}
	hubNode := engine.Image{ID: "sha256:" + hexA, Refs: []string{"docker.io/kindenv/node:v1.34.4"}}
	busybox := engine.Image{ID: "sha256:" + hexB, Refs: []string{"docker.io/library/busybox:1.36"}}
	app := engine.Image{ID: "sha256:" + hexC, Refs: []string{"localhost/datastorage:aianalysis-0123456789ab"}}
	dangling := engine.Image{ID: "sha256:" + hexD}
	for _, tc := range []struct {
		img  engine.Image
		keep []string
		want bool
	}{
		{node, []string{"kindenv/*"}, true},
		{podmanNode, []string{"kindenv/*"}, true},
		{hubNode, []string{"kindenv/*"}, true},
		{node, []string{"localhost/kindenv/*"}, true},
		{node, []string{"kindenv/node:v1.34.4"}, true},
		{podmanNode, []string{"kindenv/node:v1.34.4"}, true},
		{node, []string{"kindenv/node"}, true},
		{node, []string{"kindenv/node:v1.35.0"}, false},
		{busybox, []string{"busybox:1.36"}, true},
		{busybox, []string{"busybox"}, true},
		{app, []string{"kindenv/*"}, false},
		{app, []string{"localhost/datastorage:*"}, true},
		{app, []string{"datastorage:aianalysis-*"}, true},
		{app, []string{"*"}, true}, // "localhost/" is stripped, leaving one path element
		{dangling, []string{"kindenv/*", "*"}, false},
		{dangling, []string{"sha256:" + hexD}, true},
		{dangling, []string{hexD}, true},
		{app, nil, false},
	} {
		if got := engine.Kept(tc.img, tc.keep); got != tc.want {
			t.Errorf("Kept(%v, %q) = %v, want %v", tc.img.Refs, tc.keep, got, tc.want)
		}
	}
}

func TestInfo(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir() // buildah's cache mounts live under its temp dir
	t.Setenv("TMPDIR", tmp)
	p, podman := newEngine(t, engine.Podman)
	podman.On("podman info --format json", enginetest.Response{Stdout: `{"host":{"arch":"amd64","serviceIsRemote":false},
		"store":{"graphRoot":"/var/lib/containers/storage","graphDriverName":"overlay"},"version":{"Version":"4.3.1"}}`})
	info, err := p.Info(ctx)
	want := engine.Info{GraphRoot: "/var/lib/containers/storage", Store: "overlay", Storage: []string{"/var/lib/containers/storage"}, Builder: engine.BuilderBuildah, Version: "4.3.1",
		CacheMountRoot: filepath.Join(tmp, "buildah-cache")}
	if err != nil || !reflect.DeepEqual(info, want) {
		t.Errorf("podman Info = %+v, %v\nwant %+v", info, err, want)
	}
	// Since podman 4.4 they are kept per user.
	for _, v := range []string{"4.4.0", "5.4.2"} {
		podman.On("podman info --format json", enginetest.Response{Stdout: `{"store":{"graphRoot":"/g"},"version":{"Version":"` + v + `"}}`})
		if info, err := p.Info(ctx); err != nil || info.CacheMountRoot != filepath.Join(tmp, fmt.Sprintf("buildah-cache-%d", os.Getuid())) {
			t.Errorf("podman %s: cache mount root %q, %v", v, info.CacheMountRoot, err)
		}
	}

	d, docker := newEngine(t, engine.Docker)
	docker.On("docker info --format {{json .}}", enginetest.Response{Stdout: `{"ID":"x","DockerRootDir":"/var/lib/docker","ServerVersion":"20.10.24+dfsg1",
		"Driver":"overlay2","DriverStatus":[["Backing Filesystem","extfs"]]}`})
	docker.On("docker network inspect bridge", enginetest.Response{Stdout: `{"com.docker.network.bridge.enable_ip_masquerade":"true"}`})
	t.Setenv("DOCKER_HOST", "")
	info, err = d.Info(ctx)
	want = engine.Info{GraphRoot: "/var/lib/docker", Store: "overlay2", Snapshotter: "overlay2", Storage: []string{"/var/lib/docker"}, Builder: engine.BuilderLegacy, Version: "20.10.24+dfsg1"}
	if err != nil || !reflect.DeepEqual(info, want) || info.IDsAreManifests() {
		t.Errorf("docker Info = %+v, %v\nwant %+v", info, err, want)
	}

	// Docker 29's containerd image store, its own containerd, a bridge without masquerading,
	// BuildKit through the buildx plugin.
	d29, docker29 := newEngine(t, engine.Docker)
	docker29.On("docker buildx version", enginetest.Response{Stdout: "github.com/docker/buildx v0.38.2\n"})
	docker29.On("docker info --format {{json .}}", enginetest.Response{Stdout: `{"DockerRootDir":"/var/lib/d29/docker","ServerVersion":"library-import",
		"Driver":"overlayfs","DriverStatus":[["driver-type","io.containerd.snapshotter.v1"]],
		"Containerd":{"Address":"/run/d29/containerd.sock","Namespaces":{"Containers":"moby"}}}`})
	docker29.On("ctr --address /run/d29/containerd.sock plugins ls --detailed", enginetest.Response{Stdout: `Type:             io.containerd.content.v1
ID:               content
Exports:
                  root      /var/lib/d29/containerd/io.containerd.content.v1.content

Type:             io.containerd.snapshotter.v1
ID:               native
Exports:
                  root      /var/lib/d29/containerd/io.containerd.snapshotter.v1.native

Type:             io.containerd.snapshotter.v1
ID:               overlayfs
Exports:
                  root      /var/lib/d29/containerd/io.containerd.snapshotter.v1.overlayfs
`})
	docker29.On("docker network inspect bridge", enginetest.Response{Stdout: `{"com.docker.network.bridge.enable_ip_masquerade":"false"}`})
	info, err = d29.Info(ctx)
	want = engine.Info{GraphRoot: "/var/lib/d29/docker", Store: engine.StoreContainerd, Snapshotter: "overlayfs", BuildNetwork: "host",
		Storage:     []string{"/var/lib/d29/docker", "/var/lib/d29/containerd/io.containerd.content.v1.content", "/var/lib/d29/containerd/io.containerd.snapshotter.v1.overlayfs"},
		ContentRoot: "/var/lib/d29/containerd/io.containerd.content.v1.content", SnapshotRoot: "/var/lib/d29/containerd/io.containerd.snapshotter.v1.overlayfs",
		Containerd: "/run/d29/containerd.sock", Builder: engine.BuilderBuildKit, Version: "library-import"}
	if err != nil || !reflect.DeepEqual(info, want) || !info.IDsAreManifests() {
		t.Errorf("docker 29 Info = %+v, %v\nwant %+v", info, err, want)
	}
	// BuildKit builds load into the image store and take the host's network; save and push
	// write this platform only, and the platform's manifest is looked up within the index.
	d29.Build(ctx, engine.BuildSpec{Ref: "localhost/a:1", Dockerfile: "/r/Dockerfile", ContextDir: "/r"})
	d29.Save(ctx, "/tmp/a.tar", []string{"localhost/a:1"})
	d29.Push(ctx, "localhost/a:1", "127.0.0.1:5001/a:1", true)
	docker29.On("docker image inspect --platform", enginetest.Response{Stdout: "sha256:" + hexD + "\n"})
	if m, err := d29.PlatformManifest(ctx, "localhost/a:1"); err != nil || m != "sha256:"+hexD {
		t.Errorf("PlatformManifest = %q, %v", m, err)
	}
	platform := "linux/" + runtime.GOARCH
	argv := strings.Join(docker29.Argvs(), "\n")
	for _, want := range []string{"docker build -f /r/Dockerfile -t localhost/a:1 --load --network host /r",
		"docker save --platform " + platform + " -o /tmp/a.tar localhost/a:1",
		"docker push --quiet --platform " + platform + " 127.0.0.1:5001/a:1",
		"docker image inspect --platform " + platform + " --format {{.Id}} localhost/a:1"} {
		if !strings.Contains(argv, want) {
			t.Errorf("argv lacks %q:\n%s", want, argv)
		}
	}

	down, runner := newEngine(t, engine.Docker)
	// What docker 28's CLI prints, with exit status 0, when the daemon is down.
	runner.On("docker info --format {{json .}}", enginetest.Response{Stdout: `{"ID":"","Containers":0,"DockerRootDir":"","ServerErrors":["Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"]}`})
	if _, err := down.Info(ctx); !errors.Is(err, engine.ErrNotRunning) {
		t.Errorf("want ErrNotRunning, got %v", err)
	}
}

func TestDiskUsage(t *testing.T) {
	ctx := context.Background()
	d, docker := newEngine(t, engine.Docker)
	docker.On("docker system df --format {{json .}}", enginetest.Response{Stdout: `{"Active":"0","Reclaimable":"348.1MB (100%)","Size":"348.1MB","TotalCount":"2","Type":"Images"}
{"Active":"0","Reclaimable":"0B","Size":"12kB","TotalCount":"1","Type":"Containers"}
{"Active":"0","Reclaimable":"1.5GB (50%)","Size":"3GB","TotalCount":"0","Type":"Local Volumes"}
{"Active":"0","Reclaimable":"0B","Size":"512MB","TotalCount":"0","Type":"Build Cache"}
`})
	usage, err := d.DiskUsage(ctx)
	want := engine.Usage{Images: 348_100_000, Containers: 12_000, Volumes: 3_000_000_000, BuildCache: 512_000_000, Reclaimable: 1_848_100_000}
	if err != nil || usage != want {
		t.Errorf("docker DiskUsage = %+v, %v\nwant %+v", usage, err, want)
	}

	p, podman := newEngine(t, engine.Podman)
	podman.On("podman system df", enginetest.Response{Stdout: `{"Type":"Images","Total":3,"Active":0,"Size":4767492,"Reclaimable":4767492}
{"Type":"Containers","Total":0,"Active":0,"Size":0,"Reclaimable":0}
{"Type":"Local Volumes","Total":0,"Active":0,"Size":0,"Reclaimable":0}
`})
	usage, err = p.DiskUsage(ctx)
	if err != nil || usage != (engine.Usage{Images: 4767492, Reclaimable: 4767492}) {
		t.Errorf("podman DiskUsage = %+v, %v", usage, err)
	}

	// A future engine printing an array instead of lines.
	podman.On("podman system df", enginetest.Response{Stdout: `[{"Type":"Images","Size":"1GB","Reclaimable":"1GB"}]`})
	if usage, err := p.DiskUsage(ctx); err != nil || usage.Images != 1_000_000_000 {
		t.Errorf("array DiskUsage = %+v, %v", usage, err)
	}
	// podman 4's answer to "--format json".
	podman.On("podman system df", enginetest.Response{Stdout: "json\njson\njson\n"})
	if _, err := p.DiskUsage(ctx); err == nil {
		t.Error("want an error for output without JSON")
	}
}

func TestSaveImageAndLoadImage(t *testing.T) {
	ctx := context.Background()
	d, docker := newEngine(t, engine.Docker)
	docker.On("docker save kindenv/node:v1", enginetest.Response{Stdout: "TARDATA"})
	var buf strings.Builder
	if err := d.SaveImage(ctx, &buf, "kindenv/node:v1"); err != nil || buf.String() != "TARDATA" {
		t.Fatalf("SaveImage wrote %q, %v", buf.String(), err)
	}
	p, podman := newEngine(t, engine.Podman)
	if err := p.LoadImage(ctx, strings.NewReader("TARDATA")); err != nil {
		t.Fatal(err)
	}
	calls := podman.Calls()
	if len(calls) != 1 || enginetest.Argv(calls[0]) != "podman load --quiet" || calls[0].Stdin == nil {
		t.Errorf("calls = %+v", calls)
	}
	if err := p.SaveImage(ctx, &buf, "x"); err != nil || podman.Argvs()[1] != "podman save --quiet --format docker-archive x" {
		t.Errorf("podman SaveImage argv = %q, %v", podman.Argvs(), err)
	}
}

func TestLastLines(t *testing.T) {
	if got := engine.LastLines("a\n\nb\r\nc\n\n", 2); got != "b\nc" {
		t.Errorf("LastLines = %q", got)
	}
}

func TestBuildKitCache(t *testing.T) {
	ctx := context.Background()
	legacy, _ := newEngine(t, engine.Docker)
	if records, err := legacy.BuildCache(ctx); records != nil || err != nil {
		t.Errorf("legacy builder BuildCache = %v, %v; want nothing: its cache is intermediate images", records, err)
	}

	e, runner := newEngine(t, engine.Docker)
	runner.On("docker buildx version", enginetest.Response{Stdout: "github.com/docker/buildx v0.38.2\n"})
	runner.On("docker buildx du --format json", enginetest.Response{Stdout: `{"CreatedAt":"2026-12-05 16:19:34 +0000 UTC","Description":"fileop target","ID":"mmmygyvvjenzwl4fjal178i6j","Mutable":true,"Reclaimable":true,"Shared":false,"Size":"8.192kB","Type":"regular","UsageCount":1}
{"Description":"local source for context","ID":"prygjmleacmwuwsby423esv12","Shared":true,"Size":"1.5MB","Type":"source.local","InUse":true}
`})
	records, err := e.BuildCache(ctx)
	want := []engine.CacheRecord{
		{ID: "mmmygyvvjenzwl4fjal178i6j", Size: 8192, Type: "regular", Description: "fileop target", Reclaimable: true},
		{ID: "prygjmleacmwuwsby423esv12", Size: 1_500_000, Type: "source.local", Description: "local source for context", Shared: true, InUse: true},
	}
	if err != nil || !reflect.DeepEqual(records, want) {
		t.Errorf("BuildCache = %+v, %v\nwant %+v", records, err, want)
	}

	// One prune for many records (the "id" filter takes one value, a regular expression many),
	// again while a pass frees something: a removed record releases its parent.
	prunes := 0
	runner.Func = func(cmd engine.Cmd) (enginetest.Response, bool) {
		switch argv := enginetest.Argv(cmd); {
		case strings.HasPrefix(argv, "docker buildx prune"):
			if prunes++; prunes == 1 {
				return enginetest.Response{Stdout: "ID\tRECLAIMABLE\tSIZE\nmmmygyvvjenzwl4fjal178i6j\ttrue\t8.192kB\nTotal:\t8.192kB\n"}, true
			}
			return enginetest.Response{Stdout: "Total:\t0B\n"}, true
		case argv == "docker buildx du --format json" && prunes == 1:
			return enginetest.Response{Stdout: `{"ID":"prygjmleacmwuwsby423esv12","Size":"0B","Reclaimable":true}` + "\n"}, true
		case argv == "docker buildx du --format json":
			return enginetest.Response{Stdout: `{"ID":"other0000000000000000000000","Size":"1kB","Reclaimable":true}` + "\n"}, true
		}
		return enginetest.Response{}, false
	}
	n, err := e.RemoveBuildCache(ctx, []string{"mmmygyvvjenzwl4fjal178i6j", "prygjmleacmwuwsby423esv12"})
	if err != nil || n != 8192 {
		t.Errorf("RemoveBuildCache = %d, %v", n, err)
	}
	du := "docker buildx du --format json"
	wantArgv := []string{"docker buildx prune --all -f --filter id~=^(mmmygyvvjenzwl4fjal178i6j|prygjmleacmwuwsby423esv12)$", du,
		"docker buildx prune --all -f --filter id~=^(prygjmleacmwuwsby423esv12)$", du}
	if got := work(runner)[1:]; !slices.Equal(got, wantArgv) {
		t.Errorf("argv = %q\nwant %q", got, wantArgv)
	}
	if _, err := e.RemoveBuildCache(ctx, []string{"a|.*"}); err == nil {
		t.Error("RemoveBuildCache took an ID that is a regular expression")
	}
}

func TestPlatformManifest(t *testing.T) {
	ctx := context.Background()
	legacy, runner := newEngine(t, engine.Docker)
	if m, err := legacy.PlatformManifest(ctx, "localhost/a:1"); m != "" || err != nil || len(work(runner)) > 0 {
		t.Errorf("legacy store: PlatformManifest = %q, %v (%q); want nothing asked: IDs are config digests", m, err, work(runner))
	}
	d29, runner := newEngine(t, engine.Docker)
	runner.On("docker info --format {{json .}}", enginetest.Response{Stdout: `{"DockerRootDir":"/d29","Driver":"overlayfs","DriverStatus":[["driver-type","io.containerd.snapshotter.v1"]]}`})
	runner.On("docker image inspect --platform", enginetest.Response{Err: exit(1),
		Stderr: "Error response from daemon: image with reference localhost/a:1 was found but does not provide the specified platform (linux/amd64)"})
	_, err := d29.PlatformManifest(ctx, "localhost/a:1")
	if err == nil || !strings.Contains(err.Error(), "localhost/a:1 has no linux/"+runtime.GOARCH+" manifest") {
		t.Errorf("an index without the host's platform: %v", err)
	}
}

// A BuildKit build whose FROM image the daemon lacks and BuildKit cannot reach says so, and how out.
func TestBuildKitUnresolvedBase(t *testing.T) {
	e, runner := newEngine(t, engine.Docker)
	runner.On("docker build", enginetest.Response{Err: exit(1), Stderr: "#1 [internal] load build definition from Dockerfile\n#1 DONE 0.0s\n" +
		"#2 [internal] load metadata for docker.io/library/golang:1.26-bookworm\n" +
		"#2 ERROR: failed to do request: Head \"https://registry-1.docker.io/v2/library/golang/manifests/1.26-bookworm\": dial tcp: lookup registry-1.docker.io: no such host\n" +
		"ERROR: failed to build: failed to solve: golang:1.26-bookworm: failed to resolve source metadata for docker.io/library/golang:1.26-bookworm: failed to do request: Head \"https://registry-1.docker.io/v2/library/golang/manifests/1.26-bookworm\": dial tcp: lookup registry-1.docker.io: no such host\n"})
	err := e.Build(context.Background(), engine.BuildSpec{Ref: "localhost/a:1", Dockerfile: "/r/Dockerfile", ContextDir: "/r"})
	if err == nil || !strings.Contains(err.Error(), "could not resolve golang:1.26-bookworm") || !strings.Contains(err.Error(), "docker pull golang:1.26-bookworm") {
		t.Errorf("err = %v", err)
	}
}
