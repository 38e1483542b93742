package pipeline

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kindling-dev/kindling/test/infrastructure/build"
	"github.com/kindling-dev/kindling/test/infrastructure/cluster"
	"github.com/kindling-dev/kindling/test/infrastructure/testenv"
)

// TestRealPlanPredictsTheNextRun runs a suite through load twice, on docker and on podman, on
// podman the first time from a fresh node-image state (podman lacks the Kind node image: the
// cluster phase copies it from docker). After the first run, the plan disk:report shows predicts
// each phase of the second within ±20 % of how far that phase then raised its filesystem at its
// peak.
func TestRealPlanPredictsTheNextRun(t *testing.T) {
	testenv.Short(t)
	testenv.RequireEngine(t, "docker") // the node image's source
	for _, engine := range []string{"docker", "podman"} {
		t.Run(engine, func(t *testing.T) { planPredictsTheNextRun(t, engine) })
	}
}

func planPredictsTheNextRun(t *testing.T, engine string) {
	_, cfg := realHoloSuite(t, engine, "pln", "it-plan")
	// Two images on one pulled base with 200 MiB of their own, so that every phase writes a
	// hundred MiB or more: a node's own writes (logs, the kubelet) move its filesystem by MiBs.
	dir := t.TempDir()
	cfg.Suite.Services = nil
	for _, svc := range []string{"holmesgpt-api", "datastorage"} {
		file := filepath.Join(dir, svc+".Containerfile")
		content := fmt.Sprintf("FROM debian:bookworm-slim\nRUN head -c 200M /dev/urandom > /pad\nCOPY %s /%s\nUSER 65532:65532\nENTRYPOINT [\"/%s\"]\n", svc, svc, svc)
		if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		rel, err := filepath.Rel(cfg.Root, file)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Suite.Services = append(cfg.Suite.Services, build.Service{Name: svc,
			Spec: build.Spec{Host: &build.HostBuild{Package: "./services/" + svc, Containerfile: rel}}})
	}
	ctx := context.Background()
	if engine == "podman" {
		if out, err := exec.CommandContext(ctx, "podman", "rmi", "--ignore", cluster.PodmanImageName(cfg.NodeImage)).CombinedOutput(); err != nil {
			t.Fatalf("podman rmi %s: %v\n%s", cfg.NodeImage, err, out)
		}
	}
	process := processes(t, cfg)

	first, _, firstOut := process("")
	through(t, first, "load")
	if copied := strings.Contains(firstOut.String(), "the copy of the node image added"); copied != (engine == "podman") {
		t.Errorf("the first run copied the node image: %v, want it on podman only:\n%s", copied, firstOut.String())
	}
	if err := first.Down(ctx); err != nil {
		t.Fatal(err)
	}

	second, _, secondOut := process("")
	observe(t, second) // the places are named once the engine is known
	plan := second.plan()
	through(t, second, "load")
	checkpoints := map[string]string{"build": "IMAGES_BUILT", "export": "EXPORTED", "cluster": "CLUSTER_CREATED", "load": "AFTER_LOAD"}
	places := second.budgetPlaces()
	compared := 0
	for _, step := range plan {
		if step.Bytes == 0 {
			t.Errorf("phase %s: no prediction after a run (%s)", step.Phase, step.Basis)
			continue
		}
		var grown uint64
		for _, ph := range second.disk.Phases() {
			if ph.Name != checkpoints[step.Phase] {
				continue
			}
			place := places.Engine
			switch step.Place {
			case places.Archive.Name:
				place = places.Archive
			case places.Nodes.Name:
				place = places.Nodes
			}
			grown, _ = growth(ph.Checkpoint, place)
		}
		compared++
		off := float64(step.Bytes)/float64(grown) - 1
		t.Logf("phase %s on %s: predicted %d MiB, grew %d MiB (%+.0f%%): %s", step.Phase, step.Place, step.Bytes>>20, grown>>20, 100*off, step.Basis)
		if grown == 0 || off > 0.2 || off < -0.2 {
			t.Errorf("phase %s: predicted %d bytes, the phase raised %s by %d", step.Phase, step.Bytes, step.Place, grown)
		}
	}
	if t.Failed() {
		t.Logf("the first run:\n%s\nthe second run:\n%s", firstOut.String(), secondOut.String())
	}
	if compared != 4 {
		t.Errorf("compared %d phases, want build, export, cluster and load:\n%s", compared, secondOut.String())
	}
}
