package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/coverage"
	"github.com/kindling-dev/kindling/test/infrastructure/deploy"
	"github.com/kindling-dev/kindling/test/infrastructure/disk"
	"github.com/kindling-dev/kindling/test/infrastructure/e2etest"
	"github.com/kindling-dev/kindling/test/infrastructure/summary"
)

// Tested is the test phase's product: the tests' counts and, with E2E_COVERAGE, the services'
// coverage.
type Tested struct {
	Counts   e2etest.Counts
	Coverage []coverage.Result
}

// Test runs the suite's e2e tests (build tag e2e) against the deployed cluster.
func (r *Run) Test(ctx context.Context, d Deployed) (Tested, error) {
	var t Tested
	err := r.timed(ctx, "test", "TESTED", func() error {
		junit := filepath.Join(r.cfg.RunDir, "junit.xml")
		if compiling := r.tests.started(); compiling != nil {
			if took, err := compiling.Wait(); err == nil {
				r.logf("test", "the tests were compiled while the cluster was created (%s): go test only links them", took.Round(100*time.Millisecond))
			}
		}
		counts, err := e2etest.Run(ctx, e2etest.Options{
			Dir:     r.cfg.Root,
			Package: r.cfg.Suite.E2E,
			Timeout: r.cfg.TestTimeout,
			Env:     append(append([]string{"KUBECONFIG=" + d.Loaded.Cluster.Kubeconfig}, r.goTempEnv(ctx)...), r.cfg.Suite.E2EEnv()...),
			JUnit:   junit,
			Out:     r.out,
		})
		t.Counts = counts
		r.logf("test", "%s; JUnit report %s", counts, junit)
		if r.cfg.Coverage && ctx.Err() == nil {
			var cerr error
			t.Coverage, cerr = r.collectCoverage(ctx, d.Loaded.Cluster.Kubeconfig)
			err = errors.Join(err, cerr)
		}
		r.report.tested(t)
		return err
	})
	return t, err
}

// compileTests compiles the suite's e2e tests in the background, into Go's build cache, while the
// cluster is created (that phase mostly waits on kind), so that test starts running tests at once.
func (r *Run) compileTests(ctx context.Context) {
	if r.cfg.Suite.E2E == "" {
		return
	}
	r.tests.start(func() *e2etest.Compilation {
		return e2etest.Compile(context.WithoutCancel(ctx), e2etest.Options{Dir: r.cfg.Root, Package: r.cfg.Suite.E2E, Env: r.goTempEnv(ctx)}, r.cfg.RunDir)
	})
}

// goTempEnv keeps the compilation of the e2e test binary (a link output of about 100 MiB) off a
// temp dir in memory, such as the tmpfs /tmp of ubuntu-latest: GOTMPDIR moves it to the run dir,
// unless the user set GOTMPDIR.
func (r *Run) goTempEnv(ctx context.Context) []string {
	if os.Getenv("GOTMPDIR") != "" {
		return nil
	}
	snap, err := r.measure(ctx, []disk.Place{{Name: "temp dir", Path: os.TempDir()}})
	if err != nil || len(snap.Filesystems) != 1 || !disk.InMemory(snap.Filesystems[0].Fstype) {
		return nil
	}
	dir := filepath.Join(r.cfg.RunDir, "go-tmp")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil
	}
	r.logf("test", "the temp dir %s is a %s in memory: compiling the tests in %s (GOTMPDIR)", os.TempDir(), snap.Filesystems[0].Fstype, dir)
	return []string{"GOTMPDIR=" + dir}
}

// collectCoverage stops the suite's workloads, so that they write their counters, and merges them.
func (r *Run) collectCoverage(ctx context.Context, kubeconfig string) ([]coverage.Result, error) {
	clients, err := deploy.NewClients(kubeconfig)
	if err != nil {
		return nil, err
	}
	if err := coverage.Stop(ctx, clients.Kube, r.cfg.Suite.Namespace, 2*time.Minute); err != nil {
		return nil, err
	}
	out := filepath.Join(r.cfg.RunDir, "coverage")
	results, err := coverage.Collect(ctx, r.cfg.Root, r.coverageDir(), r.cfg.Suite.ServiceNames(), out)
	if err != nil {
		return results, err
	}
	r.logf("test", "coverage: %s; profiles in %s", summary.CoverageLine(results), out)
	var missing []string
	for _, res := range results {
		if res.Percent < 0 {
			missing = append(missing, res.Service)
		}
	}
	if len(missing) > 0 {
		return results, fmt.Errorf("E2E_COVERAGE=true, but %s wrote no coverage counters to %s: is the image built with GOFLAGS=-cover (its Dockerfile needs ARG GOFLAGS), does the binary exit from main on SIGTERM, and was the cluster created with the coverage mount (not reused)?",
			strings.Join(missing, ", "), r.coverageDir())
	}
	return results, nil
}
