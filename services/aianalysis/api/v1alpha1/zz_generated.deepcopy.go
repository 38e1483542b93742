// Hand-written in the style of controller-gen's output (no generator runs offline).
// Keep in step with types.go: every pointer, slice and map must be copied, never shared.

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func copyStringMap(in map[string]string) map[string]string {
	if in == nil {
		return nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

// DeepCopyInto copies the receiver into out. in must be non-nil.
func (in *AIAnalysis) DeepCopyInto(out *AIAnalysis) {
	*out = *in
	out.TypeMeta = in.TypeMeta
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	in.Spec.DeepCopyInto(&out.Spec)
	in.Status.DeepCopyInto(&out.Status)
}

// DeepCopy returns a deep copy of the receiver.
func (in *AIAnalysis) DeepCopy() *AIAnalysis {
	if in == nil {
		return nil
	}
	out := new(AIAnalysis)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *AIAnalysis) DeepCopyObject() runtime.Object {
	if c := in.DeepCopy(); c != nil {
		return c
	}
	return nil
}

// DeepCopyInto copies the receiver into out. in must be non-nil.
func (in *AIAnalysisList) DeepCopyInto(out *AIAnalysisList) {
	*out = *in
	out.TypeMeta = in.TypeMeta
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	if in.Items != nil {
		out.Items = make([]AIAnalysis, len(in.Items))
		for i := range in.Items {
			in.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
}

// DeepCopy returns a deep copy of the receiver.
func (in *AIAnalysisList) DeepCopy() *AIAnalysisList {
	if in == nil {
		return nil
	}
	out := new(AIAnalysisList)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *AIAnalysisList) DeepCopyObject() runtime.Object {
	if c := in.DeepCopy(); c != nil {
		return c
	}
	return nil
}

// DeepCopyInto copies the receiver into out. in must be non-nil.
func (in *AIAnalysisSpec) DeepCopyInto(out *AIAnalysisSpec) {
	*out = *in
	in.Signal.DeepCopyInto(&out.Signal)
}

// DeepCopy returns a deep copy of the receiver.
func (in *AIAnalysisSpec) DeepCopy() *AIAnalysisSpec {
	if in == nil {
		return nil
	}
	out := new(AIAnalysisSpec)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies the receiver into out. in must be non-nil.
func (in *Signal) DeepCopyInto(out *Signal) {
	*out = *in
	out.Labels = copyStringMap(in.Labels)
}

// DeepCopy returns a deep copy of the receiver.
func (in *Signal) DeepCopy() *Signal {
	if in == nil {
		return nil
	}
	out := new(Signal)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies the receiver into out. in must be non-nil.
func (in *AIAnalysisStatus) DeepCopyInto(out *AIAnalysisStatus) {
	*out = *in
	if in.StartedAt != nil {
		out.StartedAt = in.StartedAt.DeepCopy()
	}
	if in.CompletedAt != nil {
		out.CompletedAt = in.CompletedAt.DeepCopy()
	}
	if in.RecommendedWorkflow != nil {
		out.RecommendedWorkflow = in.RecommendedWorkflow.DeepCopy()
	}
	if in.Approval != nil {
		out.Approval = in.Approval.DeepCopy()
	}
	if in.InvestigationRetry != nil {
		out.InvestigationRetry = in.InvestigationRetry.DeepCopy()
	}
	if in.Audit != nil {
		out.Audit = in.Audit.DeepCopy()
	}
	if in.Conditions != nil {
		out.Conditions = make([]metav1.Condition, len(in.Conditions))
		for i := range in.Conditions {
			in.Conditions[i].DeepCopyInto(&out.Conditions[i])
		}
	}
}

// DeepCopy returns a deep copy of the receiver.
func (in *AIAnalysisStatus) DeepCopy() *AIAnalysisStatus {
	if in == nil {
		return nil
	}
	out := new(AIAnalysisStatus)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies the receiver into out. in must be non-nil.
func (in *RecommendedWorkflow) DeepCopyInto(out *RecommendedWorkflow) {
	*out = *in
	out.Parameters = copyStringMap(in.Parameters)
}

// DeepCopy returns a deep copy of the receiver.
func (in *RecommendedWorkflow) DeepCopy() *RecommendedWorkflow {
	if in == nil {
		return nil
	}
	out := new(RecommendedWorkflow)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies the receiver into out. in must be non-nil.
func (in *Approval) DeepCopyInto(out *Approval) {
	*out = *in
}

// DeepCopy returns a deep copy of the receiver.
func (in *Approval) DeepCopy() *Approval {
	if in == nil {
		return nil
	}
	out := new(Approval)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies the receiver into out. in must be non-nil.
func (in *Retry) DeepCopyInto(out *Retry) {
	*out = *in
	if in.NextAttemptAt != nil {
		out.NextAttemptAt = in.NextAttemptAt.DeepCopy()
	}
}

// DeepCopy returns a deep copy of the receiver.
func (in *Retry) DeepCopy() *Retry {
	if in == nil {
		return nil
	}
	out := new(Retry)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies the receiver into out. in must be non-nil.
func (in *AuditStatus) DeepCopyInto(out *AuditStatus) {
	*out = *in
	if in.Pending != nil {
		out.Pending = make([]AuditEvent, len(in.Pending))
		for i := range in.Pending {
			in.Pending[i].DeepCopyInto(&out.Pending[i])
		}
	}
	if in.DeliveredPhases != nil {
		out.DeliveredPhases = make([]string, len(in.DeliveredPhases))
		copy(out.DeliveredPhases, in.DeliveredPhases)
	}
	if in.Retry != nil {
		out.Retry = in.Retry.DeepCopy()
	}
}

// DeepCopy returns a deep copy of the receiver.
func (in *AuditStatus) DeepCopy() *AuditStatus {
	if in == nil {
		return nil
	}
	out := new(AuditStatus)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies the receiver into out. in must be non-nil.
func (in *AuditEvent) DeepCopyInto(out *AuditEvent) {
	*out = *in
	in.Timestamp.DeepCopyInto(&out.Timestamp)
	out.Payload = copyStringMap(in.Payload)
}

// DeepCopy returns a deep copy of the receiver.
func (in *AuditEvent) DeepCopy() *AuditEvent {
	if in == nil {
		return nil
	}
	out := new(AuditEvent)
	in.DeepCopyInto(out)
	return out
}
