//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"
)

// Suite runs any suite of test/suites by name: go run magefile.go suite:e2e <name>.
type Suite mg.Namespace

// Build builds the named suite's images. Environment: as aianalysis:build.
func (Suite) Build(ctx context.Context, name string) error { return target(ctx, name, buildPhase) }

// Export writes the named suite's images into one verified archive.
func (Suite) Export(ctx context.Context, name string) error { return target(ctx, name, exportPhase) }

// Prune removes the named suite's exported images from the engine.
func (Suite) Prune(ctx context.Context, name string) error { return target(ctx, name, prunePhase) }

// Cluster creates the named suite's Kind cluster (after prune).
func (Suite) Cluster(ctx context.Context, name string) error { return target(ctx, name, clusterPhase) }

// Load loads the named suite's archive into every node of its cluster.
func (Suite) Load(ctx context.Context, name string) error { return target(ctx, name, loadPhase) }

// Deploy applies the named suite's manifests for the loaded images.
func (Suite) Deploy(ctx context.Context, name string) error { return target(ctx, name, deployPhase) }

// Test runs the named suite's e2e tests against its deployed cluster.
func (Suite) Test(ctx context.Context, name string) error { return target(ctx, name, testPhase) }

// E2e is the main job for the named suite: every phase, summary, teardown.
func (Suite) E2e(ctx context.Context, name string) error { return e2e(ctx, name) }

// Down deletes the named suite's cluster, archive and unpruned images, and forgets the run.
func (Suite) Down(ctx context.Context, name string) error { return down(ctx, name) }
