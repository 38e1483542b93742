package policy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kindling-dev/kindling/services/aianalysis/policy"
)

const approveAll = `package aianalysis.approval

decision := {"decision": "auto-approved", "reason": "everything goes"}
`

func TestCompileRejectsBrokenPolicies(t *testing.T) {
	for name, src := range map[string]string{
		"syntax":        "package aianalysis.approval\n\ndecision := {\n",
		"wrong package": "package other\n\ndecision := {\"decision\": \"denied\", \"reason\": \"x\"}\n",
		"rego v0":       "package aianalysis.approval\n\ndecision = d { d := {\"decision\": \"denied\"} }\n",
		"type error":    "package aianalysis.approval\n\ndecision := {\"decision\": concat(1, 2), \"reason\": \"\"}\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := policy.Compile(context.Background(), "p.rego", []byte(src)); err == nil {
				t.Error("Compile succeeded, want an error")
			}
		})
	}
}

func TestDecide(t *testing.T) {
	ctx := context.Background()
	p, err := policy.Compile(ctx, "p.rego", []byte(`package aianalysis.approval

decision := {"decision": "denied", "reason": sprintf("%s in %s at %v", [input.investigation.recommended_workflow.id, input.signal.namespace, input.investigation.confidence])}
`))
	if err != nil {
		t.Fatal(err)
	}
	d, err := p.Decide(ctx, policy.Input{
		Signal:        policy.Signal{Namespace: "staging"},
		Investigation: policy.Investigation{Confidence: 0.5, RecommendedWorkflow: policy.Workflow{ID: "scale-out"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := policy.Decision{Decision: "denied", Reason: "scale-out in staging at 0.5", PolicyHash: p.Hash}
	if d != want {
		t.Errorf("Decide = %+v, want %+v", d, want)
	}
}

func TestDecideRejectsMalformedDecisions(t *testing.T) {
	for name, src := range map[string]string{
		"undefined":     "package aianalysis.approval\n\ndecision := 1 if { false }\n",
		"not an object": "package aianalysis.approval\n\ndecision := \"auto-approved\"\n",
		"unknown value": "package aianalysis.approval\n\ndecision := {\"decision\": \"yes\", \"reason\": \"\"}\n",
	} {
		t.Run(name, func(t *testing.T) {
			p, err := policy.Compile(context.Background(), "p.rego", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			if d, err := p.Decide(context.Background(), policy.Input{}); err == nil {
				t.Errorf("Decide = %+v, want an error", d)
			}
		})
	}
}

func TestHashIsSha256OfTheSource(t *testing.T) {
	p, err := policy.Compile(context.Background(), "p.rego", []byte(approveAll))
	if err != nil {
		t.Fatal(err)
	}
	if p.Hash != policy.Hash([]byte(approveAll)) || len(p.Hash) != 64 || strings.ToLower(p.Hash) != p.Hash {
		t.Errorf("hash %q", p.Hash)
	}
}
