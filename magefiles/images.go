//go:build mage

package main

import (
	"context"
	"errors"

	"github.com/magefile/mage/mg"
)

// Images runs the image phases for every suite, or those named in E2E_SUITE (comma-separated).
type Images mg.Namespace

// Build builds every selected suite's images. Environment: E2E_SUITE, and as aianalysis:build.
func (Images) Build(ctx context.Context) error { return forSuites(ctx, buildPhase) }

// Export writes and verifies one archive per selected suite. Environment: E2E_SUITE, E2E_ARCHIVE_DIR.
func (Images) Export(ctx context.Context) error { return forSuites(ctx, exportPhase) }

// Prune removes the selected suites' exported images from the engine.
//
// Environment: E2E_SUITE, E2E_PRUNE=scoped|aggressive, E2E_PRUNE_KEEP.
func (Images) Prune(ctx context.Context) error { return forSuites(ctx, prunePhase) }

// Load creates each selected suite's cluster (after prune) and loads its archive into every node.
func (Images) Load(ctx context.Context) error { return forSuites(ctx, loadPhase) }

func forSuites(ctx context.Context, phase func(context.Context, string) error) error {
	suites, err := selected()
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range suites {
		errs = append(errs, target(ctx, s.Name, phase))
	}
	return errors.Join(errs...)
}
