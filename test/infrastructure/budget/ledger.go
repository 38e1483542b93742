package budget

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"

	"github.com/google/renameio/v2"
)

// Ledger owns a suite's facts file: what its earlier runs measured. It outlives a run's down.
// Phases that learn at once (the build and, with E2E_OVERLAP, the cluster) update it one at a time.
type Ledger struct {
	path string
	mu   sync.Mutex
}

// NewLedger is the ledger kept in the file at path.
func NewLedger(path string) *Ledger { return &Ledger{path: path} }

// Path is the facts file.
func (l *Ledger) Path() string { return l.path }

// Facts reads the facts; a missing or unreadable file gives none.
func (l *Ledger) Facts() Facts {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.read()
}

// Learn merges what a phase measured into the facts and writes them back.
func (l *Ledger) Learn(update func(*Facts)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.read()
	update(&f)
	return l.write(f)
}

func (l *Ledger) read() Facts {
	var f Facts
	if data, err := os.ReadFile(l.path); err == nil {
		json.Unmarshal(data, &f)
	}
	return f
}

func (l *Ledger) write(f Facts) error {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
		return err
	}
	return renameio.WriteFile(l.path, append(data, '\n'), 0o600)
}
