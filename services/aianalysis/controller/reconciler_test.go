package controller_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kindling-dev/kindling/services/aianalysis/api/v1alpha1"
	"github.com/kindling-dev/kindling/services/aianalysis/controller"
	"github.com/kindling-dev/kindling/services/aianalysis/policy"
	holmesapi "github.com/kindling-dev/kindling/services/holmesgpt-api/api"
)

var allPhases = []v1alpha1.Phase{v1alpha1.PhasePending, v1alpha1.PhaseInvestigating, v1alpha1.PhaseAnalyzing, v1alpha1.PhaseCompleted}

func TestWalksAllPhasesToCompleted(t *testing.T) {
	e := newEnv(t, rulesAnswer, newAnalysis("oom", "staging", "OOMKilled"))

	if res := e.reconcile("oom"); res.RequeueAfter != 0 {
		t.Errorf("RequeueAfter = %s, want 0 once Completed and audited", res.RequeueAfter)
	}

	a := e.get("oom")
	s := a.Status
	if s.Phase != v1alpha1.PhaseCompleted {
		t.Fatalf("phase = %q (reason %q), want Completed", s.Phase, s.Reason)
	}
	if s.RootCause == "" || s.Confidence != 0.92 || s.Analyser != "rules/v1" || s.NeedsHumanReview {
		t.Errorf("investigation not recorded: %+v", s)
	}
	if s.RecommendedWorkflow == nil || s.RecommendedWorkflow.ID != "increase-memory-limit" || s.RecommendedWorkflow.Parameters["name"] != "api-7d9f" {
		t.Errorf("recommendedWorkflow = %+v", s.RecommendedWorkflow)
	}
	wantHash := policy.Hash(defaultPolicySource(t))
	if s.Approval == nil || s.Approval.Decision != v1alpha1.DecisionAutoApproved || s.Approval.PolicyHash != wantHash || s.Approval.Reason == "" {
		t.Errorf("approval = %+v, want auto-approved by policy %s", s.Approval, wantHash)
	}
	if s.StartedAt == nil || s.CompletedAt == nil {
		t.Errorf("startedAt = %v, completedAt = %v; want both set", s.StartedAt, s.CompletedAt)
	}
	if c := meta.FindStatusCondition(s.Conditions, v1alpha1.ConditionInvestigated); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Investigated condition = %+v, want True", c)
	}
	if c := meta.FindStatusCondition(s.Conditions, v1alpha1.ConditionAuditDelivered); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("AuditDelivered condition = %+v, want True", c)
	}
	if e.holmes.calls() != 1 {
		t.Errorf("holmesgpt-api calls = %d, want 1", e.holmes.calls())
	}
	sent := e.holmes.signals[0]
	if sent.Reason != "OOMKilled" || sent.Namespace != "staging" || sent.Kind != "Pod" || sent.Labels["app"] != "api" {
		t.Errorf("signal sent to holmesgpt-api = %+v", sent)
	}

	// Every transition was persisted, in order, before the next phase started.
	if got := slices.Compact(e.statusUpdates()); !slices.Equal(got, allPhases) {
		t.Errorf("persisted phases = %v, want %v", got, allPhases)
	}

	// One audit event per transition, in order, keyed by "<uid>/<phase>".
	_, stored := e.ds.counts()
	if len(stored) != 4 {
		t.Fatalf("datastorage holds %d events, want 4: %+v", len(stored), stored)
	}
	from := ""
	for i, ev := range stored {
		phase := string(allPhases[i])
		if ev.EventID != "uid-oom/"+phase || ev.CorrelationID != "uid-oom" || ev.Source != "aianalysis-controller" ||
			ev.EventType != "aianalysis.phase."+strings.ToLower(phase) {
			t.Errorf("event %d = %+v", i, ev)
		}
		if p := payload(t, ev); p["phase"] != phase || (from != "" && p["from"] != from) || p["resource"] != "kindling/oom" {
			t.Errorf("event %d payload = %v", i, p)
		}
		if _, err := time.Parse(time.RFC3339, ev.Timestamp); err != nil {
			t.Errorf("event %d timestamp %q: %v", i, ev.Timestamp, err)
		}
		from = phase
	}
	if p := payload(t, stored[3]); p["decision"] != "auto-approved" || p["policy_hash"] != wantHash || p["workflow"] != "increase-memory-limit" {
		t.Errorf("Completed payload = %v", p)
	}
	if s.Audit == nil || len(s.Audit.Pending) != 0 || !slices.Equal(s.Audit.DeliveredPhases, []string{"Pending", "Investigating", "Analyzing", "Completed"}) {
		t.Errorf("audit status = %+v", s.Audit)
	}
	if n := len(e.recorder.Events); n < 4 {
		t.Errorf("recorded %d Kubernetes events, want one per transition", n)
	}
}

func TestDefaultPolicyOutcomes(t *testing.T) {
	answer := func(conf float64, review bool, workflow string) func(int, holmesapi.Signal) (int, any) {
		return func(int, holmesapi.Signal) (int, any) {
			return 200, holmesapi.Investigation{RootCause: "x", Confidence: conf, NeedsHumanReview: review,
				RecommendedWorkflow: holmesapi.Workflow{ID: workflow, Parameters: map[string]string{}}}
		}
	}
	for _, tc := range []struct {
		name, namespace, reason string
		answer                  func(int, holmesapi.Signal) (int, any)
		want, reasonHas         string
	}{
		{"oom-staging", "staging", "OOMKilled", rulesAnswer, "auto-approved", "increase-memory-limit"},
		{"oom-production", "production", "OOMKilled", rulesAnswer, "requires-approval", "production namespace"},
		{"oom-prod", "prod", "OOMKilled", rulesAnswer, "requires-approval", "production namespace"},
		{"latency", "staging", "HighLatency", rulesAnswer, "requires-approval", "below the threshold"},
		{"unknown", "staging", "Mystery", rulesAnswer, "requires-approval", "human review"},
		{"review-only", "staging", "OOMKilled", answer(0.95, true, "increase-memory-limit"), "requires-approval", "human review"},
		{"at-threshold", "staging", "OOMKilled", answer(0.8, false, "increase-memory-limit"), "auto-approved", ""},
		{"drain-staging", "staging", "NodeNotReady", rulesAnswer, "denied", "drain-node"},
		{"drain-production", "production", "NodeNotReady", rulesAnswer, "denied", "forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.answer, newAnalysis(tc.name, tc.namespace, tc.reason))
			e.reconcile(tc.name)
			a := e.get(tc.name).Status
			if a.Phase != v1alpha1.PhaseCompleted || a.Approval == nil {
				t.Fatalf("phase %q approval %+v reason %q", a.Phase, a.Approval, a.Reason)
			}
			if a.Approval.Decision != tc.want || !strings.Contains(a.Approval.Reason, tc.reasonHas) {
				t.Errorf("decision = %q (%s), want %q mentioning %q", a.Approval.Decision, a.Approval.Reason, tc.want, tc.reasonHas)
			}
		})
	}
}

func TestTransientHolmesErrorsAreRetriedWithBackoff(t *testing.T) {
	answer := func(attempt int, s holmesapi.Signal) (int, any) {
		switch attempt {
		case 1:
			return 503, map[string]string{"error": "warming up"}
		case 2:
			return 429, map[string]string{"error": "slow down"}
		}
		return rulesAnswer(attempt, s)
	}
	e := newEnv(t, answer, newAnalysis("flaky", "staging", "OOMKilled"))

	res := e.reconcile("flaky")
	a := e.get("flaky")
	if a.Status.Phase != v1alpha1.PhaseInvestigating || res.RequeueAfter != time.Second {
		t.Fatalf("after a 503: phase %q, RequeueAfter %s; want Investigating, 1s", a.Status.Phase, res.RequeueAfter)
	}
	retry := a.Status.InvestigationRetry
	if retry == nil || retry.Attempts != 1 || !strings.Contains(retry.LastError, "503") {
		t.Errorf("investigationRetry = %+v", retry)
	}
	c := meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionInvestigated)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != "HolmesGPTUnavailable" {
		t.Errorf("Investigated condition = %+v", c)
	}

	// A reconcile before the backoff elapsed (e.g. another event) does not call holmesgpt-api.
	e.clock.Advance(500 * time.Millisecond)
	if res := e.reconcile("flaky"); e.holmes.calls() != 1 || res.RequeueAfter <= 0 || res.RequeueAfter > time.Second {
		t.Errorf("early reconcile: calls %d, RequeueAfter %s", e.holmes.calls(), res.RequeueAfter)
	}

	e.clock.Advance(time.Second)
	if res := e.reconcile("flaky"); res.RequeueAfter != 2*time.Second {
		t.Errorf("after a 429: RequeueAfter %s, want 2s (doubled)", res.RequeueAfter)
	}
	e.clock.Advance(2 * time.Second)
	e.reconcile("flaky")

	a = e.get("flaky")
	if a.Status.Phase != v1alpha1.PhaseCompleted || e.holmes.calls() != 3 {
		t.Fatalf("phase %q after %d calls, want Completed after 3", a.Status.Phase, e.holmes.calls())
	}
	if a.Status.InvestigationRetry != nil {
		t.Errorf("investigationRetry = %+v, want cleared", a.Status.InvestigationRetry)
	}
	if c := meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionInvestigated); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Investigated condition = %+v, want True", c)
	}
	if _, stored := e.ds.counts(); len(stored) != 4 {
		t.Errorf("datastorage holds %d events, want 4 (retries are not transitions)", len(stored))
	}
}

func TestHolmesBadRequestFails(t *testing.T) {
	answer := func(int, holmesapi.Signal) (int, any) {
		return 400, map[string]string{"error": "is required", "field": "signal.reason"}
	}
	e := newEnv(t, answer, newAnalysis("bad", "staging", ""))

	if res := e.reconcile("bad"); res.RequeueAfter != 0 {
		t.Errorf("RequeueAfter = %s, want 0", res.RequeueAfter)
	}
	s := e.get("bad").Status
	if s.Phase != v1alpha1.PhaseFailed || !strings.Contains(s.Reason, "rejected") || !strings.Contains(s.Reason, "signal.reason") {
		t.Fatalf("phase %q reason %q, want Failed naming the rejected field", s.Phase, s.Reason)
	}
	if s.CompletedAt == nil || s.Approval != nil {
		t.Errorf("completedAt %v approval %+v", s.CompletedAt, s.Approval)
	}
	if c := meta.FindStatusCondition(s.Conditions, v1alpha1.ConditionInvestigated); c == nil || c.Reason != "InvestigationRejected" {
		t.Errorf("Investigated condition = %+v", c)
	}
	_, stored := e.ds.counts()
	if len(stored) != 3 || stored[2].EventType != "aianalysis.phase.failed" || payload(t, stored[2])["from"] != "Investigating" {
		t.Errorf("audit events = %+v, want pending, investigating, failed", stored)
	}

	e.reconcile("bad")
	if e.holmes.calls() != 1 {
		t.Errorf("holmesgpt-api calls = %d, want 1 (no retry of a 400)", e.holmes.calls())
	}
}

func TestHolmesUnavailableTooLongFails(t *testing.T) {
	e := newEnv(t, func(int, holmesapi.Signal) (int, any) { return 502, map[string]string{"error": "bad gateway"} },
		newAnalysis("down", "staging", "OOMKilled"))
	e.r.MaxInvestigationAttempts = 3

	for range 3 {
		res := e.reconcile("down")
		e.clock.Advance(res.RequeueAfter)
	}
	s := e.get("down").Status
	if s.Phase != v1alpha1.PhaseFailed || !strings.Contains(s.Reason, "after 3 attempts") || e.holmes.calls() != 3 {
		t.Errorf("phase %q reason %q calls %d; want Failed after 3 attempts", s.Phase, s.Reason, e.holmes.calls())
	}
}

func TestDatastorageDownDoesNotBlockTransitions(t *testing.T) {
	e := newEnv(t, rulesAnswer, newAnalysis("audit", "staging", "OOMKilled"))
	e.ds.setDown(true)

	res := e.reconcile("audit")
	s := e.get("audit").Status
	if s.Phase != v1alpha1.PhaseCompleted {
		t.Fatalf("phase = %q, want Completed although datastorage is down", s.Phase)
	}
	if s.Audit == nil || len(s.Audit.Pending) != 4 || len(s.Audit.DeliveredPhases) != 0 {
		t.Fatalf("audit = %+v, want the 4 events pending", s.Audit)
	}
	for i, ev := range s.Audit.Pending {
		if ev.Phase != allPhases[i] || ev.EventID != "uid-audit/"+string(allPhases[i]) {
			t.Errorf("pending[%d] = %+v", i, ev)
		}
	}
	c := meta.FindStatusCondition(s.Conditions, v1alpha1.ConditionAuditDelivered)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != "DatastorageUnavailable" {
		t.Errorf("AuditDelivered condition = %+v", c)
	}
	if res.RequeueAfter != time.Second {
		t.Errorf("RequeueAfter = %s, want 1s (audit retry)", res.RequeueAfter)
	}
	posts, _ := e.ds.counts()
	if posts != 1 {
		t.Errorf("datastorage got %d posts, want 1 (later transitions wait for the backoff)", posts)
	}

	// Still down: the backoff grows, nothing is lost.
	e.clock.Advance(res.RequeueAfter)
	if res = e.reconcile("audit"); res.RequeueAfter != 2*time.Second {
		t.Errorf("second failure: RequeueAfter = %s, want 2s", res.RequeueAfter)
	}

	e.ds.setDown(false)
	e.clock.Advance(res.RequeueAfter)
	if res = e.reconcile("audit"); res.RequeueAfter != 0 {
		t.Errorf("after delivery RequeueAfter = %s, want 0", res.RequeueAfter)
	}
	s = e.get("audit").Status
	if len(s.Audit.Pending) != 0 || s.Audit.Retry != nil || len(s.Audit.DeliveredPhases) != 4 {
		t.Errorf("audit = %+v, want all delivered", s.Audit)
	}
	if c := meta.FindStatusCondition(s.Conditions, v1alpha1.ConditionAuditDelivered); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("AuditDelivered condition = %+v, want True", c)
	}
	postsBefore, stored := e.ds.counts()
	if len(stored) != 4 {
		t.Fatalf("datastorage holds %d events, want 4", len(stored))
	}
	for i, ev := range stored {
		if ev.EventID != "uid-audit/"+string(allPhases[i]) {
			t.Errorf("stored[%d] = %s, want transition order", i, ev.EventID)
		}
	}

	e.clock.Advance(time.Hour)
	e.reconcile("audit")
	if posts, _ := e.ds.counts(); posts != postsBefore {
		t.Errorf("delivered events were posted again (%d → %d posts)", postsBefore, posts)
	}
}

func TestRedeliveredAuditEventIsStoredOnce(t *testing.T) {
	e := newEnv(t, rulesAnswer, newAnalysis("dup", "staging", "OOMKilled"))
	// The status update that records the first delivery is lost (conflict, crash), so the event is
	// still pending when the reconcile is retried.
	failed := false
	e.r.Client = failingStatusClient{Client: e.client, fail: func(a *v1alpha1.AIAnalysis) bool {
		if !failed && a.Status.Audit != nil && len(a.Status.Audit.DeliveredPhases) > 0 {
			failed = true
			return true
		}
		return false
	}}
	if _, err := e.r.Reconcile(context.Background(), requestFor("dup")); err == nil {
		t.Fatal("want the injected status update error")
	}
	if s := e.get("dup").Status; s.Phase != v1alpha1.PhasePending || len(s.Audit.Pending) != 1 {
		t.Fatalf("after the lost update: phase %q audit %+v, want Pending with its event pending", s.Phase, s.Audit)
	}
	if posts, _ := e.ds.counts(); posts != 1 {
		t.Fatalf("datastorage got %d posts, want 1", posts)
	}
	e.reconcile("dup")

	posts, stored := e.ds.counts()
	if posts != 5 || len(stored) != 4 {
		t.Errorf("datastorage holds %d events after %d posts, want 4 after 5 (the Pending event twice, stored once)", len(stored), posts)
	}
	if got := e.get("dup").Status.Phase; got != v1alpha1.PhaseCompleted {
		t.Errorf("phase = %q", got)
	}
}

func TestReconcilingACompletedAnalysisDoesNothing(t *testing.T) {
	e := newEnv(t, rulesAnswer, newAnalysis("done", "staging", "OOMKilled"))
	e.reconcile("done")
	before := e.get("done")
	posts, _ := e.ds.counts()
	updates := len(e.statusUpdates())

	for range 3 {
		e.clock.Advance(time.Hour)
		if res := e.reconcile("done"); res.RequeueAfter != 0 {
			t.Errorf("RequeueAfter = %s, want 0", res.RequeueAfter)
		}
	}
	if e.holmes.calls() != 1 {
		t.Errorf("holmesgpt-api calls = %d, want 1", e.holmes.calls())
	}
	if p, _ := e.ds.counts(); p != posts {
		t.Errorf("datastorage posts %d → %d, want none", posts, p)
	}
	if n := len(e.statusUpdates()); n != updates {
		t.Errorf("status updates %d → %d, want none", updates, n)
	}
	if after := e.get("done"); after.ResourceVersion != before.ResourceVersion {
		t.Errorf("resourceVersion %s → %s", before.ResourceVersion, after.ResourceVersion)
	}
}

func TestResumesAtThePersistedPhase(t *testing.T) {
	a := newAnalysis("resume", "staging", "OOMKilled")
	a.Status = v1alpha1.AIAnalysisStatus{
		Phase: v1alpha1.PhaseAnalyzing, RootCause: "memory", Confidence: 0.92,
		RecommendedWorkflow: &v1alpha1.RecommendedWorkflow{ID: "increase-memory-limit"},
		Audit:               &v1alpha1.AuditStatus{DeliveredPhases: []string{"Pending", "Investigating", "Analyzing"}},
	}
	e := newEnv(t, rulesAnswer, a)
	e.reconcile("resume")

	s := e.get("resume").Status
	if s.Phase != v1alpha1.PhaseCompleted || s.Approval.Decision != "auto-approved" {
		t.Errorf("phase %q approval %+v", s.Phase, s.Approval)
	}
	if e.holmes.calls() != 0 {
		t.Errorf("holmesgpt-api called %d times for an analysis already past Investigating", e.holmes.calls())
	}
	if _, stored := e.ds.counts(); len(stored) != 1 || stored[0].EventID != "uid-resume/Completed" {
		t.Errorf("audit events = %+v, want only the Completed transition", stored)
	}
}

func TestWaitsForThePolicyToLoad(t *testing.T) {
	e := newEnv(t, rulesAnswer, newAnalysis("wait", "staging", "OOMKilled"))
	path := filepath.Join(t.TempDir(), "approval.rego")
	w := policy.NewWatcher(path, time.Second, logr.Discard())
	e.r.Policy = w

	if res := e.reconcile("wait"); res.RequeueAfter != e.r.PolicyWait {
		t.Errorf("RequeueAfter = %s, want the policy wait %s", res.RequeueAfter, e.r.PolicyWait)
	}
	if s := e.get("wait").Status; s.Phase != v1alpha1.PhaseAnalyzing {
		t.Fatalf("phase = %q, want Analyzing until a policy loads", s.Phase)
	}

	writeFile(t, path, defaultPolicySource(t))
	if _, err := w.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.reconcile("wait")
	if s := e.get("wait").Status; s.Phase != v1alpha1.PhaseCompleted || s.Approval.Decision != "auto-approved" {
		t.Errorf("phase %q approval %+v", s.Phase, s.Approval)
	}
}

func TestReloadedPolicyDecidesLaterAnalyses(t *testing.T) {
	e := newEnv(t, rulesAnswer, newAnalysis("first", "staging", "OOMKilled"), newAnalysis("second", "staging", "OOMKilled"))
	path := filepath.Join(t.TempDir(), "approval.rego")
	writeFile(t, path, defaultPolicySource(t))
	w := policy.NewWatcher(path, time.Second, logr.Discard())
	if _, err := w.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.r.Policy = w

	e.reconcile("first")
	strict := []byte(`package aianalysis.approval

decision := {"decision": "requires-approval", "reason": "change freeze"}
`)
	writeFile(t, path, strict)
	if changed, err := w.Reload(context.Background()); !changed || err != nil {
		t.Fatalf("Reload = %v, %v; want the new policy active", changed, err)
	}
	e.reconcile("second")

	first, second := e.get("first").Status.Approval, e.get("second").Status.Approval
	if first.Decision != "auto-approved" || first.PolicyHash != policy.Hash(defaultPolicySource(t)) {
		t.Errorf("first approval = %+v", first)
	}
	if second.Decision != "requires-approval" || second.Reason != "change freeze" || second.PolicyHash != policy.Hash(strict) {
		t.Errorf("second approval = %+v", second)
	}
}

func TestPolicyWithoutAValidDecisionFails(t *testing.T) {
	e := newEnv(t, rulesAnswer, newAnalysis("broken", "staging", "OOMKilled"))
	p, err := policy.Compile(context.Background(), "odd.rego", []byte(`package aianalysis.approval

decision := {"decision": "maybe", "reason": "?"}
`))
	if err != nil {
		t.Fatal(err)
	}
	e.r.Policy = p
	e.reconcile("broken")
	if s := e.get("broken").Status; s.Phase != v1alpha1.PhaseFailed || !strings.Contains(s.Reason, "maybe") {
		t.Errorf("phase %q reason %q, want Failed citing the invalid decision", s.Phase, s.Reason)
	}
}

func TestBackoffDelays(t *testing.T) {
	b := controller.Backoff{Base: time.Second, Max: time.Minute}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute}
	for i, w := range want {
		if got := b.Delay(int32(i + 1)); got != w {
			t.Errorf("Delay(%d) = %s, want %s", i+1, got, w)
		}
	}
	if got := b.Delay(1000); got != time.Minute {
		t.Errorf("Delay(1000) = %s, want the cap", got)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
