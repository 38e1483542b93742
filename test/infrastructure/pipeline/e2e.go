package pipeline

import (
	"errors"
	"path/filepath"

	"github.com/kindling-dev/kindling/test/infrastructure/coverage"
	"github.com/kindling-dev/kindling/test/infrastructure/deploy"

	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

// TestCounts counts the e2e suite's top-level and sub tests by outcome.
type TestCounts struct{ Passed, Failed, Skipped int }

func (c TestCounts) String() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", c.Passed, c.Failed, c.Skipped)
}

// Test runs the suite's e2e tests (build tag e2e) against the deployed cluster.
func (r *Run) Test(ctx context.Context) error {
	d, err := need(r.deployed, "deploy", "test")
	if err != nil {
		return err
	}
	return r.timed(ctx, "test", "TESTED", func() error {
		counts, err := RunE2E(ctx, r.cfg, d.Loaded.Cluster.Kubeconfig, r.out)
		r.mu.Lock()
		r.tests = &counts
		r.mu.Unlock()
		r.logf("test", "%s", counts)
		if r.cfg.Coverage && ctx.Err() == nil {
			err = errors.Join(err, r.collectCoverage(ctx, d.Loaded.Cluster.Kubeconfig))
		}
		return err
	})
}

// collectCoverage stops the suite's workloads, so that they write their counters, and merges them.
func (r *Run) collectCoverage(ctx context.Context, kubeconfig string) error {
	clients, err := deploy.NewClients(kubeconfig)
	if err != nil {
		return err
	}
	if err := coverage.Stop(ctx, clients.Kube, r.cfg.Suite.Namespace, 2*time.Minute); err != nil {
		return err
	}
	out := filepath.Join(r.cfg.RunDir, "coverage")
	results, err := coverage.Collect(ctx, r.cfg.Root, r.coverageDir(), r.cfg.Suite.ServiceNames(), out)
	r.mu.Lock()
	r.coverage = results
	r.mu.Unlock()
	if err != nil {
		return err
	}
	r.logf("test", "coverage: %s; profiles in %s", coverageLine(results), out)
	var missing []string
	for _, res := range results {
		if res.Percent < 0 {
			missing = append(missing, res.Service)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("E2E_COVERAGE=true, but %s wrote no coverage counters to %s: is the image built with GOFLAGS=-cover (its Dockerfile needs ARG GOFLAGS), does the binary exit from main on SIGTERM, and was the cluster created with the coverage mount (not reused)?",
			strings.Join(missing, ", "), r.coverageDir())
	}
	return nil
}

func coverageLine(results []coverage.Result) string {
	var parts []string
	for _, res := range results {
		parts = append(parts, res.String())
	}
	return strings.Join(parts, ", ")
}

// RunE2E runs `go test -tags e2e` on the suite's e2e package with KUBECONFIG set, streaming its
// output to out and counting the results.
func RunE2E(ctx context.Context, cfg Config, kubeconfig string, out io.Writer) (TestCounts, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return TestCounts{}, fmt.Errorf("the go command is needed to run the e2e suite: %w", err)
	}
	cmd := exec.CommandContext(ctx, goBin, "test", "-tags", "e2e", "-count=1", "-v",
		"-timeout", cfg.TestTimeout.String(), cfg.Suite.E2E)
	cmd.Dir = cfg.Root
	cmd.Env = append(append(os.Environ(), "KUBECONFIG="+kubeconfig), cfg.Suite.E2EEnv()...)
	// go test runs the test binary as a child: cancel the whole process group, so Ctrl-C stops
	// the tests too, and don't wait forever for output from a child that ignores it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
	cmd.WaitDelay = 10 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return TestCounts{}, err
	}
	done := make(chan TestCounts)
	go func() { done <- countTests(io.TeeReader(pr, out)) }()
	err = cmd.Wait()
	pw.Close()
	counts := <-done
	if err != nil {
		return counts, fmt.Errorf("e2e suite %s failed (%s): %w", cfg.Suite.E2E, counts, err)
	}
	if counts.Passed == 0 {
		return counts, fmt.Errorf("e2e suite %s ran no test", cfg.Suite.E2E)
	}
	return counts, nil
}

// countTests counts the tests that ran, reading go test -v output: a test with subtests counts
// as its subtests, not once more itself (unless it failed on its own while they passed).
func countTests(r io.Reader) TestCounts {
	outcome := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[0] == "---" && strings.HasSuffix(fields[1], ":") {
			outcome[fields[2]] = strings.TrimSuffix(fields[1], ":")
		}
	}
	io.Copy(io.Discard, r)
	var c TestCounts
	for name, result := range outcome {
		if sub := subtests(outcome, name); len(sub) > 0 && (result != "FAIL" || slices.Contains(sub, "FAIL")) {
			continue
		}
		switch result {
		case "PASS":
			c.Passed++
		case "FAIL":
			c.Failed++
		case "SKIP":
			c.Skipped++
		}
	}
	return c
}

// subtests returns the outcomes of name's subtests.
func subtests(outcome map[string]string, name string) []string {
	var out []string
	for other, result := range outcome {
		if strings.HasPrefix(other, name+"/") {
			out = append(out, result)
		}
	}
	return out
}
