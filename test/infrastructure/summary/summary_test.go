package summary

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/disk"
	"github.com/kindling-dev/kindling/test/infrastructure/e2etest"
)

func TestPrint(t *testing.T) {
	summaryFile := filepath.Join(t.TempDir(), "step-summary.md")
	t.Setenv("GITHUB_STEP_SUMMARY", summaryFile)
	dir := t.TempDir()
	rec := disk.NewRecorder(func() []disk.Place { return []disk.Place{{Name: "run dir", Path: dir}} }, nil, 0)
	ctx := context.Background()
	for _, cp := range []string{"START", "IMAGES_BUILT", "EXPORTED"} {
		if _, err := rec.Checkpoint(ctx, cp); err != nil {
			t.Fatal(err)
		}
	}
	r := Run{Suite: "unit", RunID: "run-1", Engine: "podman", Total: time.Minute, Disk: rec, Dir: dir,
		Phases: []Phase{{"build", 40 * time.Second}, {"export", 2 * time.Second}},
		Tests:  &e2etest.Counts{Passed: 6}}
	var out bytes.Buffer
	Print(&out, r)
	for _, want := range []string{"Summary of unit (run run-1, engine podman, total 1m0s)", "build   40s", "export  2s",
		"e2e: 6 passed, 0 failed, 0 skipped", "disk timeline: " + filepath.Join(dir, "disk-timeline.svg")} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the summary lacks %q:\n%s", want, out.String())
		}
	}
	if svg, err := os.ReadFile(filepath.Join(dir, "disk-timeline.svg")); err != nil || !bytes.Contains(svg, []byte("EXPORTED")) {
		t.Errorf("disk-timeline.svg: %v", err)
	}
	md, err := os.ReadFile(summaryFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## kindling unit (run run-1, engine podman)", "| build | 40s |", "e2e: 6 passed", "```mermaid\nxychart-beta"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("the step summary lacks %q:\n%s", want, md)
		}
	}

	// A run that ran no phase prints nothing.
	var none bytes.Buffer
	Print(&none, Run{Suite: "unit", Disk: rec})
	if none.Len() > 0 {
		t.Errorf("a run without phases printed %q", none.String())
	}
}
