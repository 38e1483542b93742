package deploy

import (
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The deploy phase has no path to the container engine.
var forbiddenPackages = []string{"infrastructure/engine", "infrastructure/build", "infrastructure/archive"}

func TestNoEngineImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if path == "os/exec" {
				t.Errorf("%s imports os/exec: the deploy phase must not run programs", name)
			}
			for _, bad := range forbiddenPackages {
				if strings.Contains(path, bad) {
					t.Errorf("%s imports %s: the deploy phase must not reach the container engine", name, path)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no package files found")
	}
}

// Also transitively: nothing the package links may be an engine-side kindling package.
func TestNoEngineDependencies(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range forbiddenPackages {
			if strings.Contains(dep, bad) {
				t.Errorf("deploy depends on %s", dep)
			}
		}
	}
}
