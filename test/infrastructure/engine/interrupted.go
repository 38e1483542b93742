package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// A podman build that is killed leaves its working containers in storage and the RUN step it was
// running alive, outside podman, still writing (containers/podman#14523); no prune removes either.
// Docker's daemon cancels a build when its client goes.

// BuildContainers lists buildah's working containers: podman lists them with --external, in the
// state "storage".
func (e *podmanCLI) BuildContainers(ctx context.Context) ([]string, error) {
	out, err := e.output(ctx, "ps", "--all", "--external", "--format", "json")
	if err != nil {
		return nil, err
	}
	var list []struct {
		ID    string `json:"Id"`
		State string `json:"State"`
	}
	if err := decodeJSON(out, &list); err != nil {
		return nil, fmt.Errorf("podman ps --external: parse output: %w", err)
	}
	var ids []string
	for _, c := range list {
		if c.State == "storage" {
			ids = append(ids, c.ID)
		}
	}
	return ids, nil
}

// StopBuildContainers kills the RUN steps running in the working containers ids, through the OCI
// runtime that runs them (buildah gives a step the working container's short ID as hostname), and
// removes the containers.
func (e *podmanCLI) StopBuildContainers(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	var errs []error
	if info, err := e.cachedInfo(ctx); err == nil && !info.Remote && info.OCIRuntime != "" {
		errs = append(errs, e.killRunSteps(ctx, info.OCIRuntime, ids))
	}
	errs = append(errs, e.run(ctx, nil, nil, append([]string{"rm", "--force"}, ids...)...))
	return errors.Join(errs...)
}

func (e *podmanCLI) killRunSteps(ctx context.Context, runtime string, ids []string) error {
	var out strings.Builder
	if err := e.runner.Run(ctx, Cmd{Name: runtime, Args: []string{"list", "--format", "json"}, Stdout: &out}); err != nil {
		return fmt.Errorf("%s list: %w", runtime, err)
	}
	var steps []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Bundle string `json:"bundle"`
	}
	if err := decodeJSON([]byte(out.String()), &steps); err != nil {
		return fmt.Errorf("%s list: parse output: %w", runtime, err)
	}
	var errs []error
	for _, s := range steps {
		if !strings.HasPrefix(s.ID, "buildah-") || s.Bundle == "" {
			continue
		}
		if !slices.ContainsFunc(ids, func(id string) bool { return ranIn(s.Bundle, id) }) {
			continue
		}
		if err := e.runner.Run(ctx, Cmd{Name: runtime, Args: []string{"delete", "--force", s.ID}}); err != nil {
			errs = append(errs, fmt.Errorf("%s delete --force %s: %w", runtime, s.ID, err))
		}
	}
	return errors.Join(errs...)
}

// ranIn reports whether the runtime bundle dir is a RUN step of the working container id.
func ranIn(bundle, id string) bool {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return false
	}
	var spec struct {
		Hostname string `json:"hostname"`
	}
	if json.Unmarshal(data, &spec) != nil || len(spec.Hostname) < 12 {
		return false
	}
	return strings.HasPrefix(id, spec.Hostname)
}
