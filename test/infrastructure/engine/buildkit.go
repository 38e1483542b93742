package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
)

// dockerBuilder tells which builder `docker build` runs: BuildKit when the buildx plugin answers
// and DOCKER_BUILDKIT does not turn it off, else the legacy builder (the CLI's own fallback).
func (e *cli) dockerBuilder(ctx context.Context) string {
	if os.Getenv("DOCKER_BUILDKIT") == "0" {
		return BuilderLegacy
	}
	if _, err := e.output(ctx, "buildx", "version"); err != nil {
		return BuilderLegacy
	}
	return BuilderBuildKit
}

// HostPlatform is the platform images are built, saved and imported for: this machine's, which
// is also the Kind nodes'.
var HostPlatform = "linux/" + runtime.GOARCH

func (e *cli) PlatformManifest(ctx context.Context, ref string) (string, error) {
	if e.name != Docker {
		return "", nil
	}
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

func (e *cli) BuildCache(ctx context.Context) ([]CacheRecord, error) {
	if e.name != Docker {
		return nil, nil
	}
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

// parseBuildCache reads `docker buildx du --format json`: one JSON object per record, sizes as
// docker prints them ("8.192kB").
func parseBuildCache(out []byte) ([]CacheRecord, error) {
	var records []CacheRecord
	decoder := json.NewDecoder(bytes.NewReader(out))
	for {
		var raw struct {
			ID          string          `json:"ID"`
			Size        json.RawMessage `json:"Size"`
			Type        string          `json:"Type"`
			Description string          `json:"Description"`
			Shared      bool            `json:"Shared"`
			Reclaimable bool            `json:"Reclaimable"`
			InUse       bool            `json:"InUse"`
		}
		err := decoder.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return records, nil
		}
		if err != nil {
			return nil, err
		}
		size, err := jsonSize(raw.Size)
		if err != nil {
			return nil, fmt.Errorf("record %s: %w", raw.ID, err)
		}
		records = append(records, CacheRecord{ID: raw.ID, Size: size, Type: raw.Type, Description: raw.Description,
			Shared: raw.Shared, Reclaimable: raw.Reclaimable, InUse: raw.InUse})
	}
}

// cacheID matches BuildKit's record IDs (base 36): nothing a regular expression could misread.
var cacheID = regexp.MustCompile(`^[a-z0-9]+$`)

func (e *cli) RemoveBuildCache(ctx context.Context, ids []string) (int64, error) {
	if e.name != Docker || len(ids) == 0 {
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
