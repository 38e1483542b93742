package deploy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// diagnosticsTimeout bounds collecting diagnostics after a rollout timeout.
const diagnosticsTimeout = 30 * time.Second

type rolloutState struct {
	generation, observed                  int64
	replicas, current, updated, available int64
	err                                   error // last error reading the Deployment
}

func readRollout(obj *unstructured.Unstructured) rolloutState {
	s := rolloutState{generation: obj.GetGeneration(), replicas: 1}
	if r, found, _ := unstructured.NestedInt64(obj.Object, "spec", "replicas"); found {
		s.replicas = r
	}
	s.observed, _, _ = unstructured.NestedInt64(obj.Object, "status", "observedGeneration")
	s.current, _, _ = unstructured.NestedInt64(obj.Object, "status", "replicas")
	s.updated, _, _ = unstructured.NestedInt64(obj.Object, "status", "updatedReplicas")
	s.available, _, _ = unstructured.NestedInt64(obj.Object, "status", "availableReplicas")
	return s
}

// ready: the controller saw the latest spec, every replica runs it and is available, no old ones remain.
func (s rolloutState) ready() bool {
	return s.err == nil && s.observed >= s.generation && s.updated == s.replicas &&
		s.available == s.replicas && s.current == s.replicas
}

func (s rolloutState) String() string {
	if s.err != nil {
		return s.err.Error()
	}
	str := fmt.Sprintf("%d/%d updated, %d/%d available", s.updated, s.replicas, s.available, s.replicas)
	if s.observed < s.generation {
		str += fmt.Sprintf(", generation %d not yet observed (observed %d)", s.generation, s.observed)
	}
	if s.current > s.replicas {
		str += fmt.Sprintf(", %d old replica(s) terminating", s.current-s.updated)
	}
	return str
}

// waitRollouts waits, in parallel, for every Deployment to become ready within RolloutTimeout. On
// timeout it writes diagnostics for the ones that did not and returns an error naming them.
func (a *applier) waitRollouts(ctx context.Context, deps []mapped) ([]Rollout, error) {
	if len(deps) == 0 {
		return nil, nil
	}
	timeout := a.opts.RolloutTimeout
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	done := make([]*Rollout, len(deps))
	last := make([]rolloutState, len(deps))
	var wg sync.WaitGroup
	for i, d := range deps {
		wg.Go(func() {
			name := objectName(d.Object.GetNamespace(), d.Object.GetName())
			var prev string
			for {
				obj, err := a.resource(d).Get(wctx, d.Object.GetName(), metav1.GetOptions{})
				st := rolloutState{err: err}
				if err == nil {
					st = readRollout(obj)
				}
				if wctx.Err() == nil || err == nil {
					last[i] = st
				}
				if st.ready() {
					done[i] = &Rollout{Name: name, Duration: time.Since(start)}
					a.opts.Log("deployment %s ready after %s", name, done[i].Duration.Round(time.Millisecond))
					return
				}
				if s := st.String(); s != prev && err == nil {
					a.opts.Log("waiting for deployment %s: %s", name, s)
					prev = s
				}
				if sleep(wctx, pollInterval) != nil {
					return
				}
			}
		})
	}
	wg.Wait()

	var rollouts []Rollout
	var notReady []int
	for i := range deps {
		if done[i] != nil {
			rollouts = append(rollouts, *done[i])
		} else {
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
		names = append(names, objectName(deps[i].Object.GetNamespace(), deps[i].Object.GetName()))
	}
	w := a.opts.Diagnostics
	var buf strings.Builder
	if w == nil {
		w = &buf
	}
	dctx, dcancel := context.WithTimeout(ctx, diagnosticsTimeout)
	defer dcancel()
	fmt.Fprintf(w, "=== %d deployment(s) not ready after %s: %s\n", len(notReady), timeout, strings.Join(names, ", "))
	for j, i := range notReady {
		d := deps[i]
		fmt.Fprintf(w, "\nlast rollout status of %s (%s): %s\n", names[j], d.File, last[i])
		if a.c.Kube == nil {
			fmt.Fprintln(w, "  (no clientset given: pods, events and logs not collected)")
			continue
		}
		if err := Diagnose(dctx, a.c.Kube, w, d.Object.GetNamespace(), d.Object.GetName()); err != nil {
			fmt.Fprintf(w, "  diagnostics incomplete: %v\n", err)
		}
	}
	msg := fmt.Sprintf("deploy: deployment(s) not ready within %s: %s", timeout, strings.Join(names, ", "))
	if a.opts.Diagnostics == nil {
		return rollouts, fmt.Errorf("%s\n%s", msg, buf.String())
	}
	return rollouts, fmt.Errorf("%s; see the diagnostics written for them (pod states, events, logs)", msg)
}
