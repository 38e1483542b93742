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
// Mage's graph, and mg.F runs each (phase, suite) pair once per process.

func buildPhase(ctx context.Context, name string) error {
	return phase(name, func(r *pipeline.Run) error { return r.Build(ctx) })
}

func exportPhase(ctx context.Context, name string) error {
	mg.CtxDeps(ctx, mg.F(buildPhase, name))
	return phase(name, func(r *pipeline.Run) error { return r.Export(ctx) })
}

func prunePhase(ctx context.Context, name string) error {
	mg.CtxDeps(ctx, mg.F(exportPhase, name))
	return phase(name, func(r *pipeline.Run) error { return r.Prune(ctx) })
}

// The cluster comes after prune, to have the space prune freed.
func clusterPhase(ctx context.Context, name string) error {
	mg.CtxDeps(ctx, mg.F(prunePhase, name))
	return phase(name, func(r *pipeline.Run) error { return r.Cluster(ctx) })
}

func loadPhase(ctx context.Context, name string) error {
	mg.SerialCtxDeps(ctx, mg.F(exportPhase, name), mg.F(clusterPhase, name))
	return phase(name, func(r *pipeline.Run) error { return r.Load(ctx) })
}

func deployPhase(ctx context.Context, name string) error {
	mg.CtxDeps(ctx, mg.F(loadPhase, name))
	return phase(name, func(r *pipeline.Run) error { return r.Deploy(ctx) })
}

func testPhase(ctx context.Context, name string) error {
	mg.CtxDeps(ctx, mg.F(deployPhase, name))
	return phase(name, func(r *pipeline.Run) error { return r.Test(ctx) })
}

// e2e runs the whole flow and always finishes: logs exported on failure, cluster torn down
// (unless kept on failure), summary printed.
func e2e(ctx context.Context, name string) (err error) {
	r, err := runNamed(name)
	if err != nil {
		return err
	}
	work, cancel, err := pipeline.WithTeardownBudget(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			err = depFailure(p)
		}
		err = r.Finish(work, err)
	}()
	mg.CtxDeps(work, mg.F(testPhase, name))
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
	return phase(name, func(r *pipeline.Run) error { return r.Down(ctx) })
}

func phase(name string, fn func(*pipeline.Run) error) error {
	r, err := runNamed(name)
	if err != nil {
		return err
	}
	return fn(r)
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
