package pipeline

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/kindling-dev/kindling/test/infrastructure/disk"
)

// DiskView is what one suite's run knows about where its bytes are, for disk:report
// (package diskreport measures and writes it).
type DiskView struct {
	// Places are the filesystems that hold the run's bytes: the engine's graph root, the archive
	// and temp dirs, the nodes' storage of the suite's cluster.
	Places []disk.Place
	// Parts are the engine store's and the nodes' directories, measured with du.
	Parts      []disk.Part
	ArchiveDir string
	// Engine is the engine's own breakdown (system df); nil when the engine could not tell.
	Engine *disk.EngineUsage
	Suite  disk.Suite
	Plan   []disk.PlanStep
	// Residue is what the engine kept of the pruned images; nil when nothing.
	Residue *disk.Residue
	// KeptCaches are the compile caches the prune kept for the next build; nil when none.
	KeptCaches *disk.KeptCaches
}

// DiskView learns the places that hold the run's bytes — the engine's graph root, the recorded
// cluster's nodes — and what the run recorded. What it cannot learn it says on notes (stdout is
// the report's) and leaves out.
func (r *Run) DiskView(ctx context.Context, notes io.Writer) DiskView {
	note := func(format string, args ...any) { fmt.Fprintf(notes, "disk: "+format+"\n", args...) }
	v := DiskView{ArchiveDir: r.cfg.ArchiveDir, Suite: disk.Suite{Name: r.cfg.Suite.Name}}
	eng, engErr := r.engine(ctx)
	if engErr != nil { // still report the filesystems that can be measured
		note("suite %s: no engine, the report lacks its graph root and breakdown: %v", r.cfg.Suite.Name, engErr)
	}
	rec := r.recorded()
	if c := rec.Cluster; c != nil {
		v.Suite.Cluster = c.Name
		if ok, _ := r.exists(ctx, c.Name, c.Provider); ok && engErr == nil {
			r.addNodePlaces(ctx, *c, nil, note)
		}
	}
	v.Places, v.Parts = r.places(), r.parts()
	if engErr == nil {
		if u, err := eng.DiskUsage(ctx); err == nil {
			v.Engine = &disk.EngineUsage{Name: engineLabel(eng.Name(), r.engineInfo()), Images: u.Images, Containers: u.Containers,
				Volumes: u.Volumes, BuildCache: u.BuildCache, Reclaimable: u.Reclaimable}
		} else {
			note("%s system df failed, no engine breakdown: %v", eng.Name(), err)
		}
	}
	if f := r.report.builtFootprint(); f != nil {
		v.Suite.Built, v.Suite.Filesystem = true, f.Filesystem
		v.Suite.PulledBases, v.Suite.BuildCache, v.Suite.SuiteImages = f.PulledBytes, f.BuildCacheBytes, f.SuiteImageBytes
	}
	v.Plan = r.plan()
	if p := rec.Pruned; p != nil && p.Residue != nil {
		res := &disk.Residue{Suite: r.cfg.Suite.Name, Blobs: len(p.Residue.Blobs), Snapshots: len(p.Residue.Snapshots), Bytes: p.Residue.Bytes}
		for _, argv := range p.Residue.Reclaim {
			res.Reclaim = append(res.Reclaim, strings.Join(argv, " "))
		}
		v.Residue = res
	}
	if p := rec.Pruned; p != nil && p.KeptCaches != nil {
		v.KeptCaches = &disk.KeptCaches{Suite: r.cfg.Suite.Name, Where: p.KeptCaches.Where, Bytes: p.KeptCaches.Bytes, Max: p.KeptCaches.Max}
	}
	return v
}
