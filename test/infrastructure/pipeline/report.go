package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
	"github.com/kindling-dev/kindling/test/infrastructure/disk"
)

// Report measures every place that holds the bytes of the runs — the engines' graph roots, the
// archive and temp dirs, and the Kind nodes' storage of the suites' clusters — once, and writes one
// report in DISK_REPORT_FORMAT (one JSON document for any number of suites), appending markdown
// to $GITHUB_STEP_SUMMARY when that is set. Notes go to stderr: stdout carries the report.
func Report(ctx context.Context, runs []*Run, stdout io.Writer) error {
	format, err := disk.FormatFromEnv()
	if err != nil {
		return err
	}
	var places []disk.Place
	var archiveDirs []string
	rep := disk.Report{}
	for _, r := range runs {
		eng, engErr := r.engine(ctx)
		if engErr != nil { // still report the filesystems that can be measured
			fmt.Fprintf(os.Stderr, "disk: suite %s: no engine, the report lacks its graph root and breakdown: %v\n", r.cfg.Suite.Name, engErr)
		}
		if c := r.st.Cluster; c != nil && engErr == nil {
			if ok, _ := r.exists(ctx, c.Name, c.Provider); ok {
				r.addNodePlaces(ctx, *c, nil, func(format string, args ...any) {
					fmt.Fprintf(os.Stderr, "disk: "+format+"\n", args...)
				})
			}
		}
		for _, p := range r.places() {
			if !slices.Contains(places, p) {
				places = append(places, p)
			}
		}
		if !slices.Contains(archiveDirs, r.cfg.ArchiveDir) {
			archiveDirs = append(archiveDirs, r.cfg.ArchiveDir)
		}
		if engErr == nil && rep.Engine == nil {
			if u, err := eng.DiskUsage(ctx); err == nil {
				rep.Engine = &disk.EngineUsage{Name: engineLabel(eng.Name(), r.engInfo), Images: u.Images, Containers: u.Containers,
					Volumes: u.Volumes, BuildCache: u.BuildCache, Reclaimable: u.Reclaimable}
			} else {
				fmt.Fprintf(os.Stderr, "disk: %s system df failed, no engine breakdown: %v\n", eng.Name(), err)
			}
		}
		s := disk.Suite{Name: r.cfg.Suite.Name}
		if c := r.st.Cluster; c != nil {
			s.Cluster = c.Name
		}
		if f := r.footprint; f != nil {
			s.Built, s.Filesystem = true, f.Filesystem
			s.PulledBases, s.BuildCache, s.SuiteImages = f.PulledBytes, f.BuildCacheBytes, f.SuiteImageBytes
		}
		rep.Suites = append(rep.Suites, s)
		rep.Plan = append(rep.Plan, r.plan()...)
	}
	snap, err := disk.Measure(ctx, places)
	if err != nil {
		return err
	}
	rep.Time, rep.Filesystems = snap.Time, snap.Filesystems
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
