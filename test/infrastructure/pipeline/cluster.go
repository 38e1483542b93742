package pipeline

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"

	"github.com/kindling-dev/kindling/test/infrastructure/cluster"
	"github.com/kindling-dev/kindling/test/infrastructure/coverage"
	"github.com/kindling-dev/kindling/test/infrastructure/disk"
	"github.com/kindling-dev/kindling/test/infrastructure/state"
)

// Cluster creates the suite's Kind cluster with the run's engine as provider. It takes the prune
// phase's product: the nodes need the space prune freed. With E2E_OVERLAP the cluster may have
// been created while the images built (early); it then only receives what prune left.
func (r *Run) Cluster(ctx context.Context, p Pruned, early Early) (Cluster, error) {
	if early.Cluster != nil {
		c, err := r.joinCluster(ctx, *early.Cluster, p)
		if err != nil {
			err = fmt.Errorf("cluster: %w", err)
		}
		return c, err
	}
	var c Cluster
	r.compileTests(ctx)
	err := r.timed(ctx, "cluster", "CLUSTER_CREATED", func() error {
		created, err := r.createCluster(ctx, p.Exported.Built.Observed, false)
		if err != nil {
			return err
		}
		c, err = r.joinCluster(ctx, created, p)
		return err
	})
	return c, err
}

// createCluster creates (or reuses) the cluster and records it. Beside the build (E2E_OVERLAP)
// Overlap checked the disk budget for both, and what the create adds per node cannot be told
// from what the build adds; otherwise the budget is checked here and the growth learned.
func (r *Run) createCluster(ctx context.Context, o Observed, beside bool) (state.Cluster, error) {
	log := r.logger("cluster")
	eng, err := r.engine(ctx)
	if err != nil {
		return state.Cluster{}, err
	}
	name, provider := r.cfg.ClusterName, eng.Name()
	// Observe checked the recorded cluster: nil means it is gone.
	rec := o.Cluster
	if rec != nil && (rec.Name != name || rec.Provider != provider) {
		return state.Cluster{}, fmt.Errorf("this run's cluster is %s (%s, recorded in %s), but now %s (%s) is asked for: run \"%s\" first, or keep KIND_CLUSTER_NAME as it was",
			rec.Name, rec.Provider, statePath(r.cfg), name, provider, r.cfg.Command("down"))
	}
	exists, err := r.exists(ctx, name, provider)
	if err != nil {
		return state.Cluster{}, err
	}
	// A cluster this suite created is ours to keep using; any other is reused only when asked.
	ours := exists && rec != nil && rec.Created
	kubeconfig := filepath.Join(r.cfg.RunDir, "kubeconfig")
	nodeImage := r.cfg.NodeImage
	var copied uint64 // what copying the node image into the provider added
	if !exists {
		if err := r.hostPortsFree(provider); err != nil {
			return state.Cluster{}, err
		}
		if nodeImage == "" {
			log("KIND_NODE_IMAGE is not set: using kind's default node image, which must be pulled from a registry")
		}
		before, beforeErr := r.graphRootUsed(ctx)
		if nodeImage, err = cluster.EnsureNodeImage(ctx, provider, nodeImage, log); err != nil {
			return state.Cluster{}, err
		}
		// podman gets its copy of the node image from docker on its first cluster: bytes on the
		// nodes' filesystem that are not the nodes', and that the next run does not write again.
		if after, err := r.graphRootUsed(ctx); err == nil && beforeErr == nil && after > before+(64<<20) {
			copied = uint64(after - before)
			log("the copy of the node image added %s to %s: not counted as the nodes'", disk.HumanBytes(copied), r.graphRootName())
		}
		if !beside {
			if err := r.fits(ctx, "cluster", r.facts()); err != nil {
				return state.Cluster{}, err
			}
		}
		// Record the cluster before kind starts: an interrupted or half-failed create is still
		// ours to delete (by e2e's teardown or aianalysis:down).
		started := state.Cluster{Name: name, Provider: provider, Kubeconfig: kubeconfig, Created: true}
		if err := r.record(func(st *state.Suite) { st.Cluster = &started }); err != nil {
			return state.Cluster{}, err
		}
	}
	var mounts []v1alpha4.Mount
	if r.cfg.Coverage {
		if exists {
			log("E2E_COVERAGE=true, but cluster %s exists already: it has no coverage mount unless it was created with one", name)
		}
		dir := r.coverageDir()
		os.RemoveAll(dir) // counters of an earlier cluster would be merged into this one's
		if err := coverage.Prepare(dir, r.cfg.Suite.ServiceNames()); err != nil {
			return state.Cluster{}, err
		}
		mounts = append(mounts, v1alpha4.Mount{HostPath: dir, ContainerPath: coverage.NodeDir})
	}
	c, err := r.create(ctx, cluster.Options{
		Name:                    name,
		Provider:                provider,
		NodeImage:               nodeImage,
		ConfigPath:              r.kindConfig(),
		ExtraMounts:             mounts,
		Workers:                 r.cfg.Workers,
		ContainerdConfigPatches: r.carrier.clusterPatches(),
		KubeconfigPath:          kubeconfig,
		Reuse:                   ours || r.cfg.ReuseCluster,
		DeleteHint:              r.cfg.Command("down"),
		WaitForReady:            3 * time.Minute,
		Log:                     log,
	})
	if err != nil {
		return state.Cluster{}, err
	}
	out := state.Cluster{Name: c.Name, Provider: c.Provider, Kubeconfig: c.Kubeconfig, Created: !exists || ours}
	r.addNodePlaces(ctx, out, c.Nodes, log)
	if !exists && !beside {
		r.learnAfterPhase("cluster", func(cp disk.Checkpoint) { r.learnNodes(cp, copied, len(c.Nodes)) })
	}
	return out, r.record(func(st *state.Suite) { st.Cluster = &out })
}

// hostPortsFree checks, before anything is created, that the host ports the suite's Kind config
// maps are free: a cluster of the same name on another daemon (Docker 29 beside the system
// Docker, or podman) holds them, and kind would fail half way with "port is already allocated".
func (r *Run) hostPortsFree(provider string) error {
	var taken []string
	for _, svc := range slices.Sorted(maps.Keys(r.cfg.Suite.HostPorts)) {
		port := r.cfg.Suite.HostPorts[svc]
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
		if err != nil {
			taken = append(taken, fmt.Sprintf("%d (%s)", port, svc))
			continue
		}
		l.Close()
	}
	if len(taken) == 0 {
		return nil
	}
	return fmt.Errorf("cannot create cluster %s with %s: host port %s of %s is taken, nothing was created; a cluster of this suite on another daemon or engine holds it when `docker ps` (with and without DOCKER_HOST) or `podman ps` lists %s-control-plane: delete it there (%q with that engine), or free the port",
		r.cfg.ClusterName, provider, strings.Join(taken, ", "), r.kindConfig(), r.cfg.ClusterName, r.cfg.Command("down"))
}

// joinCluster hands the cluster what prune left it: the local registry that holds the images.
func (r *Run) joinCluster(ctx context.Context, c state.Cluster, p Pruned) (Cluster, error) {
	out := Cluster{Cluster: c, Pruned: p}
	if err := r.carrier.attach(ctx, out); err != nil {
		return Cluster{}, err
	}
	return out, nil
}

// coverageDir receives the services' coverage counters (E2E_COVERAGE=true), one directory each.
func (r *Run) coverageDir() string { return filepath.Join(r.cfg.RunDir, "coverage", "counters") }

func (r *Run) kindConfig() string {
	if r.cfg.Suite.KindConfig == "" {
		return ""
	}
	return filepath.Join(r.cfg.Root, r.cfg.Suite.KindConfig)
}

// nodePlaces are the host directories that back the nodes' /var, where containerd keeps the
// loaded images: the filesystem that really fills up when images are loaded.
// A failure is for the caller to report where it reports (disk:report keeps stdout for the report).
func nodePlaces(ctx context.Context, c state.Cluster, nodes []string) ([]disk.Place, error) {
	paths, err := cluster.NodeStorage(ctx, cluster.Cluster{Name: c.Name, Provider: c.Provider, Nodes: nodes})
	if err != nil {
		return nil, fmt.Errorf("cannot find the nodes' storage on the host, disk reports will miss it: %w", err)
	}
	var places []disk.Place
	for _, p := range paths {
		places = append(places, disk.Place{Name: "node " + p.Node + " /var", Path: p.Path})
	}
	return places, nil
}

// addNodePlaces adds the nodes' storage to the measured places, logging a failure to log.
func (r *Run) addNodePlaces(ctx context.Context, c state.Cluster, nodes []string, log func(string, ...any)) {
	places, err := nodePlaces(ctx, c, nodes)
	if err != nil {
		log("%v", err)
	}
	r.where.add(roleNode, places...)
	for _, p := range places {
		r.where.addParts(disk.Part{Name: p.Name + " (its containerd images, kubelet, logs)", Path: p.Path})
	}
}
