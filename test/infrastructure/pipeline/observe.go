package pipeline

import (
	"context"
	"fmt"

	"github.com/kindling-dev/kindling/test/infrastructure/cluster"
	"github.com/kindling-dev/kindling/test/infrastructure/load"
	"github.com/kindling-dev/kindling/test/infrastructure/registry"
	"github.com/kindling-dev/kindling/test/infrastructure/state"
)

// Observed is the first product: what the state file records and reality still confirms, checked
// once at the start of a process. Later phases see it only through the build's product.
type Observed struct {
	RunID  string
	Images []state.Image
	// Held is where Images are safe outside the engine, each place checked now.
	Held Held
	// Cluster is the recorded cluster when it still exists.
	Cluster *state.Cluster
	// Leftovers are what the suite's earlier builds pulled and left, not yet pruned.
	Leftovers *state.Leftovers
}

// Held says where a run's images are safe outside the engine. Each is nil unless it still holds.
type Held struct {
	Archive *state.Archive // the archive rehashes as recorded
	Pushed  *state.Pushed  // every image reads back from the registry as built
	// Registry is the suite's local registry that holds Pushed, when it is the local one.
	Registry *state.Registry
	Loaded   *state.Loaded // every node of the recorded cluster lists every image
	Pruned   *state.Prune  // the engine's copies were removed on purpose
}

// Observe reads the run's record and checks it against reality: the cluster still exists, the
// archive hashes as recorded, the registry still holds the pushed images, the nodes still hold the
// loaded ones. A check that cannot be made is an error rather than "gone": a cluster forgotten
// because of a transient failure would be left running.
func (r *Run) Observe(ctx context.Context) (Observed, error) {
	if _, err := r.engineName(); err != nil {
		return Observed{}, err
	}
	st := r.recorded()
	o := Observed{RunID: st.RunID, Images: st.Images, Leftovers: st.Leftovers}
	if c := st.Cluster; c != nil {
		ok, err := r.exists(ctx, c.Name, c.Provider)
		if err != nil {
			return Observed{}, fmt.Errorf("check whether this run's cluster %s (%s) still exists: %w; retry, or delete it with %q", c.Name, c.Provider, err, r.cfg.Command("down"))
		}
		if ok {
			o.Cluster = c
			r.addNodePlaces(ctx, *c, nil, r.logger("disk"))
		}
	}
	r.carrier.observe(ctx, st, &o)
	if l := st.Loaded; l != nil && o.Cluster != nil && l.Cluster == o.Cluster.Name {
		if onEveryNode(ctx, *o.Cluster, l.Images) {
			o.Held.Loaded = l
		} else {
			r.logf("observe", "recorded load on %s is no longer true (images gone from a node): not using it", l.Cluster)
		}
	}
	if o.Held.Archive != nil || o.Held.Pushed != nil || o.Held.Loaded != nil {
		o.Held.Pruned = st.Pruned
	}
	r.startOnce.Do(func() { r.start(ctx) })
	return o, nil
}

// onEveryNode reports whether every node of c lists every image by ID.
func onEveryNode(ctx context.Context, c state.Cluster, images []state.Image) bool {
	nodes, err := cluster.Nodes(ctx, c.Name, c.Provider)
	if err != nil || len(nodes) == 0 {
		return false
	}
	want := loadImages(images)
	for _, n := range nodes {
		missing, err := load.Missing(ctx, n, want)
		if err != nil || len(missing) > 0 {
			return false
		}
	}
	return true
}

func loadImages(images []state.Image) []load.Image {
	want := make([]load.Image, len(images))
	for i, img := range images {
		want[i] = load.Image{Ref: img.Ref, ID: img.ID}
	}
	return want
}

// pushedStillTrue reports whether a recorded push still holds: the registry answers (the local
// one on the same port) and has every image as it was built.
func (r *Run) pushedStillTrue(ctx context.Context, p *state.Pushed, local *state.Registry) bool {
	if local != nil {
		// Found, not started: a check must not start containers.
		l, running, err := registry.Find(ctx, local.Engine, local.Name)
		if err != nil || !running || l.Host() != p.Host { // another port: the images' references changed
			return false
		}
		r.addRegistryPlace(ctx, l)
	} else if p.Host != r.cfg.PushTo {
		return false
	}
	for _, img := range p.Images {
		if _, err := registry.Verify(ctx, img.Ref, img.EngineID, r.insecure(p.Host)); err != nil {
			return false
		}
	}
	return true
}
