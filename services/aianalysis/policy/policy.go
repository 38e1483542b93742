// Package policy compiles and evaluates the AIAnalysis approval policy (Rego package aianalysis.approval)
// and keeps it up to date with the policy file.
package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	holmesapi "github.com/kindling-dev/kindling/services/holmesgpt-api/api"
)

const (
	// Package is the Rego package the policy must declare.
	Package = "aianalysis.approval"
	// Query yields the decision object {"decision": .., "reason": ..}.
	Query = "data.aianalysis.approval.decision"
)

// Decisions lists the values the policy may decide.
var Decisions = []string{"auto-approved", "requires-approval", "denied"}

// Input is what the policy sees as `input`.
type Input struct {
	Signal        Signal        `json:"signal"`
	Investigation Investigation `json:"investigation"`
}

// Signal is the alert under analysis, as sent to holmesgpt-api.
type Signal = holmesapi.Signal

// Investigation is holmesgpt-api's answer, as the policy sees it: the fields of
// holmesapi.Investigation except analyser, which the policy input does not carry.
type Investigation struct {
	RootCause           string   `json:"root_cause"`
	Confidence          float64  `json:"confidence"`
	RecommendedWorkflow Workflow `json:"recommended_workflow"`
	NeedsHumanReview    bool     `json:"needs_human_review"`
}

// Workflow is the recommended remediation, as holmesgpt-api answers it.
type Workflow = holmesapi.Workflow

// Decision is the policy's verdict and the hash of the policy that reached it.
type Decision struct {
	Decision   string `json:"decision"`
	Reason     string `json:"reason"`
	PolicyHash string `json:"-"`
}

// Policy is a compiled approval policy.
type Policy struct {
	query rego.PreparedEvalQuery
	// Hash is the hex sha256 of the source the policy was compiled from.
	Hash string
}

// Hash returns the hex sha256 of a policy source.
func Hash(source []byte) string {
	sum := sha256.Sum256(source)
	return hex.EncodeToString(sum[:])
}

// Compile parses and prepares a policy source (Rego v1 syntax). name is used in error messages.
func Compile(ctx context.Context, name string, source []byte) (*Policy, error) {
	module, err := ast.ParseModule(name, string(source))
	if err != nil {
		return nil, fmt.Errorf("parse policy %s: %w", name, err)
	}
	if got := module.Package.Path.String(); got != "data."+Package {
		return nil, fmt.Errorf("policy %s declares package %s; it must declare package %s", name, got, Package)
	}
	query, err := rego.New(
		rego.Query(Query),
		rego.ParsedModule(module),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("compile policy %s: %w", name, err)
	}
	return &Policy{query: query, Hash: Hash(source)}, nil
}

// Decide evaluates the policy for one input. A policy that yields nothing, or something other than a
// decision object with one of the Decisions, is an error.
func (p *Policy) Decide(ctx context.Context, in Input) (Decision, error) {
	doc, err := toDocument(in)
	if err != nil {
		return Decision{}, err
	}
	results, err := p.query.Eval(ctx, rego.EvalInput(doc))
	if err != nil {
		return Decision{}, fmt.Errorf("evaluate %s: %w", Query, err)
	}
	if len(results) == 0 || len(results[0].Expressions) == 0 {
		return Decision{}, fmt.Errorf("policy %.12s yields no decision for this input: %s must always be defined", p.Hash, Query)
	}
	var d Decision
	if err := remarshal(results[0].Expressions[0].Value, &d); err != nil {
		return Decision{}, fmt.Errorf("policy %.12s: %s is not an object {\"decision\", \"reason\"}: %w", p.Hash, Query, err)
	}
	if !slices.Contains(Decisions, d.Decision) {
		return Decision{}, fmt.Errorf("policy %.12s decided %q; want one of %v", p.Hash, d.Decision, Decisions)
	}
	d.PolicyHash = p.Hash
	return d, nil
}

// toDocument turns the input into plain JSON values, as OPA expects.
func toDocument(in Input) (map[string]any, error) {
	var doc map[string]any
	if err := remarshal(in, &doc); err != nil {
		return nil, fmt.Errorf("encode policy input: %w", err)
	}
	return doc, nil
}

func remarshal(from, to any) error {
	data, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, to)
}
