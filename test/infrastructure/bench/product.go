package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
	"github.com/kindling-dev/kindling/test/infrastructure/budget"
	"github.com/kindling-dev/kindling/test/infrastructure/build"
	"github.com/kindling-dev/kindling/test/infrastructure/cluster"
	"github.com/kindling-dev/kindling/test/infrastructure/disk"
	"github.com/kindling-dev/kindling/test/infrastructure/pipeline"
	"github.com/kindling-dev/kindling/test/infrastructure/registry"
	"github.com/kindling-dev/kindling/test/infrastructure/state"
	"github.com/kindling-dev/kindling/test/infrastructure/suite"
)

// newProduct is the product's run for a kindling strategy: a pipeline.Run of the suite the
// workload's images are labelled with, whose services are those images, with the strategy's transport and overlap,
// no disk budget (the benchmark measures, it does not refuse), a scoped prune.
func newProduct(env Env, strategy string) (*pipeline.Run, error) {
	var services []build.Service
	for i := range env.Workload.Refs {
		services = append(services, build.Service{Name: fmt.Sprintf("app-%d", i)})
	}
	cfg := pipeline.Config{
		Root:           env.Dir,
		Suite:          suite.Suite{Name: env.Workload.Suite, Services: services},
		Engine:         env.Engine.Name(),
		Prune:          pipeline.PruneScoped,
		RunDir:         filepath.Join(env.Dir, "run"),
		ArchiveDir:     filepath.Join(env.Dir, "archives"),
		ClusterName:    env.Cluster,
		NodeImage:      env.NodeImage,
		Workers:        env.Workers,
		DiskBudget:     budget.Budget{Off: true},
		LocalRegistry:  strategy == KindlingRegistry,
		Overlap:        strategy == KindlingOverlap,
		RolloutTimeout: 3 * time.Minute,
	}
	return pipeline.New(cfg, lineWriter(env.logf, strategy))
}

// lineWriter passes the product's output to log, line by line, prefixed with the strategy.
func lineWriter(log func(string, ...any), strategy string) io.Writer {
	pr, pw := io.Pipe()
	go func() {
		s := bufio.NewScanner(pr)
		for s.Scan() {
			log("%s: %s", strategy, s.Text())
		}
		pr.CloseWithError(s.Err())
	}()
	return pw
}

// built is the build's product for the workload the benchmark built: its images as the engine
// holds them, the bases its build made and the BuildKit records it left, for the product's prune.
func (r *run) built(ctx context.Context) (pipeline.Built, error) {
	eng := r.env.Engine
	b := pipeline.Built{RunID: r.env.Workload.RunID, Leftovers: &state.Leftovers{}}
	for i, ref := range r.env.Workload.Refs {
		id, found, err := eng.ImageID(ctx, ref)
		if err != nil || !found {
			return b, fmt.Errorf("workload image %s: found %v, %v", ref, found, err)
		}
		manifest, err := eng.PlatformManifest(ctx, ref)
		if err != nil {
			return b, err
		}
		b.Images = append(b.Images, state.Image{Service: fmt.Sprintf("app-%d", i), Ref: ref, EngineID: id, Manifest: manifest})
	}
	for _, base := range r.env.Workload.Bases {
		if id, found, err := eng.ImageID(ctx, base); err == nil && found {
			b.Leftovers.Pulled = append(b.Leftovers.Pulled, state.Image{Ref: base, EngineID: id})
		}
	}
	if r.env.Workload.BuildCache != nil {
		b.Leftovers.BuildCache = r.env.Workload.BuildCache()
	}
	return b, nil
}

// overlap starts the product's cluster beside the workload's build (E2E_OVERLAP); the channel
// gets what it created.
func (r *run) overlap(ctx context.Context, p *pipeline.Run) <-chan earlyCluster {
	done := make(chan earlyCluster, 1)
	go func() {
		e, err := p.Overlap(ctx, pipeline.Observed{})
		if err == nil && e.Cluster != nil {
			err = r.measureNodes(ctx, *e.Cluster)
		}
		done <- earlyCluster{e, err}
	}()
	return done
}

type earlyCluster struct {
	early pipeline.Early
	err   error
}

// kindlingProduct runs the product's export, prune, cluster and load on the built workload,
// which it first adopts as the product's build (its garbage dropped, as the build phase does).
// With the local registry, load leaves the pulls to the kubelet; the benchmark has every node
// pull every image then (crictl pull), as the pods would.
func (r *run) kindlingProduct(ctx context.Context, p *pipeline.Run, early <-chan earlyCluster) (err error) {
	defer func() {
		if early != nil { // a failure before the cluster phase must not leave the overlap running
			if e := <-early; err == nil {
				err = e.err
			}
		}
	}()
	b, err := r.built(ctx)
	if err != nil {
		return err
	}
	// What the product's build phase does after its builds (counted in export's time here).
	if b, err = p.Adopt(ctx, b); err != nil {
		return err
	}
	e, err := p.Export(ctx, b)
	if err != nil {
		return err
	}
	if err := r.exported(ctx, e); err != nil {
		return err
	}
	r.done(ctx, "export")
	pr, err := p.Prune(ctx, e)
	if err != nil {
		return err
	}
	r.done(ctx, "prune")
	var ec earlyCluster
	if early != nil {
		ec, early = <-early, nil
		if ec.err != nil {
			return ec.err
		}
	}
	c, err := p.Cluster(ctx, pr, ec.early)
	if err != nil {
		return err
	}
	if ec.early.Cluster == nil {
		if err := r.measureNodes(ctx, c.Cluster); err != nil {
			return err
		}
	}
	r.done(ctx, "cluster")
	l, err := p.Load(ctx, c)
	if err != nil {
		return err
	}
	if l.Registry != nil {
		if err := r.pull(ctx, l); err != nil {
			return err
		}
	}
	r.done(ctx, "load")
	if err := r.nodeGrowth(ctx); err != nil {
		return err
	}
	r.done(ctx, "cleanup") // the product removed the archive as the nodes took it
	return nil
}

// exported notes what the product's export wrote — the archive's bytes, or the compressed
// layers pushed to the registry — and how its images are described, for the nodes' footprint.
func (r *run) exported(ctx context.Context, e pipeline.Exported) error {
	if e.Pushed != nil {
		seen := map[string]bool{}
		for _, img := range e.Pushed.Images {
			d, err := registry.Describe(ctx, img.Ref, true)
			if err != nil {
				return err
			}
			for _, layer := range d.Layers {
				if !seen[layer.Digest] { // a shared base is stored once
					seen[layer.Digest] = true
					r.result.ArchiveBytes += layer.Size
				}
			}
			r.images = append(r.images, d)
		}
		return nil
	}
	l, err := archive.OpenLayout(e.Archive.Path, e.Archive.SHA256)
	if err != nil {
		return err
	}
	r.result.ArchiveBytes = e.Archive.Size
	for _, img := range l.Images {
		r.images = append(r.images, img.Described()...)
	}
	return nil
}

// measureNodes adds the cluster's nodes to what the benchmark measures.
func (r *run) measureNodes(ctx context.Context, c state.Cluster) error {
	storage, err := cluster.NodeStorage(ctx, cluster.Cluster{Name: c.Name, Provider: c.Provider})
	if err != nil {
		return err
	}
	r.mu.Lock()
	for _, s := range storage {
		r.places = append(r.places, disk.Place{Name: "node " + s.Node + " /var", Path: s.Path})
	}
	r.mu.Unlock()
	r.nodes, err = cluster.Nodes(ctx, c.Name, c.Provider)
	return err
}

// pull has every node pull every loaded image from the registry, as the kubelet would.
func (r *run) pull(ctx context.Context, l pipeline.Loaded) error {
	errs := make([]error, len(r.nodes))
	var wg sync.WaitGroup
	for i, n := range r.nodes {
		wg.Go(func() {
			for _, img := range l.Images {
				if err := n.CommandContext(ctx, "crictl", "pull", img.Ref).Run(); err != nil {
					errs[i] = fmt.Errorf("node %s: crictl pull %s: %w", n, img.Ref, err)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
