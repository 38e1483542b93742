package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBuildConfigFromEnv(t *testing.T) {
	for _, v := range []string{"BENCH_SUITE", "BENCH_VARIANTS", "BENCH_STATES", "BENCH_FORMAT"} {
		t.Setenv(v, "")
	}
	c, err := BuildConfigFromEnv()
	if err != nil || c.Suite != "aianalysis" || len(c.Variants) != 3 || len(c.States) != 3 || c.Format != "text" {
		t.Fatalf("defaults %+v, %v", c, err)
	}
	t.Setenv("BENCH_VARIANTS", "planned,fastest")
	t.Setenv("BENCH_STATES", "warm")
	t.Setenv("BENCH_FORMAT", "xml")
	_, err = BuildConfigFromEnv()
	for _, want := range []string{`"fastest"`, "include cold", "BENCH_FORMAT"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err %v does not say %s", err, want)
		}
	}
}

func TestBuildReportRatiosToTheFloor(t *testing.T) {
	rep := BuildReport{Suite: "s", Engine: "docker", CPUs: 2,
		Floor: BuildRow{Variant: "floor", State: "host go build", Time: 100 * time.Second, Filesystem: "/"},
		Rows:  []BuildRow{{Variant: VariantPlanned, State: StateCold, Time: 150 * time.Second, Peak: 3 << 30, Left: 1 << 30, Filesystem: "/"}}}
	var out bytes.Buffer
	if err := rep.WriteMarkdown(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| floor | host go build | 1m40s |", "| planned | cold | 2m30s | 3.0 GiB | 1.0 GiB | 1.50 |", "peaks on /"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report does not say %q:\n%s", want, out.String())
		}
	}
}

// The baseline is the release before cache mounts, one Dockerfile per service of the suites.
func TestIndependentDockerfilesReplayTheOldRelease(t *testing.T) {
	for _, svc := range []string{"aianalysis", "datastorage", "holmesgpt-api"} {
		data, err := independentDockerfiles.ReadFile("testdata/independent/" + svc + ".Dockerfile")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "RUN go mod download") || strings.Contains(string(data), "--mount") {
			t.Errorf("%s: not the release before cache mounts:\n%s", svc, data)
		}
	}
}

func TestChangeOneFileChangesOneGoFile(t *testing.T) {
	ws := t.TempDir()
	dir := filepath.Join(ws, "services", "a")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"b.go", "a.go"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("package a\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := changeOneFile(ws, "./services/a"); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(dir, "a.go"))
	b, _ := os.ReadFile(filepath.Join(dir, "b.go"))
	if !strings.Contains(string(a), "// bench:build changed") || string(b) != "package a\n" {
		t.Errorf("a.go %q, b.go %q", a, b)
	}
}
