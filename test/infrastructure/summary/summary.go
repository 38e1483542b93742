// Package summary renders the end of a run: the phases with their durations, the disk by phase
// with its peaks, what the builds added, the test counts and coverage — as text, as markdown for
// a GitHub step summary, and the disk timeline as an SVG in the run dir.
package summary

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/coverage"
	"github.com/kindling-dev/kindling/test/infrastructure/disk"
	"github.com/kindling-dev/kindling/test/infrastructure/e2etest"
	"github.com/kindling-dev/kindling/test/infrastructure/state"
	"github.com/kindling-dev/kindling/test/infrastructure/table"
	"github.com/kindling-dev/kindling/test/infrastructure/timeline"
)

// Phase is one phase that ran, and how long it took.
type Phase struct {
	Name     string
	Duration time.Duration
}

// Run is what a summary says about one suite's run.
type Run struct {
	Suite, RunID, Engine string
	Total                time.Duration
	Phases               []Phase
	Tests                *e2etest.Counts
	Coverage             []coverage.Result
	Footprint            *state.Footprint
	Disk                 *disk.Recorder
	// Budget is what the run may add to the engine's filesystem (E2E_DISK_BUDGET); 0 when off.
	Budget uint64
	// Dir receives disk-timeline.svg; "" writes none.
	Dir string
}

// Print writes the text summary to w, the timeline into the run dir and, when GITHUB_STEP_SUMMARY
// is set, the markdown summary to it. Nothing is printed for a run that ran no phase.
func Print(w io.Writer, r Run) {
	if len(r.Phases) == 0 {
		return
	}
	fmt.Fprintf(w, "\nSummary of %s (run %s, engine %s, total %s)\n", r.Suite, r.RunID, r.Engine, r.Total.Round(time.Second))
	rows := [][]string{{"phase", "duration"}}
	for _, p := range r.Phases {
		rows = append(rows, []string{p.Name, p.Duration.Round(100 * time.Millisecond).String()})
	}
	table.WriteText(w, "", rows)
	fmt.Fprintln(w)
	writeDisk(w, r.Disk.Phases(), r.Disk.LastError())
	if r.Dir != "" {
		if path, err := WriteTimeline(r); err != nil {
			fmt.Fprintf(w, "no disk timeline: %v\n", err)
		} else {
			fmt.Fprintf(w, "disk timeline: %s\n", path)
		}
	}
	if f := r.Footprint; f != nil {
		fmt.Fprintf(w, "\nthe builds added to the filesystem of %s: pulled bases %s, build cache %s, suite images %s\n",
			f.Filesystem, disk.HumanSize(f.PulledBytes), disk.HumanSize(f.BuildCacheBytes), disk.HumanSize(f.SuiteImageBytes))
	}
	if r.Tests != nil {
		fmt.Fprintf(w, "\ne2e: %s\n", r.Tests)
	}
	if len(r.Coverage) > 0 {
		fmt.Fprintf(w, "coverage: %s\n", CoverageLine(r.Coverage))
	}
	if err := disk.AppendToStepSummary(func(md io.Writer) error { return WriteMarkdown(md, r) }); err != nil {
		fmt.Fprintf(w, "could not append to GITHUB_STEP_SUMMARY: %v\n", err)
	}
}

// WriteMarkdown writes the summary as markdown: phases, tests, coverage, what the builds added,
// the disk by phase and its mermaid timeline.
func WriteMarkdown(w io.Writer, r Run) error {
	fmt.Fprintf(w, "## kindling %s (run %s, engine %s)\n\n| phase | duration |\n| --- | --- |\n", r.Suite, r.RunID, r.Engine)
	for _, p := range r.Phases {
		fmt.Fprintf(w, "| %s | %s |\n", p.Name, p.Duration.Round(100*time.Millisecond))
	}
	if r.Tests != nil {
		fmt.Fprintf(w, "\ne2e: %s\n", r.Tests)
	}
	if len(r.Coverage) > 0 {
		fmt.Fprintf(w, "\ncoverage: %s\n", CoverageLine(r.Coverage))
	}
	if f := r.Footprint; f != nil {
		fmt.Fprintf(w, "\n| the builds added to %s | bytes |\n| --- | --- |\n| pulled bases | %s |\n| build cache | %s |\n| suite images | %s |\n",
			f.Filesystem, disk.HumanSize(f.PulledBytes), disk.HumanSize(f.BuildCacheBytes), disk.HumanSize(f.SuiteImageBytes))
	}
	fmt.Fprintln(w)
	return writeDiskMarkdown(w, r.Disk.Phases())
}

// WriteTimeline draws the run's disk usage over time into Dir/disk-timeline.svg, for CI systems
// that keep files (GitHub's step summary gets the mermaid chart), and returns its path.
func WriteTimeline(r Run) (string, error) {
	var b bytes.Buffer
	title := fmt.Sprintf("kindling %s, run %s: disk used above the start", r.Suite, r.RunID)
	t := timeline.Timeline{Title: title, Series: r.Disk.Series(), Parts: r.Disk.PartSeries(), Phases: r.Disk.Phases(), Budget: r.Budget}
	if err := timeline.WriteSVG(&b, t); err != nil {
		return "", err
	}
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(r.Dir, "disk-timeline.svg")
	return path, os.WriteFile(path, b.Bytes(), 0o644)
}

// CoverageLine is the services' coverage on one line: "datastorage 65.4%, holmesgpt-api 58.5%".
func CoverageLine(results []coverage.Result) string {
	var parts []string
	for _, res := range results {
		parts = append(parts, res.String())
	}
	return strings.Join(parts, ", ")
}
