package pipeline

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/cluster"
	"github.com/kindling-dev/kindling/test/infrastructure/disk"
	"github.com/kindling-dev/kindling/test/infrastructure/imageref"
	"github.com/kindling-dev/kindling/test/infrastructure/registry"
	"github.com/kindling-dev/kindling/test/infrastructure/state"
)

// registryName is the container of the suite's local registry, also its host name on the Kind network.
func (r *Run) registryName() string { return "kindling-registry-" + r.cfg.Suite.Name }

func localRegistry(rec *state.Registry) registry.Local {
	return registry.Local{Name: rec.Name, Engine: rec.Engine, HostPort: rec.HostPort}
}

// insecure reports whether host is spoken to over plain HTTP: loopback hosts (docker's own rule)
// and E2E_REGISTRY_INSECURE=true.
func (r *Run) insecure(host string) bool {
	domain, _, _ := strings.Cut(host, "/")
	if h, _, err := net.SplitHostPort(domain); err == nil {
		domain = h
	}
	if domain == "localhost" {
		return true
	}
	if ip := net.ParseIP(domain); ip != nil && ip.IsLoopback() {
		return true
	}
	return r.cfg.RegistryInsecure
}

// push is the export phase with a registry (E2E_REGISTRY=local: the suite's own, started here;
// IMAGE_REGISTRY: an external one): every image is pushed, read back and compared with the built
// image before anything is recorded, and so before prune may delete the engine's copies.
func (r registryCarrier) export(ctx context.Context, b Built) (Exported, error) {
	log := r.logger("export")
	if p := b.Held.Pushed; p != nil {
		log("up to date: the images are in %s, verified", p.Host)
		return Exported{Built: b, Images: b.Images, Pushed: p, Registry: b.Held.Registry}, nil
	}
	eng, err := r.engine(ctx)
	if err != nil {
		return Exported{}, err
	}
	host := r.cfg.PushTo
	var local *state.Registry
	if r.local {
		// Recorded before it starts: down finds and removes it whatever happens next.
		rec := state.Registry{Name: r.registryName(), Engine: eng.Name()}
		if err := r.record(func(st *state.Suite) { st.Registry = &rec }); err != nil {
			return Exported{}, err
		}
		l, err := registry.Start(ctx, eng.Name(), r.registryName(), log)
		if err != nil {
			return Exported{}, err
		}
		rec.HostPort = l.HostPort
		if err := r.record(func(st *state.Suite) { st.Registry = &rec }); err != nil {
			return Exported{}, err
		}
		held := rec
		local = &held
		r.addRegistryPlace(ctx, l)
		host = l.Host()
	}
	insecure := r.insecure(host)
	pushed := make([]state.Image, len(b.Images))
	for i, img := range b.Images {
		// Like with like: the containerd store pushes the host platform's manifest (see
		// engine.Engine.Push), which is not the engine's ID when that names an index.
		want := img.EngineID
		if img.Manifest != "" {
			want = img.Manifest
		}
		ref, err := imageref.Parse(img.Ref)
		if err != nil {
			return Exported{}, err
		}
		dst := host + "/" + ref.Path() + ":" + ref.Tag()
		start := time.Now()
		if err := eng.Push(ctx, img.Ref, dst, insecure); err != nil {
			return Exported{}, fmt.Errorf("%w (nothing was pruned: the images are still in %s)", err, eng.Name())
		}
		digest, err := registry.Verify(ctx, dst, want, insecure)
		if err != nil {
			return Exported{}, fmt.Errorf("%w (nothing was pruned: the images are still in %s)", err, eng.Name())
		}
		log("pushed %s and read it back (%s) in %s", dst, digest, time.Since(start).Round(10*time.Millisecond))
		if r.cfg.PushTag != "" && !r.local {
			also := host + "/" + ref.Path() + ":" + r.cfg.Suite.Name + "-" + r.cfg.PushTag
			if err := eng.Push(ctx, img.Ref, also, insecure); err != nil {
				return Exported{}, fmt.Errorf("%w (nothing was pruned: the images are still in %s)", err, eng.Name())
			}
			if _, err := registry.Verify(ctx, also, want, insecure); err != nil {
				return Exported{}, fmt.Errorf("%w (nothing was pruned: the images are still in %s)", err, eng.Name())
			}
			log("also pushed it as %s (IMAGE_PUSH_TAG)", also)
		}
		pushed[i] = state.Image{Service: img.Service, Ref: dst, ID: img.ID, EngineID: img.EngineID, Manifest: img.Manifest}
	}
	p := &state.Pushed{Host: host, Images: pushed, Verified: time.Now().UTC()}
	return Exported{Built: b, Images: b.Images, Pushed: p, Registry: local}, r.record(func(st *state.Suite) { st.Pushed = p })
}

// addRegistryPlace adds the registry's volume to the measured places.
func (r *Run) addRegistryPlace(ctx context.Context, l registry.Local) {
	if path, err := l.VolumePath(ctx); err == nil && path != "" {
		r.where.add(roleRegistry, disk.Place{Name: "registry " + l.Name + " volume", Path: path})
	}
}

// removeRegistry deletes the suite's local registry and its volume.
func (r *Run) removeRegistry(ctx context.Context, rec *state.Registry, log func(string, ...any)) {
	if rec == nil {
		return
	}
	if err := localRegistry(rec).Remove(ctx); err != nil {
		log("could not remove the local registry %s: %v", rec.Name, err)
		return
	}
	log("removed the local registry %s and its volume", rec.Name)
	r.journal.Amend(func(st *state.Suite) { st.Registry, st.Pushed = nil, nil })
}

// clusterPatches: with a local registry, containerd reads registry hosts from certs.d.
func (r registryCarrier) clusterPatches() []string {
	if !r.local {
		return nil
	}
	return []string{registry.ContainerdPatch}
}

// attach connects the local registry to the cluster: the Kind network, every node's
// containerd, and the KEP-1755 ConfigMap.
func (r registryCarrier) attach(ctx context.Context, c Cluster) error {
	rec := c.Pruned.Exported.Registry
	if !r.local || rec == nil || rec.HostPort == "" {
		return nil
	}
	log := r.logger("cluster")
	ns, err := cluster.Nodes(ctx, c.Name, c.Provider)
	if err != nil {
		return err
	}
	l := localRegistry(rec)
	if err := l.Attach(ctx, cluster.Network(c.Provider), ns); err != nil {
		return err
	}
	if err := l.Document(ctx, c.Kubeconfig); err != nil {
		return err
	}
	log("the nodes pull %s from the local registry %s on network %s", l.Host(), l.Name, cluster.Network(c.Provider))
	return nil
}
