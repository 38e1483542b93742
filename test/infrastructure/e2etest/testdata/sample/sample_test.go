//go:build e2e

// Package sample has tests of every outcome, for e2etest's own tests.
package sample

import (
	"os"
	"testing"
)

func TestDecisions(t *testing.T) {
	t.Run("a", func(t *testing.T) {})
	t.Run("b", func(t *testing.T) { t.Skip("not today") })
	t.Run("c", func(t *testing.T) { t.Error("c went wrong") })
}

func TestPolicy(t *testing.T) {
	if os.Getenv("SAMPLE_ENV") != "set" {
		t.Fatal("SAMPLE_ENV is not set")
	}
}

func TestAfter(t *testing.T) {
	t.Run("x", func(t *testing.T) {})
	t.Error("after its subtest passed")
}
