//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"
)

// AIAnalysis is the AIAnalysis suite: datastorage, holmesgpt-api and the aianalysis controller.
type AIAnalysis mg.Namespace

const aianalysis = "aianalysis"

// Build builds the suite's images from their Dockerfiles (test/suites/aianalysis.yaml).
//
// Skips images already present with the same input-hash tag, and after prune takes the verified
// archive or the loaded nodes as the build's product instead of rebuilding. Environment:
// CONTAINER_ENGINE, E2E_BUILD=host (compile on the host), E2E_COVERAGE, E2E_PARALLELISM,
// E2E_RUN_DIR, IMAGE_REGISTRY, IMAGE_TAG. Every writing phase first checks its predicted bytes
// against E2E_DISK_BUDGET (a size, a share of the free space, or off).
func (AIAnalysis) Build(ctx context.Context) error { return target(ctx, aianalysis, buildPhase) }

// Export writes all the suite's images into one archive, verifies every blob, then records it.
//
// Stale archives of earlier runs are removed first. Environment: E2E_ARCHIVE_DIR.
func (AIAnalysis) Export(ctx context.Context) error { return target(ctx, aianalysis, exportPhase) }

// Prune removes the suite's images from the engine once they are in a verified archive.
//
// Environment: E2E_PRUNE=scoped (default: this run's images, the intermediate images and the
// base images its builds pulled, dangling build cache) or aggressive (everything the engine can
// reclaim), E2E_PRUNE_KEEP (images aggressive prune keeps; the Kind node image is always kept).
func (AIAnalysis) Prune(ctx context.Context) error { return target(ctx, aianalysis, prunePhase) }

// Cluster creates the suite's Kind cluster, after prune, with the run's engine as provider.
//
// Environment: KIND_CLUSTER_NAME (default kindling-aianalysis), KIND_NODE_IMAGE,
// E2E_REUSE_CLUSTER=true to reuse an existing cluster of that name, E2E_WORKERS (worker nodes
// added to the Kind config).
func (AIAnalysis) Cluster(ctx context.Context) error { return target(ctx, aianalysis, clusterPhase) }

// Load streams the verified archive into every node image by image; the archive shrinks as the nodes take it.
//
// Environment: E2E_KEEP_ARCHIVES=true keeps the archive.
func (AIAnalysis) Load(ctx context.Context) error { return target(ctx, aianalysis, loadPhase) }

// Deploy applies manifests/aianalysis for the loaded images; it never touches the container engine.
//
// Environment: E2E_ROLLOUT_TIMEOUT (default 3m).
func (AIAnalysis) Deploy(ctx context.Context) error { return target(ctx, aianalysis, deployPhase) }

// Test runs the e2e suite (go test -tags e2e ./test/e2e/aianalysis) against the deployed cluster.
//
// Environment: E2E_TEST_TIMEOUT (default 15m).
func (AIAnalysis) Test(ctx context.Context) error { return target(ctx, aianalysis, testPhase) }

// E2e is the main job: build, export, prune, cluster, load, deploy, test, summary, teardown.
//
// On failure it exports the cluster's logs to .kindling/aianalysis/logs/ first and keeps the
// cluster when E2E_KEEP_CLUSTER_ON_FAILURE=true. Every variable of the other targets applies.
func (AIAnalysis) E2e(ctx context.Context) error { return e2e(ctx, aianalysis) }

// Down deletes the suite's cluster, archive and unpruned images, and forgets the run.
func (AIAnalysis) Down(ctx context.Context) error { return down(ctx, aianalysis) }
