package state

import (
	"encoding/json"
	"errors"
	"os"
	"sync"
)

// Journal owns a suite's state file and the record in it. Phases that run at once (with
// E2E_OVERLAP the cluster is recorded while the build records its images) change it one at a time;
// each change is written at once, for the next process.
type Journal struct {
	path string
	mu   sync.Mutex
	rec  Suite
}

// Open reads the journal kept at path (see Read).
func Open(path string) (*Journal, error) {
	rec, err := Read(path)
	if err != nil {
		return nil, err
	}
	return &Journal{path: path, rec: rec}, nil
}

// Path is the state file.
func (j *Journal) Path() string { return j.path }

// Snapshot is a copy of the record: changing it changes nothing recorded.
func (j *Journal) Snapshot() Suite {
	j.mu.Lock()
	defer j.mu.Unlock()
	return clone(j.rec)
}

// Update changes the record and writes it.
func (j *Journal) Update(change func(*Suite)) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	change(&j.rec)
	return Write(j.path, j.rec)
}

// Amend changes the record without writing it: the next Update writes it too.
func (j *Journal) Amend(change func(*Suite)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	change(&j.rec)
}

// Forget removes the state file and empties the record.
func (j *Journal) Forget() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := os.Remove(j.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	j.rec = Suite{}
	return nil
}

func clone(s Suite) Suite {
	data, err := json.Marshal(s)
	if err != nil {
		panic(err) // a Suite is plain data
	}
	var c Suite
	if err := json.Unmarshal(data, &c); err != nil {
		panic(err)
	}
	return c
}
