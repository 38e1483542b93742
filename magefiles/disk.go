//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"
)

// Disk reports where the bytes are.
type Disk mg.Namespace

// Report shows each filesystem that holds the run's bytes — the engine's graph root, the archive
// and temp dirs, the Kind nodes' storage — plus the engine's own breakdown and the archives.
//
// Environment: DISK_REPORT_FORMAT=text|json, NO_COLOR, GITHUB_STEP_SUMMARY (markdown appended),
// E2E_SUITE (whose archives and cluster; default all), CONTAINER_ENGINE.
func (Disk) Report(ctx context.Context) error {
	suites, err := selected()
	if err != nil {
		return err
	}
	for _, s := range suites {
		r, err := run(s)
		if err != nil {
			return err
		}
		if err := r.Report(ctx); err != nil {
			return err
		}
	}
	return nil
}
