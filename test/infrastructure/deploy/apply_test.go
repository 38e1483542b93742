package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func init() {
	pollInterval = 5 * time.Millisecond
	crdTimeout = 2 * time.Second
	discoveryGrace = 2 * time.Second
}

// journal records, in order, what the fake cluster saw.
type journal struct {
	mu      sync.Mutex
	entries []string
}

func (j *journal) add(format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, fmt.Sprintf(format, args...))
}

func (j *journal) list() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.entries)
}

// lagMapper hides kinds until Reset, like discovery before a CRD's kind is known.
type lagMapper struct {
	meta.RESTMapper
	j      *journal
	mu     sync.Mutex
	hidden map[schema.GroupKind]bool
}

func (m *lagMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	m.mu.Lock()
	hidden := m.hidden[gk]
	m.mu.Unlock()
	if hidden {
		return nil, &meta.NoKindMatchError{GroupKind: gk, SearchedVersions: versions}
	}
	return m.RESTMapper.RESTMapping(gk, versions...)
}

func (m *lagMapper) Reset() {
	m.mu.Lock()
	m.hidden = nil
	m.mu.Unlock()
	m.j.add("reset mapper")
}

var widgetGVK = schema.GroupVersionKind{Group: "example.kindling.dev", Version: "v1alpha1", Kind: "Widget"}

func newMapper(j *journal) *lagMapper {
	m := meta.NewDefaultRESTMapper(nil)
	for _, gvk := range []schema.GroupVersionKind{
		{Version: "v1", Kind: "Namespace"},
		{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"},
	} {
		m.Add(gvk, meta.RESTScopeRoot)
	}
	for _, gvk := range []schema.GroupVersionKind{
		{Version: "v1", Kind: "ConfigMap"},
		{Version: "v1", Kind: "Service"},
		{Group: "apps", Version: "v1", Kind: "Deployment"},
		{Group: "batch", Version: "v1", Kind: "Job"},
		widgetGVK,
	} {
		m.Add(gvk, meta.RESTScopeNamespace)
	}
	return &lagMapper{RESTMapper: m, j: j, hidden: map[schema.GroupKind]bool{widgetGVK.GroupKind(): true}}
}

// fakeCluster is a dynamic fake that upserts on server-side apply; CRDs become Established and,
// when ready is set, Deployments report a finished rollout.
func fakeCluster(t *testing.T, j *journal, ready bool) *dynamicfake.FakeDynamicClient {
	t.Helper()
	dyn := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
	dyn.PrependReactor("get", "customresourcedefinitions", func(a k8stesting.Action) (bool, runtime.Object, error) {
		j.add("get CRD %s", a.(k8stesting.GetAction).GetName())
		return false, nil, nil
	})
	dyn.PrependReactor("patch", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pa := a.(k8stesting.PatchAction)
		if pa.GetPatchType() != types.ApplyPatchType {
			return true, nil, fmt.Errorf("patch type %s, want apply", pa.GetPatchType())
		}
		opts := pa.(k8stesting.PatchActionImpl).PatchOptions
		if opts.FieldManager != "kindling" || opts.Force == nil || !*opts.Force {
			return true, nil, fmt.Errorf("patch options %+v, want field manager kindling and force", opts)
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(pa.GetPatch()); err != nil {
			return true, nil, err
		}
		j.add("apply %s %s", obj.GetKind(), objectName(pa.GetNamespace(), pa.GetName()))
		switch obj.GetKind() {
		case "CustomResourceDefinition":
			_ = unstructured.SetNestedSlice(obj.Object, []any{map[string]any{"type": "Established", "status": "True"}}, "status", "conditions")
		case "Deployment":
			if ready {
				obj.SetGeneration(1)
				_ = unstructured.SetNestedMap(obj.Object, map[string]any{
					"observedGeneration": int64(1), "replicas": int64(1), "updatedReplicas": int64(1), "availableReplicas": int64(1), "readyReplicas": int64(1),
					"conditions": []any{map[string]any{"type": "Available", "status": "True"}},
				}, "status")
			}
		}
		tr := dyn.Tracker()
		gvr := pa.GetResource()
		if _, err := tr.Get(gvr, pa.GetNamespace(), pa.GetName()); apierrors.IsNotFound(err) {
			return true, obj, tr.Create(gvr, obj, pa.GetNamespace())
		}
		return true, obj, tr.Update(gvr, obj, pa.GetNamespace())
	})
	return dyn
}

func index(t *testing.T, entries []string, entry string) int {
	t.Helper()
	i := slices.Index(entries, entry)
	if i < 0 {
		t.Fatalf("%q never happened; journal:\n%s", entry, strings.Join(entries, "\n"))
	}
	return i
}

func TestApplyOrdersNamespaceAndCRDFirst(t *testing.T) {
	j := &journal{}
	dyn := fakeCluster(t, j, true)
	var log bytes.Buffer
	res, err := ApplyWith(context.Background(), Clients{Dynamic: dyn, Mapper: newMapper(j)}, Options{
		ManifestsDir: "testdata/manifests",
		Images:       testImages,
		Log:          func(f string, a ...any) { fmt.Fprintf(&log, f+"\n", a...) },
	})
	if err != nil {
		t.Fatalf("%v\nlog:\n%s", err, log.String())
	}
	e := j.list()
	if e[0] != "apply Namespace kindling" || e[1] != "apply CustomResourceDefinition widgets.example.kindling.dev" {
		t.Fatalf("namespace and CRD must come first; journal:\n%s", strings.Join(e, "\n"))
	}
	established := index(t, e, "get CRD widgets.example.kindling.dev")
	reset := index(t, e, "reset mapper")
	if !(1 < established && established < reset) {
		t.Errorf("want CRD applied < established < mapper reset; journal:\n%s", strings.Join(e, "\n"))
	}
	for _, later := range []string{"apply ConfigMap kindling/settings", "apply Widget kindling/small",
		"apply Deployment kindling/alpha", "apply Service kindling/alpha", "apply Deployment kindling/beta-svc"} {
		if index(t, e, later) < reset {
			t.Errorf("%s happened before the CRD was established and the mapper reset", later)
		}
	}
	// Objects within a file keep their order.
	if index(t, e, "apply ConfigMap kindling/settings") > index(t, e, "apply Widget kindling/small") ||
		index(t, e, "apply Deployment kindling/alpha") > index(t, e, "apply Service kindling/alpha") {
		t.Errorf("objects within a file out of order; journal:\n%s", strings.Join(e, "\n"))
	}

	wantApplied := []string{
		"Namespace/kindling",
		"CustomResourceDefinition/widgets.example.kindling.dev",
		"ConfigMap/kindling/settings",
		"Widget/kindling/small",
		"Deployment/kindling/alpha",
		"Service/kindling/alpha",
		"Deployment/kindling/beta-svc",
	}
	if !slices.Equal(res.Applied, wantApplied) {
		t.Errorf("Applied = %q, want %q", res.Applied, wantApplied)
	}
	var rollouts []string
	for _, r := range res.Rollouts {
		rollouts = append(rollouts, r.Name)
	}
	if !slices.Equal(rollouts, []string{"Deployment kindling/alpha", "Deployment kindling/beta-svc"}) {
		t.Errorf("Rollouts = %+v", res.Rollouts)
	}

	// What reached the cluster is the rendered object.
	dep, err := dyn.Resource(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}).
		Namespace("kindling").Get(context.Background(), "alpha", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := containers(t, dep, "containers")[0]; c["image"] != testImages[0].Ref || c["imagePullPolicy"] != "Never" {
		t.Errorf("applied container %v", c)
	}
	if !strings.Contains(log.String(), "Deployment kindling/alpha ready") {
		t.Errorf("log lacks rollout line:\n%s", log.String())
	}
}

func TestPreflightFailureAppliesNothing(t *testing.T) {
	for _, dir := range []string{"testdata/unloaded", "testdata/unknown-placeholder"} {
		t.Run(dir, func(t *testing.T) {
			j := &journal{}
			dyn := fakeCluster(t, j, true)
			kube := kubefake.NewClientset()
			_, err := ApplyWith(context.Background(), Clients{Dynamic: dyn, Kube: kube, Mapper: newMapper(j)},
				Options{ManifestsDir: dir, Images: testImages})
			var pe *PreflightError
			if !errors.As(err, &pe) {
				t.Fatalf("want *PreflightError, got %v", err)
			}
			if n := len(dyn.Actions()) + len(kube.Actions()); n != 0 {
				t.Errorf("%d API action(s) recorded despite the failed preflight: %v %v", n, dyn.Actions(), kube.Actions())
			}
		})
	}
}

func TestApplyPreflightRunsBeforeConnecting(t *testing.T) {
	// No kubeconfig at all: the preflight error must still be the one reported.
	_, err := Apply(context.Background(), Options{ManifestsDir: "testdata/unloaded", Images: testImages})
	var pe *PreflightError
	if !errors.As(err, &pe) {
		t.Fatalf("want *PreflightError, got %v", err)
	}
	_, err = Apply(context.Background(), Options{ManifestsDir: "testdata/manifests", Images: testImages})
	if err == nil || !strings.Contains(err.Error(), "kubeconfig") {
		t.Errorf("missing kubeconfig: err = %v", err)
	}
	_, err = Apply(context.Background(), Options{ManifestsDir: "testdata/manifests", Images: testImages, Kubeconfig: t.TempDir() + "/nope"})
	if err == nil || !strings.Contains(err.Error(), "kubeconfig") {
		t.Errorf("nonexistent kubeconfig: err = %v", err)
	}
}

func TestApplyMissingNamespaceFailsBeforeTheGroup(t *testing.T) {
	j := &journal{}
	dyn := fakeCluster(t, j, true)
	docs, err := Render("testdata/manifests", testImages, nil)
	if err != nil {
		t.Fatal(err)
	}
	find(t, docs, "Service", "alpha").Object.SetNamespace("")
	_, err = applyDocuments(context.Background(), Clients{Dynamic: dyn, Mapper: newMapper(j)}, docs, Options{})
	if err == nil || !strings.Contains(err.Error(), "40-alpha.yaml: Service alpha is namespaced but has no metadata.namespace") {
		t.Fatalf("err = %v", err)
	}
	for _, e := range j.list() {
		if strings.HasPrefix(e, "apply") && !strings.Contains(e, "Namespace") && !strings.Contains(e, "CustomResourceDefinition") {
			t.Errorf("%s applied although the group failed to map", e)
		}
	}
}

func TestRolloutTimeoutWritesDiagnostics(t *testing.T) {
	j := &journal{}
	dyn := fakeCluster(t, j, false)
	kube := kubefake.NewClientset(neverPullObjects()...)
	var diag bytes.Buffer
	start := time.Now()
	res, err := ApplyWith(context.Background(), Clients{Dynamic: dyn, Kube: kube, Mapper: newMapper(j)}, Options{
		ManifestsDir:   "testdata/manifests",
		Images:         testImages,
		RolloutTimeout: 150 * time.Millisecond,
		Diagnostics:    &diag,
	})
	if err == nil {
		t.Fatal("no error although no deployment became ready")
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("took %s with a 150ms rollout timeout", time.Since(start))
	}
	for _, want := range []string{"kindling/alpha", "kindling/beta-svc", "not ready within 150ms"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if len(res.Applied) != 7 || len(res.Rollouts) != 0 {
		t.Errorf("result = %+v", res)
	}
	out := diag.String()
	for _, want := range []string{
		"2 object(s) not ready after 150ms",
		"last status of Deployment kindling/alpha (40-alpha.yaml): InProgress: Replicas: 0/1",
		"waiting ErrImageNeverPull",
		`diagnostics incomplete: get deployment kindling/beta-svc: deployments.apps "beta-svc" not found`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("diagnostics lack %q:\n%s", want, out)
		}
	}

	// Without a Diagnostics writer the diagnostics travel in the error.
	_, err = ApplyWith(context.Background(), Clients{Dynamic: fakeCluster(t, &journal{}, false), Kube: kube, Mapper: newMapper(&journal{})},
		Options{ManifestsDir: "testdata/manifests", Images: testImages, RolloutTimeout: 50 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "ErrImageNeverPull") {
		t.Errorf("err without Diagnostics writer = %v", err)
	}
}
