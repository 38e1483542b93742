package aianalysis

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"
	corev1 "k8s.io/api/core/v1"

	"github.com/kindling-dev/kindling/services/aianalysis/policy"
)

func approvalRego(t *testing.T) string {
	t.Helper()
	var cm corev1.ConfigMap
	decodeStrict(t, find(t, loadAll(t), "ConfigMap", "aianalysis-policy"), &cm)
	src, ok := cm.Data["approval.rego"]
	if !ok || len(cm.Data) != 1 {
		t.Fatalf("ConfigMap aianalysis-policy keys %v, want only approval.rego", slices.Sorted(maps.Keys(cm.Data)))
	}
	return src
}

func TestDefaultPolicyDecisions(t *testing.T) {
	ctx := context.Background()
	p, err := policy.Compile(ctx, "approval.rego", []byte(approvalRego(t)))
	if err != nil {
		t.Fatalf("the default policy does not compile with the controller's policy package: %v", err)
	}
	input := func(namespace, workflow string, confidence float64, review bool) policy.Input {
		return policy.Input{
			Signal: policy.Signal{Name: "api", Namespace: namespace, Kind: "Pod", Severity: "critical", Reason: "OOMKilled"},
			Investigation: policy.Investigation{RootCause: "x", Confidence: confidence, NeedsHumanReview: review,
				RecommendedWorkflow: policy.Workflow{ID: workflow, Parameters: map[string]string{}}},
		}
	}
	for _, tc := range []struct {
		name string
		in   policy.Input
		want string
	}{
		{"OOMKilled in staging", input("staging", "increase-memory-limit", 0.92, false), "auto-approved"},
		{"exactly at the threshold", input("staging", "rollback-deployment", 0.8, false), "auto-approved"},
		{"production namespace", input("production", "increase-memory-limit", 0.92, false), "requires-approval"},
		{"prod namespace", input("prod", "increase-memory-limit", 0.92, false), "requires-approval"},
		{"low confidence", input("staging", "scale-out", 0.75, false), "requires-approval"},
		{"human review asked", input("staging", "manual-investigation", 0.95, true), "requires-approval"},
		{"no workflow", input("staging", "", 0.95, false), "requires-approval"},
		{"drain-node", input("staging", "drain-node", 0.9, false), "denied"},
		{"drain-node in production", input("production", "drain-node", 0.9, true), "denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := p.Decide(ctx, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if d.Decision != tc.want || d.Reason == "" {
				t.Errorf("decision %q (%q), want %q with a reason", d.Decision, d.Reason, tc.want)
			}
		})
	}
	if _, err := p.Decide(ctx, policy.Input{}); err != nil {
		t.Errorf("an empty input must still get a decision: %v", err)
	}
}

// The tunables are Rego data at the top of the policy, so an operator changes numbers, not rules.
func TestDefaultPolicyTunables(t *testing.T) {
	src := approvalRego(t)
	for query, want := range map[string]any{
		"data.aianalysis.approval.confidence_threshold":  0.8,
		"data.aianalysis.approval.production_namespaces": []any{"production", "prod"},
		"data.aianalysis.approval.forbidden_workflows":   []any{"drain-node"},
	} {
		rs, err := rego.New(rego.Query(query), rego.Module("approval.rego", src)).Eval(context.Background())
		if err != nil || len(rs) == 0 {
			t.Fatalf("%s: %v (no value)", query, err)
		}
		got := rs[0].Expressions[0].Value
		if n, ok := got.(interface{ Float64() (float64, error) }); ok {
			got, _ = n.Float64()
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", query, got, want)
		}
		name := query[strings.LastIndex(query, ".")+1:]
		if i, j := strings.Index(src, name+" :="), strings.Index(src, "decision :="); i < 0 || i > j {
			t.Errorf("%s is not defined as data above the rules", name)
		}
	}
}
