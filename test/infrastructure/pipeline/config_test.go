package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/build"
	"github.com/kindling-dev/kindling/test/infrastructure/disk"
	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/engine/enginetest"
	"github.com/kindling-dev/kindling/test/infrastructure/state"
	"github.com/kindling-dev/kindling/test/infrastructure/suite"
)

func clearEnv(t *testing.T) {
	for _, kv := range Env {
		t.Setenv(kv[0], "")
	}
	t.Setenv("CI", "")
	old := kindenvFile
	kindenvFile = filepath.Join(t.TempDir(), "none.env")
	t.Cleanup(func() { kindenvFile = old })
}

func TestNodeImageFromKindenv(t *testing.T) {
	clearEnv(t)
	kindenvFile = filepath.Join(t.TempDir(), "kindenv.env")
	os.WriteFile(kindenvFile, []byte("KINDENV_KIND_VERSION=v0.33.0\nKIND_NODE_IMAGE=kindenv/node:v1.34.4\n"), 0o644)
	c, err := ConfigFromEnv("/repo", suite.Suite{Name: "aianalysis"})
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeImage != "kindenv/node:v1.34.4" {
		t.Errorf("node image = %q, want the one from %s", c.NodeImage, kindenvFile)
	}
	t.Setenv("KIND_NODE_IMAGE", "mine:v1")
	if c, _ := ConfigFromEnv("/repo", suite.Suite{Name: "aianalysis"}); c.NodeImage != "mine:v1" {
		t.Errorf("KIND_NODE_IMAGE must win over the file, got %q", c.NodeImage)
	}
}

func TestConfigDefaults(t *testing.T) {
	clearEnv(t)
	t.Setenv("KIND_NODE_IMAGE", "kindenv/node:v1")
	c, err := ConfigFromEnv("/repo", suite.Suite{Name: "aianalysis"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Prune != PruneScoped || c.ClusterName != "kindling-aianalysis" || c.RunDir != "/repo/.kindling/aianalysis" {
		t.Errorf("defaults: %+v", c)
	}
	if c.Parallelism < 1 || c.RolloutTimeout != 3*time.Minute || c.Registry != nil {
		t.Errorf("defaults: %+v", c)
	}
	if len(c.PruneKeep) != 1 || c.PruneKeep[0] != "kindenv/node:v1" {
		t.Errorf("the node image must always be kept by aggressive prune, keep = %v", c.PruneKeep)
	}
	if c.BuildCacheMax != DefaultBuildCacheMax {
		t.Errorf("a developer's machine keeps %d bytes of compile caches, want %d", c.BuildCacheMax, DefaultBuildCacheMax)
	}
}

// A CI runner ends lean unless told otherwise; sizes are read as the engines print them.
func TestBuildCacheMax(t *testing.T) {
	for _, tc := range []struct {
		ci, max string
		want    int64
	}{
		{"true", "", 0},
		{"", "", DefaultBuildCacheMax},
		{"true", "6GiB", 6 << 30},
		{"", "512m", 512 << 20},
		{"", "0", 0},
	} {
		clearEnv(t)
		t.Setenv("CI", tc.ci)
		t.Setenv("E2E_BUILD_CACHE_MAX", tc.max)
		c, err := ConfigFromEnv("/repo", suite.Suite{Name: "aianalysis"})
		if err != nil || c.BuildCacheMax != tc.want {
			t.Errorf("CI=%q E2E_BUILD_CACHE_MAX=%q: %d, %v; want %d", tc.ci, tc.max, c.BuildCacheMax, err, tc.want)
		}
	}
}

func TestConfigReportsEveryBadValueAtOnce(t *testing.T) {
	clearEnv(t)
	t.Setenv("CONTAINER_ENGINE", "rkt")
	t.Setenv("E2E_PARALLELISM", "0")
	t.Setenv("E2E_PRUNE", "everything")
	t.Setenv("E2E_REUSE_CLUSTER", "yes please")
	t.Setenv("E2E_ROLLOUT_TIMEOUT", "soon")
	t.Setenv("IMAGE_TAG", "v1")
	t.Setenv("KIND_CLUSTER_NAME", "Not_A_DNS_Label")
	t.Setenv("E2E_PRUNE_KEEP", "kindenv/[")
	t.Setenv("DISK_REPORT_FORMAT", "yaml")
	t.Setenv("E2E_DISK_BUDGET", "lots")
	t.Setenv("E2E_WORKERS", "-1")
	t.Setenv("E2E_BUILD_CACHE_MAX", "plenty")
	_, err := ConfigFromEnv("/repo", suite.Suite{Name: "aianalysis"})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"CONTAINER_ENGINE", "E2E_PARALLELISM", "E2E_PRUNE=", "E2E_REUSE_CLUSTER", "E2E_ROLLOUT_TIMEOUT", "IMAGE_TAG", "KIND_CLUSTER_NAME", "E2E_PRUNE_KEEP", "DISK_REPORT_FORMAT", "E2E_DISK_BUDGET", "E2E_WORKERS", "E2E_BUILD_CACHE_MAX"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
}

func TestConfigRegistryMode(t *testing.T) {
	clearEnv(t)
	t.Setenv("IMAGE_REGISTRY", "registry.example:5000/")
	t.Setenv("IMAGE_TAG", "v1.2.3")
	c, err := ConfigFromEnv("/repo", suite.Suite{Name: "aianalysis"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Registry == nil || c.Registry.Host != "registry.example:5000" || c.Registry.Tag != "v1.2.3" {
		t.Errorf("registry = %+v", c.Registry)
	}
	withService := suite.Suite{Name: "aianalysis", Services: []build.Service{{Name: "datastorage"}}}
	t.Setenv("IMAGE_TAG", "")
	if c, err := ConfigFromEnv("/repo", withService); err != nil || c.PushTo != "registry.example:5000" || c.Registry != nil {
		t.Errorf("IMAGE_REGISTRY alone: push to %q, registry %+v, %v; want a push to registry.example:5000", c.PushTo, c.Registry, err)
	}
	t.Setenv("IMAGE_REGISTRY", "http://registry")
	if _, err := ConfigFromEnv("/repo", withService); err == nil || !strings.Contains(err.Error(), "not a valid image reference") {
		t.Errorf("IMAGE_REGISTRY=http://registry alone: err = %v", err)
	}
	for reg, tag := range map[string]string{"Registry.Example:5000/UPPER": "v1", "registry.example:5000": "bad tag", "http://registry": "v1"} {
		t.Setenv("IMAGE_REGISTRY", reg)
		t.Setenv("IMAGE_TAG", tag)
		if _, err := ConfigFromEnv("/repo", withService); err == nil || !strings.Contains(err.Error(), "not a valid image reference") {
			t.Errorf("IMAGE_REGISTRY=%q IMAGE_TAG=%q: err = %v", reg, tag, err)
		}
	}
}

func TestRunOnAnotherDaemonIsRefused(t *testing.T) {
	t.Setenv("DOCKER_HOST", "")
	r, _ := newTestRun(t, enginetest.Repo(t, "alpha"), &enginetest.Engine{})
	r.journal.Amend(func(st *state.Suite) { st.Engine, st.RunID = "docker", "r1" })
	if _, err := r.engineName(); err != nil {
		t.Fatalf("same daemon: %v", err)
	}
	t.Setenv("DOCKER_HOST", "unix:///run/kindenv-docker29/docker.sock")
	_, err := r.engineName()
	for _, want := range []string{"used docker at the default daemon (DOCKER_HOST unset)", "now names DOCKER_HOST=unix:///run/kindenv-docker29/docker.sock", "set DOCKER_HOST as it was"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	if err := r.Down(context.Background()); err == nil || !strings.Contains(err.Error(), "set DOCKER_HOST as it was") {
		t.Errorf("down on another daemon: %v, want the same refusal (it would forget a cluster it cannot see)", err)
	}
}

func TestStoreOnSeveralFilesystemsIsMeasuredWhole(t *testing.T) {
	r, _ := newTestRun(t, enginetest.Repo(t, "alpha"), &enginetest.Engine{})
	info := engine.Info{GraphRoot: "/var/lib/docker", Store: engine.StoreContainerd,
		ContentRoot: "/mnt/containerd/content", SnapshotRoot: "/mnt/containerd/snapshots"}
	for _, dir := range []string{info.GraphRoot, info.ContentRoot, info.SnapshotRoot} {
		r.where.add(storageRole(info, dir), disk.Place{Name: storageName("fake", info, dir), Path: dir})
	}
	graph, err := r.graphRoot()
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, p := range graph {
		paths = append(paths, p.Path)
	}
	// Prune measures all of them: containerd's root may be on another filesystem than Docker's.
	for _, want := range []string{"/var/lib/docker", "/mnt/containerd/content", "/mnt/containerd/snapshots"} {
		if !slices.Contains(paths, want) {
			t.Errorf("the store's places %v lack %s", paths, want)
		}
	}
	// Builds are budgeted where the unpacked bytes go, the nodes where Docker keeps volumes.
	places := r.budgetPlaces()
	if places.Engine.Path != "/mnt/containerd/snapshots" || places.Nodes.Name != "fake graph root" {
		t.Errorf("budget places: builds on %s, nodes on %s", places.Engine.Path, places.Nodes.Name)
	}
	parts := storeParts("docker", info)
	if len(parts) != 2 || parts[0].Path != info.ContentRoot || parts[1].Path != info.SnapshotRoot {
		t.Errorf("the report's directories of a containerd store: %+v", parts)
	}
}

// The transport is chosen once, from the configuration.
func TestTransportIsChosenFromTheConfiguration(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want Transport
	}{
		{Config{}, TransportArchive},
		{Config{LocalRegistry: true}, TransportLocalRegistry},
		{Config{PushTo: "registry.example:5000"}, TransportPush},
		{Config{Registry: &Registry{Host: "registry.example:5000", Tag: "v1"}}, TransportPullOnly},
	} {
		if got := tc.cfg.Transport(); got != tc.want {
			t.Errorf("%+v: transport %s, want %s", tc.cfg, got, tc.want)
		}
	}
}
