package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"sigs.k8s.io/kind/pkg/cluster/nodes"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
	"github.com/kindling-dev/kindling/test/infrastructure/progress"
)

// Stream imports what save writes straight into every node, with no archive on disk: save runs
// once, and its output is fanned out, as it comes, to each node's import and to a verifier that
// checks it is an archive of refs with every blob intact (archive.VerifyStream). The images it
// found are then checked on every node; only after that may the engine's copies go, since until
// then the engine holds the only copy.
func Stream(ctx context.Context, ns []nodes.Node, save func(ctx context.Context, w io.Writer) error, refs []string, o Options) (Result, archive.Verified, error) {
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if len(ns) == 0 {
		return Result{}, archive.Verified{}, errors.New("stream images: no nodes given")
	}
	snapshotters := make([]string, len(ns))
	for i, n := range ns {
		s, err := detectSnapshotter(ctx, n)
		if err != nil {
			return Result{}, archive.Verified{}, err
		}
		snapshotters[i] = s
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	start := time.Now()
	writers := make([]io.Writer, len(ns), len(ns)+1)
	pipes := make([]*io.PipeWriter, len(ns))
	results := make([]NodeResult, len(ns))
	errs := make([]error, len(ns)+1)
	var wg sync.WaitGroup
	for i, n := range ns {
		pr, pw := io.Pipe()
		writers[i], pipes[i] = pw, pw
		wg.Go(func() {
			_, err := nodeRun(ctx, n, pr, importArgs(snapshotters[i], !o.KindStyle)...)
			// A node that stops reading must not block the others: its pipe fails the save.
			pr.CloseWithError(errors.Join(err, io.ErrClosedPipe))
			if err == nil && !o.KindStyle {
				collectGarbage(ctx, n, logf)
			}
			if err != nil {
				errs[i] = fmt.Errorf("node %s: import: %w", n, err)
				cancel()
			}
			results[i] = NodeResult{Name: n.String(), Imported: err == nil, Duration: time.Since(start)}
		})
	}
	vr, vw := io.Pipe()
	writers = append(writers, vw)
	var verified archive.Verified
	var verr error
	wg.Go(func() {
		verified, verr = archive.VerifyStream(vr, refs)
		vr.CloseWithError(errors.Join(verr, io.ErrClosedPipe))
	})
	logf("streaming %d image(s) from the engine into %d node(s), no archive", len(refs), len(ns))
	saved, sw := io.Pipe()
	go func() { sw.CloseWithError(save(ctx, sw)) }()
	src := progress.NewReader(saved, "streamed", 0, progress.Interval, logf)
	_, err := io.Copy(io.MultiWriter(writers...), src)
	src.Stop()
	saved.CloseWithError(errors.Join(err, io.ErrClosedPipe))
	for _, pw := range append(pipes, vw) {
		pw.CloseWithError(err) // nil: the readers see the end of the archive
	}
	wg.Wait()
	if err != nil && ctx.Err() == nil {
		errs[len(ns)] = fmt.Errorf("save: %w", err)
	}
	if verr != nil {
		errs = append(errs, fmt.Errorf("the streamed archive: %w", verr))
	}
	if err := errors.Join(errs...); err != nil {
		return Result{Nodes: results}, archive.Verified{}, err
	}
	want := make([]Image, len(verified.Images))
	for i, img := range verified.Images {
		want[i] = Image{Ref: img.Ref, ID: img.ID}
	}
	for _, n := range ns {
		if err := verify(ctx, n, want); err != nil {
			return Result{Nodes: results}, archive.Verified{}, err
		}
	}
	logf("imported and checked %d image(s) on %d node(s) in %s", len(want), len(ns), time.Since(start).Round(10*time.Millisecond))
	return Result{Nodes: results, Images: want}, verified, nil
}
