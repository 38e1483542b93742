package e2etest

import (
	"context"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A real go test -json run of testdata/sample: every outcome, counted as the summary counts,
// the output passed through, and a JUnit report a CI system can read.
func TestRunCountsAndWritesJUnit(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test")
	}
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	junit := filepath.Join(t.TempDir(), "junit.xml")
	var out strings.Builder
	counts, err := Run(context.Background(), Options{Dir: root, Package: "./test/infrastructure/e2etest/testdata/sample",
		Timeout: 2 * time.Minute, Env: []string{"SAMPLE_ENV=set"}, JUnit: junit, Out: &out})
	if err == nil {
		t.Fatal("a failing suite succeeded")
	}
	// TestDecisions counts as its subtests; TestAfter failed on its own after its subtest passed.
	if counts != (Counts{Passed: 3, Failed: 2, Skipped: 1}) {
		t.Errorf("counts %+v\n%s", counts, out.String())
	}
	for _, want := range []string{"c went wrong", "--- PASS: TestPolicy", "not today"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	data, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var doc junitSuites
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("junit.xml does not parse: %v\n%s", err, data)
	}
	if len(doc.Suites) != 1 || doc.Suites[0].Tests != 7 || doc.Suites[0].Failures != 3 || doc.Suites[0].Skipped != 1 {
		t.Errorf("junit suites %+v", doc.Suites)
	}
	if !strings.Contains(string(data), "c went wrong") {
		t.Errorf("the failure's output is not in the report:\n%s", data)
	}
}

func TestRunReportsABuildFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test")
	}
	root, _ := filepath.Abs(filepath.Join("..", "..", ".."))
	var out strings.Builder
	_, err := Run(context.Background(), Options{Dir: root, Package: "./test/infrastructure/e2etest/testdata/nothing-here",
		Timeout: time.Minute, Out: &out})
	if err == nil || !strings.Contains(out.String(), "nothing-here") {
		t.Errorf("err = %v, output %q: want a failure that names the package", err, out.String())
	}
}

func TestCompileLeavesOnlyTheBuildCache(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test -c")
	}
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := Compile(context.Background(), Options{Dir: root, Package: "./test/infrastructure/e2etest/testdata/sample"}, dir)
	if took, err := c.Wait(); err != nil || took <= 0 {
		t.Fatalf("Compile = %s, %v", took, err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("the compiled binary stayed in %s: %v", dir, left)
	}
	bad := Compile(context.Background(), Options{Dir: root, Package: "./test/infrastructure/e2etest/testdata/nothing-here"}, dir)
	if _, err := bad.Wait(); err == nil || !strings.Contains(err.Error(), "nothing-here") {
		t.Errorf("a package that does not build: %v", err)
	}
}
