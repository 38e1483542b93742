package engine

import (
	"context"
	"fmt"
	"strings"
)

// podmanCLI is podman: no daemon unless a remote service is configured, buildah as builder
// (intermediate images as its layer cache, cache mounts as directories), docker-archive saves.
type podmanCLI struct{ *cli }

func (e *podmanCLI) other() string { return Docker }

func (e *podmanCLI) startHow() string {
	return "start the podman service (systemctl start podman.socket, or podman machine start), or unset CONTAINER_HOST to use local podman"
}

// Ping asks for info: local podman has no server, and info also reaches a remote service.
func (e *podmanCLI) Ping(ctx context.Context) error {
	return e.ping(ctx, "info", "--format", "{{.Version.Version}}")
}

// Build runs podman build; a context of one binary keeps no intermediate image per instruction.
func (e *podmanCLI) Build(ctx context.Context, spec BuildSpec) error {
	var flags []string
	if spec.NoLayerCache {
		flags = append(flags, "--layers=false")
	}
	return e.build(ctx, spec, flags)
}

func (e *podmanCLI) Info(ctx context.Context) (Info, error) {
	out, err := e.output(ctx, "info", "--format", "json")
	if err != nil {
		return Info{}, e.infoError(err)
	}
	var raw struct {
		Host struct {
			ServiceIsRemote bool `json:"serviceIsRemote"`
			OCIRuntime      struct {
				Path string `json:"path"`
			} `json:"ociRuntime"`
		} `json:"host"`
		Store struct {
			GraphRoot   string `json:"graphRoot"`
			GraphDriver string `json:"graphDriverName"`
		} `json:"store"`
		Version struct {
			Version string `json:"Version"`
		} `json:"version"`
	}
	if err := decodeJSON(out, &raw); err != nil {
		return Info{}, fmt.Errorf("podman info: parse output: %w", err)
	}
	if raw.Store.GraphRoot == "" {
		return Info{}, fmt.Errorf("podman info printed no store.graphRoot; check `podman info`")
	}
	return Info{GraphRoot: raw.Store.GraphRoot, Store: raw.Store.GraphDriver, Storage: []string{raw.Store.GraphRoot},
		Builder: BuilderBuildah, Remote: raw.Host.ServiceIsRemote, Version: raw.Version.Version, CacheMountRoot: cacheMountRoot(raw.Version.Version),
		OCIRuntime: raw.Host.OCIRuntime.Path}, nil
}

// saveArgs: a docker-archive, several images in one when asked.
func (e *podmanCLI) saveArgs(ctx context.Context, multi bool) ([]string, error) {
	if multi {
		return []string{"save", "--quiet", "--format", "docker-archive", "--multi-image-archive"}, nil
	}
	return []string{"save", "--quiet", "--format", "docker-archive"}, nil
}

// Pull pulls ref; the error says which image could not be pulled, with the engine's last lines.
func (e *podmanCLI) Pull(ctx context.Context, ref string) error {
	return e.pull(ctx, "pull", "--quiet", ref)
}

// Push pushes src to dst directly (podman pushes any local image to any destination).
func (e *podmanCLI) Push(ctx context.Context, src, dst string, insecure bool) error {
	args := []string{"push", "--quiet"}
	if insecure {
		args = append(args, "--tls-verify=false")
	}
	return e.pushed(src, dst, e.run(ctx, nil, nil, append(args, src, "docker://"+dst)...))
}

// PruneDangling: podman keeps no separate build cache, intermediate images are its cache, and
// "image prune" removes the dangling ones. It prints only IDs, so the listed sizes of those add up.
func (e *podmanCLI) PruneDangling(ctx context.Context) (int64, error) {
	dangling, err := e.listImages(ctx, "dangling=true")
	if err != nil {
		return 0, fmt.Errorf("prune dangling images: %w", err)
	}
	out, err := e.output(ctx, "image", "prune", "-f")
	if err != nil && strings.Contains(err.Error(), "in use") {
		// Another build (another suite's, say) holds one of them, and podman then prunes none:
		// remove the others one by one.
		var total int64
		for _, img := range dangling {
			if e.run(ctx, nil, nil, "rmi", img.ID) == nil {
				total += img.Size
			}
		}
		return total, nil
	}
	if err != nil {
		return 0, fmt.Errorf("prune dangling images: %w", err)
	}
	removed := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if id := normalizeID(line); id != "" {
			removed[id] = true
		}
	}
	var total int64
	for _, img := range dangling {
		if removed[img.ID] {
			total += img.Size
		}
	}
	return total, nil
}

func (e *podmanCLI) PruneAll(ctx context.Context, keep []string) (int64, error) {
	return e.pruneAll(ctx, keep)
}

// podman's IDs are config digests and it keeps no BuildKit cache.
func (e *podmanCLI) PlatformManifest(context.Context, string) (string, error)  { return "", nil }
func (e *podmanCLI) BuildCache(context.Context) ([]CacheRecord, error)         { return nil, nil }
func (e *podmanCLI) RemoveBuildCache(context.Context, []string) (int64, error) { return 0, nil }

// CompileCaches are buildah's directories of these mounts.
func (e *podmanCLI) CompileCaches(ctx context.Context, mounts []CacheMount, _ []string) ([]CompileCache, error) {
	if len(mounts) == 0 {
		return nil, nil
	}
	return buildahCaches(ctx, mounts)
}
