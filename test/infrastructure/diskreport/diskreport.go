// Package diskreport is disk:report: every filesystem that holds the runs' bytes measured once,
// the engine's breakdown, what each suite's builds added, the plan and the archives, as one
// report in DISK_REPORT_FORMAT.
package diskreport

import (
	"context"
	"io"
	"slices"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
	"github.com/kindling-dev/kindling/test/infrastructure/disk"
	"github.com/kindling-dev/kindling/test/infrastructure/pipeline"
)

// Write measures the places of every view once and writes one report to stdout in
// DISK_REPORT_FORMAT (one JSON document for any number of suites), appending markdown to
// $GITHUB_STEP_SUMMARY when that is set.
func Write(ctx context.Context, views []pipeline.DiskView, stdout io.Writer) error {
	format, err := disk.FormatFromEnv()
	if err != nil {
		return err
	}
	var places []disk.Place
	var parts []disk.Part
	var archiveDirs []string
	rep := disk.Report{}
	for _, v := range views {
		for _, p := range v.Places {
			if !slices.Contains(places, p) {
				places = append(places, p)
			}
		}
		for _, p := range v.Parts {
			if !slices.Contains(parts, p) {
				parts = append(parts, p)
			}
		}
		if !slices.Contains(archiveDirs, v.ArchiveDir) {
			archiveDirs = append(archiveDirs, v.ArchiveDir)
		}
		if rep.Engine == nil {
			rep.Engine = v.Engine
		}
		rep.Suites = append(rep.Suites, v.Suite)
		rep.Plan = append(rep.Plan, v.Plan...)
		if v.Residue != nil {
			rep.Residue = append(rep.Residue, *v.Residue)
		}
		if v.KeptCaches != nil {
			rep.KeptCaches = append(rep.KeptCaches, *v.KeptCaches)
		}
	}
	snap, err := disk.Measure(ctx, places)
	if err != nil {
		return err
	}
	rep.Time, rep.Filesystems = snap.Time, snap.Filesystems
	if rep.Parts, err = disk.Usage(ctx, parts); err != nil {
		return err
	}
	for _, dir := range archiveDirs {
		files, err := archive.List(dir)
		if err != nil {
			return err
		}
		for _, f := range files {
			rep.Archives = append(rep.Archives, disk.Archive{Path: f.Path, Size: f.Size})
		}
	}
	if err := rep.Write(stdout, format); err != nil {
		return err
	}
	return disk.AppendStepSummary(rep)
}
