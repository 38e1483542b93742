package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/kindling-dev/kindling/test/infrastructure/build"
	"github.com/kindling-dev/kindling/test/infrastructure/state"
)

// Build compiles the suite's binaries, derives the image tags from them and builds the images that
// are not there yet. After prune the images are gone from the engine on purpose: when a verified
// archive (or the cluster's nodes) holds images with the same tags, that is the build's product and
// nothing is rebuilt.
func (r *Run) Build(ctx context.Context) error {
	if r.built != nil {
		return nil
	}
	return r.timed(ctx, "build", "IMAGES_BUILT", func() error {
		b, err := r.build(ctx)
		r.built = ptr(b, err)
		return err
	})
}

func (r *Run) build(ctx context.Context) (Built, error) {
	log := r.logger("build")
	if reg := r.cfg.Registry; reg != nil {
		log("skipped: registry mode, images come from %s with tag %s", reg.Host, reg.Tag)
		return Built{Images: registryImages(r.cfg, *reg)}, nil
	}
	eng, err := r.engine(ctx)
	if err != nil {
		return Built{}, err
	}
	opts := build.Options{
		Engine:      eng,
		Suite:       r.cfg.Suite.Name,
		RepoRoot:    r.cfg.Root,
		WorkDir:     filepath.Join(r.cfg.RunDir, "build"),
		Parallelism: r.cfg.Parallelism,
		Log:         log,
	}
	var services []build.Service
	for _, name := range r.cfg.Suite.Services {
		services = append(services, build.Service{Name: name})
	}
	planned, err := build.Plan(ctx, opts, services)
	// The build contexts hold a copy of every binary: gone once the images are built or found.
	defer os.RemoveAll(opts.WorkDir)
	if err != nil {
		return Built{}, err
	}
	if !sameRefs(r.st.Images, planned) {
		r.beginRun(eng.Name())
	}
	opts.RunID, r.runID = r.st.RunID, r.st.RunID

	if len(r.st.Images) == len(planned) {
		if r.loadedStillTrue(ctx) {
			log("up to date: the images are on every node of cluster %s", r.st.Loaded.Cluster)
			return Built{Images: r.st.Images}, nil
		}
		if r.archiveStillTrue() {
			log("up to date: the images are in the verified archive %s", r.st.Archive.Path)
			return Built{Images: r.st.Images}, nil
		}
	}

	results, err := build.Images(ctx, opts, planned)
	if err != nil {
		return Built{}, err
	}
	images := make([]state.Image, len(results))
	for i, res := range results {
		images[i] = state.Image{Service: res.Service.Name, Ref: res.Ref, ID: res.ID}
	}
	r.st.Images, r.st.Archive, r.st.Pruned, r.st.Loaded = images, nil, nil, nil
	if err := r.save(); err != nil {
		return Built{}, err
	}
	return Built{Images: images}, nil
}

// sameRefs reports whether the recorded images are exactly the planned ones.
func sameRefs(recorded []state.Image, planned []build.Planned) bool {
	if len(recorded) != len(planned) {
		return false
	}
	var a, b []string
	for i := range recorded {
		a = append(a, recorded[i].Ref)
		b = append(b, planned[i].Ref)
	}
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func registryImages(cfg Config, reg Registry) []state.Image {
	var images []state.Image
	for _, svc := range cfg.Suite.Services {
		images = append(images, state.Image{Service: svc, Ref: fmt.Sprintf("%s/%s:%s", reg.Host, svc, reg.Tag)})
	}
	return images
}
