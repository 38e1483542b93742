package controller

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kindling-dev/kindling/services/aianalysis/api/v1alpha1"
	"github.com/kindling-dev/kindling/services/aianalysis/clients"
	"github.com/kindling-dev/kindling/services/aianalysis/policy"
	holmesapi "github.com/kindling-dev/kindling/services/holmesgpt-api/api"
)

// step performs the work of the current phase and persists the outcome. It returns how long to wait
// before the next step when the phase cannot progress now.
func (r *Reconciler) step(ctx context.Context, a *v1alpha1.AIAnalysis) (time.Duration, error) {
	switch a.Status.Phase {
	case "":
		a.Status.StartedAt = ptrTime(r.now())
		return 0, r.transition(ctx, a, v1alpha1.PhasePending, nil)
	case v1alpha1.PhasePending:
		return 0, r.transition(ctx, a, v1alpha1.PhaseInvestigating, nil)
	case v1alpha1.PhaseInvestigating:
		return r.investigate(ctx, a)
	case v1alpha1.PhaseAnalyzing:
		return r.analyze(ctx, a)
	default:
		return 0, r.fail(ctx, a, fmt.Sprintf("unknown phase %q", a.Status.Phase))
	}
}

func (r *Reconciler) investigate(ctx context.Context, a *v1alpha1.AIAnalysis) (time.Duration, error) {
	now := r.now()
	retry := a.Status.InvestigationRetry
	if retry != nil && retry.NextAttemptAt != nil && now.Before(retry.NextAttemptAt.Time) {
		return retry.NextAttemptAt.Sub(now), nil
	}
	attempt := int32(1)
	if retry != nil {
		attempt = retry.Attempts + 1
	}
	inv, err := r.Holmes.Investigate(ctx, signalOf(a))
	switch {
	case err == nil:
		a.Status.RootCause = inv.RootCause
		a.Status.Confidence = inv.Confidence
		a.Status.NeedsHumanReview = inv.NeedsHumanReview
		a.Status.Analyser = inv.Analyser
		a.Status.RecommendedWorkflow = &v1alpha1.RecommendedWorkflow{ID: inv.RecommendedWorkflow.ID, Parameters: inv.RecommendedWorkflow.Parameters}
		a.Status.InvestigationRetry = nil
		r.setCondition(a, v1alpha1.ConditionInvestigated, metav1.ConditionTrue, "Investigated",
			fmt.Sprintf("holmesgpt-api answered on attempt %d", attempt))
		return 0, r.transition(ctx, a, v1alpha1.PhaseAnalyzing, map[string]string{
			"root_cause":         inv.RootCause,
			"confidence":         strconv.FormatFloat(inv.Confidence, 'f', -1, 64),
			"workflow":           inv.RecommendedWorkflow.ID,
			"needs_human_review": strconv.FormatBool(inv.NeedsHumanReview),
			"attempts":           strconv.Itoa(int(attempt)),
		})
	case ctx.Err() != nil:
		return 0, fmt.Errorf("investigation interrupted: %w", err)
	case clients.IsPermanent(err):
		r.setCondition(a, v1alpha1.ConditionInvestigated, metav1.ConditionFalse, "InvestigationRejected", err.Error())
		return 0, r.fail(ctx, a, "holmesgpt-api rejected the investigation: "+err.Error())
	case attempt >= r.MaxInvestigationAttempts:
		r.setCondition(a, v1alpha1.ConditionInvestigated, metav1.ConditionFalse, "HolmesGPTUnavailable", err.Error())
		return 0, r.fail(ctx, a, fmt.Sprintf("holmesgpt-api still unavailable after %d attempts: %v", attempt, err))
	}
	delay := r.InvestigationBackoff.Delay(attempt)
	a.Status.InvestigationRetry = &v1alpha1.Retry{Attempts: attempt, NextAttemptAt: ptrTime(now.Add(delay)), LastError: err.Error()}
	r.setCondition(a, v1alpha1.ConditionInvestigated, metav1.ConditionFalse, "HolmesGPTUnavailable",
		fmt.Sprintf("attempt %d of %d failed, retrying in %s: %v", attempt, r.MaxInvestigationAttempts, delay, err))
	if err := r.updateStatus(ctx, a); err != nil {
		return 0, err
	}
	r.event(a, corev1.EventTypeWarning, "InvestigationRetry", "Investigate", "attempt %d failed, retrying in %s: %v", attempt, delay, err)
	log.FromContext(ctx).Info("holmesgpt-api unavailable, retrying", "attempt", attempt, "in", delay, "error", err.Error())
	return delay, nil
}

func (r *Reconciler) analyze(ctx context.Context, a *v1alpha1.AIAnalysis) (time.Duration, error) {
	in := policy.Input{
		Signal: signalOf(a),
		Investigation: policy.Investigation{
			RootCause:        a.Status.RootCause,
			Confidence:       a.Status.Confidence,
			NeedsHumanReview: a.Status.NeedsHumanReview,
		},
	}
	if w := a.Status.RecommendedWorkflow; w != nil {
		in.Investigation.RecommendedWorkflow = policy.Workflow{ID: w.ID, Parameters: w.Parameters}
	}
	d, err := r.Policy.Decide(ctx, in)
	if errors.Is(err, policy.ErrNotLoaded) {
		log.FromContext(ctx).Info("waiting for the approval policy", "error", err.Error())
		return r.PolicyWait, nil
	}
	if err != nil {
		return 0, r.fail(ctx, a, "approval policy failed: "+err.Error())
	}
	a.Status.Approval = &v1alpha1.Approval{Decision: d.Decision, Reason: d.Reason, PolicyHash: d.PolicyHash}
	return 0, r.transition(ctx, a, v1alpha1.PhaseCompleted, map[string]string{
		"decision":    d.Decision,
		"reason":      d.Reason,
		"policy_hash": d.PolicyHash,
		"workflow":    in.Investigation.RecommendedWorkflow.ID,
	})
}

// signalOf is the analysis's signal as holmesgpt-api and the approval policy see it.
func signalOf(a *v1alpha1.AIAnalysis) holmesapi.Signal {
	s := a.Spec.Signal
	return holmesapi.Signal{Name: s.Name, Namespace: s.Namespace, Kind: s.Kind, Severity: s.Severity, Reason: s.Reason, Labels: s.Labels}
}

func (r *Reconciler) fail(ctx context.Context, a *v1alpha1.AIAnalysis, reason string) error {
	a.Status.Reason = reason
	return r.transition(ctx, a, v1alpha1.PhaseFailed, map[string]string{"reason": reason})
}

// transition moves to phase `to`, queues its audit event and persists both in one status update.
func (r *Reconciler) transition(ctx context.Context, a *v1alpha1.AIAnalysis, to v1alpha1.Phase, details map[string]string) error {
	from := a.Status.Phase
	now := r.now()
	a.Status.Phase = to
	if to.Terminal() {
		a.Status.CompletedAt = ptrTime(now)
	}
	r.queueAudit(a, from, to, details, now)
	if err := r.updateStatus(ctx, a); err != nil {
		return err
	}
	eventType := corev1.EventTypeNormal
	if to == v1alpha1.PhaseFailed {
		eventType = corev1.EventTypeWarning
	}
	r.event(a, eventType, string(to), "Transition", "phase %s → %s", displayPhase(from), to)
	log.FromContext(ctx).Info("phase changed", "from", displayPhase(from), "to", to)
	return nil
}

func (r *Reconciler) updateStatus(ctx context.Context, a *v1alpha1.AIAnalysis) error {
	a.Status.ObservedGeneration = a.Generation
	if err := r.Client.Status().Update(ctx, a); err != nil {
		return fmt.Errorf("update status of AIAnalysis %s/%s (phase %s): %w", a.Namespace, a.Name, a.Status.Phase, err)
	}
	return nil
}

func (r *Reconciler) setCondition(a *v1alpha1.AIAnalysis, condType string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&a.Status.Conditions, metav1.Condition{
		Type: condType, Status: status, Reason: reason, Message: message, ObservedGeneration: a.Generation,
	})
}

func displayPhase(p v1alpha1.Phase) string {
	if p == "" {
		return "(new)"
	}
	return string(p)
}

func ptrTime(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t)
	return &mt
}
