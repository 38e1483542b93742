package pipeline

import (
	"context"
	"fmt"
	"os"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
	"github.com/kindling-dev/kindling/test/infrastructure/cluster"
	"github.com/kindling-dev/kindling/test/infrastructure/disk"
)

// Report measures every place that holds the run's bytes — the engine's graph root, the archive
// and temp dirs, and the Kind nodes' storage when the suite's cluster exists — and writes it in
// DISK_REPORT_FORMAT, appending markdown to $GITHUB_STEP_SUMMARY when that is set.
func (r *Run) Report(ctx context.Context) error {
	format, err := disk.FormatFromEnv()
	if err != nil {
		return err
	}
	eng, engErr := r.engine(ctx)
	// Notes go to stderr: stdout carries the report, which may be JSON.
	if engErr != nil { // still report the filesystems that can be measured
		fmt.Fprintf(os.Stderr, "disk: no engine, the report lacks its graph root and breakdown: %v\n", engErr)
	}
	if c := r.st.Cluster; c != nil && engErr == nil {
		if ok, _ := cluster.Exists(ctx, c.Name, c.Provider); ok {
			r.addPlaces(r.nodePlaces(ctx, Cluster{*c}, nil)...)
		}
	}
	snap, err := disk.Measure(ctx, r.places())
	if err != nil {
		return err
	}
	rep := disk.Report{Time: snap.Time, Filesystems: snap.Filesystems}
	if engErr == nil {
		if u, err := eng.DiskUsage(ctx); err == nil {
			rep.Engine = &disk.EngineUsage{Name: eng.Name(), Images: u.Images, Containers: u.Containers,
				Volumes: u.Volumes, BuildCache: u.BuildCache, Reclaimable: u.Reclaimable}
		} else {
			fmt.Fprintf(os.Stderr, "disk: %s system df failed, no engine breakdown: %v\n", eng.Name(), err)
		}
	}
	files, err := archive.List(r.cfg.ArchiveDir)
	if err != nil {
		return err
	}
	for _, f := range files {
		rep.Archives = append(rep.Archives, disk.Archive{Path: f.Path, Size: f.Size})
	}
	if err := rep.Write(os.Stdout, format); err != nil {
		return err
	}
	return disk.AppendStepSummary(rep)
}
