// Package progress says how a long copy is going, one log line at a time (CI logs have no
// terminal to redraw): bytes so far, the share of the total when it is known, and the rate.
package progress

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	units "github.com/docker/go-units"
)

// Interval is how often a report is logged.
const Interval = 5 * time.Second

// Reporter logs the progress of one copy every interval until Stop.
type Reporter struct {
	what  string
	total int64
	count func() int64
	log   func(format string, args ...any)
	start time.Time
	stop  chan struct{}
	once  sync.Once
	done  sync.WaitGroup
}

func start(what string, total int64, every time.Duration, count func() int64, log func(string, ...any)) *Reporter {
	r := &Reporter{what: what, total: total, count: count, log: log, start: time.Now(), stop: make(chan struct{})}
	r.done.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				r.log("%s", r.Line(r.count(), time.Since(r.start)))
			}
		}
	})
	return r
}

// Stop ends the reports; it waits for a report being logged.
func (r *Reporter) Stop() {
	r.once.Do(func() { close(r.stop) })
	r.done.Wait()
}

// Line is one report: "import: 120MiB of 300MiB (40%), 45MiB/s".
func (r *Reporter) Line(n int64, elapsed time.Duration) string {
	rate := ""
	if s := elapsed.Seconds(); s > 0 {
		rate = ", " + units.BytesSize(float64(n)/s) + "/s"
	}
	if r.total > 0 {
		return fmt.Sprintf("%s: %s of %s (%d%%)%s", r.what, units.BytesSize(float64(n)), units.BytesSize(float64(r.total)), n*100/r.total, rate)
	}
	return fmt.Sprintf("%s: %s%s", r.what, units.BytesSize(float64(n)), rate)
}

// Reader counts what is read through it and reports every interval until Stop.
type Reader struct {
	io.Reader
	n atomic.Int64
	*Reporter
}

// NewReader wraps src, whose size is total (0: unknown).
func NewReader(src io.Reader, what string, total int64, every time.Duration, log func(string, ...any)) *Reader {
	r := &Reader{Reader: src}
	r.Reporter = start(what, total, every, r.n.Load, log)
	return r
}

func (r *Reader) Read(p []byte) (int, error) {
	n, err := r.Reader.Read(p)
	r.n.Add(int64(n))
	return n, err
}

// Writer counts what is written through it and reports every interval until Stop.
type Writer struct {
	io.Writer
	n atomic.Int64
	*Reporter
}

// NewWriter wraps dst; what goes through it is total bytes (0: unknown).
func NewWriter(dst io.Writer, what string, total int64, every time.Duration, log func(string, ...any)) *Writer {
	w := &Writer{Writer: dst}
	w.Reporter = start(what, total, every, w.n.Load, log)
	return w
}

func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.Writer.Write(p)
	w.n.Add(int64(n))
	return n, err
}
