// Package coverage collects the coverage of services built with -cover while they run in a Kind
// cluster, the way the original system measures its e2e coverage: each service writes its counters
// to GOCOVERDIR, a directory on the host that reaches the pods through a Kind extra mount and a
// hostPath volume; after the tests the services are stopped (a Go binary writes its counters when
// it exits), and `go tool covdata` merges what they wrote.
package coverage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// NodeDir is where the host directory appears in every node, and the hostPath the pods mount.
const NodeDir = "/var/kindling/coverage"

// Prepare makes hostDir/<service> for each service, writable by the services' non-root users.
func Prepare(hostDir string, services []string) error {
	for _, svc := range services {
		dir := filepath.Join(hostDir, svc)
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return fmt.Errorf("coverage directory: %w", err)
		}
		// Not subject to the umask: the pods run as another user than the one running kindling.
		if err := os.Chmod(dir, 0o777); err != nil {
			return fmt.Errorf("coverage directory: %w", err)
		}
	}
	return nil
}

// Stop scales every Deployment of namespace to zero and waits until its pods are gone: the
// services exit on SIGTERM and write their counters as they do.
func Stop(ctx context.Context, kube kubernetes.Interface, namespace string, timeout time.Duration) error {
	deployments, err := kube.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list deployments in %s: %w", namespace, err)
	}
	for _, d := range deployments.Items {
		scale, err := kube.AppsV1().Deployments(namespace).GetScale(ctx, d.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("scale deployment %s/%s: %w", namespace, d.Name, err)
		}
		scale.Spec.Replicas = 0
		if _, err := kube.AppsV1().Deployments(namespace).UpdateScale(ctx, d.Name, scale, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("scale deployment %s/%s to 0: %w", namespace, d.Name, err)
		}
	}
	err = wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		pods, err := kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		return len(pods.Items) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("the pods of %s did not stop within %s, so their coverage counters may be missing: %w", namespace, timeout, err)
	}
	return nil
}

// Result is one service's coverage.
type Result struct {
	Service string
	Percent float64 // of statements; -1 when the service wrote no counters
}

func (r Result) String() string {
	if r.Percent < 0 {
		return r.Service + " no data"
	}
	return fmt.Sprintf("%s %.1f%%", r.Service, r.Percent)
}

// Collect merges what the services wrote under hostDir/<service>: a text profile per service
// and one for all of them (coverage.txt) in outDir, and the percentage of statements per service
// (go tool cover -func's total). A service that wrote nothing gets -1, not an error. root is the
// module the services were built from: go tool cover reads their sources.
func Collect(ctx context.Context, root, hostDir string, services []string, outDir string) ([]Result, error) {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	var results []Result
	var withData []string
	for _, svc := range services {
		in := filepath.Join(hostDir, svc)
		if !hasCounters(in) {
			results = append(results, Result{Service: svc, Percent: -1})
			continue
		}
		profile := filepath.Join(outDir, svc+".txt")
		if _, err := goTool(ctx, root, "covdata", "textfmt", "-i="+in, "-o="+profile); err != nil {
			return results, fmt.Errorf("coverage of %s: %w", svc, err)
		}
		percent, err := total(ctx, root, profile)
		if err != nil {
			return results, fmt.Errorf("coverage of %s: %w", svc, err)
		}
		results = append(results, Result{Service: svc, Percent: percent})
		withData = append(withData, in)
	}
	if len(withData) > 0 {
		merged := filepath.Join(outDir, "merged")
		if err := os.MkdirAll(merged, 0o755); err != nil {
			return results, err
		}
		if _, err := goTool(ctx, root, "covdata", "merge", "-i="+strings.Join(withData, ","), "-o="+merged); err != nil {
			return results, fmt.Errorf("merge coverage: %w", err)
		}
		if _, err := goTool(ctx, root, "covdata", "textfmt", "-i="+merged, "-o="+filepath.Join(outDir, "coverage.txt")); err != nil {
			return results, fmt.Errorf("merge coverage: %w", err)
		}
	}
	return results, nil
}

// hasCounters reports whether dir holds a counter file (covcounters.*): a binary writes its
// meta-data when it starts, its counters when it exits.
func hasCounters(dir string) bool {
	matches, _ := filepath.Glob(filepath.Join(dir, "covcounters.*"))
	return len(matches) > 0
}

// total reads the "total:" line of go tool cover -func.
func total(ctx context.Context, root, profile string) (float64, error) {
	out, err := goTool(ctx, root, "cover", "-func="+profile)
	if err != nil {
		return 0, err
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	fields := strings.Fields(lines[len(lines)-1])
	if len(fields) == 0 || fields[0] != "total:" {
		return 0, fmt.Errorf("go tool cover -func %s printed no total", profile)
	}
	return strconv.ParseFloat(strings.TrimSuffix(fields[len(fields)-1], "%"), 64)
}

func goTool(ctx context.Context, root string, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", append([]string{"tool"}, args...)...)
	cmd.Dir = root
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("go tool %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
