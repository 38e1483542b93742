package pipeline

import (
	"context"
	"path/filepath"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/cluster"
	"github.com/kindling-dev/kindling/test/infrastructure/disk"
	"github.com/kindling-dev/kindling/test/infrastructure/state"
)

// Cluster creates the suite's Kind cluster with the run's engine as provider. It takes Pruned
// because it comes after prune: the cluster's nodes need the space prune freed.
func (r *Run) Cluster(ctx context.Context) error {
	if r.cluster != nil {
		return nil
	}
	if _, err := need(r.pruned, "prune", "cluster"); err != nil {
		return err
	}
	return r.timed(ctx, "cluster", "CLUSTER_CREATED", func() error {
		_, err := r.createCluster(ctx)
		return err
	})
}

func (r *Run) createCluster(ctx context.Context) (Cluster, error) {
	log := r.logger("cluster")
	eng, err := r.engine(ctx)
	if err != nil {
		return Cluster{}, err
	}
	if r.cfg.NodeImage == "" {
		log("KIND_NODE_IMAGE is not set: using kind's default node image, which must be pulled from a registry")
	}
	nodeImage, err := cluster.EnsureNodeImage(ctx, eng.Name(), r.cfg.NodeImage, log)
	if err != nil {
		return Cluster{}, err
	}
	// A cluster this suite created earlier in the run is ours to keep using; any other cluster of
	// that name is reused only when asked.
	ours := r.st.Cluster != nil && r.st.Cluster.Name == r.cfg.ClusterName && r.st.Cluster.Provider == eng.Name()
	c, err := cluster.Create(ctx, cluster.Options{
		Name:           r.cfg.ClusterName,
		Provider:       eng.Name(),
		NodeImage:      nodeImage,
		ConfigPath:     r.kindConfig(),
		KubeconfigPath: filepath.Join(r.cfg.RunDir, "kubeconfig"),
		Reuse:          ours || r.cfg.ReuseCluster,
		DeleteHint:     "go run magefile.go " + r.cfg.Suite.Name + ":down",
		WaitForReady:   3 * time.Minute,
		Log:            log,
	})
	if err != nil {
		return Cluster{}, err
	}
	out := Cluster{state.Cluster{Name: c.Name, Provider: c.Provider, Kubeconfig: c.Kubeconfig}}
	r.cluster = &out
	r.addPlaces(r.nodePlaces(ctx, out)...)
	r.st.Cluster = &out.Cluster
	return out, r.save()
}

// nodePlaces are the host directories that back the nodes' /var, where containerd keeps the
// loaded images: the filesystem that really fills up when images are loaded.
func (r *Run) nodePlaces(ctx context.Context, c Cluster) []disk.Place {
	paths, err := cluster.NodeStorage(ctx, cluster.Cluster{Name: c.Name, Provider: c.Provider})
	if err != nil {
		r.logf("cluster", "cannot find the nodes' storage on the host, disk reports will miss it: %v", err)
		return nil
	}
	var places []disk.Place
	for _, p := range paths {
		places = append(places, disk.Place{Name: "node " + p.Node + " /var", Path: p.Path})
	}
	return places
}

func (r *Run) kindConfig() string {
	if r.cfg.Suite.KindConfig == "" {
		return ""
	}
	return filepath.Join(r.cfg.Root, r.cfg.Suite.KindConfig)
}
