// Package mage checks the Mage targets the way a user meets them: through the zero-install
// bootstrap, `go run magefile.go`.
package mage

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func mage(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", append([]string{"run", "magefile.go"}, args...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestEveryTargetIsListedWithADescription(t *testing.T) {
	out, err := mage(t, nil, "-l")
	if err != nil {
		t.Fatalf("go run magefile.go -l: %v\n%s", err, out)
	}
	for _, target := range []string{
		"aianalysis:build", "aianalysis:export", "aianalysis:prune", "aianalysis:cluster", "aianalysis:load",
		"aianalysis:deploy", "aianalysis:test", "aianalysis:e2e", "aianalysis:down",
		"images:build", "images:export", "images:prune", "images:load", "disk:report",
		"suite:build", "suite:export", "suite:prune", "suite:cluster", "suite:load",
		"suite:deploy", "suite:test", "suite:e2e", "suite:down",
	} {
		found := false
		for _, line := range strings.Split(out, "\n") {
			// Mage lists type AIAnalysis as aiAnalysis; targets are matched case-insensitively.
			fields := strings.Fields(line)
			if len(fields) > 1 && strings.EqualFold(fields[0], target) {
				found = true
			}
		}
		if !found {
			t.Errorf("target %s is not listed with a description:\n%s", target, out)
		}
	}
}

func TestHelpNamesTheEnvironment(t *testing.T) {
	for target, vars := range map[string][]string{
		"aianalysis:e2e":   {"E2E_KEEP_CLUSTER_ON_FAILURE"},
		"aianalysis:prune": {"E2E_PRUNE", "E2E_PRUNE_KEEP"},
		"disk:report":      {"DISK_REPORT_FORMAT", "GITHUB_STEP_SUMMARY"},
	} {
		out, err := mage(t, nil, "-h", target)
		if err != nil {
			t.Fatalf("-h %s: %v\n%s", target, err, out)
		}
		for _, v := range vars {
			if !strings.Contains(out, v) {
				t.Errorf("-h %s does not mention %s:\n%s", target, v, out)
			}
		}
	}
}

// A bad environment is one clear error and a non-zero exit, before anything runs.
func TestBadEnvironmentFailsBeforeAnythingRuns(t *testing.T) {
	out, err := mage(t, []string{"E2E_PRUNE=everything", "E2E_PARALLELISM=0", "E2E_RUN_DIR=" + t.TempDir()}, "aianalysis:build")
	if err == nil {
		t.Fatalf("want a non-zero exit, got success:\n%s", out)
	}
	for _, want := range []string{"E2E_PRUNE=\"everything\"", "E2E_PARALLELISM"} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not name %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "[build]") {
		t.Errorf("the build ran despite the bad environment:\n%s", out)
	}
}

// An unknown suite name is one error listing the suites there are.
func TestUnknownSuite(t *testing.T) {
	out, err := mage(t, []string{"E2E_RUN_DIR=" + t.TempDir()}, "suite:build", "nope")
	if err == nil {
		t.Fatalf("want a non-zero exit, got success:\n%s", out)
	}
	if !strings.Contains(out, `unknown suite "nope"`) || !strings.Contains(out, "aianalysis") {
		t.Errorf("output does not name the unknown suite and the known ones:\n%s", out)
	}
}

// The GitHub Actions example cannot run here: it is at least valid YAML, and every target it
// runs exists.
func TestWorkflowRunsExistingTargets(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, ".github", "workflows", "e2e.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		Jobs map[string]struct {
			Steps []struct {
				Run  string            `json:"run"`
				Uses string            `json:"uses"`
				With map[string]string `json:"with"`
				Env  map[string]string `json:"env"`
			} `json:"steps"`
		} `json:"jobs"`
	}
	if err := yaml.Unmarshal(raw, &wf); err != nil {
		t.Fatalf("e2e.yml is not valid YAML: %v", err)
	}
	// The single-runner jobs keep the builds' Go caches across runs: the ids the cache dance
	// injects are the Dockerfiles' own, and the prune keeps the caches for the save.
	for _, job := range []string{"single-runner", "single-runner-podman"} {
		var cached, kept bool
		for _, step := range wf.Jobs[job].Steps {
			if strings.HasPrefix(step.Uses, "actions/cache@") {
				cached = true
			}
			if strings.HasPrefix(step.Uses, "reproducible-containers/buildkit-cache-dance@") {
				var m map[string]struct{ Target, ID string }
				if err := json.Unmarshal([]byte(step.With["cache-map"]), &m); err != nil {
					t.Errorf("job %s: cache-map is not JSON: %v", job, err)
				}
				dockerfile, err := os.ReadFile(filepath.Join(root, step.With["dockerfile"]))
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range m {
					if !strings.Contains(string(dockerfile), "id="+c.ID+",target="+c.Target) {
						t.Errorf("job %s injects cache %s at %s, which %s does not mount", job, c.ID, c.Target, step.With["dockerfile"])
					}
				}
			}
			if step.Env["E2E_BUILD_CACHE_MAX"] != "" {
				kept = true
			}
		}
		if !cached || !kept {
			t.Errorf("job %s: restores the builds' caches %v, keeps them through the prune %v; want both", job, cached, kept)
		}
	}
	list, err := mage(t, nil, "-l")
	if err != nil {
		t.Fatalf("go run magefile.go -l: %v\n%s", err, list)
	}
	var runs int
	for job, j := range wf.Jobs {
		for _, step := range j.Steps {
			fields := strings.Fields(step.Run)
			for i := 0; i+2 < len(fields); i++ {
				if fields[i] != "run" || fields[i+1] != "magefile.go" {
					continue
				}
				runs++
				if !strings.Contains(strings.ToLower(list), "\n  "+strings.ToLower(fields[i+2])+" ") {
					t.Errorf("job %s runs target %s, which go run magefile.go -l does not list", job, fields[i+2])
				}
			}
		}
	}
	if len(wf.Jobs) != 4 || runs != 4 {
		t.Errorf("want 4 jobs running 4 targets, found %d jobs and %d targets", len(wf.Jobs), runs)
	}
}
