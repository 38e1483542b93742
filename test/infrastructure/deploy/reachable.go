package deploy

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// WaitReachable waits until every URL answers HTTP, with any status. A rollout is Available before
// kube-proxy routes the NodePort behind a Kind port mapping; until then a request through the
// mapping ends in EOF or a reset, and a test that starts at once fails on the route, not the code.
func WaitReachable(ctx context.Context, urls map[string]string, timeout time.Duration, log func(string, ...any)) error {
	if log == nil {
		log = func(string, ...any) {}
	}
	client := &http.Client{Timeout: 2 * time.Second}
	for _, name := range slices.Sorted(maps.Keys(urls)) {
		u := urls[name]
		start := time.Now()
		var last error
		err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				return false, err
			}
			resp, err := client.Do(req)
			if err != nil {
				last = err
				return false, nil
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return true, nil
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if last == nil {
				last = err
			}
			return fmt.Errorf("%s=%s did not answer within %s (%v): check that the Kind config maps this host port to the Service's nodePort", name, u, timeout, last)
		}
		log("%s=%s answers (after %s)", name, u, time.Since(start).Round(time.Millisecond))
	}
	return nil
}
