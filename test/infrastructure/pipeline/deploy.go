package pipeline

import (
	"context"
	"io"
	"path/filepath"

	"github.com/kindling-dev/kindling/test/infrastructure/coverage"
	"github.com/kindling-dev/kindling/test/infrastructure/deploy"
)

// Deployed is the deploy phase's product.
type Deployed struct {
	Loaded Loaded
}

// Deploy applies the suite's manifests for the images load put on the nodes. It never touches the
// container engine: its only input is Loaded.
func (r *Run) Deploy(ctx context.Context, l Loaded) (Deployed, error) {
	err := r.timed(ctx, "deploy", "DEPLOYED", func() error {
		return Deploy(ctx, r.cfg, l, r.logger("deploy"), r.out)
	})
	if err != nil {
		return Deployed{}, err
	}
	return Deployed{Loaded: l}, nil
}

// Deploy is the deploy phase on its own: manifests in, nothing but the Kubernetes API touched.
func Deploy(ctx context.Context, cfg Config, l Loaded, log func(string, ...any), diagnostics io.Writer) error {
	images := make([]deploy.Image, len(l.Images))
	for i, img := range l.Images {
		images[i] = deploy.Image{Service: img.Service, Ref: img.Ref, ID: img.ID}
	}
	var reg *deploy.Registry
	if l.Registry != nil {
		reg = &deploy.Registry{Host: l.Registry.Host, Tag: l.Registry.Tag}
	}
	_, err := deploy.Apply(ctx, deploy.Options{
		Kubeconfig:     l.Cluster.Kubeconfig,
		ManifestsDir:   filepath.Join(cfg.Root, cfg.Suite.Manifests),
		Images:         images,
		Registry:       reg,
		RolloutTimeout: cfg.RolloutTimeout,
		CoverageDir:    coverageNodeDir(cfg),
		Log:            log,
		Diagnostics:    diagnostics,
	})
	if err != nil {
		return err
	}
	// The tests reach the services through these; deployed means they answer.
	return deploy.WaitReachable(ctx, cfg.Suite.URLs(), cfg.RolloutTimeout, log)
}

func coverageNodeDir(cfg Config) string {
	if !cfg.Coverage {
		return ""
	}
	return coverage.NodeDir
}
