package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// WaitReady waits until every node of the cluster behind kubeconfig is Ready, as `kind create
// cluster --wait` does for the control plane. Create without WaitForReady returns once the API
// answers: images can be loaded meanwhile, since the nodes' containerd runs already.
func WaitReady(ctx context.Context, kubeconfig string, timeout time.Duration) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("wait for the nodes: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("wait for the nodes: %w", err)
	}
	var waiting []string
	var last error
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			last = err // the API may restart while the control plane settles
			return false, nil
		}
		waiting, last = notReady(list.Items), nil
		return len(list.Items) > 0 && len(waiting) == 0, nil
	})
	if err == nil || ctx.Err() != nil {
		return err
	}
	switch {
	case last != nil:
		return fmt.Errorf("the cluster's nodes are not Ready after %s: listing them fails: %w", timeout, last)
	case len(waiting) > 0:
		return fmt.Errorf("the cluster's nodes are not Ready after %s: %s", timeout, strings.Join(waiting, "; "))
	}
	return fmt.Errorf("the cluster lists no nodes after %s", timeout)
}

// notReady describes the nodes whose Ready condition is not True.
func notReady(ns []corev1.Node) []string {
	var out []string
	for _, n := range ns {
		i := slices.IndexFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool { return c.Type == corev1.NodeReady })
		switch {
		case i < 0:
			out = append(out, n.Name+": no Ready condition yet")
		case n.Status.Conditions[i].Status != corev1.ConditionTrue:
			c := n.Status.Conditions[i]
			out = append(out, fmt.Sprintf("%s: Ready=%s (%s: %s)", n.Name, c.Status, c.Reason, c.Message))
		}
	}
	return out
}
