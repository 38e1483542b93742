package pipeline

import (
	"context"
	"strings"

	"github.com/kindling-dev/kindling/test/infrastructure/budget"
	"github.com/kindling-dev/kindling/test/infrastructure/cluster"
	"github.com/kindling-dev/kindling/test/infrastructure/disk"
)

// facts are what earlier runs of the suite measured (build peaks, node size, load factor), the
// predictions' basis, with the node count of its Kind config.
func (r *Run) facts() budget.Facts {
	f := r.ledger.Facts()
	f.Nodes = r.nodeCount()
	return f
}

// learn merges what a phase measured into the suite's facts.
func (r *Run) learn(update func(*budget.Facts)) {
	if err := r.ledger.Learn(update); err != nil {
		r.logf("disk", "could not keep the measured facts in %s: %v", r.ledger.Path(), err)
	}
}

// budgetPlaces are where the phases write: builds into the engine's image store; the nodes'
// storage is the engine's graph root until the cluster exists (Kind's nodes keep /var in a
// volume of the engine, which the containerd store keeps in Docker's data root, not containerd's).
func (r *Run) budgetPlaces() budget.Places {
	p := budget.Places{Archive: disk.Place{Name: "archive dir", Path: r.cfg.ArchiveDir}}
	if store, ok := r.imageStore(); ok {
		p.Engine = store
	}
	p.Nodes = p.Engine
	if graph, err := r.graphRoot(); err == nil {
		p.Nodes = graph[0]
	}
	if nodes := r.where.with(roleNode); len(nodes) > 0 {
		p.Nodes = nodes[0]
	}
	return p
}

// fits stops phase before it writes anything when its predicted needs do not fit the disk budget,
// and says what it predicted otherwise.
func (r *Run) fits(ctx context.Context, phase string, f budget.Facts) error {
	needs, note := budget.Predict(phase, f, r.budgetPlaces())
	return r.fitsNeeds(ctx, phase, needs, note)
}

func (r *Run) fitsNeeds(ctx context.Context, phase string, needs []budget.Need, note string) error {
	if r.cfg.DiskBudget.Off {
		return nil
	}
	if note != "" {
		r.logf(phase, "disk budget: no prediction (%s)", note)
		return nil
	}
	if err := r.checker().Check(ctx, phase, needs); err != nil {
		return err
	}
	r.logFits(phase, needs)
	return nil
}

// checker checks needs against the run's budget, counting from the run's START.
func (r *Run) checker() *budget.Checker {
	return &budget.Checker{Budget: r.cfg.DiskBudget, Start: r.startSnapshot(), Measure: r.measure}
}

// logFits says what phase predicted, once it fits.
func (r *Run) logFits(phase string, needs []budget.Need) {
	for _, n := range needs {
		if n.Place.Path != "" && n.Bytes > 0 {
			r.logf(phase, "disk budget: about %s on the filesystem of %s (%s) fits", disk.HumanBytes(n.Bytes), n.Place.Name, n.Why)
		}
	}
}

// budgetLimit is what the run may add to the filesystem of the engine's storage; 0 when the
// budget is off or that filesystem was not measured at the start.
func (r *Run) budgetLimit() uint64 {
	if r.cfg.DiskBudget.Off {
		return 0
	}
	engine := r.budgetPlaces().Engine
	for _, fs := range r.startSnapshot().Filesystems {
		if holds(fs, engine) {
			return r.cfg.DiskBudget.Limit(fs)
		}
	}
	return 0
}

// startSnapshot is the usage at the run's START checkpoint.
func (r *Run) startSnapshot() disk.Snapshot {
	var s disk.Snapshot
	for _, ph := range r.disk.Phases() {
		if ph.Name == "START" {
			s.Time = ph.Time
			for _, c := range ph.Filesystems {
				s.Filesystems = append(s.Filesystems, c.Filesystem)
			}
		}
	}
	return s
}

// learnNodes keeps what creating nodes measured on their filesystem, less what copying the node
// image into the provider added (copied): a node's own bytes. After a copy it takes where the
// phase ended, not its peak: podman's load of the copy holds a temporary file of the image too.
func (r *Run) learnNodes(cp disk.Checkpoint, copied uint64, nodes int) {
	grown, ok := growth(cp, r.budgetPlaces().Nodes)
	if copied > 0 {
		grown, ok = ended(cp, r.budgetPlaces().Nodes)
	}
	if !ok || nodes == 0 || grown <= copied {
		return
	}
	r.learn(func(f *budget.Facts) { f.NodeBytes = (grown - copied) / uint64(nodes) })
}

// learnExport keeps how far the export raised the archive's filesystem per byte of the archive.
func (r *Run) learnExport(cp disk.Checkpoint, archiveBytes uint64) {
	grown, ok := growth(cp, r.budgetPlaces().Archive)
	if !ok || archiveBytes == 0 {
		return
	}
	r.learn(func(f *budget.Facts) { f.ExportFactor = float64(grown) / float64(archiveBytes) })
}

// learnLoad keeps how far a load raised a node's filesystem per byte of the archive.
func (r *Run) learnLoad(cp disk.Checkpoint, archiveBytes uint64, nodes int) {
	grown, ok := growth(cp, r.budgetPlaces().Nodes)
	if !ok || nodes == 0 || archiveBytes == 0 {
		return
	}
	r.learn(func(f *budget.Facts) { f.LoadFactor = float64(grown) / float64(nodes) / float64(archiveBytes) })
}

// ended is how far the filesystem holding place rose from the phase's start to its end; false
// when it did not rise or is not among the checkpoint's.
func ended(cp disk.Checkpoint, place disk.Place) (uint64, bool) {
	for _, c := range cp.Filesystems {
		if !c.New && holds(c.Filesystem, place) {
			return uint64(max(c.Delta, 0)), c.Delta > 0
		}
	}
	return 0, false
}

// growth is how far the filesystem holding place rose above its use at the phase's start (its
// peak during the phase); false when it did not rise or is not among the checkpoint's.
func growth(cp disk.Checkpoint, place disk.Place) (uint64, bool) {
	for _, c := range cp.Filesystems {
		if c.New || !holds(c.Filesystem, place) {
			continue
		}
		before := int64(c.Used) - c.Delta
		grown := int64(c.Peak) - before
		return uint64(max(grown, 0)), grown > 0
	}
	return 0, false
}

// holds reports whether place p is one of the filesystem's places.
func holds(f disk.Filesystem, p disk.Place) bool {
	for _, label := range f.Places {
		if strings.HasPrefix(label, p.Name+" (") {
			return true
		}
	}
	return false
}

// nodeCount is the number of nodes of the suite's cluster: its Kind config plus E2E_WORKERS.
func (r *Run) nodeCount() int {
	n, err := cluster.NodeCount(r.kindConfig(), r.cfg.Workers)
	if err != nil {
		return 1 + r.cfg.Workers
	}
	return n
}

// plan is the prediction of every writing phase of the suite's next run, for disk:report.
func (r *Run) plan() []disk.PlanStep {
	var steps []disk.PlanStep
	plan := budget.Plan(r.facts(), r.budgetPlaces())
	if r.cfg.Overlap { // the cluster is created beside the build: their needs count together
		needs, _ := r.overlapNeeds()
		plan = append([]budget.Step{{Phase: "build+cluster (E2E_OVERLAP)", Needs: needs}}, plan...)
	}
	for _, st := range plan {
		if len(st.Needs) == 0 {
			steps = append(steps, disk.PlanStep{Suite: r.cfg.Suite.Name, Phase: st.Phase, Basis: st.Note})
		}
		for _, n := range st.Needs {
			steps = append(steps, disk.PlanStep{Suite: r.cfg.Suite.Name, Phase: st.Phase, Place: n.Place.Name, Bytes: n.Bytes, Basis: n.Why})
		}
	}
	return steps
}
