package pipeline

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kindling-dev/kindling/test/infrastructure/budget"
	"github.com/kindling-dev/kindling/test/infrastructure/testenv"
)

// TestRealArchiveDirFull exports into a 2 MiB tmpfs. With the budget on, the export is refused
// before anything is written; with it off, the engine's save runs out of space. Either way nothing
// is lost: no archive is recorded or left behind, prune refuses, the image stays in the engine,
// and with room again a rerun exports.
func TestRealArchiveDirFull(t *testing.T) {
	testenv.Short(t)
	if os.Geteuid() != 0 {
		testenv.Missing(t, "mounting a tmpfs needs root")
	}
	eng, cfg := realHoloSuite(t, "docker", "full", "it-full")
	ctx := context.Background()
	small := t.TempDir()
	if err := syscall.Mount("tmpfs", small, "tmpfs", 0, "size=2m"); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v", small, err)
	}
	t.Cleanup(func() { syscall.Unmount(small, 0) })
	cfg.ArchiveDir = small
	var out bytes.Buffer
	r, err := New(cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Down(context.Background()) })
	b := buildFor(t, r)
	nothingLost := func(t *testing.T, e Exported) {
		t.Helper()
		if r.st.Archive != nil || e.Archive.Path != "" {
			t.Errorf("a failed export recorded or handed on an archive: %+v %+v", r.st.Archive, e.Archive)
		}
		if entries, _ := os.ReadDir(small); len(entries) > 0 {
			t.Errorf("the archive dir holds %d entries after the failed export", len(entries))
		}
		if _, err := r.Prune(ctx, e); err == nil {
			t.Error("prune ran after a failed export")
		}
		if _, found, err := eng.ImageID(ctx, r.st.Images[0].Ref); err != nil || !found {
			t.Errorf("the image is gone from the engine (%v)", err)
		}
	}

	t.Run("the budget refuses before anything is written", func(t *testing.T) {
		e, err := r.Export(ctx, b)
		if err == nil || !strings.Contains(err.Error(), "export would not fit the disk budget") || !strings.Contains(err.Error(), small) {
			t.Fatalf("export into 2 MiB with the default budget: %v", err)
		}
		nothingLost(t, e)
	})

	t.Run("without the budget the save runs out of space", func(t *testing.T) {
		r.cfg.DiskBudget = budget.Budget{Off: true}
		e, err := r.Export(ctx, b)
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "no space left") {
			t.Fatalf("export into 2 MiB without a budget: %v", err)
		}
		nothingLost(t, e)
	})

	t.Run("with room again the export resumes", func(t *testing.T) {
		r.cfg.ArchiveDir = t.TempDir()
		if _, err := r.Export(ctx, b); err != nil {
			t.Fatal(err)
		}
		if r.st.Archive == nil || !strings.HasPrefix(r.st.Archive.Path, r.cfg.ArchiveDir) {
			t.Errorf("archive %+v", r.st.Archive)
		}
	})
}

// A state file that is not JSON stops the run with the file named and how to start over; it is
// never overwritten by a new run behind the user's back.
func TestCorruptedStateFile(t *testing.T) {
	root := t.TempDir()
	cfg := testConfig(t, "", 0)
	cfg.Root = root
	path := statePath(cfg)
	os.MkdirAll(filepath.Dir(path), 0o700)
	os.WriteFile(path, []byte("{\"version\": 2, \"suite\": \"unit\", trunc"), 0o600)
	_, err := New(cfg, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "delete it to start the suite over") {
		t.Fatalf("New with a corrupted state file: %v", err)
	}
	if data, _ := os.ReadFile(path); !strings.Contains(string(data), "trunc") {
		t.Error("the corrupted state file was overwritten")
	}
	// Another version's file is not trusted, and not an error.
	os.WriteFile(path, []byte(`{"version": 1, "suite": "unit", "runId": "old"}`), 0o600)
	r, err := New(cfg, &bytes.Buffer{})
	if err != nil || r.st.RunID != "" {
		t.Fatalf("a state file of another version: run %q, %v", r.st.RunID, err)
	}
}
