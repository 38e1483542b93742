//go:build mage

package main

import (
	"context"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/kindling-dev/kindling/test/infrastructure/bench"
)

// Bench measures.
type Bench mg.Namespace

// Disk runs one workload through the original flow, what kind load docker-image does, and
// kindling's, in this process, and prints one table: wall time per phase, the peak of used bytes
// above the start on every filesystem (sampled every 100 ms), what the nodes' containerd keeps,
// the archive bytes, ratios against the original.
//
// Environment: BENCH_WORKLOAD=synthetic (default) or suite:<name> (its images built once; E2E_BUILD=host
// builds them on the host), BENCH_IMAGES, BENCH_BASE_MIB, BENCH_UNIQUE_MIB, BENCH_GARBAGE_MIB (default 3, 200,
// 100, 150), BENCH_COMPRESSIBLE=true, BENCH_WORKERS (worker nodes a cluster, default 0), BENCH_STRATEGIES (comma-separated; default all),
// BENCH_FORMAT=text|json|markdown, CONTAINER_ENGINE (the Kind provider follows it),
// KIND_NODE_IMAGE, GITHUB_STEP_SUMMARY (markdown appended). Clusters, images and files of the
// benchmark are removed at the end and on Ctrl-C.
func (Bench) Disk(ctx context.Context) error {
	cfg, err := bench.ConfigFromEnv()
	if err != nil {
		return err
	}
	return bench.Main(ctx, cfg, os.Stdout, os.Stderr)
}

// Build measures the suite's image builds (BENCH_SUITE, default aianalysis) against the host's
// cold go build of the same services, measured in the same run: variants independent (the
// Dockerfiles of the release before cache mounts, every build at once), cache-mounts (today's
// Dockerfiles, every build at once) and planned (as the product builds them), each cold (no
// compile caches, no bases), warm (second run, nothing changed, after the scoped prune) and after
// a one-file change. One table: time, peak above the start, bytes left behind, ratio to the floor.
//
// Environment: BENCH_VARIANTS, BENCH_STATES (comma-separated; default all), BENCH_FORMAT,
// CONTAINER_ENGINE, GITHUB_STEP_SUMMARY. The suite's bases and its compile caches are removed
// for the cold builds; the bases that were there are pulled back at the end.
func (Bench) Build(ctx context.Context) error {
	cfg, err := bench.BuildConfigFromEnv()
	if err != nil {
		return err
	}
	return bench.BuildMain(ctx, cfg, os.Stdout, os.Stderr)
}
