package coverage

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestPrepareMakesWritableDirs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "counters")
	if err := Prepare(dir, []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"a", "b"} {
		info, err := os.Stat(filepath.Join(dir, svc))
		if err != nil || info.Mode().Perm() != 0o777 {
			t.Errorf("%s: %v, mode %v; want 0777 for the pods' non-root users", svc, err, info.Mode())
		}
	}
}

// A real -cover binary leaves counters in GOCOVERDIR when it exits; Collect turns them into
// profiles and a percentage, and says "no data" for a service that left none.
func TestCollectMergesRealCounters(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a coverage binary")
	}
	ctx := context.Background()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	host := t.TempDir()
	if err := Prepare(host, []string{"covered", "silent"}); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "covered")
	build := exec.Command("go", "build", "-cover", "-o", bin, "./test/infrastructure/coverage/testdata/covered")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -cover: %v\n%s", err, out)
	}
	run := exec.Command(bin)
	run.Env = append(os.Environ(), "GOCOVERDIR="+filepath.Join(host, "covered"))
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	out := filepath.Join(t.TempDir(), "coverage")
	results, err := Collect(ctx, root, host, []string{"covered", "silent"}, out)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 || results[0].Percent <= 0 || results[0].Percent >= 100 || results[1].Percent != -1 {
		t.Fatalf("results %+v, want a partial percentage for covered and no data for silent", results)
	}
	if got := results[1].String(); got != "silent no data" {
		t.Errorf("String() = %q", got)
	}
	for _, f := range []string{"covered.txt", "coverage.txt"} {
		data, err := os.ReadFile(filepath.Join(out, f))
		if err != nil || !strings.HasPrefix(string(data), "mode: ") || !strings.Contains(string(data), "testdata/covered/main.go") {
			t.Errorf("%s: %v\n%s", f, err, data)
		}
	}
}

func TestStopScalesToZeroAndWaitsForThePods(t *testing.T) {
	ctx := context.Background()
	deployment := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "svc", Namespace: "ns"}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "svc-1", Namespace: "ns"}}
	kube := fake.NewClientset(deployment, pod)
	var scaled []int32
	kube.PrependReactor("get", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "scale" {
			return false, nil, nil
		}
		return true, &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "svc", Namespace: "ns"}, Spec: autoscalingv1.ScaleSpec{Replicas: 1}}, nil
	})
	kube.PrependReactor("update", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "scale" {
			return false, nil, nil
		}
		s := a.(k8stesting.UpdateAction).GetObject().(*autoscalingv1.Scale)
		scaled = append(scaled, s.Spec.Replicas)
		// The pod goes, as the kubelet would stop it.
		_ = kube.Tracker().Delete(corev1.SchemeGroupVersion.WithResource("pods"), "ns", "svc-1")
		return true, s, nil
	})
	if err := Stop(ctx, kube, "ns", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if len(scaled) != 1 || scaled[0] != 0 {
		t.Errorf("scale updates %v, want one to 0", scaled)
	}

	// A pod that does not go is an error that says the counters may be missing.
	stuck := fake.NewClientset(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "stuck", Namespace: "ns"}})
	if err := Stop(ctx, stuck, "ns", 2*time.Second); err == nil || !strings.Contains(err.Error(), "counters may be missing") {
		t.Errorf("err = %v", err)
	}
}
