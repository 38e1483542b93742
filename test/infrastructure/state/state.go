// Package state keeps what each phase of a suite produced in a small JSON file, so a CI job can run
// the phases as separate steps. It stores; it does not trust: the pipeline's Observe checks every
// record against reality once, at the start of a process (the image still exists, the archive still
// hashes right, the cluster is still there), and hands the phases only what still holds.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/renameio/v2"
)

// Version changes when the file's shape changes; a file of another version is ignored.
const Version = 2

// Image is one image of the suite, as built and as it must appear on the nodes.
type Image struct {
	Service string `json:"service"`
	Ref     string `json:"ref"`
	// ID is the sha256 of the image config: the ID in the archive's manifest.json and the nodes'
	// CRI. Known from the build on engines whose IDs are config digests, else from the export.
	ID string `json:"id,omitempty"`
	// EngineID is the engine's own ID: the config digest, or on Docker's containerd store the
	// digest of the image's manifest or, for an index (BuildKit's attestations, several
	// platforms), of the index. Prune and down compare it with what the engine lists.
	EngineID string `json:"engineId,omitempty"`
	// Manifest is the host platform's manifest digest on Docker's containerd store: within an
	// index, the image that the archive and the registry hold and the nodes run.
	Manifest string `json:"manifest,omitempty"`
}

// Archive is a verified suite archive.
type Archive struct {
	// Path is the archive's layout directory (archive.Layout), or a tar of an older kindling.
	Path string `json:"path"`
	Size int64  `json:"size"`
	// SHA256 is the digest of the layout's images.json (of the whole tar for a tar).
	SHA256   string    `json:"sha256"`
	Verified time.Time `json:"verified"`
	// Released are the IDs of the images every node of the cluster held, checked, when the load
	// deleted their blobs from the archive: the archive no longer holds them.
	Released []string `json:"released,omitempty"`
}

// Leftovers are what the builds of a run left in the engine beside its images: the base images
// they pulled and their intermediate images, until prune removes them.
type Leftovers struct {
	Pulled       []Image  `json:"pulled,omitempty"` // Service is empty
	Intermediate []string `json:"intermediate,omitempty"`
	// BuildCache are the BuildKit build cache records the builds added (see build.Built).
	BuildCache []string `json:"buildCache,omitempty"`
	// CompileCaches are the cache mounts the builds used (see build.Built).
	CompileCaches []CacheMount `json:"compileCaches,omitempty"`
	// CacheMounts are the ids a state file of an earlier release recorded; Read moves them to
	// CompileCaches.
	CacheMounts []string `json:"cacheMounts,omitempty"`
}

// CacheMount is a Dockerfile's cache mount: its id and target.
type CacheMount struct {
	ID     string `json:"id"`
	Target string `json:"target,omitempty"`
}

// Footprint is what a run's pulls and builds added to the filesystem holding the engine's
// storage (see build.Footprint), for the summary and disk:report.
type Footprint struct {
	Filesystem      string `json:"filesystem"` // the engine's graph root
	PulledBytes     int64  `json:"pulledBytes"`
	BuildCacheBytes int64  `json:"buildCacheBytes"`
	SuiteImageBytes int64  `json:"suiteImageBytes"`
}

// Registry is the suite's local registry (E2E_REGISTRY=local): a container of the run's engine.
type Registry struct {
	Name     string `json:"name"`
	Engine   string `json:"engine"`
	HostPort string `json:"hostPort,omitempty"`
}

// Pushed is what the export phase pushed to a registry and read back: the images under their
// registry references, with the IDs they were built with.
type Pushed struct {
	Host     string    `json:"host"`
	Images   []Image   `json:"images"`
	Verified time.Time `json:"verified"`
}

// Prune is what the prune phase did.
type Prune struct {
	Mode             string    `json:"mode"` // scoped or aggressive
	RemovedIDs       []string  `json:"removedIds"`
	EngineReclaimed  int64     `json:"engineReclaimedBytes"`
	FilesystemGained int64     `json:"filesystemGainedBytes"`
	At               time.Time `json:"at"`
	// Residue is what the containerd store kept of the removed images although nothing uses it.
	Residue *Residue `json:"residue,omitempty"`
	// KeptCaches are the builds' compile caches the prune kept for the next build.
	KeptCaches *KeptCaches `json:"keptCaches,omitempty"`
}

// KeptCaches are compile caches kept for the next build, where they are, their bytes, and the
// bound they were kept under (E2E_BUILD_CACHE_MAX).
type KeptCaches struct {
	Where []string `json:"where"`
	Bytes int64    `json:"bytes"`
	Max   int64    `json:"max"`
}

// Residue is what an engine left behind after a delete: blobs and snapshots by digest or key
// with their bytes, and the commands that remove exactly those.
type Residue struct {
	Blobs     map[string]int64 `json:"blobs,omitempty"`
	Snapshots map[string]int64 `json:"snapshots,omitempty"`
	Bytes     int64            `json:"bytes"`
	Reclaim   [][]string       `json:"reclaim,omitempty"`
}

// Cluster is the Kind cluster of the suite.
type Cluster struct {
	Name       string `json:"name"`
	Provider   string `json:"provider"`
	Kubeconfig string `json:"kubeconfig"`
	Created    bool   `json:"created"` // by this suite's run (false: an existing cluster reused on request)
}

// Loaded is what the load phase put on the nodes.
type Loaded struct {
	Cluster        string    `json:"cluster"`
	Nodes          []string  `json:"nodes"`
	Images         []Image   `json:"images"`
	ArchiveRemoved bool      `json:"archiveRemoved"`
	At             time.Time `json:"at"`
}

// Suite is the state file of one suite.
type Suite struct {
	Version int    `json:"version"`
	Suite   string `json:"suite"`
	RunID   string `json:"runId"`
	Engine  string `json:"engine,omitempty"`
	// EngineHost is the daemon the engine talked to (DOCKER_HOST or CONTAINER_HOST), "" for the
	// default one: Docker 29 beside the system Docker is the same engine name, another daemon.
	EngineHost string    `json:"engineHost,omitempty"`
	Started    time.Time `json:"started"`
	Images     []Image   `json:"images,omitempty"` // built (or planned, when a later product stands in for them)
	// Leftovers of the builds, kept until prune removes them (also across runs of the suite).
	Leftovers *Leftovers `json:"leftovers,omitempty"`
	Footprint *Footprint `json:"footprint,omitempty"`
	Archive   *Archive   `json:"archive,omitempty"` // exported and verified
	Registry  *Registry  `json:"registry,omitempty"`
	Pushed    *Pushed    `json:"pushed,omitempty"` // pushed and verified (E2E_REGISTRY=local)
	Pruned    *Prune     `json:"pruned,omitempty"`
	Cluster   *Cluster   `json:"cluster,omitempty"`
	Loaded    *Loaded    `json:"loaded,omitempty"`
}

// Read reads the state file at path. A missing file, or one written by another version, gives an
// empty state; a file that cannot be parsed is an error that says how to start over.
func Read(path string) (Suite, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Suite{}, nil
	}
	if err != nil {
		return Suite{}, fmt.Errorf("read state %s: %w", path, err)
	}
	var s Suite
	if err := json.Unmarshal(data, &s); err != nil {
		return Suite{}, fmt.Errorf("state file %s is not valid JSON (%v): delete it to start the suite over", path, err)
	}
	if s.Version != Version {
		return Suite{}, nil
	}
	if l := s.Leftovers; l != nil {
		for _, id := range l.CacheMounts {
			l.CompileCaches = append(l.CompileCaches, CacheMount{ID: id})
		}
		l.CacheMounts = nil
	}
	return s, nil
}

// Write writes the state atomically (a temporary file renamed into place), readable only by the user.
func Write(path string, s Suite) error {
	s.Version = Version
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	if err := renameio.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write state %s: %w", path, err)
	}
	return nil
}
