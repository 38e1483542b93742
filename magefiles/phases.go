//go:build mage

package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/magefile/mage/mg"

	"github.com/kindling-dev/kindling/test/infrastructure/pipeline"
)

// The flow, once, for any suite: each phase depends on the one before it, so the order lives in
// Mage's graph, and mg.F runs each (phase, suite) pair once per process. Each phase takes the
// product the one before it left in the suite's flow and leaves its own there: values flow one way.

// flow holds the products of one suite's phases in this process.
type flow struct {
	run *pipeline.Run
	// abort ends the work of e2e when a phase failed: with E2E_OVERLAP two branches run at once,
	// and a failed build should not wait for a cluster nobody will use (nor the other way).
	abort    context.CancelCauseFunc
	observed pipeline.Observed
	early    pipeline.Early
	built    pipeline.Built
	exported pipeline.Exported
	pruned   pipeline.Pruned
	cluster  pipeline.Cluster
	loaded   pipeline.Loaded
	deployed pipeline.Deployed
	tested   pipeline.Tested
}

// Resuming from the state file is this one step: what the record says, checked against reality.
func observePhase(ctx context.Context, name string) error {
	return step(name, func(f *flow) (err error) { f.observed, err = f.run.Observe(ctx); return err })
}

func buildPhase(ctx context.Context, name string) error {
	mg.CtxDeps(ctx, mg.F(observePhase, name))
	return step(name, func(f *flow) (err error) { f.built, err = f.run.Build(ctx, f.observed); return err })
}

func exportPhase(ctx context.Context, name string) error {
	mg.CtxDeps(ctx, mg.F(buildPhase, name))
	return step(name, func(f *flow) (err error) { f.exported, err = f.run.Export(ctx, f.built); return err })
}

func prunePhase(ctx context.Context, name string) error {
	mg.CtxDeps(ctx, mg.F(exportPhase, name))
	return step(name, func(f *flow) (err error) { f.pruned, err = f.run.Prune(ctx, f.exported); return err })
}

// With E2E_OVERLAP=true (and room in the disk budget) the cluster is created while the images
// build: this branch starts from the same observation as the build and runs beside it.
// Otherwise it does nothing.
func overlapPhase(ctx context.Context, name string) error {
	mg.CtxDeps(ctx, mg.F(observePhase, name))
	return step(name, func(f *flow) (err error) { f.early, err = f.run.Overlap(ctx, f.observed); return err })
}

// The cluster comes after prune, to have the space prune freed — or it was created beside the
// build, and now receives what prune left.
func clusterPhase(ctx context.Context, name string) error {
	mg.CtxDeps(ctx, mg.F(prunePhase, name), mg.F(overlapPhase, name))
	return step(name, func(f *flow) (err error) { f.cluster, err = f.run.Cluster(ctx, f.pruned, f.early); return err })
}

func loadPhase(ctx context.Context, name string) error {
	mg.CtxDeps(ctx, mg.F(clusterPhase, name))
	return step(name, func(f *flow) (err error) { f.loaded, err = f.run.Load(ctx, f.cluster); return err })
}

func deployPhase(ctx context.Context, name string) error {
	mg.CtxDeps(ctx, mg.F(loadPhase, name))
	return step(name, func(f *flow) (err error) { f.deployed, err = f.run.Deploy(ctx, f.loaded); return err })
}

func testPhase(ctx context.Context, name string) error {
	mg.CtxDeps(ctx, mg.F(deployPhase, name))
	return step(name, func(f *flow) (err error) { f.tested, err = f.run.Test(ctx, f.deployed); return err })
}

// e2e runs the whole flow and always finishes: logs exported on failure, cluster torn down
// (unless kept on failure), summary printed.
func e2e(ctx context.Context, name string) (err error) {
	s, err := named(name)
	if err != nil {
		return err
	}
	f, err := flowOf(s[0])
	if err != nil {
		return err
	}
	r := f.run
	work, cancel, err := pipeline.WithTeardownBudget(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	phases, abort := context.WithCancelCause(work)
	defer abort(nil)
	f.abort = abort
	defer func() {
		if p := recover(); p != nil {
			err = depFailure(p)
		}
		err = r.Finish(work, err)
	}()
	mg.CtxDeps(phases, mg.F(testPhase, name))
	return nil
}

// target runs a phase as a top-level target — the phases before it run first, through the
// graph — and ends with the run's summary: phases, durations, disk checkpoints and peaks.
func target(ctx context.Context, name string, phase func(context.Context, string) error) (err error) {
	r, err := runNamed(name)
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			err = depFailure(p)
		}
		r.Summary()
	}()
	return phase(ctx, name)
}

func down(ctx context.Context, name string) error {
	r, err := runNamed(name)
	if err != nil {
		return err
	}
	return r.Down(ctx)
}

// step runs one phase of suite name's flow. Mage's graph ran the phases before it, which left
// their products in the flow; a failed one stopped the graph before this.
func step(name string, fn func(*flow) error) error {
	s, err := named(name)
	if err != nil {
		return err
	}
	f, err := flowOf(s[0])
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		if f.abort != nil {
			f.abort(err)
		}
		return err
	}
	return nil
}

func runNamed(name string) (*pipeline.Run, error) {
	s, err := named(name)
	if err != nil {
		return nil, err
	}
	return run(s[0])
}

// depFailure turns the panic mg.CtxDeps raises for a failed dependency back into an error.
func depFailure(p any) error {
	if err, ok := p.(error); ok {
		return err
	}
	return errors.New(fmt.Sprint(p))
}
