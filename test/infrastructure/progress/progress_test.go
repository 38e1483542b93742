package progress

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

type lines struct {
	mu sync.Mutex
	l  []string
}

func (l *lines) log(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.l = append(l.l, fmt.Sprintf(format, args...))
}

func (l *lines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.l...)
}

func TestLine(t *testing.T) {
	r := &Reporter{what: "import", total: 300 << 20}
	if got := r.Line(120<<20, 2*time.Second); got != "import: 120MiB of 300MiB (40%), 60MiB/s" {
		t.Errorf("Line = %q", got)
	}
	r.total = 0
	if got := r.Line(5<<20, 0); got != "import: 5MiB" {
		t.Errorf("Line without total or time = %q", got)
	}
}

func TestReaderCountsAndReports(t *testing.T) {
	var l lines
	pr, pw := io.Pipe()
	r := NewReader(pr, "copy", 2<<20, 10*time.Millisecond, l.log)
	go func() {
		pw.Write(make([]byte, 1<<20))
		time.Sleep(50 * time.Millisecond)
		pw.Write(make([]byte, 1<<20))
		pw.Close()
	}()
	n, err := io.Copy(io.Discard, r)
	r.Stop()
	if err != nil || n != 2<<20 {
		t.Fatalf("copied %d, %v", n, err)
	}
	got := l.all()
	if !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "copy: 1MiB of 2MiB (50%), ") }) {
		t.Errorf("reports %q, want one at half way", got)
	}
	after := len(l.all())
	time.Sleep(30 * time.Millisecond)
	if len(l.all()) != after {
		t.Error("reports went on after Stop")
	}
}
