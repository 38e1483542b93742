package build

import (
	"context"
	"slices"

	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/imageref"
)

// Footprint splits the bytes a build added to the filesystem holding the engine's storage:
// PulledBases is that filesystem's growth across the pulls; SuiteImages is the built images' own
// layers (each image's size less its runtime base's, which they share); BuildCache is the rest
// of the growth across the builds (intermediate stages, layer cache). Measured is false when
// nothing was built or no measurement was possible.
type Footprint struct {
	PulledBases int64 `json:"pulledBases"`
	BuildCache  int64 `json:"buildCache"`
	SuiteImages int64 `json:"suiteImages"`
	Measured    bool  `json:"measured"`
}

func (o Options) used(ctx context.Context) (int64, bool) {
	if o.Used == nil {
		return 0, false
	}
	n, err := o.Used(ctx)
	return n, err == nil
}

// imageBytes is what the planned images hold, from one inspection: own, the bytes of the images
// built (those in built) less their runtime bases' (the bytes only they hold), and unique, all the
// planned images with the layers they share counted once (each distinct runtime base once, plus
// each image's own layers), about the size of an archive of them all.
func imageBytes(ctx context.Context, eng engine.Engine, planned []Planned, built func(Planned) bool) (own, unique int64, err error) {
	var refs []string
	for _, p := range planned {
		refs = append(refs, p.Ref)
		if p.Runtime != "" {
			refs = append(refs, p.Runtime)
		}
	}
	images, err := eng.Inspect(ctx, refs)
	if err != nil {
		return 0, 0, err
	}
	size := func(ref string) int64 {
		for _, img := range images {
			if slices.ContainsFunc(img.Refs, func(r string) bool { return imageref.Same(r, ref) }) {
				return img.Size
			}
		}
		return 0
	}
	var bases []string
	for _, p := range planned {
		mine := size(p.Ref)
		if base := size(p.Runtime); p.Runtime != "" && base > 0 {
			mine -= base
			if !slices.Contains(bases, p.Runtime) {
				bases = append(bases, p.Runtime)
				unique += base
			}
		}
		unique += max(mine, 0)
		if built(p) {
			own += max(mine, 0)
		}
	}
	return own, unique, nil
}
