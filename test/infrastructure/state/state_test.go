package state

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aianalysis", "state.json")
	want := Suite{
		Suite:   "aianalysis",
		RunID:   "r1",
		Engine:  "podman",
		Started: time.Unix(100, 0).UTC(),
		Images:  []Image{{Service: "datastorage", Ref: "localhost/datastorage:aianalysis-abc", ID: "sha256:01"}},
		Archive: &Archive{Path: "/a.tar", Size: 10, SHA256: "ff"},
		Loaded:  &Loaded{Cluster: "kindling-aianalysis", Nodes: []string{"n1"}},
	}
	if err := Write(path, want); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("state file mode = %v, want 0600", info.Mode().Perm())
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.RunID != "r1" || got.Archive.SHA256 != "ff" || got.Loaded.Nodes[0] != "n1" || got.Images[0].ID != "sha256:01" {
		t.Errorf("round trip lost data: %+v", got)
	}
	if got.Version != Version {
		t.Errorf("version = %d, want %d", got.Version, Version)
	}
}

func TestLoadMissingOrOtherVersionIsEmpty(t *testing.T) {
	dir := t.TempDir()
	s, err := Read(filepath.Join(dir, "none.json"))
	if err != nil || s.RunID != "" {
		t.Fatalf("missing file: %+v, %v", s, err)
	}
	old := filepath.Join(dir, "old.json")
	os.WriteFile(old, []byte(`{"version": 999, "runId": "x"}`), 0o600)
	if s, err := Read(old); err != nil || s.RunID != "" {
		t.Fatalf("other version should be ignored: %+v, %v", s, err)
	}
}

func TestLoadCorruptSaysHowToRecover(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	os.WriteFile(path, []byte("{not json"), 0o600)
	_, err := Read(path)
	if err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Fatalf("want an error that says to delete the file, got %v", err)
	}
}
