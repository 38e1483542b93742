package pipeline

import (
	"context"
	"fmt"

	"github.com/kindling-dev/kindling/test/infrastructure/registry"
	"github.com/kindling-dev/kindling/test/infrastructure/state"
)

// Transport is how the images travel from the engine to the nodes. The configuration decides it
// once, when the run starts (Config.Transport); the run then holds that transport's carrier, and
// the phases call its steps without asking again which one it is.
type Transport int

const (
	// TransportArchive exports a verified archive and streams it into every node (image by
	// image when only that fits the disk budget); after prune it is the images' only copy.
	TransportArchive Transport = iota
	// TransportLocalRegistry pushes to the suite's own registry (E2E_REGISTRY=local) and reads
	// every image back; the nodes pull from it.
	TransportLocalRegistry
	// TransportPush pushes to IMAGE_REGISTRY (without IMAGE_TAG) and reads every image back; the
	// nodes pull from it.
	TransportPush
	// TransportPullOnly builds nothing here: the images are in IMAGE_REGISTRY under IMAGE_TAG and
	// the nodes pull them.
	TransportPullOnly
)

// Transport is the transport the configuration chooses.
func (c Config) Transport() Transport {
	switch {
	case c.Registry != nil:
		return TransportPullOnly
	case c.LocalRegistry:
		return TransportLocalRegistry
	case c.PushTo != "":
		return TransportPush
	}
	return TransportArchive
}

func (t Transport) String() string {
	switch t {
	case TransportLocalRegistry:
		return "the suite's local registry"
	case TransportPush:
		return "a push to IMAGE_REGISTRY"
	case TransportPullOnly:
		return "pull-only from IMAGE_REGISTRY"
	}
	return "a verified archive"
}

// A carrier is one transport's steps, all in one place: what of a record still holds, how export
// makes the built images safe outside the engine, how prune removes the engine's copies, what the
// cluster needs, and how load puts the images on the nodes.
type carrier interface {
	// builds reports whether the images are built here (not for pull-only).
	builds() bool
	// observe checks the transport's recorded products against reality into o.Held.
	observe(ctx context.Context, st state.Suite, o *Observed)
	export(ctx context.Context, b Built) (Exported, error)
	prune(ctx context.Context, e Exported) error
	// clusterPatches are the Kind config's containerd additions the transport needs.
	clusterPatches() []string
	// attach connects a created cluster to what its nodes pull from.
	attach(ctx context.Context, c Cluster) error
	load(ctx context.Context, c Cluster) (Loaded, error)
	// loaded runs after the load phase's checkpoint with its outcome.
	loaded(ctx context.Context, c Cluster, err error)
}

// carrierFor is the carrier of transport t.
func carrierFor(t Transport, r *Run) carrier {
	switch t {
	case TransportLocalRegistry:
		return registryCarrier{Run: r, local: true}
	case TransportPush:
		return registryCarrier{Run: r}
	case TransportPullOnly:
		return pullOnlyCarrier{r}
	}
	return archiveCarrier{r}
}

// registryCarrier pushes every image to a registry and reads it back (export); the nodes pull
// from it. With local, the registry is the suite's own, started by export and attached to the
// cluster.
type registryCarrier struct {
	*Run
	local bool
}

func (registryCarrier) builds() bool { return true }

func (r registryCarrier) observe(ctx context.Context, st state.Suite, o *Observed) {
	p := st.Pushed
	if p == nil {
		return
	}
	if r.pushedStillTrue(ctx, p, st.Registry) {
		o.Held.Pushed, o.Held.Registry = p, st.Registry
	} else {
		r.logf("observe", "recorded push to %s is no longer true (registry or images gone): not using it", p.Host)
	}
}

func (r registryCarrier) prune(ctx context.Context, e Exported) error { return r.pruneImages(ctx, e) }

func (r registryCarrier) load(ctx context.Context, c Cluster) (Loaded, error) {
	e := c.Pruned.Exported
	if e.Pushed == nil { // a failed export's zero product
		return Loaded{}, fmt.Errorf("no pushed images to pull into %s; run \"%s\" first", c.Name, r.cfg.Command("export"))
	}
	r.logf("load", "skipped: the nodes pull from %s when the pods start (IfNotPresent)", e.Pushed.Host)
	return Loaded{Cluster: c.Cluster, Images: e.Pushed.Images, Registry: &Registry{Host: e.Pushed.Host}}, nil
}

func (registryCarrier) loaded(context.Context, Cluster, error) {}

// pullOnlyCarrier builds, exports, prunes and loads nothing: the nodes pull the images from
// IMAGE_REGISTRY under IMAGE_TAG, and load checks they are there.
type pullOnlyCarrier struct{ *Run }

func (pullOnlyCarrier) builds() bool                                    { return false }
func (pullOnlyCarrier) observe(context.Context, state.Suite, *Observed) {}
func (pullOnlyCarrier) clusterPatches() []string                        { return nil }
func (pullOnlyCarrier) attach(context.Context, Cluster) error           { return nil }
func (pullOnlyCarrier) loaded(context.Context, Cluster, error)          {}

func (r pullOnlyCarrier) export(_ context.Context, b Built) (Exported, error) {
	r.logf("export", "skipped: registry mode, nothing to export")
	return Exported{Built: b, Images: b.Images}, nil
}

func (r pullOnlyCarrier) prune(context.Context, Exported) error {
	r.logf("prune", "skipped: registry mode, no local images to prune")
	return nil
}

func (r pullOnlyCarrier) load(ctx context.Context, c Cluster) (Loaded, error) {
	reg := r.cfg.Registry
	// What the nodes will pull must be there now, not found missing by a rollout timeout.
	for _, img := range c.Pruned.Exported.Images {
		if err := registry.Exists(ctx, reg.Host+"/"+img.Service+":"+reg.Tag, r.insecure(reg.Host)); err != nil {
			return Loaded{}, fmt.Errorf("%w; push the suite's images first (IMAGE_REGISTRY without IMAGE_TAG builds and pushes them)", err)
		}
	}
	r.logf("load", "skipped: registry mode, nodes pull from %s (every image is there)", reg.Host)
	return Loaded{Cluster: c.Cluster, Images: c.Pruned.Exported.Images, Registry: reg}, nil
}
