//go:build e2e

package aianalysis

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kindling-dev/kindling/services/aianalysis/api/v1alpha1"
)

// The chain decides as the default policy in manifests/aianalysis/30-policy.yaml says.
func TestDecisions(t *testing.T) {
	for _, tc := range []struct {
		name, namespace, reason string
		wantDecision, wantFlow  string
	}{
		{"oom-in-staging", "staging", "OOMKilled", v1alpha1.DecisionAutoApproved, "increase-memory-limit"},
		{"oom-in-production", "production", "OOMKilled", v1alpha1.DecisionRequiresApproval, "increase-memory-limit"},
		{"node-not-ready", "staging", "NodeNotReady", v1alpha1.DecisionDenied, "drain-node"},
		{"high-latency-low-confidence", "staging", "HighLatency", v1alpha1.DecisionRequiresApproval, "scale-out"},
		{"unclassified-signal", "staging", "SolarFlare", v1alpha1.DecisionRequiresApproval, "manual-investigation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := analyse(t, tc.name, tc.namespace, tc.reason)
			if got := a.Status.Approval.Decision; got != tc.wantDecision {
				t.Errorf("decision = %s (%s), want %s", got, a.Status.Approval.Reason, tc.wantDecision)
			}
			if a.Status.RecommendedWorkflow == nil || a.Status.RecommendedWorkflow.ID != tc.wantFlow {
				t.Errorf("recommended workflow = %+v, want %s", a.Status.RecommendedWorkflow, tc.wantFlow)
			}
			if a.Status.RootCause == "" || a.Status.Approval.PolicyHash == "" {
				t.Errorf("status lacks root cause or policy hash: %+v", a.Status)
			}
			assertAuditTrail(t, a)
		})
	}
}

// Every phase transition is in datastorage under the resource's UID, once.
func assertAuditTrail(t *testing.T, a *v1alpha1.AIAnalysis) {
	t.Helper()
	want := []string{"Pending", "Investigating", "Analyzing", "Completed"}
	var events []auditEvent
	err := wait.PollUntilContextTimeout(context.Background(), time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		var err error
		events, err = auditEvents(ctx, string(a.UID))
		if err != nil {
			t.Logf("datastorage: %v (retrying)", err)
			return false, nil
		}
		return len(events) >= len(want), nil
	})
	if err != nil {
		t.Fatalf("audit trail of %s (uid %s) in datastorage: want %d phase events, got %d: %+v", a.Name, a.UID, len(want), len(events), events)
	}
	seen := map[string]int{}
	for _, e := range events {
		if e.CorrelationID != string(a.UID) {
			t.Errorf("event %s has correlation id %s, want %s", e.ID, e.CorrelationID, a.UID)
		}
		seen[phaseOf(e)]++
	}
	for _, phase := range want {
		if seen[phase] != 1 {
			t.Errorf("audit trail has %d events for phase %s, want exactly 1 (events: %+v)", seen[phase], phase, events)
		}
	}
}

// A policy ConfigMap change alters the next decision: forbidding increase-memory-limit turns the
// auto-approved OOMKilled-in-staging case into a denial. The original policy is restored after.
func TestPolicyChangeAltersNextDecision(t *testing.T) {
	ctx := context.Background()
	var cm corev1.ConfigMap
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "aianalysis-policy"}, &cm); err != nil {
		t.Fatal(err)
	}
	original := cm.Data["approval.rego"]
	const from, to = `forbidden_workflows := ["drain-node"]`, `forbidden_workflows := ["drain-node", "increase-memory-limit"]`
	if !strings.Contains(original, from) {
		t.Fatalf("policy ConfigMap has no line %q to change:\n%s", from, original)
	}
	before := analyse(t, "before-policy-change", "staging", "OOMKilled")
	if before.Status.Approval.Decision != v1alpha1.DecisionAutoApproved {
		t.Fatalf("before the change: decision = %s, want auto-approved", before.Status.Approval.Decision)
	}

	setPolicy(t, strings.Replace(original, from, to, 1))
	t.Cleanup(func() { setPolicy(t, original) })

	// The kubelet refreshes the mounted file within its sync period; ask until the controller
	// decides with a new policy.
	deadline := time.Now().Add(3 * time.Minute)
	for i := 0; ; i++ {
		a := analyse(t, fmt.Sprintf("after-policy-change-%d", i), "staging", "OOMKilled")
		if a.Status.Approval.PolicyHash != before.Status.Approval.PolicyHash {
			if a.Status.Approval.Decision != v1alpha1.DecisionDenied {
				t.Fatalf("with the new policy: decision = %s (%s), want denied", a.Status.Approval.Decision, a.Status.Approval.Reason)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the controller still decides with the old policy (hash %s) 3 minutes after the ConfigMap changed", before.Status.Approval.PolicyHash)
		}
		time.Sleep(5 * time.Second)
	}
}

func setPolicy(t *testing.T, rego string) {
	t.Helper()
	ctx := context.Background()
	var cm corev1.ConfigMap
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "aianalysis-policy"}, &cm); err != nil {
		t.Fatal(err)
	}
	cm.Data["approval.rego"] = rego
	if err := k8s.Update(ctx, &cm); err != nil {
		t.Fatal(err)
	}
}

// analyse creates an AIAnalysis for a signal and waits until it is Completed.
func analyse(t *testing.T, name, signalNamespace, reason string) *v1alpha1.AIAnalysis {
	t.Helper()
	ctx := context.Background()
	a := &v1alpha1.AIAnalysis{
		ObjectMeta: metav1.ObjectMeta{GenerateName: name + "-", Namespace: namespace},
		Spec: v1alpha1.AIAnalysisSpec{Signal: v1alpha1.Signal{
			Name: "checkout", Namespace: signalNamespace, Kind: "Deployment", Severity: "critical", Reason: reason,
			Labels: map[string]string{"app": "checkout"},
		}},
	}
	if err := k8s.Create(ctx, a); err != nil {
		t.Fatalf("create AIAnalysis: %v", err)
	}
	t.Cleanup(func() { k8s.Delete(context.Background(), a) })
	key := client.ObjectKeyFromObject(a)
	err := wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := k8s.Get(ctx, key, a); err != nil {
			return false, err
		}
		return a.Status.Phase.Terminal(), nil
	})
	if err != nil {
		t.Fatalf("AIAnalysis %s did not finish: phase %q, status %+v: %v", key, a.Status.Phase, a.Status, err)
	}
	if a.Status.Phase != v1alpha1.PhaseCompleted || a.Status.Approval == nil {
		t.Fatalf("AIAnalysis %s ended in %s (reason %q), want Completed with an approval", key, a.Status.Phase, a.Status.Reason)
	}
	return a
}

type auditEvent struct {
	ID            string         `json:"id"`
	EventID       string         `json:"event_id"`
	CorrelationID string         `json:"correlation_id"`
	EventType     string         `json:"event_type"`
	Source        string         `json:"source"`
	Payload       map[string]any `json:"payload"`
}

// phaseOf is the phase an audit event records; the controller's event ids are "<uid>/<phase>".
func phaseOf(e auditEvent) string {
	if i := strings.LastIndex(e.EventID, "/"); i >= 0 {
		return e.EventID[i+1:]
	}
	return ""
}

func auditEvents(ctx context.Context, correlationID string) ([]auditEvent, error) {
	u := datastorageURL + "/api/v1/audit/events?correlation_id=" + url.QueryEscape(correlationID)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	var body struct {
		Events []auditEvent `json:"events"`
	}
	return body.Events, json.NewDecoder(resp.Body).Decode(&body)
}
