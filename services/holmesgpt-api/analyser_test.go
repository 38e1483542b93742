package main

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/kindling-dev/kindling/services/holmesgpt-api/api"
)

func TestAnalyseRules(t *testing.T) {
	tests := []struct {
		name   string
		signal api.Signal
		want   api.Investigation
	}{
		{
			name:   "OOMKilled",
			signal: api.Signal{Name: "api-7d9", Namespace: "prod", Kind: "Pod", Reason: "OOMKilled", Labels: map[string]string{"container": "app"}},
			want: api.Investigation{
				RootCause:  "Pod/api-7d9 in namespace prod was OOMKilled: a container exceeded its memory limit and was killed by the kernel.",
				Confidence: 0.92,
				RecommendedWorkflow: api.Workflow{ID: "increase-memory-limit", Parameters: map[string]string{
					"target_kind": "Pod", "target_name": "api-7d9", "namespace": "prod",
					"memory_increase_percent": "50", "container": "app",
				}},
			},
		},
		{
			name:   "CrashLoopBackOff",
			signal: api.Signal{Name: "api", Namespace: "prod", Kind: "Deployment", Reason: "CrashLoopBackOff"},
			want: api.Investigation{
				RootCause:  "Deployment/api in namespace prod is in CrashLoopBackOff: its containers exit right after start, most likely because of the latest rollout.",
				Confidence: 0.85,
				RecommendedWorkflow: api.Workflow{ID: "rollback-deployment", Parameters: map[string]string{
					"target_kind": "Deployment", "target_name": "api", "namespace": "prod", "to_revision": "previous",
				}},
			},
		},
		{
			name:   "ImagePullBackOff",
			signal: api.Signal{Name: "web", Namespace: "shop", Kind: "Pod", Reason: "ImagePullBackOff", Labels: map[string]string{"image": "reg/web:v2"}},
			want: api.Investigation{
				RootCause:  "Pod/web in namespace shop cannot pull its container image: the image reference is wrong or the registry refuses it.",
				Confidence: 0.88,
				RecommendedWorkflow: api.Workflow{ID: "fix-image-reference", Parameters: map[string]string{
					"target_kind": "Pod", "target_name": "web", "namespace": "shop", "image": "reg/web:v2",
				}},
			},
		},
		{
			name:   "NodeNotReady defaults kind to Node",
			signal: api.Signal{Name: "worker-1", Namespace: "default", Reason: "NodeNotReady"},
			want: api.Investigation{
				RootCause:  "Node/worker-1 in namespace default is NotReady: its kubelet stopped reporting, so its workloads should move to healthy nodes.",
				Confidence: 0.9,
				RecommendedWorkflow: api.Workflow{ID: "drain-node", Parameters: map[string]string{
					"target_kind": "Node", "target_name": "worker-1", "namespace": "default",
					"node_name": "worker-1", "grace_period_seconds": "300",
				}},
			},
		},
		{
			name:   "HighLatency",
			signal: api.Signal{Name: "checkout", Namespace: "shop", Kind: "Deployment", Reason: "HighLatency", Severity: "warning"},
			want: api.Investigation{
				RootCause:  "Deployment/checkout in namespace shop shows high latency: demand exceeds the capacity of its current replicas.",
				Confidence: 0.75,
				RecommendedWorkflow: api.Workflow{ID: "scale-out", Parameters: map[string]string{
					"target_kind": "Deployment", "target_name": "checkout", "namespace": "shop", "replica_increase": "2",
				}},
			},
		},
		{
			name:   "reason matches case-insensitively",
			signal: api.Signal{Name: "p", Namespace: "n", Kind: "Pod", Reason: " oomkilled "},
			want: api.Investigation{
				RootCause:  "Pod/p in namespace n was OOMKilled: a container exceeded its memory limit and was killed by the kernel.",
				Confidence: 0.92,
				RecommendedWorkflow: api.Workflow{ID: "increase-memory-limit", Parameters: map[string]string{
					"target_kind": "Pod", "target_name": "p", "namespace": "n", "memory_increase_percent": "50",
				}},
			},
		},
		{
			name:   "unknown reason",
			signal: api.Signal{Name: "db-0", Namespace: "data", Kind: "StatefulSet", Reason: "DiskPressure"},
			want: api.Investigation{
				RootCause:  `unclassified signal: reason "DiskPressure" matches no rule for StatefulSet/db-0 in namespace data; a human must investigate.`,
				Confidence: 0.2,
				RecommendedWorkflow: api.Workflow{ID: "manual-investigation", Parameters: map[string]string{
					"target_kind": "StatefulSet", "target_name": "db-0", "namespace": "data", "reason": "DiskPressure",
				}},
				NeedsHumanReview: true,
			},
		},
		{
			name:   "empty reason and kind",
			signal: api.Signal{Name: "thing", Namespace: "ns"},
			want: api.Investigation{
				RootCause:  "unclassified signal: no reason given for thing in namespace ns; a human must investigate.",
				Confidence: 0.2,
				RecommendedWorkflow: api.Workflow{ID: "manual-investigation", Parameters: map[string]string{
					"target_name": "thing", "namespace": "ns",
				}},
				NeedsHumanReview: true,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.Analyser = "rules/v1"
			got := Analyse(tt.signal)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Analyse(%+v)\n got %+v\nwant %+v", tt.signal, got, tt.want)
			}
		})
	}
}

func TestRulesFollowTheReviewThreshold(t *testing.T) {
	for _, r := range rules {
		inv := Analyse(api.Signal{Name: "x", Namespace: "y", Reason: r.reason})
		if inv.NeedsHumanReview != (r.confidence < humanReviewBelow) {
			t.Errorf("%s: needs_human_review=%v with confidence %v", r.reason, inv.NeedsHumanReview, r.confidence)
		}
		if inv.Confidence <= 0 || inv.Confidence > 1 {
			t.Errorf("%s: confidence %v outside (0,1]", r.reason, inv.Confidence)
		}
	}
}

func TestLowConfidenceNeedsHumanReview(t *testing.T) {
	if !finish(api.Investigation{Confidence: 0.49}).NeedsHumanReview {
		t.Error("confidence 0.49 did not require human review")
	}
	if finish(api.Investigation{Confidence: 0.5}).NeedsHumanReview {
		t.Error("confidence 0.5 required human review")
	}
}

func TestSeverityDoesNotChangeTheAnswer(t *testing.T) {
	base := api.Signal{Name: "api", Namespace: "prod", Kind: "Pod", Reason: "OOMKilled"}
	want := Analyse(base)
	for _, sev := range []string{"info", "warning", "critical"} {
		s := base
		s.Severity = sev
		if got := Analyse(s); !reflect.DeepEqual(got, want) {
			t.Errorf("severity %s changed the answer: %+v, want %+v", sev, got, want)
		}
	}
}

func TestAnalyseIsByteIdentical(t *testing.T) {
	s := api.Signal{Name: "api", Namespace: "prod", Kind: "Pod", Reason: "OOMKilled", Severity: "critical",
		Labels: map[string]string{"container": "app", "a": "1", "b": "2", "c": "3"}}
	first, err := json.Marshal(Analyse(s))
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		again, _ := json.Marshal(Analyse(s))
		if string(again) != string(first) {
			t.Fatalf("output differs:\n%s\n%s", first, again)
		}
	}
}

func TestAnalyseDoesNotShareParameterMaps(t *testing.T) {
	a := Analyse(api.Signal{Name: "a", Namespace: "n", Reason: "HighLatency"})
	a.RecommendedWorkflow.Parameters["replica_increase"] = "99"
	b := Analyse(api.Signal{Name: "b", Namespace: "n", Reason: "HighLatency"})
	if b.RecommendedWorkflow.Parameters["replica_increase"] != "2" {
		t.Error("mutating one answer's parameters leaked into the next answer")
	}
}
