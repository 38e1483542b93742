package state

import (
	"os"
	"path/filepath"
	"testing"
)

func TestJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	j.Amend(func(s *Suite) { s.Engine = "podman" })
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("Amend wrote the file (%v)", err)
	}
	if err := j.Update(func(s *Suite) { s.RunID, s.Images = "r1", []Image{{Service: "a", Ref: "localhost/a:1"}} }); err != nil {
		t.Fatal(err)
	}
	snap := j.Snapshot()
	snap.Images[0].Ref = "changed"
	if got := j.Snapshot().Images[0].Ref; got != "localhost/a:1" {
		t.Errorf("changing a snapshot changed the record: %s", got)
	}
	again, err := Open(path)
	if err != nil || again.Snapshot().Engine != "podman" || again.Snapshot().RunID != "r1" {
		t.Fatalf("reopened: %+v %v, want what Amend and Update recorded", again.Snapshot(), err)
	}
	if err := j.Forget(); err != nil || j.Snapshot().RunID != "" {
		t.Fatalf("forget: %v, record %+v", err, j.Snapshot())
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the state file is still there after Forget (%v)", err)
	}
}
