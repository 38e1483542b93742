package pipeline

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"

	"github.com/kindling-dev/kindling/test/infrastructure/budget"
	"github.com/kindling-dev/kindling/test/infrastructure/build"
	"github.com/kindling-dev/kindling/test/infrastructure/cluster"
	"github.com/kindling-dev/kindling/test/infrastructure/disk"
	"github.com/kindling-dev/kindling/test/infrastructure/imageref"
	"github.com/kindling-dev/kindling/test/infrastructure/suite"
)

// Prune modes.
const (
	PruneScoped     = "scoped"
	PruneAggressive = "aggressive"
)

// Config is everything a run takes from its environment, read and checked once.
type Config struct {
	Root                 string // repository root
	Suite                suite.Suite
	Engine               string // CONTAINER_ENGINE: "", "podman" or "docker"
	Parallelism          int    // E2E_PARALLELISM
	ArchiveDir           string // E2E_ARCHIVE_DIR ("" = archive.DefaultDir)
	Prune                string // E2E_PRUNE: scoped or aggressive
	PruneKeep            []string
	RunDir               string // E2E_RUN_DIR/<suite>: state, kubeconfig, logs
	ClusterName          string // KIND_CLUSTER_NAME or kindling-<suite>
	NodeImage            string // KIND_NODE_IMAGE ("" = kind's default)
	ReuseCluster         bool   // E2E_REUSE_CLUSTER
	KeepArchives         bool   // E2E_KEEP_ARCHIVES
	KeepClusterOnFailure bool   // E2E_KEEP_CLUSTER_ON_FAILURE
	Overlap              bool   // E2E_OVERLAP: create the cluster while the images build, when both fit the budget
	RolloutTimeout       time.Duration
	TestTimeout          time.Duration
	Registry             *Registry     // IMAGE_REGISTRY + IMAGE_TAG: registry mode
	HostBuild            bool          // E2E_BUILD=host: compile Go services on the host where they allow it
	Coverage             bool          // E2E_COVERAGE: coverage-instrumented builds, counters collected after the tests
	DiskBudget           budget.Budget // E2E_DISK_BUDGET
	Workers              int           // E2E_WORKERS: worker nodes added to the suite's Kind config
	LocalRegistry        bool          // E2E_REGISTRY=local: images go through the suite's own registry, not an archive
	PushTo               string        // IMAGE_REGISTRY without IMAGE_TAG: images are built and pushed there, and the nodes pull them
	RegistryInsecure     bool          // E2E_REGISTRY_INSECURE: plain HTTP to PushTo (always for loopback hosts)
	PushTag              string        // IMAGE_PUSH_TAG: each pushed image is also tagged <suite>-<PushTag>
	BuildCacheMax        int64         // E2E_BUILD_CACHE_MAX: bytes of compile caches a scoped prune keeps for the next build
}

// DefaultBuildCacheMax is what a scoped prune keeps of the builds' compile caches on a developer's
// machine; on CI (CI=true) the default is 0, so a one-shot runner ends lean.
const DefaultBuildCacheMax = 4 << 30

// Registry is where the nodes pull the images from. With a Tag (IMAGE_REGISTRY and IMAGE_TAG)
// images are Host/<service>:Tag and nothing is built, exported, pruned or loaded; without one
// (E2E_REGISTRY=local) each image keeps its own reference in Host.
type Registry struct{ Host, Tag string }

// Env lists every environment variable a run reads, with its meaning, for help texts and the README.
var Env = [][2]string{
	{"CONTAINER_ENGINE", "podman or docker; default: podman if it answers, else docker"},
	{"E2E_PARALLELISM", "concurrent image builds; default: number of CPUs"},
	{"E2E_BUILD", "dockerfile (default: each service's Dockerfile) or host (compile Go services on the host where the suite allows it)"},
	{"E2E_COVERAGE", "true: build with GOFLAGS=-cover, collect the services' coverage after the tests"},
	{"E2E_DISK_BUDGET", "what a run may add to each filesystem: a size (20GiB), a share of the free space (80%) or off; default: the free space minus 1 GiB. Checked before each phase writes"},
	{"E2E_WORKERS", "worker nodes added to the suite's Kind config (e.g. 2: a control plane and 2 workers); default 0"},
	{"E2E_REGISTRY", "archive (default: images reach the nodes in an archive) or local (pushed to the suite's own registry:3 on the Kind network, pulled by the nodes)"},
	{"E2E_BUILD_CACHE_MAX", "what the build phase (and a scoped prune) keeps of the builds' Go compile caches (their cache mounts) for the next build: a size (4GiB) or 0; default 0 when CI=true (a runner ends lean), else 4GiB. Removed anyway when the disk budget needs the room for the cluster"},
	{"E2E_ARCHIVE_DIR", "where suite archives are written; default: <user cache>/kindling/archives (0700)"},
	{"E2E_PRUNE", "scoped (this run's images + dangling build cache; default) or aggressive (all the engine can reclaim)"},
	{"E2E_PRUNE_KEEP", "comma-separated image refs or globs aggressive prune keeps (the Kind node image is always kept)"},
	{"E2E_RUN_DIR", "run-local state, kubeconfig and logs; default: .kindling"},
	{"KIND_CLUSTER_NAME", "cluster name; default: kindling-<suite>"},
	{"KIND_NODE_IMAGE", "Kind node image; default: the one in /etc/kindenv.env, else kind's own (pulled)"},
	{"E2E_OVERLAP", "true: create the cluster while the images build (faster; the build and the nodes then need their space at once), when the disk budget has room for both; default false: the cluster comes after prune"},
	{"E2E_REUSE_CLUSTER", "true: reuse an existing cluster of that name instead of failing"},
	{"E2E_KEEP_ARCHIVES", "true: keep the archive after load (and after a failed load)"},
	{"E2E_KEEP_CLUSTER_ON_FAILURE", "true: e2e keeps the cluster when something failed"},
	{"E2E_ROLLOUT_TIMEOUT", "how long deploy waits for rollouts; default 3m"},
	{"E2E_TEST_TIMEOUT", "go test -timeout for the e2e suite; default 15m"},
	{"IMAGE_REGISTRY", "an external registry, host[:port][/prefix]: alone, the images are built, pushed there and read back, and the nodes pull them; with IMAGE_TAG, nothing is built and the nodes pull <registry>/<service>:<tag>"},
	{"IMAGE_TAG", "with IMAGE_REGISTRY: the tag of every image, built elsewhere"},
	{"IMAGE_PUSH_TAG", "with IMAGE_REGISTRY alone: each image is also pushed as <registry>/<service>:<suite>-<IMAGE_PUSH_TAG> (e.g. the commit), for e2e jobs elsewhere that pull it with IMAGE_TAG"},
	{"E2E_REGISTRY_INSECURE", "true: plain HTTP to IMAGE_REGISTRY (always so for localhost and 127.0.0.1)"},
	{"DISK_REPORT_FORMAT", "text (default) or json"},
	{"NO_COLOR", "set to disable colour"},
	{"GITHUB_STEP_SUMMARY", "when set, reports are appended to it as markdown"},
}

// ConfigFromEnv reads the run's settings for suite s; every bad value is reported at once.
func ConfigFromEnv(root string, s suite.Suite) (Config, error) {
	c := Config{
		Root:           root,
		Suite:          s,
		Engine:         os.Getenv("CONTAINER_ENGINE"),
		ArchiveDir:     os.Getenv("E2E_ARCHIVE_DIR"),
		NodeImage:      os.Getenv("KIND_NODE_IMAGE"),
		ClusterName:    os.Getenv("KIND_CLUSTER_NAME"),
		Prune:          strings.ToLower(strings.TrimSpace(os.Getenv("E2E_PRUNE"))),
		RunDir:         os.Getenv("E2E_RUN_DIR"),
		Parallelism:    runtime.NumCPU(),
		RolloutTimeout: 3 * time.Minute,
		TestTimeout:    15 * time.Minute,
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	switch c.Engine {
	case "", "podman", "docker":
	default:
		bad("CONTAINER_ENGINE=%q: use podman or docker, or leave it unset to detect", c.Engine)
	}
	if n, err := build.ParseParallelism(os.Getenv(build.ParallelismEnv)); err != nil {
		bad("%v", err)
	} else {
		c.Parallelism = n
	}
	switch c.Prune {
	case "":
		c.Prune = PruneScoped
	case PruneScoped, PruneAggressive:
	default:
		bad("E2E_PRUNE=%q: use scoped or aggressive", c.Prune)
	}
	for _, k := range strings.Split(os.Getenv("E2E_PRUNE_KEEP"), ",") {
		if k = strings.TrimSpace(k); k != "" {
			if _, err := path.Match(k, ""); err != nil {
				bad("E2E_PRUNE_KEEP: %q is not a valid glob (%v)", k, err)
			}
			c.PruneKeep = append(c.PruneKeep, k)
		}
	}
	if c.NodeImage == "" {
		c.NodeImage = cluster.NodeImageFromFile(kindenvFile)
	}
	if c.NodeImage != "" {
		c.PruneKeep = append(c.PruneKeep, c.NodeImage)
	}
	if c.RunDir == "" {
		c.RunDir = filepath.Join(root, ".kindling")
	}
	// Absolute, because go test runs the e2e binary in its package's directory.
	for _, dir := range []*string{&c.RunDir, &c.ArchiveDir} {
		if *dir != "" {
			if abs, err := filepath.Abs(*dir); err == nil {
				*dir = abs
			}
		}
	}
	c.RunDir = filepath.Join(c.RunDir, s.Name)
	if c.ClusterName == "" {
		c.ClusterName = "kindling-" + s.Name
	}
	if err := cluster.ValidateName(c.ClusterName); err != nil {
		bad("KIND_CLUSTER_NAME=%q: %v", c.ClusterName, err)
	}
	switch v := strings.ToLower(strings.TrimSpace(os.Getenv("E2E_BUILD"))); v {
	case "", "dockerfile":
	case "host":
		c.HostBuild = true
	default:
		bad("E2E_BUILD=%q: use dockerfile (each service's Dockerfile) or host (compile on the host where the suite allows it)", v)
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{
		{"E2E_COVERAGE", &c.Coverage},
		{"E2E_REUSE_CLUSTER", &c.ReuseCluster},
		{"E2E_KEEP_ARCHIVES", &c.KeepArchives},
		{"E2E_KEEP_CLUSTER_ON_FAILURE", &c.KeepClusterOnFailure},
		{"E2E_OVERLAP", &c.Overlap},
	} {
		if v := os.Getenv(b.name); v != "" {
			parsed, err := strconv.ParseBool(v)
			if err != nil {
				bad("%s=%q: use true or false", b.name, v)
			}
			*b.dst = parsed
		}
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{
		{"E2E_ROLLOUT_TIMEOUT", &c.RolloutTimeout},
		{"E2E_TEST_TIMEOUT", &c.TestTimeout},
	} {
		if v := os.Getenv(d.name); v != "" {
			parsed, err := time.ParseDuration(v)
			if err != nil || parsed <= 0 {
				bad("%s=%q: want a positive duration such as 90s or 5m", d.name, v)
			}
			*d.dst = parsed
		}
	}
	if b, err := budget.Parse(os.Getenv(budget.Env)); err != nil {
		bad("%v", err)
	} else {
		c.DiskBudget = b
	}
	c.BuildCacheMax = DefaultBuildCacheMax
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		c.BuildCacheMax = 0
	}
	if v := strings.TrimSpace(os.Getenv("E2E_BUILD_CACHE_MAX")); v != "" {
		n, err := units.RAMInBytes(v)
		if err != nil || n < 0 {
			bad("E2E_BUILD_CACHE_MAX=%q: want a size such as 4GiB or 512MiB, or 0 to keep no compile cache", v)
		}
		c.BuildCacheMax = n
	}
	if v := strings.TrimSpace(os.Getenv("E2E_WORKERS")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 10 {
			bad("E2E_WORKERS=%q: want a number of worker nodes from 0 to 10", v)
		}
		c.Workers = n
	}
	switch v := strings.ToLower(strings.TrimSpace(os.Getenv("E2E_REGISTRY"))); v {
	case "", "archive":
	case "local":
		c.LocalRegistry = true
		if os.Getenv("IMAGE_REGISTRY") != "" {
			bad("E2E_REGISTRY=local and IMAGE_REGISTRY=%q: use one registry, the suite's own or an external one", os.Getenv("IMAGE_REGISTRY"))
		}
	default:
		bad("E2E_REGISTRY=%q: use archive (the default) or local", v)
	}
	if _, err := disk.FormatFromEnv(); err != nil {
		bad("%v", err)
	}
	reg, tag := os.Getenv("IMAGE_REGISTRY"), os.Getenv("IMAGE_TAG")
	host := strings.TrimSuffix(reg, "/")
	switch {
	case reg != "" && tag != "":
		c.Registry = &Registry{Host: host, Tag: tag}
	case reg != "":
		c.PushTo = host
		tag = "tag"
	case tag != "":
		bad("IMAGE_TAG=%q needs IMAGE_REGISTRY, the registry that holds the images", tag)
	}
	if reg != "" {
		for _, svc := range s.ServiceNames() {
			if _, err := imageref.Parse(host + "/" + svc + ":" + tag); err != nil {
				bad("IMAGE_REGISTRY=%q IMAGE_TAG=%q: the image of service %s would be %v; use host[:port][/prefix] and a tag of letters, digits, '.', '_' and '-'", reg, os.Getenv("IMAGE_TAG"), svc, err)
				break
			}
		}
	}
	if c.PushTag = os.Getenv("IMAGE_PUSH_TAG"); c.PushTag != "" {
		if c.PushTo == "" {
			bad("IMAGE_PUSH_TAG=%q needs IMAGE_REGISTRY without IMAGE_TAG: it tags the images this run pushes", c.PushTag)
		} else if _, err := imageref.Parse(host + "/x:" + s.Name + "-" + c.PushTag); err != nil {
			bad("IMAGE_PUSH_TAG=%q: %v; use letters, digits, '.', '_' and '-'", c.PushTag, err)
		}
	}
	if v := os.Getenv("E2E_REGISTRY_INSECURE"); v != "" {
		parsed, err := strconv.ParseBool(v)
		if err != nil {
			bad("E2E_REGISTRY_INSECURE=%q: use true or false", v)
		}
		c.RegistryInsecure = parsed
	}
	if len(problems) > 0 {
		return Config{}, fmt.Errorf("bad environment:\n  %s", strings.Join(problems, "\n  "))
	}
	return c, nil
}

// kindenvFile is written by ../shared/kindenv/setup on machines without registry access.
var kindenvFile = cluster.KindenvFile

// Command is how a person runs a target of this suite: "go run magefile.go suite:<target> <suite>",
// which works for every suite (aianalysis also has its own namespace, aianalysis:<target>).
func (c Config) Command(target string) string {
	return "go run magefile.go suite:" + target + " " + c.Suite.Name
}
