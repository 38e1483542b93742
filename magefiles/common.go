//go:build mage

package main

import (
	"os"
	"sync"

	"github.com/kindling-dev/kindling/test/infrastructure/pipeline"
	"github.com/kindling-dev/kindling/test/infrastructure/suite"
)

var (
	runsMu sync.Mutex
	runs   = map[string]*pipeline.Run{}
)

// run returns this process's run of suite s: one per suite, shared by every target, so the
// engine is chosen once and each phase runs once.
func run(s suite.Suite) (*pipeline.Run, error) {
	runsMu.Lock()
	defer runsMu.Unlock()
	if r, ok := runs[s.Name]; ok {
		return r, nil
	}
	root, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	cfg, err := pipeline.ConfigFromEnv(root, s)
	if err != nil {
		return nil, err
	}
	r, err := pipeline.New(cfg, os.Stdout)
	if err != nil {
		return nil, err
	}
	runs[s.Name] = r
	return r, nil
}

// selected returns the suites named by E2E_SUITE (default: all).
func selected() ([]suite.Suite, error) { return suite.Named(os.Getenv("E2E_SUITE")) }
