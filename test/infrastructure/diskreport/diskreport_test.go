package diskreport

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/kindling-dev/kindling/test/infrastructure/disk"
	"github.com/kindling-dev/kindling/test/infrastructure/pipeline"
)

// With DISK_REPORT_FORMAT=json, two suites make one JSON document and nothing else on stdout.
func TestJSONIsOneDocument(t *testing.T) {
	t.Setenv("DISK_REPORT_FORMAT", "json")
	t.Setenv("GITHUB_STEP_SUMMARY", "")
	dir := t.TempDir()
	views := []pipeline.DiskView{
		{Places: []disk.Place{{Name: "archive dir", Path: dir}}, ArchiveDir: dir, Suite: disk.Suite{Name: "unit", Cluster: "kindling-unit"}},
		{Places: []disk.Place{{Name: "archive dir", Path: dir}}, ArchiveDir: dir, Suite: disk.Suite{Name: "second"},
			Engine: &disk.EngineUsage{Name: "podman", Images: 1 << 20}},
	}
	var stdout bytes.Buffer
	if err := Write(context.Background(), views, &stdout); err != nil {
		t.Fatal(err)
	}
	var doc disk.Report
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, stdout.String())
	}
	if len(doc.Suites) != 2 || doc.Suites[0].Cluster != "kindling-unit" || doc.Suites[1].Name != "second" {
		t.Errorf("suites %+v, want both suites in one report", doc.Suites)
	}
	if doc.Engine == nil || doc.Engine.Name != "podman" {
		t.Errorf("engine %+v, want the one breakdown known", doc.Engine)
	}
	if len(doc.Filesystems) != 1 {
		t.Errorf("filesystems %+v, want the shared place measured once", doc.Filesystems)
	}
}
