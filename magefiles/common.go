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
	flows  = map[string]*flow{}
	suites []suite.Suite // test/suites, read once
)

// run returns this process's run of suite s: one per suite, shared by every target, so the
// engine is chosen once.
func run(s suite.Suite) (*pipeline.Run, error) {
	f, err := flowOf(s)
	if err != nil {
		return nil, err
	}
	return f.run, nil
}

// flowOf returns this process's flow of suite s, with its run.
func flowOf(s suite.Suite) (*flow, error) {
	runsMu.Lock()
	defer runsMu.Unlock()
	if f, ok := flows[s.Name]; ok {
		return f, nil
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
	f := &flow{run: r}
	flows[s.Name] = f
	return f, nil
}

// named returns the suites of a comma-separated list ("" is all), reading and checking every
// suite file on first use.
func named(list string) ([]suite.Suite, error) {
	runsMu.Lock()
	defer runsMu.Unlock()
	if suites == nil {
		root, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		if suites, err = suite.LoadAll(root); err != nil {
			return nil, err
		}
	}
	return suite.Select(suites, list)
}

// selected returns the suites named by E2E_SUITE (default: all).
func selected() ([]suite.Suite, error) { return named(os.Getenv("E2E_SUITE")) }
