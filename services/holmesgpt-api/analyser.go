package main

import (
	"fmt"
	"strings"

	"github.com/kindling-dev/kindling/services/holmesgpt-api/api"
)

// The analyser stands in for the LLM that the real HolmesGPT consults. The
// suite tests the pipeline around the investigation (approval policy, audit
// trail, workflow selection), not model quality, so the answer must be
// deterministic: the same signal always yields byte-identical output, and
// tests can assert exact root causes, workflows and confidences. Each rule
// maps a Kubernetes failure reason to the workflow an operator would run;
// its parameters are derived from the signal only (never from time, random
// numbers or map iteration order).

// analyserName is reported in every response so consumers can tell this
// stand-in apart from a real model.
const analyserName = "rules/v1"

// humanReviewBelow is the confidence under which a human must review.
const humanReviewBelow = 0.5

type rule struct {
	reason      string
	workflow    string
	confidence  float64
	defaultKind string // used when the signal names no kind
	// explanation completes "<Kind>/<name> in namespace <ns> ...".
	explanation string
	// parameters adds rule-specific workflow parameters.
	parameters func(api.Signal) map[string]string
}

// rules is the whole decision table. Reasons match case-insensitively.
var rules = []rule{
	{
		reason: "OOMKilled", workflow: "increase-memory-limit", confidence: 0.92, defaultKind: "Pod",
		explanation: "was OOMKilled: a container exceeded its memory limit and was killed by the kernel",
		parameters: func(s api.Signal) map[string]string {
			return withLabel(map[string]string{"memory_increase_percent": "50"}, s, "container")
		},
	},
	{
		reason: "CrashLoopBackOff", workflow: "rollback-deployment", confidence: 0.85, defaultKind: "Deployment",
		explanation: "is in CrashLoopBackOff: its containers exit right after start, most likely because of the latest rollout",
		parameters: func(s api.Signal) map[string]string {
			return withLabel(map[string]string{"to_revision": "previous"}, s, "container")
		},
	},
	{
		reason: "ImagePullBackOff", workflow: "fix-image-reference", confidence: 0.88, defaultKind: "Pod",
		explanation: "cannot pull its container image: the image reference is wrong or the registry refuses it",
		parameters: func(s api.Signal) map[string]string {
			return withLabel(map[string]string{}, s, "image")
		},
	},
	{
		reason: "NodeNotReady", workflow: "drain-node", confidence: 0.9, defaultKind: "Node",
		explanation: "is NotReady: its kubelet stopped reporting, so its workloads should move to healthy nodes",
		parameters: func(s api.Signal) map[string]string {
			return map[string]string{"node_name": s.Name, "grace_period_seconds": "300"}
		},
	},
	{
		reason: "HighLatency", workflow: "scale-out", confidence: 0.75, defaultKind: "Deployment",
		explanation: "shows high latency: demand exceeds the capacity of its current replicas",
		parameters: func(s api.Signal) map[string]string {
			return map[string]string{"replica_increase": "2"}
		},
	},
}

// unclassified is the answer when no rule matches.
const (
	unclassifiedWorkflow   = "manual-investigation"
	unclassifiedConfidence = 0.2
)

// Analyse investigates a validated signal. Severity does not change the
// confidence: it says how urgent a problem is, not how sure the diagnosis is.
func Analyse(s api.Signal) api.Investigation {
	r, ok := findRule(s.Reason)
	if !ok {
		return unclassifiedInvestigation(s)
	}
	kind := s.Kind
	if kind == "" {
		kind = r.defaultKind
	}
	params := r.parameters(s)
	params["target_kind"] = kind
	params["target_name"] = s.Name
	params["namespace"] = s.Namespace
	return finish(api.Investigation{
		RootCause:           fmt.Sprintf("%s/%s in namespace %s %s.", kind, s.Name, s.Namespace, r.explanation),
		Confidence:          r.confidence,
		RecommendedWorkflow: api.Workflow{ID: r.workflow, Parameters: params},
	})
}

func unclassifiedInvestigation(s api.Signal) api.Investigation {
	target := s.Name
	if s.Kind != "" {
		target = s.Kind + "/" + s.Name
	}
	reason := "no reason given"
	params := map[string]string{"target_name": s.Name, "namespace": s.Namespace}
	if s.Kind != "" {
		params["target_kind"] = s.Kind
	}
	if r := strings.TrimSpace(s.Reason); r != "" {
		reason = fmt.Sprintf("reason %q matches no rule", r)
		params["reason"] = r
	}
	return finish(api.Investigation{
		RootCause:           fmt.Sprintf("unclassified signal: %s for %s in namespace %s; a human must investigate.", reason, target, s.Namespace),
		Confidence:          unclassifiedConfidence,
		RecommendedWorkflow: api.Workflow{ID: unclassifiedWorkflow, Parameters: params},
	})
}

func finish(inv api.Investigation) api.Investigation {
	inv.NeedsHumanReview = inv.Confidence < humanReviewBelow
	inv.Analyser = analyserName
	return inv
}

func findRule(reason string) (rule, bool) {
	reason = strings.TrimSpace(reason)
	for _, r := range rules {
		if strings.EqualFold(r.reason, reason) {
			return r, true
		}
	}
	return rule{}, false
}

// withLabel copies the signal's label key into params when it is set.
func withLabel(params map[string]string, s api.Signal, key string) map[string]string {
	if v := s.Labels[key]; v != "" {
		params[key] = v
	}
	return params
}
