package deploy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// diagnosticsTimeout bounds collecting diagnostics after a rollout timeout.
const diagnosticsTimeout = 30 * time.Second

// readiness is an object's status as kstatus computes it for any kind: Current (reconciled and
// ready), InProgress, Failed, ... with the reason in Message.
type readiness struct {
	status  status.Status
	message string
	err     error // reading the object or computing its status
}

func readinessOf(obj *unstructured.Unstructured, err error) readiness {
	if err != nil {
		return readiness{err: err}
	}
	res, err := status.Compute(obj)
	if err != nil {
		return readiness{err: err}
	}
	return readiness{status: res.Status, message: res.Message}
}

func (r readiness) ready() bool  { return r.err == nil && r.status == status.CurrentStatus }
func (r readiness) failed() bool { return r.err == nil && r.status == status.FailedStatus }

func (r readiness) String() string {
	if r.err != nil {
		return r.err.Error()
	}
	return fmt.Sprintf("%s: %s", r.status, r.message)
}

// waitRollouts waits, in parallel, until every applied object is ready as kstatus defines it
// (Deployments rolled out, StatefulSets and DaemonSets updated, Jobs complete, PVCs bound, ...;
// objects without a status are ready at once), within RolloutTimeout. A Failed object ends its
// wait early. Objects that did not get ready are named in the error, with diagnostics (pods,
// events, logs) for Deployments.
func (a *applier) waitRollouts(ctx context.Context, objs []mapped) ([]Rollout, error) {
	if len(objs) == 0 {
		return nil, nil
	}
	timeout := a.opts.RolloutTimeout
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	done := make([]*Rollout, len(objs))
	last := make([]readiness, len(objs))
	var wg sync.WaitGroup
	for i, d := range objs {
		wg.Go(func() {
			name := d.Object.GetKind() + " " + objectName(d.Object.GetNamespace(), d.Object.GetName())
			var prev string
			_ = wait.PollUntilContextCancel(wctx, pollInterval, true, func(ctx context.Context) (bool, error) {
				obj, err := a.resource(d).Get(ctx, d.Object.GetName(), metav1.GetOptions{})
				st := readinessOf(obj, err)
				if ctx.Err() == nil || err == nil {
					last[i] = st
				}
				if st.ready() {
					done[i] = &Rollout{Name: name, Duration: time.Since(start)}
					if _, workload := podSpecPath[d.Object.GetKind()]; workload {
						a.opts.Log("%s ready after %s", name, done[i].Duration.Round(time.Millisecond))
					}
					return true, nil
				}
				if s := st.String(); s != prev && err == nil {
					a.opts.Log("waiting for %s: %s", name, s)
					prev = s
				}
				return st.failed(), nil
			})
		})
	}
	wg.Wait()
	deps := objs

	var rollouts []Rollout
	var notReady []int
	for i, d := range deps {
		_, workload := podSpecPath[d.Object.GetKind()]
		if done[i] != nil && workload {
			rollouts = append(rollouts, *done[i])
		} else if done[i] == nil {
			notReady = append(notReady, i)
		}
	}
	if len(notReady) == 0 {
		return rollouts, nil
	}
	if err := ctx.Err(); err != nil {
		return rollouts, fmt.Errorf("deploy: waiting for rollouts: %w", err)
	}

	var names []string
	for _, i := range notReady {
		names = append(names, deps[i].Object.GetKind()+" "+objectName(deps[i].Object.GetNamespace(), deps[i].Object.GetName()))
	}
	w := a.opts.Diagnostics
	var buf strings.Builder
	if w == nil {
		w = &buf
	}
	dctx, dcancel := context.WithTimeout(ctx, diagnosticsTimeout)
	defer dcancel()
	fmt.Fprintf(w, "=== %d object(s) not ready after %s: %s\n", len(notReady), timeout, strings.Join(names, ", "))
	for j, i := range notReady {
		d := deps[i]
		fmt.Fprintf(w, "\nlast status of %s (%s): %s\n", names[j], d.File, last[i])
		if d.Object.GetKind() != "Deployment" {
			continue
		}
		if a.c.Kube == nil {
			fmt.Fprintln(w, "  (no clientset given: pods, events and logs not collected)")
			continue
		}
		if err := Diagnose(dctx, a.c.Kube, w, d.Object.GetNamespace(), d.Object.GetName()); err != nil {
			fmt.Fprintf(w, "  diagnostics incomplete: %v\n", err)
		}
	}
	msg := fmt.Sprintf("deploy: object(s) not ready within %s: %s", timeout, strings.Join(names, ", "))
	if a.opts.Diagnostics == nil {
		return rollouts, fmt.Errorf("%s\n%s", msg, buf.String())
	}
	return rollouts, fmt.Errorf("%s; see the diagnostics written for them (pod states, events, logs)", msg)
}
