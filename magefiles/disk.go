//go:build mage

package main

import (
	"context"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/kindling-dev/kindling/test/infrastructure/diskreport"
	"github.com/kindling-dev/kindling/test/infrastructure/pipeline"
)

// Disk reports where the bytes are.
type Disk mg.Namespace

// Report shows each filesystem that holds the runs' bytes — the engine's graph root, the archive
// and temp dirs, the Kind nodes' storage — plus the engine's own breakdown, what each suite's
// builds added (pulled bases, build cache, suite images) and the archives: one report for all
// the selected suites.
//
// Environment: DISK_REPORT_FORMAT=text|json, NO_COLOR, GITHUB_STEP_SUMMARY (markdown appended),
// E2E_SUITE (whose archives and cluster; default all), CONTAINER_ENGINE.
func (Disk) Report(ctx context.Context) error {
	suites, err := selected()
	if err != nil {
		return err
	}
	var views []pipeline.DiskView
	for _, s := range suites {
		r, err := run(s)
		if err != nil {
			return err
		}
		views = append(views, r.DiskView(ctx, os.Stderr))
	}
	return diskreport.Write(ctx, views, os.Stdout)
}
