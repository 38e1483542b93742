package deploy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const (
	logTailLines = 20
	maxEvents    = 20
)

// Diagnose writes what a person needs to see why a Deployment is not ready: its conditions, its
// pods with each container's state and restarts, recent events of the Deployment, its ReplicaSets
// and pods (oldest first), and the last log lines of every container that has started.
func Diagnose(ctx context.Context, kube kubernetes.Interface, w io.Writer, namespace, name string) error {
	dep, err := kube.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get deployment %s/%s: %w", namespace, name, err)
	}
	writeDeployment(w, dep)

	selector, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
	if err != nil {
		return fmt.Errorf("deployment %s/%s selector: %w", namespace, name, err)
	}
	podList, err := kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return fmt.Errorf("list pods of %s/%s: %w", namespace, name, err)
	}
	pods := podList.Items
	slices.SortFunc(pods, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	if len(pods) == 0 {
		fmt.Fprintln(w, "  pods: none (see the ReplicaSet events below: quota, security context, admission)")
	}
	for i := range pods {
		writePod(w, &pods[i])
	}

	involved := map[string]bool{"Deployment/" + name: true}
	if rsList, err := kube.AppsV1().ReplicaSets(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()}); err == nil {
		for _, rs := range rsList.Items {
			if metav1.IsControlledBy(&rs, dep) {
				involved["ReplicaSet/"+rs.Name] = true
			}
		}
	}
	for _, p := range pods {
		involved["Pod/"+p.Name] = true
	}
	writeEvents(ctx, kube, w, namespace, involved)

	for i := range pods {
		writeLogs(ctx, kube, w, &pods[i])
	}
	return nil
}

func writeDeployment(w io.Writer, dep *appsv1.Deployment) {
	replicas := int32(1)
	if dep.Spec.Replicas != nil {
		replicas = *dep.Spec.Replicas
	}
	fmt.Fprintf(w, "deployment %s/%s: generation %d (observed %d), replicas %d: %d updated, %d ready, %d available, %d unavailable\n",
		dep.Namespace, dep.Name, dep.Generation, dep.Status.ObservedGeneration, replicas,
		dep.Status.UpdatedReplicas, dep.Status.ReadyReplicas, dep.Status.AvailableReplicas, dep.Status.UnavailableReplicas)
	if len(dep.Status.Conditions) == 0 {
		fmt.Fprintln(w, "  conditions: none reported yet")
	} else {
		fmt.Fprintln(w, "  conditions:")
	}
	for _, c := range dep.Status.Conditions {
		fmt.Fprintf(w, "    %s=%s %s: %s\n", c.Type, c.Status, c.Reason, c.Message)
	}
}

func writePod(w io.Writer, pod *corev1.Pod) {
	node := pod.Spec.NodeName
	if node == "" {
		node = "(not scheduled)"
	}
	fmt.Fprintf(w, "  pod %s: phase %s, node %s\n", pod.Name, pod.Status.Phase, node)
	for _, c := range pod.Status.Conditions {
		if c.Status != corev1.ConditionTrue && (c.Reason != "" || c.Message != "") {
			fmt.Fprintf(w, "    condition %s=%s %s: %s\n", c.Type, c.Status, c.Reason, c.Message)
		}
	}
	statuses := map[string]corev1.ContainerStatus{}
	for _, s := range append(slices.Clone(pod.Status.InitContainerStatuses), pod.Status.ContainerStatuses...) {
		statuses[s.Name] = s
	}
	for _, c := range containersOf(pod) {
		label := c.name
		if c.init {
			label += " (init)"
		}
		s, ok := statuses[c.name]
		if !ok {
			fmt.Fprintf(w, "    container %s: no status yet, image %s\n", label, c.image)
			continue
		}
		fmt.Fprintf(w, "    container %s: %s, restarts %d, image %s\n", label, stateString(s.State), s.RestartCount, s.Image)
		if t := s.LastTerminationState.Terminated; t != nil {
			fmt.Fprintf(w, "      last termination: %s\n", stateString(s.LastTerminationState))
		}
	}
}

func stateString(s corev1.ContainerState) string {
	switch {
	case s.Waiting != nil:
		return joinNonEmpty("waiting", s.Waiting.Reason, s.Waiting.Message)
	case s.Running != nil:
		return "running since " + s.Running.StartedAt.UTC().Format(time.RFC3339)
	case s.Terminated != nil:
		t := s.Terminated
		return joinNonEmpty(fmt.Sprintf("terminated exit code %d", t.ExitCode), t.Reason, t.Message)
	}
	return "state unknown"
}

func joinNonEmpty(head, reason, message string) string {
	if reason != "" {
		head += " " + reason
	}
	if message != "" {
		head += ": " + strings.TrimSpace(message)
	}
	return head
}

type podContainer struct {
	name, image string
	init        bool
}

func containersOf(pod *corev1.Pod) []podContainer {
	var out []podContainer
	for _, c := range pod.Spec.InitContainers {
		out = append(out, podContainer{name: c.Name, image: c.Image, init: true})
	}
	for _, c := range pod.Spec.Containers {
		out = append(out, podContainer{name: c.Name, image: c.Image})
	}
	return out
}

func writeEvents(ctx context.Context, kube kubernetes.Interface, w io.Writer, namespace string, involved map[string]bool) {
	list, err := kube.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		fmt.Fprintf(w, "  events: unavailable: %v\n", err)
		return
	}
	var events []corev1.Event
	for _, e := range list.Items {
		if involved[e.InvolvedObject.Kind+"/"+e.InvolvedObject.Name] {
			events = append(events, e)
		}
	}
	slices.SortStableFunc(events, func(a, b corev1.Event) int { return eventTime(a).Compare(eventTime(b)) })
	if len(events) > maxEvents {
		events = events[len(events)-maxEvents:]
	}
	if len(events) == 0 {
		fmt.Fprintln(w, "  events: none")
		return
	}
	fmt.Fprintln(w, "  events (oldest first):")
	for _, e := range events {
		count := ""
		if n := eventCount(e); n > 1 {
			count = fmt.Sprintf(" (x%d)", n)
		}
		fmt.Fprintf(w, "    %s %s %s %s/%s: %s%s\n", eventTime(e).UTC().Format(time.RFC3339), e.Type, e.Reason,
			e.InvolvedObject.Kind, e.InvolvedObject.Name, strings.TrimSpace(e.Message), count)
	}
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

func eventCount(e corev1.Event) int32 {
	if e.Series != nil && e.Series.Count > e.Count {
		return e.Series.Count
	}
	return e.Count
}

// writeLogs writes the tail of every started container's log. A container that is waiting after a
// crash shows its previous instance; one that never started has no logs and is only noted.
func writeLogs(ctx context.Context, kube kubernetes.Interface, w io.Writer, pod *corev1.Pod) {
	statuses := map[string]corev1.ContainerStatus{}
	for _, s := range append(slices.Clone(pod.Status.InitContainerStatuses), pod.Status.ContainerStatuses...) {
		statuses[s.Name] = s
	}
	for _, c := range containersOf(pod) {
		s := statuses[c.name]
		previous := false
		switch {
		case s.State.Running != nil || s.State.Terminated != nil:
		case s.LastTerminationState.Terminated != nil:
			previous = true
		default:
			fmt.Fprintf(w, "  logs %s/%s: container has not started\n", pod.Name, c.name)
			continue
		}
		tail, limit := int64(logTailLines), int64(64<<10)
		raw, err := kube.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{
			Container: c.name, TailLines: &tail, LimitBytes: &limit, Previous: previous,
		}).DoRaw(ctx)
		which := ""
		if previous {
			which = ", previous instance"
		}
		if err != nil {
			fmt.Fprintf(w, "  logs %s/%s%s: unavailable: %v\n", pod.Name, c.name, which, err)
			continue
		}
		fmt.Fprintf(w, "  logs %s/%s (last %d lines%s):\n", pod.Name, c.name, logTailLines, which)
		lines := 0
		sc := bufio.NewScanner(bytes.NewReader(raw))
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			fmt.Fprintf(w, "    | %s\n", sc.Text())
			lines++
		}
		if lines == 0 {
			fmt.Fprintln(w, "    (empty)")
		}
	}
}
