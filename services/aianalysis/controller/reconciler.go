// Package controller reconciles AIAnalysis resources: Pending → Investigating (holmesgpt-api) →
// Analyzing (approval policy) → Completed, or Failed, recording every transition in datastorage.
package controller

import (
	"context"
	"time"

	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/kindling-dev/kindling/services/aianalysis/api/v1alpha1"
	"github.com/kindling-dev/kindling/services/aianalysis/policy"
	dsapi "github.com/kindling-dev/kindling/services/datastorage/api"
	holmesapi "github.com/kindling-dev/kindling/services/holmesgpt-api/api"
)

// Investigator asks holmesgpt-api for a root cause and a workflow.
type Investigator interface {
	Investigate(ctx context.Context, s holmesapi.Signal) (holmesapi.Investigation, error)
}

// AuditSink stores audit events (datastorage).
type AuditSink interface {
	RecordEvent(ctx context.Context, e dsapi.EventRequest) error
}

// Decider evaluates the approval policy.
type Decider interface {
	Decide(ctx context.Context, in policy.Input) (policy.Decision, error)
}

// Reconciler drives one AIAnalysis through its phases. Each transition is persisted through the status
// subresource before the next phase starts, so a restart resumes at the last persisted phase and never
// repeats a finished one.
type Reconciler struct {
	Client client.Client
	// Reader reads the AIAnalysis; nil means Client. The manager's API reader avoids acting on a stale cache.
	Reader   client.Reader
	Holmes   Investigator
	Audit    AuditSink
	Policy   Decider
	Recorder events.EventRecorder // optional
	Now      func() time.Time

	// InvestigationBackoff spaces calls to holmesgpt-api after transient errors; after
	// MaxInvestigationAttempts failed calls the analysis Fails.
	InvestigationBackoff     Backoff
	MaxInvestigationAttempts int32
	// AuditBackoff spaces delivery attempts while datastorage is unavailable (no limit).
	AuditBackoff Backoff
	// PolicyWait is how long to wait for the approval policy to load.
	PolicyWait time.Duration
}

// New returns a Reconciler with the default timings: investigation retries after 1s, 2s, 4s … at most
// 60s apart, giving up after 10 attempts (about 4 minutes); audit delivery retries after 1s, 2s, 4s …
// at most 60s apart, forever.
func New(c client.Client, holmes Investigator, audit AuditSink, decider Decider) *Reconciler {
	return &Reconciler{
		Client:                   c,
		Holmes:                   holmes,
		Audit:                    audit,
		Policy:                   decider,
		Now:                      time.Now,
		InvestigationBackoff:     Backoff{Base: time.Second, Max: time.Minute},
		MaxInvestigationAttempts: 10,
		AuditBackoff:             Backoff{Base: time.Second, Max: time.Minute},
		PolicyWait:               5 * time.Second,
	}
}

// SetupWithManager registers the controller. Status-only updates (the controller's own writes) do not
// trigger a reconcile: progress within a reconcile is a loop, and waits are explicit RequeueAfter.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.AIAnalysis{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("aianalysis").
		Complete(r)
}

// Reconcile advances the analysis as far as it can, delivering pending audit events along the way, and
// requeues for the earliest of the investigation retry, the policy wait and the audit retry.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var a v1alpha1.AIAnalysis
	if err := r.reader().Get(ctx, req.NamespacedName, &a); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !a.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	var wait time.Duration
	for {
		if err := r.deliverAudit(ctx, &a); err != nil {
			return ctrl.Result{}, err
		}
		if a.Status.Phase.Terminal() || wait > 0 {
			break
		}
		var err error
		if wait, err = r.step(ctx, &a); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{RequeueAfter: sooner(wait, r.auditRetryIn(&a))}, nil
}

func (r *Reconciler) reader() client.Reader {
	if r.Reader != nil {
		return r.Reader
	}
	return r.Client
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Reconciler) event(a *v1alpha1.AIAnalysis, eventType, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(a, nil, eventType, reason, action, note, args...)
	}
}
