package deploy

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// neverPullObjects: Deployment kindling/alpha whose pod cannot start because its image is not on
// the node, its ReplicaSet, events, and an unrelated pod and event.
func neverPullObjects() []runtime.Object {
	one := int32(1)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "alpha", Namespace: "kindling", UID: "dep-uid", Generation: 1},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "alpha"}},
		},
		Status: appsv1.DeploymentStatus{
			ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1, UnavailableReplicas: 1,
			Conditions: []appsv1.DeploymentCondition{
				{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, Reason: "MinimumReplicasUnavailable",
					Message: "Deployment does not have minimum availability."},
				{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "ReplicaSetUpdated",
					Message: `ReplicaSet "alpha-5d9c" is progressing.`},
			},
		},
	}
	isController := true
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{
		Name: "alpha-5d9c", Namespace: "kindling", Labels: map[string]string{"app": "alpha"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "alpha", UID: "dep-uid", Controller: &isController}},
	}}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "alpha-5d9c-x1", Namespace: "kindling", Labels: map[string]string{"app": "alpha"}},
		Spec: corev1.PodSpec{
			NodeName:       "kindling-worker",
			InitContainers: []corev1.Container{{Name: "migrate", Image: "localhost/alpha:test-0123456789ab"}},
			Containers: []corev1.Container{
				{Name: "alpha", Image: "localhost/alpha:test-0123456789ab"},
				{Name: "sidecar", Image: "localhost/sidecar:1"},
			},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodPending,
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", Message: "containers with unready status: [alpha]"},
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
			},
			InitContainerStatuses: []corev1.ContainerStatus{{
				Name: "migrate", Image: "localhost/alpha:test-0123456789ab", RestartCount: 2,
				State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 20s restarting failed container"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}},
			}},
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "alpha", Image: "localhost/alpha:test-0123456789ab", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
					Reason:  "ErrImageNeverPull",
					Message: `Container image "localhost/alpha:test-0123456789ab" is not present with pull policy of Never`,
				}}},
				{Name: "sidecar", Image: "localhost/sidecar:1", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(t0)}}},
			},
		},
	}
	other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "kindling", Labels: map[string]string{"app": "other"}}}
	event := func(name, kind, obj, reason, msg string, at time.Time, count int32) *corev1.Event {
		return &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: name, Namespace: "kindling"},
			InvolvedObject: corev1.ObjectReference{Kind: kind, Name: obj, Namespace: "kindling"},
			Type:           corev1.EventTypeWarning, Reason: reason, Message: msg,
			LastTimestamp: metav1.NewTime(at), Count: count,
		}
	}
	return []runtime.Object{dep, rs, pod, other,
		// Listed out of order on purpose: diagnostics sort by time.
		event("e3", "Pod", "alpha-5d9c-x1", "ErrImageNeverPull", `Container image "localhost/alpha:test-0123456789ab" is not present with pull policy of Never`, t0.Add(3*time.Second), 4),
		event("e1", "Deployment", "alpha", "ScalingReplicaSet", "Scaled up replica set alpha-5d9c from 0 to 1", t0, 1),
		event("e2", "ReplicaSet", "alpha-5d9c", "SuccessfulCreate", "Created pod: alpha-5d9c-x1", t0.Add(time.Second), 1),
		event("e4", "Pod", "other", "BackOff", "unrelated", t0.Add(2*time.Second), 1),
	}
}

func TestDiagnoseFormatsDeploymentPodsEventsLogs(t *testing.T) {
	kube := kubefake.NewClientset(neverPullObjects()...)
	var out bytes.Buffer
	if err := Diagnose(context.Background(), kube, &out, "kindling", "alpha"); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	want := `deployment kindling/alpha: generation 1 (observed 1), replicas 1: 1 updated, 0 ready, 0 available, 1 unavailable
  conditions:
    Available=False MinimumReplicasUnavailable: Deployment does not have minimum availability.
    Progressing=True ReplicaSetUpdated: ReplicaSet "alpha-5d9c" is progressing.
  pod alpha-5d9c-x1: phase Pending, node kindling-worker
    condition Ready=False ContainersNotReady: containers with unready status: [alpha]
    container migrate (init): waiting CrashLoopBackOff: back-off 20s restarting failed container, restarts 2, image localhost/alpha:test-0123456789ab
      last termination: terminated exit code 1 Error
    container alpha: waiting ErrImageNeverPull: Container image "localhost/alpha:test-0123456789ab" is not present with pull policy of Never, restarts 0, image localhost/alpha:test-0123456789ab
    container sidecar: running since 2026-03-01T10:00:00Z, restarts 0, image localhost/sidecar:1
  events (oldest first):
    2026-03-01T10:00:00Z Warning ScalingReplicaSet Deployment/alpha: Scaled up replica set alpha-5d9c from 0 to 1
    2026-03-01T10:00:01Z Warning SuccessfulCreate ReplicaSet/alpha-5d9c: Created pod: alpha-5d9c-x1
    2026-03-01T10:00:03Z Warning ErrImageNeverPull Pod/alpha-5d9c-x1: Container image "localhost/alpha:test-0123456789ab" is not present with pull policy of Never (x4)
  logs alpha-5d9c-x1/migrate (last 20 lines, previous instance):
    | fake logs
  logs alpha-5d9c-x1/alpha: container has not started
  logs alpha-5d9c-x1/sidecar (last 20 lines):
    | fake logs
`
	if got != want {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", got, want)
	}

	// The log requests asked for the tail, the right container and the previous crashed instance.
	var logReqs []string
	for _, a := range kube.Actions() {
		if a.GetSubresource() == "log" {
			opts := a.(k8stesting.GenericAction).GetValue().(*corev1.PodLogOptions)
			if opts.TailLines == nil || *opts.TailLines != 20 {
				t.Errorf("log request %+v without TailLines 20", opts)
			}
			logReqs = append(logReqs, opts.Container+map[bool]string{true: "(previous)", false: ""}[opts.Previous])
		}
	}
	if strings.Join(logReqs, ",") != "migrate(previous),sidecar" {
		t.Errorf("log requests = %v; a container that never started must not be asked", logReqs)
	}
}

func TestDiagnoseMissingDeployment(t *testing.T) {
	var out bytes.Buffer
	err := Diagnose(context.Background(), kubefake.NewClientset(), &out, "kindling", "ghost")
	if err == nil || !strings.Contains(err.Error(), "deployment kindling/ghost") || !strings.Contains(err.Error(), "not found") {
		t.Errorf("err %v, output %q", err, out.String())
	}
}
