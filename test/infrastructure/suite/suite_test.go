package suite

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The repository's own suite files must load.
func TestRepositorySuites(t *testing.T) {
	all, err := LoadAll(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range all {
		names = append(names, s.Name)
	}
	if !slices.Contains(names, "aianalysis") {
		t.Fatalf("suites %v, want aianalysis among them", names)
	}
	s, err := Select(all, " aianalysis ")
	if err != nil || len(s) != 1 || s[0].Name != "aianalysis" {
		t.Fatalf("Select(aianalysis) = %v, %v", s, err)
	}
	if got := s[0].ServiceNames(); !slices.Equal(got, []string{"aianalysis", "datastorage", "holmesgpt-api"}) {
		t.Errorf("services %v", got)
	}
	if got, want := s[0].E2EEnv(), []string{"E2E_NAMESPACE=kindling", "DATASTORAGE_URL=http://127.0.0.1:30081", "HOLMESGPT_API_URL=http://127.0.0.1:30082"}; !slices.Equal(got, want) {
		t.Errorf("e2e env %q, want %q", got, want)
	}
	if all2, err := Select(all, ""); err != nil || len(all2) != len(all) {
		t.Errorf("Select(\"\") = %v, %v; want every suite", all2, err)
	}
	if _, err := Select(all, "aianalysis,nope"); err == nil || !strings.Contains(err.Error(), `unknown suite "nope"`) || !strings.Contains(err.Error(), "aianalysis") {
		t.Errorf("unknown suite: %v, want an error listing the known ones", err)
	}
}

// repo lays out a repository with one valid suite, "one", and returns its root.
func repo(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	write(t, root, map[string]string{
		"services/a/Dockerfile":    "FROM scratch\n",
		"services/a/Containerfile": "FROM scratch\n",
		"services/a/main.go":       "package main\n",
		"manifests/one/00-ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: one}\n",
		"manifests/kind/one.yaml":  kindConfig(31001),
		"test/e2e/one/one_test.go": "package one\n",
		"test/suites/one.yaml":     suiteFile("one", 31001),
	})
	return root
}

func kindConfig(ports ...int) string {
	text := "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: control-plane\n    extraPortMappings:\n"
	for _, p := range ports {
		text += "      - {containerPort: 30000, hostPort: " + strconv.Itoa(p) + "}\n"
	}
	return text
}

func suiteFile(name string, port int) string {
	return `name: ` + name + `
namespace: ` + name + `
manifests: manifests/one
kindConfig: manifests/kind/one.yaml
e2e: ./test/e2e/one
hostPorts:
  a: ` + strconv.Itoa(port) + `
services:
  - name: a
    dockerfile: services/a/Dockerfile
    target: production
    args: {GOFLAGS: "${GOFLAGS}"}
    host:
      package: ./services/a
      containerfile: services/a/Containerfile
`
}

func write(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		path := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadValidSuite(t *testing.T) {
	root := repo(t)
	all, err := LoadAll(root)
	if err != nil {
		t.Fatal(err)
	}
	s := all[0]
	if s.Name != "one" || s.File != "test/suites/one.yaml" || len(s.Services) != 1 {
		t.Fatalf("suite %+v", s)
	}
	svc := s.Services[0]
	if svc.Dockerfile != "services/a/Dockerfile" || svc.Target != "production" || svc.Args["GOFLAGS"] != "${GOFLAGS}" ||
		svc.Host == nil || svc.Host.Package != "./services/a" {
		t.Errorf("service %+v (host %+v)", svc, svc.Host)
	}
}

// Every problem of a file is reported at once, each naming the file and what to fix.
func TestLoadReportsEveryProblem(t *testing.T) {
	root := repo(t)
	write(t, root, map[string]string{"test/suites/one.yaml": `name: One
namespace: Not_A_Label
manifests: manifests/missing
kindConfig: manifests/kind/one.yaml
e2e: test/e2e/one
hostPorts:
  a: 31009
  b: 31009
services:
  - name: a
    dockerfile: services/nope/Dockerfile
  - name: a
    host: {package: ./services/gone, containerfile: services/a/Containerfile}
  - name: c
`})
	_, err := LoadAll(root)
	if err == nil {
		t.Fatal("no error")
	}
	t.Log(err)
	for _, want := range []string{
		"test/suites/one.yaml",
		`name "One"`,
		`namespace "Not_A_Label"`,
		"manifests manifests/missing: no such file or directory",
		`e2e "test/e2e/one": name the Go package from the repository root`,
		"hostPorts: a and b both use host port 31009",
		"maps no node port to host port 31009",
		"services[0] (a): dockerfile services/nope/Dockerfile: no such file or directory",
		"services[1] (a): service a is listed twice",
		"services[1] (a): host.package services/gone: no such file or directory",
		"services[2] (c): give a dockerfile (or a host build)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}

func TestLoadRejectsUnknownFieldsAndBadYAML(t *testing.T) {
	for name, text := range map[string]string{
		"unknown field":     suiteFile("one", 31001) + "dockerFile: x\n",
		"typo in a service": strings.Replace(suiteFile("one", 31001), "target:", "targte:", 1),
		"not yaml":          "name: [one\n",
	} {
		t.Run(name, func(t *testing.T) {
			root := repo(t)
			write(t, root, map[string]string{"test/suites/one.yaml": text})
			if _, err := LoadAll(root); err == nil || !strings.Contains(err.Error(), "test/suites/one.yaml") {
				t.Errorf("err = %v, want one naming the file", err)
			}
		})
	}
}

func TestLoadAllChecksAcrossSuites(t *testing.T) {
	root := repo(t)
	write(t, root, map[string]string{
		"test/suites/two.yaml":      suiteFile("one", 31001), // the same name and host port again
		"test/suites/three.yaml":    strings.Replace(suiteFile("three", 31001), "manifests/kind/one.yaml", "manifests/kind/three.yaml", 1),
		"manifests/kind/three.yaml": kindConfig(31001),
	})
	_, err := LoadAll(root)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`both name suite "one"`,
		"host port 31001 (a) is also used by suite one",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}

func TestLoadAllWithoutSuiteFiles(t *testing.T) {
	if _, err := LoadAll(t.TempDir()); err == nil || !strings.Contains(err.Error(), "test/suites/<name>.yaml") {
		t.Errorf("err = %v, want one saying where suite files go", err)
	}
}
