package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/budget"
	"github.com/kindling-dev/kindling/test/infrastructure/cluster"
	"github.com/kindling-dev/kindling/test/infrastructure/engine/enginetest"
	"github.com/kindling-dev/kindling/test/infrastructure/state"
)

// overlapRun is a run with E2E_OVERLAP=true whose cluster creates are counted stand-ins for kind.
func overlapRun(t *testing.T) (*Run, *bytes.Buffer, *atomic.Int32) {
	t.Helper()
	r, out := newTestRun(t, enginetest.Repo(t, "alpha"), &enginetest.Engine{})
	r.cfg.Overlap, r.cfg.ClusterName = true, "kindling-unit"
	r.exists = func(context.Context, string, string) (bool, error) { return false, nil }
	var creates atomic.Int32
	r.create = func(ctx context.Context, o cluster.Options) (cluster.Cluster, error) {
		creates.Add(1)
		time.Sleep(20 * time.Millisecond) // long enough for the build to record its images meanwhile
		return cluster.Cluster{Name: o.Name, Provider: o.Provider, Kubeconfig: o.KubeconfigPath}, nil
	}
	return r, out, &creates
}

func overlap(t *testing.T, r *Run, o Observed) Early {
	t.Helper()
	e, err := r.Overlap(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func buildFrom(t *testing.T, r *Run, o Observed) Built {
	t.Helper()
	b, err := r.Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The cluster created beside the build and the build's images both end up in the record, in
// whichever order the two finish, and the cluster phase takes the early cluster instead of
// creating another.
func TestOverlapCreatesTheClusterBesideTheBuild(t *testing.T) {
	orders := map[string]func(r *Run, o Observed) (Early, Built){
		"at once": func(r *Run, o Observed) (Early, Built) {
			var e Early
			var b Built
			var eerr, berr error
			var wg sync.WaitGroup
			wg.Go(func() { e, eerr = r.Overlap(context.Background(), o) })
			wg.Go(func() { b, berr = r.Build(context.Background(), o) })
			wg.Wait()
			if eerr != nil || berr != nil {
				t.Fatalf("overlap: %v, build: %v", eerr, berr)
			}
			return e, b
		},
		"cluster first": func(r *Run, o Observed) (Early, Built) {
			e := overlap(t, r, o)
			return e, buildFrom(t, r, o)
		},
		"build first": func(r *Run, o Observed) (Early, Built) {
			b := buildFrom(t, r, o)
			return overlap(t, r, o), b
		},
	}
	for name, run := range orders {
		t.Run(name, func(t *testing.T) {
			r, out, creates := overlapRun(t)
			r.cfg.DiskBudget = budget.Budget{Off: true}
			e, b := run(r, observe(t, r))
			if e.Cluster == nil || e.Cluster.Name != "kindling-unit" {
				t.Fatalf("early cluster %+v, want kindling-unit", e.Cluster)
			}
			st, err := state.Read(statePath(r.cfg))
			if err != nil {
				t.Fatal(err)
			}
			if st.Cluster == nil || st.Cluster.Name != "kindling-unit" || len(st.Images) != 1 || st.RunID != b.RunID {
				t.Fatalf("record: cluster %+v, images %+v, run %q (build's %q): want both phases' products", st.Cluster, st.Images, st.RunID, b.RunID)
			}
			// The fake engine writes no archives: what export and prune would hand on.
			p := Pruned{Exported: Exported{Built: b, Images: b.Images, Archive: state.Archive{Path: "/verified.tar"}}}
			c, err := r.Cluster(context.Background(), p, e)
			if err != nil {
				t.Fatal(err)
			}
			if c.Name != "kindling-unit" || len(c.Pruned.Exported.Images) != 1 {
				t.Errorf("cluster product %+v, want the early cluster with what prune left", c)
			}
			if n := creates.Load(); n != 1 {
				t.Errorf("%d cluster creates, want 1", n)
			}
			if !strings.Contains(out.String(), "creating the cluster while the images build") {
				t.Errorf("the log does not say the cluster is created beside the build:\n%s", out)
			}
		})
	}
}

// When the build's and the nodes' predicted needs do not fit the budget together, nothing is
// created beside the build: the cluster phase creates it after prune, as without E2E_OVERLAP.
func TestOverlapWaitsForPruneWhenBothDoNotFit(t *testing.T) {
	r, out, creates := overlapRun(t)
	const gib = 1 << 30
	if err := r.ledger.Learn(func(f *budget.Facts) { *f = budget.Facts{BuildBytes: 1.5 * gib, NodeBytes: 1 * gib} }); err != nil {
		t.Fatal(err)
	}
	r.cfg.DiskBudget = budget.Budget{Bytes: 2 * gib} // either alone fits, both do not
	e, err := r.Overlap(context.Background(), observe(t, r))
	if err != nil {
		t.Fatal(err)
	}
	if e.Cluster != nil || creates.Load() != 0 {
		t.Fatalf("a cluster was created beside the build although both do not fit: %+v", e.Cluster)
	}
	if st, _ := state.Read(statePath(r.cfg)); st.Cluster != nil {
		t.Errorf("a cluster was recorded: %+v", st.Cluster)
	}
	for _, want := range []string{"the cluster comes after prune", "the build and the nodes together would not fit E2E_DISK_BUDGET=2GiB", "needs 2.5GiB"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
}

// Without E2E_OVERLAP the overlap branch does nothing at all.
func TestOverlapOffDoesNothing(t *testing.T) {
	r, out, creates := overlapRun(t)
	r.cfg.Overlap = false
	o := observe(t, r)
	out.Reset()
	e, err := r.Overlap(context.Background(), o)
	if err != nil || e.Cluster != nil || creates.Load() != 0 || out.Len() > 0 {
		t.Fatalf("early %+v, err %v, %d creates, log %q: want nothing", e.Cluster, err, creates.Load(), out)
	}
}

// On GitHub Actions the cluster created beside the build opens no group: the build's is open.
func TestOverlapOpensNoGroupBesideTheBuild(t *testing.T) {
	t.Setenv("GITHUB_ACTIONS", "true")
	r, out, _ := overlapRun(t)
	r.cfg.DiskBudget = budget.Budget{Off: true}
	if _, err := r.Overlap(context.Background(), observe(t, r)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "::group::") {
		t.Errorf("the overlapped create opened a group:\n%s", out)
	}
	if _, err := r.Build(context.Background(), observe(t, r)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "::group::build") {
		t.Errorf("the build opened no group:\n%s", out)
	}
}

func TestClusterStopsOnATakenHostPort(t *testing.T) {
	r, _, creates := overlapRun(t)
	l, err := net.Listen("tcp", ":0") // the other daemon's cluster holding the suite's port
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := int32(l.Addr().(*net.TCPAddr).Port)
	r.cfg.Suite.HostPorts = map[string]int32{"datastorage": port}
	_, err = r.createCluster(context.Background(), Observed{}, false)
	for _, want := range []string{fmt.Sprintf("host port %d (datastorage)", port), "is taken, nothing was created", "kindling-unit-control-plane"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	if creates.Load() != 0 || r.recorded().Cluster != nil {
		t.Errorf("a cluster was created or recorded although its host port is taken")
	}
}
