package disk

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/fatih/color"
)

const gib = 1 << 30

func sampleReport() Report {
	return Report{
		Time: fixedTime,
		Filesystems: []Filesystem{
			{Mountpoint: "/", Device: "/dev/vda", Fstype: "ext4", Total: 252 * gib, Used: 18 * gib, Free: 74 * gib,
				UsedPercent: 19.56, Places: []string{"temp dir (/tmp)", "podman graph root (/var/lib/containers/storage)"}},
			{Mountpoint: "/mnt/archives", Device: "/dev/vdb", Fstype: "xfs", Total: 100 * gib, Used: 95 * gib, Free: 5 * gib,
				UsedPercent: 95, Places: []string{"archive dir (/mnt/archives/a|b)"}},
		},
		Engine:     &EngineUsage{Name: "podman", Images: 12 * gib, Containers: 300 << 20, Volumes: 2 * gib, Reclaimable: 5 * gib},
		Parts:      []PartUsage{{Part: Part{Name: "docker containerd snapshots", Path: "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs"}, Bytes: 3 * gib}, {Part: Part{Name: "node n /var", Path: "/gone"}, Missing: true}},
		Residue:    []Residue{{Suite: "aianalysis", Blobs: 1, Snapshots: 1, Bytes: 2 << 20, Reclaim: []string{"ctr --address /run/containerd/containerd.sock --namespace moby content rm sha256:l2"}}},
		KeptCaches: []KeptCaches{{Suite: "aianalysis", Where: []string{"kindling-go-build (/var/tmp/buildah-cache/kindling-go-build)"}, Bytes: 1 * gib, Max: 4 * gib}},
		Archives: []Archive{
			{Path: "/mnt/archives/datastorage.tar", Size: 60 << 20},
			{Path: "/mnt/archives/aianalysis.tar", Size: 1288490189},
		},
		Suites: []Suite{
			{Name: "aianalysis", Cluster: "kindling-aianalysis", Built: true, Filesystem: "/var/lib/containers/storage",
				PulledBases: 650 << 20, BuildCache: 2 * gib, SuiteImages: 57 << 20},
			{Name: "triage"},
		},
		Plan: []PlanStep{
			{Suite: "aianalysis", Phase: "build", Basis: "unknown until the suite was built once"},
			{Suite: "aianalysis", Phase: "load", Place: "node x /var", Bytes: 321 << 20, Basis: "1 node(s) × 2.00 × the archive"},
		},
	}
}

func withColor(t *testing.T, enabled bool) {
	t.Helper()
	if enabled {
		t.Setenv("NO_COLOR", "")
	}
	old := color.NoColor
	color.NoColor = !enabled
	t.Cleanup(func() { color.NoColor = old })
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*m`)

func TestWriteTextColumns(t *testing.T) {
	withColor(t, false)
	var buf bytes.Buffer
	if err := sampleReport().WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	t.Log("\n" + out)
	if strings.Contains(out, "\x1b[") {
		t.Fatal("colour escapes with colour disabled")
	}
	lines := strings.Split(out, "\n")
	header := lines[1]
	cols := []string{"MOUNT", "DEVICE", "TYPE", "SIZE", "USED", "FREE", "USE%", "PLACES"}
	if strings.Join(strings.Fields(header), " ") != strings.Join(cols, " ") {
		t.Fatalf("header = %q", header)
	}
	// Left-aligned columns: every value starts under its heading.
	row := lines[2]
	for i, v := range []string{"/", "/dev/vda", "ext4", "252 GiB", "18.0 GiB", "74.0 GiB", "19.6%", "temp dir (/tmp)"} {
		if at := strings.Index(header, cols[i]); !strings.HasPrefix(row[at:], v) {
			t.Errorf("column %s: row %q has %q at %d", cols[i], row, row[at:], at)
		}
	}
	if at := strings.Index(header, "PLACES"); !strings.HasPrefix(lines[3][at:], "podman graph root") || strings.TrimSpace(lines[3][:at]) != "" {
		t.Errorf("second place should sit alone under PLACES: %q", lines[3])
	}
	for _, want := range []string{"95.0%", "podman", "kept 1 blobs and 1 snapshots (2.0 MiB)", "content rm sha256:l2", "suite aianalysis keeps compile caches for its next build: kindling-go-build (/var/tmp/buildah-cache/kindling-go-build), 1.0 GiB (E2E_BUILD_CACHE_MAX=4.0 GiB", "docker containerd snapshots", "3.0 GiB", "not there", "12.0 GiB", "300 MiB", "1.2 GiB", "total (2)", "1.3 GiB",
		"PULLED BASES", "650 MiB", "57.0 MiB", "kindling-aianalysis", "no build measured",
		"PREDICTED", "321 MiB", "node x /var", "unknown until the suite was built once"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestWriteTextColourKeepsAlignment(t *testing.T) {
	withColor(t, false)
	var plainOut bytes.Buffer
	if err := sampleReport().WriteText(&plainOut); err != nil {
		t.Fatal(err)
	}
	withColor(t, true)
	var coloured bytes.Buffer
	if err := sampleReport().WriteText(&coloured); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(coloured.String(), "\x1b[") {
		t.Fatal("no colour with colour enabled")
	}
	if got := ansi.ReplaceAllString(coloured.String(), ""); got != plainOut.String() {
		t.Errorf("colour changed the layout:\n%s\nvs\n%s", got, plainOut.String())
	}
}

func TestWriteJSONRoundTrip(t *testing.T) {
	r := sampleReport()
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, r) {
		t.Errorf("round trip:\n%+v\n%+v", back, r)
	}
	var raw map[string]any
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	fs0 := raw["filesystems"].([]any)[0].(map[string]any)
	for _, k := range []string{"mountpoint", "device", "fstype", "total_bytes", "used_bytes", "free_bytes", "used_percent", "places"} {
		if _, ok := fs0[k]; !ok {
			t.Errorf("filesystem field %q missing: %v", k, fs0)
		}
	}
	if !strings.Contains(buf.String(), `"total_bytes": 270582939648`) {
		t.Error("bytes should be plain integers")
	}
	for _, k := range []string{"images_bytes", "containers_bytes", "volumes_bytes", "build_cache_bytes", "reclaimable_bytes"} {
		if _, ok := raw["engine"].(map[string]any)[k]; !ok {
			t.Errorf("engine field %q missing", k)
		}
	}

	buf.Reset()
	if err := (Report{Time: fixedTime}).WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	suites := raw["suites"].([]any)
	if len(suites) != 2 || suites[0].(map[string]any)["build_cache_bytes"] != float64(2*gib) {
		t.Errorf("suites %v", suites)
	}
	for _, want := range []string{`"filesystems": []`, `"engine": null`, `"archives": []`, `"suites": []`, `"parts": []`, `"residue": []`, `"kept_compile_caches": []`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("empty report lacks %s: %s", want, buf.String())
		}
	}
}

// cells splits a markdown table row on unescaped pipes.
func cells(line string) []string {
	parts := regexp.MustCompile(`(^|[^\\])\|`).Split(line, -1)
	return parts[1 : len(parts)-1]
}

func TestWriteMarkdownTable(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	t.Log("\n" + out)
	var table []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "| Mount") || (len(table) > 0 && strings.HasPrefix(l, "|")) {
			table = append(table, l)
		} else if len(table) > 0 {
			break
		}
	}
	if len(table) != 4 {
		t.Fatalf("want header, separator and 2 rows, got %q", table)
	}
	if !regexp.MustCompile(`^\|(:?-{3,}:?\|)+$`).MatchString(table[1]) {
		t.Errorf("separator row = %q", table[1])
	}
	for _, l := range table {
		if n := len(cells(l)); n != 8 {
			t.Errorf("row has %d cells, want 8: %q", n, l)
		}
	}
	if !strings.Contains(table[2], "temp dir (/tmp)<br>podman graph root") {
		t.Errorf("places should be joined with <br>: %q", table[2])
	}
	if !strings.Contains(table[3], `a\|b`) {
		t.Errorf("pipe in a cell must be escaped: %q", table[3])
	}
	for _, want := range []string{"| Engine |", "| Directory (du) | Holds | Path |", "| Archive | Size |"} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"": FormatText, "text": FormatText, "json": FormatJSON, " JSON ": FormatJSON} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"yaml", "markdown", "txt"} {
		_, err := ParseFormat(in)
		if err == nil || !strings.Contains(err.Error(), `"text"`) || !strings.Contains(err.Error(), `"json"`) {
			t.Errorf("ParseFormat(%q) error should name the valid values: %v", in, err)
		}
	}
	t.Setenv(FormatEnv, "json")
	if f, err := FormatFromEnv(); err != nil || f != FormatJSON {
		t.Errorf("FormatFromEnv = %q, %v", f, err)
	}
	t.Setenv(FormatEnv, "xml")
	if _, err := FormatFromEnv(); err == nil || !strings.Contains(err.Error(), FormatEnv) {
		t.Errorf("FormatFromEnv error should name %s: %v", FormatEnv, err)
	}
	t.Setenv(FormatEnv, "")
	if f, err := FormatFromEnv(); err != nil || f != FormatText {
		t.Errorf("default = %q, %v", f, err)
	}
	var buf bytes.Buffer
	if err := sampleReport().Write(&buf, FormatJSON); err != nil || !json.Valid(buf.Bytes()) {
		t.Errorf("Write json: %v", err)
	}
	if err := sampleReport().Write(&buf, "xml"); err == nil {
		t.Error("Write with an unknown format should fail")
	}
}

func TestAppendStepSummary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "summary.md")
	if err := os.WriteFile(path, []byte("# earlier step\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(StepSummaryEnv, path)
	if err := AppendStepSummary(sampleReport()); err != nil {
		t.Fatal(err)
	}
	if err := AppendStepSummary(sampleReport()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "# earlier step\n### Disk usage") || strings.Count(string(b), "### Disk usage") != 2 {
		t.Errorf("summary file:\n%s", b)
	}

	t.Setenv(StepSummaryEnv, "")
	if err := AppendStepSummary(sampleReport()); err != nil {
		t.Errorf("unset: want a no-op, got %v", err)
	}
	t.Setenv(StepSummaryEnv, filepath.Join(t.TempDir(), "missing-dir", "summary.md"))
	if err := AppendStepSummary(sampleReport()); err == nil || !strings.Contains(err.Error(), StepSummaryEnv) {
		t.Errorf("unwritable summary: %v", err)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[uint64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 300 << 20: "300 MiB",
		12*gib + 322122547: "12.3 GiB", (1 << 30) - 1: "1.0 GiB", 99 << 20: "99.0 MiB", 1 << 62: "4.0 EiB",
	} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
	for d, want := range map[int64]string{0: "0 B", 1288490189: "+1.2 GiB", -300 << 20: "-300 MiB", -1 << 63: "-8.0 EiB"} {
		if got := HumanDelta(d); got != want {
			t.Errorf("HumanDelta(%d) = %q, want %q", d, got, want)
		}
	}
}
