package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kindling-dev/kindling/services/aianalysis/api/v1alpha1"
	"github.com/kindling-dev/kindling/services/aianalysis/clients"
	dsapi "github.com/kindling-dev/kindling/services/datastorage/api"
)

// Audit contract.
//
// Every phase transition produces one audit event, queued in status.audit.pending in the same status
// update that persists the transition, so the transition never waits for datastorage and the event
// cannot be lost by a restart. The event has
//
//	event_id       "<uid>/<phase>" (idempotency key)   correlation_id  the AIAnalysis UID
//	event_type     "aianalysis.phase.<phase>"          source          "aianalysis-controller"
//	timestamp      the transition time                 payload         phase, from, resource and the phase's details
//
// Pending events are posted oldest first at every reconcile. An acknowledged event (201 created, or 200
// when datastorage already holds its event_id) moves to status.audit.deliveredPhases. While datastorage is
// unavailable (network error, 5xx, 429) the rest stay pending, the AuditDelivered condition is False with
// reason DatastorageUnavailable, and delivery is retried with backoff (status.audit.retry) for as long as
// it takes, also after the analysis is Completed or Failed. Delivery is therefore at-least-once: an event
// may be posted again when the acknowledgement or the status update after it is lost, and datastorage
// keeps one event per event_id, so each transition is recorded effectively once. An event datastorage
// rejects permanently (another 4xx) is dropped with a Warning event (reason AuditEventRejected): retrying
// cannot fix it and it must not hold back the events after it.

// AuditSource is the source of every audit event the controller posts.
const AuditSource = "aianalysis-controller"

func (r *Reconciler) queueAudit(a *v1alpha1.AIAnalysis, from, to v1alpha1.Phase, details map[string]string, at time.Time) {
	payload := map[string]string{"phase": string(to), "resource": a.Namespace + "/" + a.Name}
	if from != "" {
		payload["from"] = string(from)
	}
	maps.Copy(payload, details)
	if a.Status.Audit == nil {
		a.Status.Audit = &v1alpha1.AuditStatus{}
	}
	a.Status.Audit.Pending = append(a.Status.Audit.Pending, v1alpha1.AuditEvent{
		EventID:   string(a.UID) + "/" + string(to),
		EventType: "aianalysis.phase." + strings.ToLower(string(to)),
		Phase:     to,
		Timestamp: metav1.NewTime(at),
		Payload:   payload,
	})
}

// deliverAudit posts the pending events unless the backoff after a failure has not elapsed, and persists
// the outcome.
func (r *Reconciler) deliverAudit(ctx context.Context, a *v1alpha1.AIAnalysis) error {
	au := a.Status.Audit
	if au == nil || len(au.Pending) == 0 {
		return nil
	}
	now := r.now()
	if au.Retry != nil && au.Retry.NextAttemptAt != nil && now.Before(au.Retry.NextAttemptAt.Time) {
		return nil
	}
	var unavailable error
	var rejected []string
	done := 0
	for _, ev := range au.Pending {
		e, err := clientEvent(a, ev)
		if err == nil {
			err = r.Audit.RecordEvent(ctx, e)
		}
		if err != nil && !clients.IsPermanent(err) {
			unavailable = err
			break
		}
		done++
		if err != nil {
			rejected = append(rejected, ev.EventID)
			r.event(a, corev1.EventTypeWarning, "AuditEventRejected", "DeliverAudit", "datastorage rejected %s: %v", ev.EventID, err)
			log.FromContext(ctx).Error(err, "datastorage rejected an audit event; dropping it", "eventID", ev.EventID)
			continue
		}
		au.DeliveredPhases = append(au.DeliveredPhases, string(ev.Phase))
	}
	au.Pending = au.Pending[done:]
	if len(au.Pending) == 0 {
		au.Pending = nil
	}
	switch {
	case unavailable != nil:
		attempt := int32(1)
		if au.Retry != nil {
			attempt = au.Retry.Attempts + 1
		}
		delay := r.AuditBackoff.Delay(attempt)
		au.Retry = &v1alpha1.Retry{Attempts: attempt, NextAttemptAt: ptrTime(now.Add(delay)), LastError: unavailable.Error()}
		r.setCondition(a, v1alpha1.ConditionAuditDelivered, metav1.ConditionFalse, "DatastorageUnavailable",
			fmt.Sprintf("%d audit event(s) pending; attempt %d failed, retrying in %s: %v", len(au.Pending), attempt, delay, unavailable))
		log.FromContext(ctx).Info("datastorage unavailable, audit events kept pending",
			"pending", len(au.Pending), "attempt", attempt, "in", delay, "error", unavailable.Error())
	case len(rejected) > 0:
		au.Retry = nil
		r.setCondition(a, v1alpha1.ConditionAuditDelivered, metav1.ConditionFalse, "AuditEventRejected",
			"datastorage rejected "+strings.Join(rejected, ", "))
	default:
		au.Retry = nil
		r.setCondition(a, v1alpha1.ConditionAuditDelivered, metav1.ConditionTrue, "Delivered",
			fmt.Sprintf("datastorage holds the events of phases %s", strings.Join(au.DeliveredPhases, ", ")))
	}
	return r.updateStatus(ctx, a)
}

// auditRetryIn returns how long until pending audit events are due, or 0 when none are pending.
func (r *Reconciler) auditRetryIn(a *v1alpha1.AIAnalysis) time.Duration {
	au := a.Status.Audit
	if au == nil || len(au.Pending) == 0 {
		return 0
	}
	if au.Retry == nil || au.Retry.NextAttemptAt == nil {
		return r.AuditBackoff.Base
	}
	return max(au.Retry.NextAttemptAt.Sub(r.now()), 100*time.Millisecond)
}

// clientEvent is the datastorage request for a queued audit event. An event whose payload cannot be
// encoded is permanently rejected.
func clientEvent(a *v1alpha1.AIAnalysis, ev v1alpha1.AuditEvent) (dsapi.EventRequest, error) {
	var payload json.RawMessage
	if len(ev.Payload) > 0 {
		var err error
		if payload, err = json.Marshal(ev.Payload); err != nil {
			return dsapi.EventRequest{}, &clients.PermanentError{Err: fmt.Errorf("encode the payload of audit event %s: %w", ev.EventID, err)}
		}
	}
	return dsapi.EventRequest{
		EventID:       ev.EventID,
		CorrelationID: string(a.UID),
		EventType:     ev.EventType,
		Source:        AuditSource,
		Timestamp:     ev.Timestamp.UTC().Format(time.RFC3339),
		Payload:       payload,
	}, nil
}
