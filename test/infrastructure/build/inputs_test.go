package build

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		path := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The repository's own style of .dockerignore: exclude everything, then bring back what the
// Dockerfiles copy.
const allowList = `# comment
*
!go.mod
!go.sum
!services/
**/*_test.go
services/**/testdata
`

func TestContextFilesHonoursDockerignore(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		".dockerignore":                      allowList,
		"go.mod":                             "module x\n",
		"go.sum":                             "",
		"README.md":                          "docs\n",
		".git/HEAD":                          "ref: refs/heads/main\n",
		".kindling/aianalysis/state.json":    "{}",
		"services/a/main.go":                 "package main\n",
		"services/a/main_test.go":            "package main\n",
		"services/a/testdata/big.bin":        "x",
		"services/a/Dockerfile":              "FROM scratch\n",
		"test/infrastructure/build/build.go": "package build\n",
	})
	got, err := ContextFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"go.mod", "go.sum", "services", "services/a", "services/a/Dockerfile", "services/a/main.go"}
	if !slices.Equal(got, want) {
		t.Errorf("context files\n got %q\nwant %q", got, want)
	}

	// Without a .dockerignore, everything is sent.
	os.Remove(filepath.Join(root, ".dockerignore"))
	all, err := ContextFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(all, ".git/HEAD") || !slices.Contains(all, "services/a/main_test.go") {
		t.Errorf("without .dockerignore: %q", all)
	}
}

func TestContextDigestChangesOnlyWithSentFiles(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		".dockerignore":      allowList,
		"go.mod":             "module x\n",
		"go.sum":             "",
		"README.md":          "docs\n",
		"services/a/main.go": "package main\n",
	})
	digest := func() string {
		t.Helper()
		d, err := ContextDigest(root)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	first := digest()
	if digest() != first {
		t.Fatal("same context, different digests")
	}
	writeTree(t, root, map[string]string{"README.md": "changed\n", "services/a/a_test.go": "package main\n", ".kindling/x": "y"})
	if digest() != first {
		t.Error("a change to ignored files changed the digest")
	}
	writeTree(t, root, map[string]string{"services/a/main.go": "package main // changed\n"})
	second := digest()
	if second == first {
		t.Error("a change to a sent file did not change the digest")
	}
	if err := os.Chmod(filepath.Join(root, "services/a/main.go"), 0o755); err != nil {
		t.Fatal(err)
	}
	if digest() == second {
		t.Error("a mode change did not change the digest")
	}
	// Moving content between files changes it too (paths are hashed with the content).
	third := digest()
	writeTree(t, root, map[string]string{"services/a/b.go": ""})
	if digest() == third {
		t.Error("a new empty file did not change the digest")
	}
	// A .dockerignore that now leaves the new file out sends what was sent before: same build.
	writeTree(t, root, map[string]string{".dockerignore": allowList + "services/a/b.go\n"})
	if digest() != third {
		t.Error("a .dockerignore change that sends the same files changed the digest")
	}
}

func TestDockerfileDigestInputs(t *testing.T) {
	base := dockerfileDigest([]byte("FROM x\n"), "prod", map[string]string{"A": "1", "B": "2"}, "ctx")
	for name, other := range map[string]string{
		"dockerfile": dockerfileDigest([]byte("FROM y\n"), "prod", map[string]string{"A": "1", "B": "2"}, "ctx"),
		"target":     dockerfileDigest([]byte("FROM x\n"), "dev", map[string]string{"A": "1", "B": "2"}, "ctx"),
		"arg value":  dockerfileDigest([]byte("FROM x\n"), "prod", map[string]string{"A": "1", "B": "3"}, "ctx"),
		"arg split":  dockerfileDigest([]byte("FROM x\n"), "prod", map[string]string{"A": "1=B=2"}, "ctx"),
		"context":    dockerfileDigest([]byte("FROM x\n"), "prod", map[string]string{"A": "1", "B": "2"}, "ctx2"),
	} {
		if other == base {
			t.Errorf("a different %s gave the same digest", name)
		}
	}
	if again := dockerfileDigest([]byte("FROM x\n"), "prod", map[string]string{"B": "2", "A": "1"}, "ctx"); again != base {
		t.Error("the order of args changed the digest")
	}
}
