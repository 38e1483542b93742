package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kindling-dev/kindling/test/infrastructure/disk"
)

// CacheMount is a RUN --mount=type=cache of a Dockerfile. ID is the mount's id, or its target
// when it has none (as both builders do).
type CacheMount struct {
	ID     string `json:"id"`
	Target string `json:"target,omitempty"`
}

// CompileCache is a cache mount as the builder keeps it between builds: a directory of
// buildah's, or a BuildKit build cache record.
type CompileCache struct {
	Mount  CacheMount
	Dir    string // buildah
	Record string // BuildKit
	Bytes  int64
}

// Where names the cache for messages.
func (c CompileCache) Where() string {
	if c.Record != "" {
		return "BuildKit record " + c.Record
	}
	return c.Dir
}

// cacheMountRecord tells whether BuildKit's record r is mount m: `cached mount <target> from
// exec … with id "/<id>"`, or without the id (BuildKit before v0.10) a record of this run with
// that target.
func cacheMountRecord(r CacheRecord, m CacheMount, ours bool) bool {
	const withID = ` with id "`
	if i := strings.LastIndex(r.Description, withID); i >= 0 {
		id := strings.TrimSuffix(r.Description[i+len(withID):], `"`)
		return strings.Trim(id, "/") == strings.Trim(m.ID, "/")
	}
	return ours && m.Target != "" && strings.HasPrefix(r.Description, "cached mount "+m.Target+" from ")
}

func buildahCaches(ctx context.Context, mounts []CacheMount) ([]CompileCache, error) {
	var caches []CompileCache
	for _, root := range buildahCacheRoots() {
		for _, m := range mounts {
			if m.ID == "" || strings.Contains(m.ID, "..") {
				continue
			}
			dir := filepath.Join(root, strings.TrimPrefix(filepath.Clean("/"+m.ID), "/"))
			if _, err := os.Stat(dir); err != nil {
				continue
			}
			u, err := disk.Usage(ctx, []disk.Part{{Name: m.ID, Path: dir}})
			if err != nil {
				return nil, err
			}
			caches = append(caches, CompileCache{Mount: m, Dir: dir, Bytes: u[0].Bytes})
		}
	}
	return caches, nil
}

// RemoveCompileCaches removes these caches and returns the bytes they held.
func (e *cli) RemoveCompileCaches(ctx context.Context, caches []CompileCache) (int64, error) {
	var total int64
	var records []string
	var errs []error
	for _, c := range caches {
		switch {
		case c.Record != "":
			records = append(records, c.Record)
		case c.Dir != "":
			if err := os.RemoveAll(c.Dir); err != nil {
				errs = append(errs, fmt.Errorf("remove cache mount %s: %w", c.Dir, err))
				continue
			}
			total += c.Bytes
		}
	}
	if len(records) > 0 {
		n, err := e.own.RemoveBuildCache(ctx, records)
		total += n
		errs = append(errs, err)
	}
	return total, errors.Join(errs...)
}

// buildahCacheRoots are where buildah may keep cache mounts: under its temp dir ($TMPDIR, else
// /var/tmp), "buildah-cache" in older releases (podman 4), "buildah-cache-<uid>" in newer ones.
func buildahCacheRoots() []string {
	tmp := os.Getenv("TMPDIR")
	if tmp == "" {
		tmp = "/var/tmp"
	}
	return []string{filepath.Join(tmp, "buildah-cache-"+strconv.Itoa(os.Getuid())), filepath.Join(tmp, "buildah-cache")}
}

// cacheMountRoot is the buildah cache root that exists, else the one podman of this version
// creates: "buildah-cache" up to podman 4.3 (buildah 1.28; seen with Debian 12's 4.3.1),
// "buildah-cache-<uid>" since podman 4.4 (buildah 1.29, containers/buildah#4421).
func cacheMountRoot(podmanVersion string) string {
	roots := buildahCacheRoots()
	for _, r := range roots {
		if _, err := os.Stat(r); err == nil {
			return r
		}
	}
	var major, minor int
	if _, err := fmt.Sscanf(podmanVersion, "%d.%d", &major, &minor); err == nil && (major < 4 || major == 4 && minor < 4) {
		return roots[1]
	}
	return roots[0]
}
