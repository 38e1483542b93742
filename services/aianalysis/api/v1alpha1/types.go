package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AIAnalysis asks the controller to investigate a signal (an alert about a workload), pick a remediation
// workflow and decide, through the approval policy, whether that workflow may run without a human.
type AIAnalysis struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AIAnalysisSpec   `json:"spec"`
	Status AIAnalysisStatus `json:"status,omitempty"`
}

// AIAnalysisList is a list of AIAnalysis.
type AIAnalysisList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AIAnalysis `json:"items"`
}

// AIAnalysisSpec is immutable once created (the CRD enforces it).
type AIAnalysisSpec struct {
	Signal Signal `json:"signal"`
}

// Signal describes the alert to analyse; it is sent to holmesgpt-api as is.
type Signal struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Kind      string            `json:"kind,omitempty"`
	Severity  string            `json:"severity,omitempty"`
	Reason    string            `json:"reason"`
	Labels    map[string]string `json:"labels,omitempty"`
}

// AIAnalysisStatus is written only by the controller, through the status subresource.
type AIAnalysisStatus struct {
	Phase              Phase `json:"phase,omitempty"`
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// StartedAt is when the analysis entered Pending; CompletedAt when it reached Completed or Failed.
	StartedAt   *metav1.Time `json:"startedAt,omitempty"`
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`

	// Investigation results, copied from holmesgpt-api.
	RootCause           string               `json:"rootCause,omitempty"`
	Confidence          float64              `json:"confidence,omitempty"`
	NeedsHumanReview    bool                 `json:"needsHumanReview,omitempty"`
	Analyser            string               `json:"analyser,omitempty"`
	RecommendedWorkflow *RecommendedWorkflow `json:"recommendedWorkflow,omitempty"`

	// Approval is the policy's decision, set when the phase becomes Completed.
	Approval *Approval `json:"approval,omitempty"`
	// Reason says why the analysis Failed.
	Reason string `json:"reason,omitempty"`

	// InvestigationRetry records the backoff between calls to holmesgpt-api that failed transiently.
	InvestigationRetry *Retry `json:"investigationRetry,omitempty"`
	// Audit tracks delivery of the phase-transition audit events to datastorage.
	Audit *AuditStatus `json:"audit,omitempty"`

	// Conditions: Investigated and AuditDelivered.
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Phase is the lifecycle stage of an analysis: Pending → Investigating → Analyzing → Completed, or Failed.
type Phase string

const (
	PhasePending       Phase = "Pending"
	PhaseInvestigating Phase = "Investigating"
	PhaseAnalyzing     Phase = "Analyzing"
	PhaseCompleted     Phase = "Completed"
	PhaseFailed        Phase = "Failed"
)

// Terminal reports whether no further work happens in this phase (apart from delivering audit events).
func (p Phase) Terminal() bool { return p == PhaseCompleted || p == PhaseFailed }

// RecommendedWorkflow is the remediation holmesgpt-api suggests.
type RecommendedWorkflow struct {
	ID         string            `json:"id"`
	Parameters map[string]string `json:"parameters,omitempty"`
}

// Decision values produced by the approval policy.
const (
	DecisionAutoApproved     = "auto-approved"
	DecisionRequiresApproval = "requires-approval"
	DecisionDenied           = "denied"
)

// Approval is the approval policy's verdict on the recommended workflow.
type Approval struct {
	Decision string `json:"decision"`
	Reason   string `json:"reason,omitempty"`
	// PolicyHash is the sha256 (hex) of the policy file content that decided.
	PolicyHash string `json:"policyHash,omitempty"`
}

// Retry is the state of an exponential backoff.
type Retry struct {
	// Attempts counts the consecutive failed attempts.
	Attempts int32 `json:"attempts,omitempty"`
	// NextAttemptAt is the earliest time of the next attempt.
	NextAttemptAt *metav1.Time `json:"nextAttemptAt,omitempty"`
	LastError     string       `json:"lastError,omitempty"`
}

// AuditStatus tracks audit events between a phase transition and their acknowledgement by datastorage.
type AuditStatus struct {
	// Pending holds the events not yet acknowledged by datastorage, oldest first.
	Pending []AuditEvent `json:"pending,omitempty"`
	// DeliveredPhases lists, in order, the phases whose transition event datastorage acknowledged.
	DeliveredPhases []string `json:"deliveredPhases,omitempty"`
	// Retry is the backoff of delivery after datastorage was unavailable.
	Retry *Retry `json:"retry,omitempty"`
}

// AuditEvent is a phase-transition event waiting for delivery. Its correlation ID is the resource UID.
type AuditEvent struct {
	// EventID is "<uid>/<phase>", the idempotency key datastorage deduplicates on.
	EventID   string            `json:"eventID"`
	EventType string            `json:"eventType"`
	Phase     Phase             `json:"phase"`
	Timestamp metav1.Time       `json:"timestamp"`
	Payload   map[string]string `json:"payload,omitempty"`
}

// Condition types.
const (
	// ConditionInvestigated is True once holmesgpt-api answered; False while retrying or after a rejection.
	ConditionInvestigated = "Investigated"
	// ConditionAuditDelivered is True when no audit event is pending delivery.
	ConditionAuditDelivered = "AuditDelivered"
)
