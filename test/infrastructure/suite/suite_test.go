package suite

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNamed(t *testing.T) {
	all, err := Named("")
	if err != nil || len(all) != len(registry) {
		t.Fatalf("Named(\"\") = %v, %v; want every suite", all, err)
	}
	got, err := Named(" aianalysis ")
	if err != nil || len(got) != 1 || got[0].Name != "aianalysis" {
		t.Fatalf("Named(aianalysis) = %v, %v", got, err)
	}
	if _, err := Named("nope"); err == nil || !strings.Contains(err.Error(), "aianalysis") {
		t.Fatalf("unknown suite error should list the known ones, got %v", err)
	}
}

// The suite data must point at things that exist in the repository.
func TestSuitesPointAtRealFiles(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	for _, s := range All() {
		for _, svc := range s.Services {
			if _, err := os.Stat(filepath.Join(root, "services", svc, "Containerfile")); err != nil {
				t.Errorf("suite %s: service %s has no Containerfile: %v", s.Name, svc, err)
			}
		}
		for _, p := range []string{s.Manifests, s.KindConfig, s.E2E} {
			if _, err := os.Stat(filepath.Join(root, p)); err != nil {
				t.Errorf("suite %s: %v", s.Name, err)
			}
		}
	}
}
