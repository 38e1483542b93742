package budget

import (
	"fmt"
	"strconv"

	"github.com/kindling-dev/kindling/test/infrastructure/disk"
)

// Defaults stand in for what no earlier run of the suite measured.
const (
	DefaultNodeBytes  = 1 << 30
	DefaultLoadFactor = 2.0 // an import holds the blobs and their unpacked snapshots until it ends
)

// Facts are what the predictions rest on: measured by earlier runs of the suite (kept in its run
// dir) or known from this run's products. Zero means unknown.
type Facts struct {
	BuildBytes   uint64  `json:"buildBytes,omitempty"`   // how far the suite's builds raised the engine's filesystem (peak)
	ImageBytes   uint64  `json:"imageBytes,omitempty"`   // the suite's images, shared layers counted once where known
	ArchiveBytes uint64  `json:"archiveBytes,omitempty"` // the suite's archive
	NodeBytes    uint64  `json:"nodeBytes,omitempty"`    // what creating one node added
	LoadFactor   float64 `json:"loadFactor,omitempty"`   // a node's peak growth during a load, per archive byte
	// ExportFactor is how far an export raised the archive's filesystem at its peak, per archive
	// byte: more than 1 where the engine's save keeps temporary copies of layers there.
	ExportFactor float64 `json:"exportFactor,omitempty"`
	Nodes        int     `json:"nodes,omitempty"`
	// BuildSeconds is how long each service's image build took last time, by service.
	BuildSeconds map[string]float64 `json:"buildSeconds,omitempty"`
	// BuildPeaks is how far each service's last cold build raised the engine's filesystem, and
	// PulledBytes how far the pulls of the bases raised it before the builds.
	BuildPeaks  map[string]uint64 `json:"buildPeaks,omitempty"`
	PulledBytes uint64            `json:"pulledBytes,omitempty"`
}

// Places are where a run writes: the engine's storage (builds; and the nodes' storage until the
// cluster exists, since Kind's nodes keep it in the engine's volumes), the archive dir, the nodes.
type Places struct {
	Engine, Archive, Nodes disk.Place
}

// Phases that write, in order.
var Phases = []string{"build", "export", "cluster", "load"}

// Predict returns what phase will write, and a note when it cannot be predicted.
func Predict(phase string, f Facts, p Places) ([]Need, string) {
	nodes := max(f.Nodes, 1)
	nodeBytes, nodeBasis := f.NodeBytes, "measured"
	if nodeBytes == 0 {
		nodeBytes, nodeBasis = DefaultNodeBytes, "default"
	}
	factor, factorBasis := f.LoadFactor, "measured"
	if factor == 0 {
		factor, factorBasis = DefaultLoadFactor, "default"
	}
	archiveBytes, archiveBasis := f.ArchiveBytes, "archive"
	if archiveBytes == 0 {
		archiveBytes, archiveBasis = f.ImageBytes, "images"
	}
	switch phase {
	case "build":
		if svc, peak := largestBuild(f); peak > 0 {
			// Builds wait for room beside each other: the phase needs room for one at least.
			return []Need{{Place: p.Engine, Bytes: f.PulledBytes + peak, Why: fmt.Sprintf("one build at a time at least: the bases %s and the largest build's peak %s (%s); "+
				"the last cold build phase peaked at %s; builds wait for room beyond the least", size(f.PulledBytes), size(peak), svc, size(f.BuildBytes))}}, ""
		}
		if f.BuildBytes == 0 {
			return nil, "unknown until the suite was built once"
		}
		return []Need{{Place: p.Engine, Bytes: f.BuildBytes, Why: "the last cold builds' peak (pulled bases, build cache, images) " + size(f.BuildBytes)}}, ""
	case "export":
		if archiveBytes == 0 {
			return nil, "unknown until the images are built"
		}
		if f.ExportFactor > 1 {
			return []Need{{Place: p.Archive, Bytes: uint64(f.ExportFactor * float64(archiveBytes)), Why: fmt.Sprintf("%s × the %s %s (measured: the archive and what the engine's save holds beside it)",
				strconv.FormatFloat(f.ExportFactor, 'f', 2, 64), archiveBasis, size(archiveBytes))}}, ""
		}
		return []Need{{Place: p.Archive, Bytes: archiveBytes, Why: "the archive, about its " + archiveBasis + " " + size(archiveBytes)}}, ""
	case "cluster":
		return []Need{{Place: p.Nodes, Bytes: uint64(nodes) * nodeBytes,
			Why: fmt.Sprintf("%d node(s) × %s per node (%s)", nodes, size(nodeBytes), nodeBasis)}}, ""
	case "load":
		if archiveBytes == 0 {
			return nil, "unknown until the images are built"
		}
		return []Need{{Place: p.Nodes, Bytes: uint64(float64(nodes) * factor * float64(archiveBytes)),
			Why: fmt.Sprintf("%d node(s) × %s × the %s %s (%s: blobs and unpacked snapshots until the import ends)",
				nodes, strconv.FormatFloat(factor, 'f', 2, 64), archiveBasis, size(archiveBytes), factorBasis)}}, ""
	}
	return nil, ""
}

// largestBuild is the service whose build peaked highest, and that peak.
func largestBuild(f Facts) (string, uint64) {
	svc, peak := "", uint64(0)
	for s, p := range f.BuildPeaks {
		if p > peak || p == peak && s < svc {
			svc, peak = s, p
		}
	}
	return svc, peak
}

// Step is one phase of a plan.
type Step struct {
	Phase string
	Needs []Need
	Note  string // why there is no prediction
}

// Plan predicts every phase that writes: what each will raise its filesystem by at its peak. For
// the build that is where the last build phase peaked; the budget asks less of it (Predict: room
// for one build at least, since builds wait for room beside each other).
func Plan(f Facts, p Places) []Step {
	steps := make([]Step, 0, len(Phases))
	for _, ph := range Phases {
		needs, note := Predict(ph, f, p)
		if ph == "build" && f.BuildBytes > 0 {
			least := ""
			if len(needs) > 0 {
				least = fmt.Sprintf("; builds wait for room beyond the least, %s", size(needs[0].Bytes))
			}
			needs = []Need{{Place: p.Engine, Bytes: f.BuildBytes, Why: "where the last build phase peaked (pulled bases, build cache, images)" + least}}
		}
		steps = append(steps, Step{Phase: ph, Needs: needs, Note: note})
	}
	return steps
}

// ProgressiveLoad is the load's need when each node imports image by image in parts: it ends
// with the archive's images unpacked and holds at most the largest part's blobs beside them.
func ProgressiveLoad(f Facts, part uint64, p Places) []Need {
	nodes := max(f.Nodes, 1)
	return []Need{{Place: p.Nodes, Bytes: uint64(nodes) * (f.ArchiveBytes + part),
		Why: fmt.Sprintf("%d node(s) × (the archive %s unpacked + a part's blobs, at most %s), image by image",
			nodes, size(f.ArchiveBytes), size(part))}}
}
