package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/cluster"
	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/state"
	"github.com/kindling-dev/kindling/test/infrastructure/summary"
)

// Finish ends an e2e run. On failure it first exports the cluster's logs to the run directory
// (not after Ctrl-C or a timeout: Mage leaves a few seconds, which go to deleting the cluster), and
// keeps the cluster when E2E_KEEP_CLUSTER_ON_FAILURE=true; otherwise it deletes a cluster this run
// created. It prints the summary either way and returns runErr joined with any teardown error.
func (r *Run) Finish(ctx context.Context, runErr error) error {
	interrupted := ctx.Err() != nil
	ctx = context.WithoutCancel(ctx)
	log := r.logger("teardown")
	var errs []error
	// From the record, not a product: a create that failed half way handed nothing on, and its
	// cluster is still this run's to export logs from and delete.
	c := r.recorded().Cluster
	if runErr != nil && c != nil && !interrupted {
		dir := filepath.Join(r.cfg.RunDir, "logs", time.Now().UTC().Format("20060102-150405"))
		if err := cluster.ExportLogs(ctx, c.Name, c.Provider, dir); err != nil {
			log("could not export the cluster's logs: %v", err)
		} else {
			log("cluster logs exported to %s", dir)
		}
	}
	switch {
	case c == nil:
	case !c.Created:
		log("leaving cluster %s: this run reused it (E2E_REUSE_CLUSTER=true) and did not create it", c.Name)
	case runErr != nil && r.cfg.KeepClusterOnFailure:
		log("keeping cluster %s for inspection (E2E_KEEP_CLUSTER_ON_FAILURE=true): KUBECONFIG=%s; delete it with \"%s\"",
			c.Name, c.Kubeconfig, r.cfg.Command("down"))
	default:
		if err := r.Down(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	r.Summary()
	return errors.Join(append([]error{runErr}, errs...)...)
}

// TeardownBudget is kept back from a deadline (mage -t) for e2e's teardown: Mage exits as soon as
// the target's deadline passes, so the phases get a deadline this much earlier.
const TeardownBudget = 30 * time.Second

// WithTeardownBudget returns ctx with its deadline TeardownBudget earlier, for the phases. A
// deadline that leaves the phases no time at all is an error that says so, rather than phases
// that fail at once on an expired context.
func WithTeardownBudget(ctx context.Context) (context.Context, context.CancelFunc, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return ctx, func() {}, nil
	}
	if left := time.Until(deadline); left <= TeardownBudget {
		return nil, nil, fmt.Errorf("the timeout leaves %s, and e2e keeps %s of it for the teardown (deleting the cluster): give -t more than %s, or none",
			left.Round(time.Second), TeardownBudget, TeardownBudget)
	}
	work, cancel := context.WithDeadline(ctx, deadline.Add(-TeardownBudget))
	return work, cancel, nil
}

// Down deletes the suite's cluster, archive and unpruned images, and forgets the run.
func (r *Run) Down(ctx context.Context) error {
	log := r.logger("down")
	if err := r.sameDaemon(); err != nil {
		return err
	}
	rec := r.recorded()
	if rec.Engine != "" && r.cfg.Engine != "" && r.cfg.Engine != rec.Engine {
		log("tearing down with %s, the engine this run used (CONTAINER_ENGINE=%s ignored)", rec.Engine, r.cfg.Engine)
		r.cfg.Engine = rec.Engine
	}
	name, provider := r.cfg.ClusterName, ""
	if c := rec.Cluster; c != nil {
		name, provider = c.Name, c.Provider
	}
	if provider == "" {
		var err error
		if provider, err = r.engineName(); err != nil {
			return err
		}
	}
	if provider == "" {
		eng, err := r.engine(ctx)
		if err != nil {
			return err
		}
		provider = eng.Name()
	}
	exists, err := r.exists(ctx, name, provider)
	kubeconfig := filepath.Join(r.cfg.RunDir, "kubeconfig")
	switch {
	case err != nil:
		return err
	case exists:
		if err := cluster.Delete(ctx, name, provider, kubeconfig); err != nil {
			return err
		}
		log("deleted cluster %s (%s)", name, provider)
	default:
		log("no cluster %s (%s) to delete", name, provider)
	}
	if rec.Pruned == nil && len(rec.Images) > 0 && r.carrier.builds() {
		r.removeImages(ctx, rec, log)
	}
	if rec.Leftovers != nil {
		if eng, err := r.engine(ctx); err == nil {
			r.removeLeftovers(ctx, eng, rec.Leftovers, log)
		}
	}
	r.removeRegistry(ctx, rec.Registry, log)
	if a := rec.Archive; a != nil && !r.cfg.KeepArchives {
		if err := os.RemoveAll(a.Path); err == nil {
			log("removed %s", a.Path)
		}
	}
	os.Remove(kubeconfig)
	return r.journal.Forget()
}

// Summary stops the disk sampler and prints the run's summary (package summary): phases with
// their durations, the disk by phase with its peaks, the test counts; the disk timeline goes to the
// run dir, and with GITHUB_STEP_SUMMARY set the markdown to it.
func (r *Run) Summary() {
	r.disk.Stop()
	s := summary.Run{Suite: r.cfg.Suite.Name, Total: time.Since(r.started), Disk: r.disk, Dir: r.cfg.RunDir}
	r.report.fill(&s)
	s.Engine = r.engineLabel()
	s.Budget = r.budgetLimit()
	summary.Print(r.out, s)
}

func (r *Run) engineLabel() string {
	if eng, info, ok := r.detected.known(); ok {
		return engineLabel(eng.Name(), info)
	}
	if e := r.recorded().Engine; e != "" {
		return e
	}
	return "none"
}

// engineLabel names the engine, how it stores images and what builds them, e.g. "docker
// (containerd image store, BuildKit)".
func engineLabel(name string, info engine.Info) string {
	var about []string
	switch {
	case info.IDsAreManifests():
		about = append(about, "containerd image store")
	case info.Store != "":
		about = append(about, info.Store)
	}
	switch info.Builder {
	case engine.BuilderBuildKit:
		about = append(about, "BuildKit")
	case engine.BuilderLegacy:
		about = append(about, "legacy builder")
	}
	if len(about) == 0 {
		return name
	}
	return name + " (" + strings.Join(about, ", ") + ")"
}

// removeImages deletes the run's images that are still in the engine: a run that stopped before
// prune would otherwise leave them behind.
func (r *Run) removeImages(ctx context.Context, rec state.Suite, log func(string, ...any)) {
	eng, err := r.engine(ctx)
	if err != nil {
		log("images of run %s not removed: %v", rec.RunID, err)
		return
	}
	var ids []string
	for _, img := range rec.Images {
		if id, found, err := eng.ImageID(ctx, img.Ref); err == nil && found && id == img.EngineID {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return
	}
	if err := eng.Remove(ctx, ids); err != nil {
		log("could not remove the images of run %s: %v", rec.RunID, err)
		return
	}
	log("removed %d images of run %s from %s", len(ids), rec.RunID, eng.Name())
}
