package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// dockerCLI is docker: a daemon (the system's, or DOCKER_HOST's), BuildKit through buildx or the
// legacy builder, overlay2 or the containerd image store.
type dockerCLI struct{ *cli }

func (e *dockerCLI) other() string { return Podman }

func (e *dockerCLI) startHow() string {
	if host := os.Getenv("DOCKER_HOST"); host != "" {
		return fmt.Sprintf("DOCKER_HOST=%s names that daemon: start it, point DOCKER_HOST at a daemon that runs, or unset DOCKER_HOST to use the system's", host)
	}
	return "start dockerd (systemctl start docker, or run ../shared/kindenv/setup, which starts it)"
}

// Ping asks the daemon for its version.
func (e *dockerCLI) Ping(ctx context.Context) error {
	return e.ping(ctx, "version", "--format", "{{.Server.Version}}")
}

// Build runs docker build: with BuildKit into the image store (--load) also when the current
// builder is not the daemon's own (docker-container driver, as setup-buildx-action leaves it);
// the legacy builder keeps the container of a failed step unless told otherwise (--force-rm).
func (e *dockerCLI) Build(ctx context.Context, spec BuildSpec) error {
	info, _ := e.cachedInfo(ctx)
	flags := []string{"--force-rm"}
	if info.Builder == BuilderBuildKit {
		flags = []string{"--load"}
	}
	if info.BuildNetwork != "" {
		flags = append(flags, "--network", info.BuildNetwork)
	}
	return e.build(ctx, spec, flags)
}

func (e *dockerCLI) Info(ctx context.Context) (Info, error) {
	out, err := e.output(ctx, "info", "--format", "{{json .}}")
	if err != nil {
		return Info{}, e.infoError(err)
	}
	info, containerdAddress, err := parseDockerInfo(out)
	if err != nil {
		if errors.Is(err, errDaemonDown) {
			return Info{}, e.notRunning(err)
		}
		return Info{}, err
	}
	info.Remote = dockerHostRemote()
	info.Builder = e.builder(ctx)
	if info.Store == StoreContainerd {
		// The image bytes are containerd's: its content store and snapshotter directories.
		info.Containerd = containerdAddress
		if content, snapshots, err := e.containerdRoots(ctx, containerdAddress, info.Snapshotter); err == nil {
			info.ContentRoot, info.SnapshotRoot = content, snapshots
			for _, dir := range []string{content, snapshots} {
				if dir != "" {
					info.Storage = append(info.Storage, dir)
				}
			}
		}
	}
	if net, err := e.output(ctx, "network", "inspect", "bridge", "--format", "{{json .Options}}"); err == nil {
		info.BuildNetwork = buildNetwork(net)
	}
	return info, nil
}

// builder tells which builder `docker build` runs: BuildKit when the buildx plugin answers and
// DOCKER_BUILDKIT does not turn it off, else the legacy builder (the CLI's own fallback).
func (e *dockerCLI) builder(ctx context.Context) string {
	if os.Getenv("DOCKER_BUILDKIT") == "0" {
		return BuilderLegacy
	}
	if _, err := e.output(ctx, "buildx", "version"); err != nil {
		return BuilderLegacy
	}
	return BuilderBuildKit
}

// saveArgs: the containerd store writes an OCI layout, for this host's platform only, so that no
// index in the archive points at blobs of other platforms it lacks (which containerd's import
// refuses).
func (e *dockerCLI) saveArgs(ctx context.Context, _ bool) ([]string, error) {
	info, err := e.cachedInfo(ctx)
	if err != nil {
		return nil, err
	}
	if info.IDsAreManifests() {
		return []string{"save", "--platform", HostPlatform}, nil
	}
	return []string{"save"}, nil
}

// Pull pulls ref; the error says which image could not be pulled, with the engine's last lines.
func (e *dockerCLI) Pull(ctx context.Context, ref string) error {
	return e.pull(ctx, "pull", ref)
}

// Push tags src as dst, pushes it and removes the tag: docker pushes names only; a registry on the
// loopback is insecure to it by default. The containerd store pushes an index whole
// (attestations, other platforms) unless told a platform: the registry then holds the host
// platform's manifest, as the nodes pull it.
func (e *dockerCLI) Push(ctx context.Context, src, dst string, _ bool) error {
	push := []string{"push", "--quiet"}
	if info, infoErr := e.cachedInfo(ctx); infoErr == nil && info.IDsAreManifests() {
		push = append(push, "--platform", HostPlatform)
	}
	err := e.run(ctx, nil, nil, "tag", src, dst)
	if err == nil {
		err = e.run(ctx, nil, nil, append(push, dst)...)
		if rerr := e.run(ctx, nil, nil, "rmi", "--no-prune", dst); err == nil && rerr != nil {
			err = fmt.Errorf("untag %s after the push: %w", dst, rerr)
		}
	}
	return e.pushed(src, dst, err)
}

// PruneDangling removes dangling images. Not "builder prune": BuildKit's unused cache is all
// "dangling" to it, other runs' included; a run removes its own records with RemoveBuildCache.
func (e *dockerCLI) PruneDangling(ctx context.Context) (int64, error) {
	return e.pruneReported(ctx, "image", "prune", "-f")
}

// PruneAll is the shared prune, then all of BuildKit's cache ("builder prune -a").
func (e *dockerCLI) PruneAll(ctx context.Context, keep []string) (int64, error) {
	total, err := e.pruneAll(ctx, keep)
	if err != nil {
		return total, err
	}
	n, err := e.pruneReported(ctx, "builder", "prune", "-a", "-f")
	return total + n, err
}

// CompileCaches are BuildKit's exec.cachemount records of these mounts. BuildKit names a mount's
// id in the record's description since v0.10; an older one names only the target, which other
// projects' mounts may share, so there a record counts only if it is one of appeared (the
// records this run's builds added).
func (e *dockerCLI) CompileCaches(ctx context.Context, mounts []CacheMount, appeared []string) ([]CompileCache, error) {
	if len(mounts) == 0 {
		return nil, nil
	}
	records, err := e.BuildCache(ctx)
	if err != nil {
		return nil, err
	}
	var caches []CompileCache
	for _, r := range records {
		if r.Type != "exec.cachemount" {
			continue
		}
		for _, m := range mounts {
			if cacheMountRecord(r, m, slices.Contains(appeared, r.ID)) {
				caches = append(caches, CompileCache{Mount: m, Record: r.ID, Bytes: r.Size})
				break
			}
		}
	}
	return caches, nil
}

// docker's daemon cancels a build when its client goes: nothing outlives an interrupted one.
func (e *dockerCLI) BuildContainers(context.Context) ([]string, error)   { return nil, nil }
func (e *dockerCLI) StopBuildContainers(context.Context, []string) error { return nil }

func (e *dockerCLI) PlatformManifest(ctx context.Context, ref string) (string, error) {
	info, err := e.cachedInfo(ctx)
	if err != nil {
		return "", err
	}
	if !info.IDsAreManifests() {
		return "", nil
	}
	out, err := e.output(ctx, "image", "inspect", "--platform", HostPlatform, "--format", "{{.Id}}", ref)
	if err != nil {
		if strings.Contains(err.Error(), "does not provide the specified platform") {
			return "", fmt.Errorf("image %s has no %s manifest (an image index of other platforms only): build or pull it for %s", ref, HostPlatform, HostPlatform)
		}
		return "", fmt.Errorf("look up the %s manifest of %s: %w", HostPlatform, ref, err)
	}
	digest := normalizeID(string(out))
	if digest == "" {
		return "", fmt.Errorf("look up the %s manifest of %s: docker printed no digest", HostPlatform, ref)
	}
	return digest, nil
}

func (e *dockerCLI) BuildCache(ctx context.Context) ([]CacheRecord, error) {
	if info, err := e.cachedInfo(ctx); err != nil || info.Builder != BuilderBuildKit {
		return nil, err
	}
	out, err := e.output(ctx, "buildx", "du", "--format", "json")
	if err != nil {
		return nil, fmt.Errorf("list the build cache: %w", err)
	}
	records, err := parseBuildCache(out)
	if err != nil {
		return nil, fmt.Errorf("list the build cache: parse `docker buildx du` output: %w", err)
	}
	return records, nil
}

func (e *dockerCLI) RemoveBuildCache(ctx context.Context, ids []string) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	for _, id := range ids {
		if !cacheID.MatchString(id) {
			return 0, fmt.Errorf("remove build cache: %q is not a BuildKit record ID", id)
		}
	}
	// One "id" filter takes one value, but a regular expression takes many. A removed record
	// frees its parent, so prune again while a pass removes records (some hold 0 bytes).
	// --all also takes the records BuildKit marks shared (their snapshots seen outside it: on
	// the containerd store, the exec mounts of builder stages); an image that uses their bytes
	// keeps them.
	var total int64
	left := slices.Clone(ids)
	for range 16 {
		for start := 0; start < len(left); start += 64 {
			filter := "id~=^(" + strings.Join(left[start:min(start+64, len(left))], "|") + ")$"
			n, err := e.pruneReported(ctx, "buildx", "prune", "--all", "-f", "--filter", filter)
			total += n
			if err != nil {
				return total, fmt.Errorf("remove the run's build cache: %w", err)
			}
		}
		records, err := e.BuildCache(ctx)
		if err != nil {
			return total, err
		}
		var still []string
		for _, r := range records {
			if slices.Contains(left, r.ID) {
				still = append(still, r.ID)
			}
		}
		if len(still) == 0 || len(still) == len(left) {
			break
		}
		left = still
	}
	return total, nil
}
