// Package load streams verified images into the containerd of every Kind node — a suite's archive
// layout image by image (Layout), or a docker-archive whole (ArchiveWith, as kind does) — and
// checks afterwards that each node holds every wanted image, by ID and reference.
package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/kind/pkg/cluster/nodes"

	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/progress"
)

// Image is an image the archive holds and every node must end up with.
type Image struct {
	Ref string // e.g. "localhost/datastorage:aianalysis-0123abcd4567"
	ID  string // "sha256:<config digest>", the same in the engine, the archive and the node
}

// NodeResult says what happened on one node.
type NodeResult struct {
	Name     string
	Imported bool // false: every image was already present
	Duration time.Duration
}

// Result of Archive; Images were checked on every node.
type Result struct {
	Nodes  []NodeResult
	Images []Image
}

// How long to wait for the CRI (kubelet's view) to list freshly imported images; containerd's
// CRI plugin learns about ctr imports through events, asynchronously.
var (
	verifyTimeout  = 15 * time.Second
	verifyInterval = 250 * time.Millisecond
)

// Archive imports the docker-archive at archivePath into every node concurrently, skipping nodes
// that already hold every wanted image, then checks every wanted image on every node. The layer
// blobs are discarded once unpacked.
func Archive(ctx context.Context, ns []nodes.Node, archivePath string, want []Image, log func(format string, args ...any)) (Result, error) {
	return ArchiveWith(ctx, ns, archivePath, want, Options{Log: log})
}

// Options tune ArchiveWith.
type Options struct {
	// KindStyle imports as `kind load` does: the layer blobs stay in the node's content store
	// beside the unpacked snapshots (what the benchmark compares against).
	KindStyle bool
	Log       func(format string, args ...any)
}

// ArchiveWith is Archive with options.
func ArchiveWith(ctx context.Context, ns []nodes.Node, archivePath string, want []Image, o Options) (Result, error) {
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if len(ns) == 0 {
		return Result{}, fmt.Errorf("load %s: no nodes given", archivePath)
	}
	if err := validate(want); err != nil {
		return Result{}, fmt.Errorf("load %s: %w", archivePath, err)
	}
	if _, err := os.Stat(archivePath); err != nil {
		return Result{}, fmt.Errorf("load image archive: %w", err)
	}

	results := make([]NodeResult, len(ns))
	errs := make([]error, len(ns))
	var wg sync.WaitGroup
	for i, n := range ns {
		wg.Go(func() {
			results[i], errs[i] = loadNode(ctx, n, archivePath, want, o, logf)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Result{Nodes: results}, err
	}
	return Result{Nodes: results, Images: want}, nil
}

func loadNode(ctx context.Context, n nodes.Node, archivePath string, want []Image, o Options, logf func(string, ...any)) (res NodeResult, err error) {
	discard := !o.KindStyle
	start := time.Now()
	res.Name = n.String()
	defer func() { res.Duration = time.Since(start) }()
	have, err := listImages(ctx, n)
	if err != nil {
		return res, err
	}
	if len(missing(have, want)) == 0 {
		logf("node %s: %d image(s) already present, not importing %s", n, len(want), archivePath)
		return res, nil
	}
	snapshotter, err := detectSnapshotter(ctx, n)
	if err != nil {
		return res, err
	}
	err = importWhole(ctx, n, archivePath, snapshotter, discard, logf)
	if err != nil {
		return res, fmt.Errorf("import %s: %w", archivePath, err)
	}
	res.Imported = true
	if err := verify(ctx, n, want); err != nil {
		return res, fmt.Errorf("after importing %s: %w", archivePath, err)
	}
	logf("node %s: imported and checked %d image(s) in %s", n, len(want), time.Since(start).Round(10*time.Millisecond))
	return res, nil
}

// importWhole streams the whole archive into one ctr import.
func importWhole(ctx context.Context, n nodes.Node, archivePath, snapshotter string, discard bool, logf func(string, ...any)) error {
	var size int64
	if fi, err := os.Stat(archivePath); err == nil {
		size = fi.Size()
	}
	logf("node %s: importing %s (snapshotter %s)", n, archivePath, snapshotter)
	open := func() (io.ReadCloser, error) { return os.Open(archivePath) }
	discarded, err := importStream(ctx, n, open, size, "node "+n.String()+": streamed", importArgs(snapshotter, discard, true), logf)
	if discarded {
		collectGarbage(ctx, n, logf)
	}
	return err
}

// piped opens what write writes as a reader.
func piped(write func(io.Writer) error) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		p := &pipedSource{PipeReader: pr, written: make(chan error, 1)}
		go func() {
			err := write(pw)
			pw.CloseWithError(err)
			p.written <- err
		}()
		return p, nil
	}
}

// pipedSource reads what a writer writes; Close stops the writer and returns its error, which
// is why the stream ended early when it did (a blob that changed on disk, say).
type pipedSource struct {
	*io.PipeReader
	written chan error
}

func (p *pipedSource) Close() error {
	p.PipeReader.Close()
	if err := <-p.written; err != nil && !errors.Is(err, io.ErrClosedPipe) {
		return err
	}
	return nil
}

// importStream runs one ctr import (args, from importArgs) of what open reads (size bytes, for
// progress), and says whether it discarded the unpacked blobs (collectGarbage removes them).
// On containerd 1.x, whose ctr has no --local, it imports again like kind does (blobs kept).
func importStream(ctx context.Context, n nodes.Node, open func() (io.ReadCloser, error), size int64, label string, args []string, logf func(string, ...any)) (bool, error) {
	discard := slices.Contains(args, "--discard-unpacked-layers")
	run := func(args []string) error {
		src, err := open()
		if err != nil {
			return fmt.Errorf("node %s: %w", n, err)
		}
		r := progress.NewReader(src, label, size, progress.Interval, logf)
		_, err = nodeRun(ctx, n, r, args...)
		r.Stop()
		if cerr := src.Close(); cerr != nil { // the source's own failure explains the import's
			return fmt.Errorf("node %s: %w", n, cerr)
		}
		return err
	}
	err := run(args)
	if err != nil && discard && strings.Contains(err.Error(), "flag provided but not defined") {
		logf("node %s: ctr has no --local, importing like kind does (layers kept twice)", n)
		return false, run(slices.DeleteFunc(slices.Clone(args), func(a string) bool { return a == "--local" || a == "--discard-unpacked-layers" }))
	}
	return err == nil && discard, err
}

// collectGarbage has the node's containerd remove now what an import discarded, instead of at its
// next scheduled collection (seconds later, or longer on a quiet node): deleting a lease with
// --sync runs a collection and waits for it. Measured: a 200 MiB image's blobs gone in 85 ms.
func collectGarbage(ctx context.Context, n nodes.Node, logf func(string, ...any)) {
	out, err := nodeRun(ctx, n, nil, "ctr", "--namespace=k8s.io", "leases", "create")
	fields := strings.Fields(string(out))
	if err == nil && len(fields) == 0 {
		err = fmt.Errorf("ctr leases create printed no lease")
	}
	if err == nil {
		_, err = nodeRun(ctx, n, nil, "ctr", "--namespace=k8s.io", "leases", "delete", "--sync", fields[0])
	}
	if err != nil {
		logf("node %s: the discarded blobs go at containerd's next collection: %v", n, err)
	}
}

// importArgs is kind's nodeutils.LoadImageArchive command, the archive on stdin, for the host's
// platform (the nodes') instead of kind's --all-platforms: an index in the archive then needs
// only that platform's manifest, not its attestations' or other platforms' (containerd 2.x's
// --local import fails on those otherwise, containerd#12903). With discard, ctr drops each layer
// blob once it is unpacked into the snapshotter, so a node holds an image once instead of twice
// (measured: +21 MB instead of +42 MB for a 21 MB archive); containerd 2.x allows that only with
// --local (no transfer service). Pods run from such images as usual. With digests, each image
// is also named by its manifest's digest, as kind does; a partial image is not.
func importArgs(snapshotter string, discard, digests bool) []string {
	args := []string{"ctr", "--namespace=k8s.io", "images", "import"}
	if discard {
		args = append(args, "--local", "--discard-unpacked-layers")
	}
	args = append(args, "--platform", engine.HostPlatform)
	if digests {
		args = append(args, "--digests")
	}
	return append(args, "--snapshotter="+snapshotter, "-")
}

// verify waits until the node's CRI lists every wanted image by ID and reference.
func verify(ctx context.Context, n nodes.Node, want []Image) error {
	var miss []Image
	err := wait.PollUntilContextTimeout(ctx, verifyInterval, verifyTimeout, true, func(ctx context.Context) (bool, error) {
		have, err := listImages(ctx, n)
		if err != nil {
			return false, err
		}
		miss = missing(have, want)
		return len(miss) == 0, nil
	})
	if err == nil || ctx.Err() != nil || len(miss) == 0 {
		return err
	}
	var names []string
	for _, m := range miss {
		names = append(names, fmt.Sprintf("%s (%s)", m.Ref, m.ID))
	}
	return fmt.Errorf("node %s is missing %s", n, strings.Join(names, ", "))
}

// Missing returns the wanted images the node lacks (by ID and reference, as the kubelet sees them).
func Missing(ctx context.Context, n nodes.Node, want []Image) ([]Image, error) {
	have, err := listImages(ctx, n)
	if err != nil {
		return nil, err
	}
	return missing(have, want), nil
}

// listImages lists the node's images as the kubelet sees them.
func listImages(ctx context.Context, n nodes.Node) ([]nodeImage, error) {
	out, err := nodeRun(ctx, n, nil, "crictl", "images", "-o", "json")
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	imgs, err := parseCrictlImages(out)
	if err != nil {
		return nil, fmt.Errorf("list images in node %s: %w", n, err)
	}
	return imgs, nil
}

func detectSnapshotter(ctx context.Context, n nodes.Node) (string, error) {
	out, err := nodeRun(ctx, n, nil, "containerd", "config", "dump")
	if err != nil {
		return "", fmt.Errorf("detect containerd snapshotter: %w", err)
	}
	s, err := parseSnapshotter(string(out))
	if err != nil {
		return "", fmt.Errorf("detect containerd snapshotter in node %s: %w", n, err)
	}
	return s, nil
}

// nodeRun runs argv in the node and returns stdout only: ctr's cgroup v1 deprecation warning and
// other diagnostics go to stderr, which only shows up in errors.
func nodeRun(ctx context.Context, n nodes.Node, stdin io.Reader, argv ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := n.CommandContext(ctx, argv[0], argv[1:]...).SetStdout(&stdout).SetStderr(&stderr)
	if stdin != nil {
		cmd.SetStdin(stdin)
	}
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("node %s: %s: %w: %s", n, strings.Join(argv, " "), err, engine.LastLines(stderr.String(), 20))
	}
	return stdout.Bytes(), nil
}
