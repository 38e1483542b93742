package pipeline

import (
	"context"
	"fmt"
	"strings"

	"github.com/kindling-dev/kindling/test/infrastructure/budget"
	"github.com/kindling-dev/kindling/test/infrastructure/state"
)

// Early is the cluster created while the images build (E2E_OVERLAP=true), or nil: the cluster
// phase then creates it after prune, as the strict order has it.
type Early struct {
	Cluster *state.Cluster
}

// Overlap creates the suite's cluster beside the build when E2E_OVERLAP=true and the build's and
// the nodes' predicted needs fit the disk budget together: they are written at the same time, on
// the engine's filesystem. Otherwise it writes nothing and says why.
//
// It takes what Observe found, like the build: the two start from the same record.
func (r *Run) Overlap(ctx context.Context, o Observed) (Early, error) {
	if !r.cfg.Overlap {
		return Early{}, nil
	}
	if err := r.begin(ctx); err != nil {
		return Early{}, err
	}
	log := r.logger("cluster")
	needs, known := r.overlapNeeds()
	if !known {
		log("E2E_OVERLAP: the build's need is unknown until the suite was built once; checking the nodes' need alone")
	}
	if !r.cfg.DiskBudget.Off {
		short, err := r.checker().Shortfalls(ctx, "cluster", needs)
		if err == nil && len(short) > 0 {
			err = fmt.Errorf("the build and the nodes together would not fit %s=%s: %s", budget.Env, r.cfg.DiskBudget, strings.Join(short, "; "))
		}
		if err != nil {
			log("E2E_OVERLAP: %v; the cluster comes after prune", err)
			return Early{}, nil
		}
		r.logFits("cluster", needs)
	}
	log("E2E_OVERLAP: creating the cluster while the images build")
	var e Early
	err := r.timed(context.WithValue(ctx, besideKey{}, true), "cluster", "CLUSTER_CREATED", func() error {
		c, err := r.createCluster(ctx, o, true)
		if err != nil {
			return err
		}
		e.Cluster = &c
		return nil
	})
	return e, err
}

// overlapNeeds are the build's and the cluster's needs at once, and whether the build's is known.
func (r *Run) overlapNeeds() ([]budget.Need, bool) {
	f, p := r.facts(), r.budgetPlaces()
	build, note := budget.Predict("build", f, p)
	nodes, _ := budget.Predict("cluster", f, p)
	return append(build, nodes...), note == ""
}
