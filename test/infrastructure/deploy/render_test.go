package deploy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

var testImages = []Image{
	{Service: "alpha", Ref: "localhost/alpha:test-0123456789ab", ID: "sha256:aaaa"},
	{Service: "beta-svc", Ref: "localhost/beta-svc:test-ba9876543210", ID: "sha256:bbbb"},
}

func containers(t *testing.T, obj *unstructured.Unstructured, field string) []map[string]any {
	t.Helper()
	list, found, err := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", field)
	if err != nil || !found {
		t.Fatalf("%s %s: no %s (err %v)", obj.GetKind(), obj.GetName(), field, err)
	}
	var out []map[string]any
	for _, c := range list {
		out = append(out, c.(map[string]any))
	}
	return out
}

func find(t *testing.T, docs []Document, kind, name string) Document {
	t.Helper()
	for _, d := range docs {
		if d.Object.GetKind() == kind && d.Object.GetName() == name {
			return d
		}
	}
	t.Fatalf("no %s %s in rendered documents", kind, name)
	return Document{}
}

func TestRenderSubstitutesLoadedRefs(t *testing.T) {
	docs, err := Render("testdata/manifests", testImages, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range docs {
		got = append(got, d.File+":"+d.Object.GetKind()+"/"+d.Object.GetName())
	}
	want := []string{
		"00-namespace.yaml:Namespace/kindling",
		"10-crd.yaml:CustomResourceDefinition/widgets.example.kindling.dev",
		"20-config.yaml:ConfigMap/settings",
		"20-config.yaml:Widget/small",
		"40-alpha.yaml:Deployment/alpha",
		"40-alpha.yaml:Service/alpha",
		"41-beta-svc.yaml:Deployment/beta-svc",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("documents (lexical order, kind/ skipped, empty document dropped):\n got %q\nwant %q", got, want)
	}

	alpha := find(t, docs, "Deployment", "alpha").Object
	for _, field := range []string{"initContainers", "containers"} {
		for _, c := range containers(t, alpha, field) {
			if c["image"] != testImages[0].Ref || c["imagePullPolicy"] != "Never" {
				t.Errorf("alpha %s %v: image %v policy %v, want %s Never", field, c["name"], c["image"], c["imagePullPolicy"], testImages[0].Ref)
			}
		}
	}
	beta := containers(t, find(t, docs, "Deployment", "beta-svc").Object, "containers")[0]
	if beta["image"] != testImages[1].Ref {
		t.Errorf("beta-svc image %v, want %s (placeholder ${BETA_SVC_IMAGE})", beta["image"], testImages[1].Ref)
	}
	cm := find(t, docs, "ConfigMap", "settings").Object
	if note, _, _ := unstructured.NestedString(cm.Object, "data", "note"); note != "${ALPHA_IMAGE}" {
		t.Errorf("ConfigMap data changed to %q; only image fields are substituted", note)
	}
	if size, _, _ := unstructured.NestedInt64(find(t, docs, "Widget", "small").Object.Object, "spec", "size"); size != 1 {
		t.Errorf("Widget spec.size = %d, want int64 1", size)
	}
}

func TestRenderRegistryMode(t *testing.T) {
	reg := &Registry{Host: "localhost:5001", Tag: "t1"}
	docs, err := Render("testdata/manifests", []Image{{Service: "alpha"}, {Service: "beta-svc"}}, reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range containers(t, find(t, docs, "Deployment", "alpha").Object, "containers") {
		if c["image"] != "localhost:5001/alpha:t1" || c["imagePullPolicy"] != "IfNotPresent" {
			t.Errorf("alpha: image %v policy %v, want localhost:5001/alpha:t1 IfNotPresent", c["image"], c["imagePullPolicy"])
		}
	}
	c := containers(t, find(t, docs, "Deployment", "beta-svc").Object, "containers")[0]
	if c["image"] != "localhost:5001/beta-svc:t1" || c["imagePullPolicy"] != "IfNotPresent" {
		t.Errorf("beta-svc: image %v policy %v", c["image"], c["imagePullPolicy"])
	}

	// Registry mode pulls: literal images need not be loaded.
	if _, err := Render("testdata/unloaded", []Image{{Service: "alpha"}}, reg); err != nil {
		t.Errorf("registry mode rejected a literal image: %v", err)
	}
	if _, err := Render("testdata/manifests", nil, &Registry{Host: "localhost:5001"}); err == nil {
		t.Error("registry without tag accepted")
	}
}

func TestPreflightImageNotLoaded(t *testing.T) {
	_, err := Render("testdata/unloaded", testImages, nil)
	var pe *PreflightError
	if !errors.As(err, &pe) {
		t.Fatalf("want *PreflightError, got %v", err)
	}
	if len(pe.Problems) != 1 || pe.Problems[0].Image != "busybox:1.36" || pe.Problems[0].Container != "sidecar" {
		t.Fatalf("problems = %+v, want only the sidecar's busybox:1.36", pe.Problems)
	}
	for _, want := range []string{`"busybox:1.36"`, "40-tool.yaml", "Deployment kindling/tool", `container "sidecar"`,
		"not in the loaded set", "nothing was applied", "localhost/alpha:test-0123456789ab", "build and load", "add its service to the suite"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}

	// The same literal image passes once it is loaded, whatever its spelling.
	loaded := append(append([]Image(nil), testImages...), Image{Service: "busybox", Ref: "docker.io/library/busybox:1.36"})
	if _, err := Render("testdata/unloaded", loaded, nil); err != nil {
		t.Errorf("loaded literal image rejected: %v", err)
	}
}

func TestPreflightUnknownPlaceholder(t *testing.T) {
	_, err := Render("testdata/unknown-placeholder", testImages, nil)
	var pe *PreflightError
	if !errors.As(err, &pe) {
		t.Fatalf("want *PreflightError, got %v", err)
	}
	for _, want := range []string{"${GAMMA_IMAGE}", "40-gamma.yaml", "Job kindling/gamma", "unknown placeholder",
		"${ALPHA_IMAGE}, ${BETA_SVC_IMAGE}", "add its service to the suite"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
	// No images at all: the placeholders of the real manifests are unknown too.
	if _, err := Render("testdata/manifests", nil, nil); err == nil || !strings.Contains(err.Error(), "${ALPHA_IMAGE}") {
		t.Errorf("empty loaded set: err = %v", err)
	}
}

func TestRenderErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Render(dir, nil, nil); err == nil || !strings.Contains(err.Error(), "no *.yaml") {
		t.Errorf("empty dir: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "10-bad.yaml"), []byte("metadata:\n  name: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Render(dir, nil, nil); err == nil || !strings.Contains(err.Error(), "10-bad.yaml") || !strings.Contains(err.Error(), "document 1") {
		t.Errorf("document without kind: %v", err)
	}
	if _, err := Render("testdata/manifests", []Image{{Service: "alpha", Ref: "a"}, {Service: "alpha", Ref: "b"}}, nil); err == nil {
		t.Error("duplicate service accepted")
	}
}

func TestPlaceholder(t *testing.T) {
	for service, want := range map[string]string{
		"datastorage":   "${DATASTORAGE_IMAGE}",
		"holmesgpt-api": "${HOLMESGPT_API_IMAGE}",
		"aianalysis":    "${AIANALYSIS_IMAGE}",
	} {
		if got := Placeholder(service); got != want {
			t.Errorf("Placeholder(%q) = %q, want %q", service, got, want)
		}
	}
}

func TestAddCoverage(t *testing.T) {
	docs, err := Render("testdata/manifests", testImages, nil)
	if err != nil {
		t.Fatal(err)
	}
	AddCoverage(docs, testImages, "/var/kindling/coverage")
	alpha := find(t, docs, "Deployment", "alpha").Object
	for _, field := range []string{"initContainers", "containers"} {
		for _, c := range containers(t, alpha, field) {
			env := fmt.Sprint(c["env"])
			mounts := fmt.Sprint(c["volumeMounts"])
			if !strings.Contains(env, "GOCOVERDIR") || !strings.Contains(mounts, "kindling-coverage-alpha") {
				t.Errorf("alpha %s %v: env %s mounts %s, want GOCOVERDIR on the coverage volume", field, c["name"], env, mounts)
			}
		}
	}
	volumes, _, _ := unstructured.NestedSlice(alpha.Object, "spec", "template", "spec", "volumes")
	var coverage []any
	for _, v := range volumes {
		if strings.HasPrefix(fmt.Sprint(v.(map[string]any)["name"]), "kindling-coverage-") {
			coverage = append(coverage, v)
		}
	}
	if len(coverage) != 1 || !strings.Contains(fmt.Sprint(coverage[0]), "/var/kindling/coverage/alpha") {
		t.Errorf("coverage volumes %v, want one hostPath /var/kindling/coverage/alpha", coverage)
	}
	ns := find(t, docs, "Namespace", "kindling").Object
	if got := ns.GetLabels()["pod-security.kubernetes.io/enforce"]; got != "privileged" {
		t.Errorf("namespace enforce level %q, want privileged: baseline forbids the hostPath volume", got)
	}
	// Objects without the suite's images stay as they were.
	if cm := find(t, docs, "ConfigMap", "settings").Object; strings.Contains(fmt.Sprint(cm.Object), "GOCOVERDIR") {
		t.Error("a ConfigMap got coverage settings")
	}
}

// Readiness covers every kind the manifests may create, not only Deployments.
func TestReadinessOfKinds(t *testing.T) {
	obj := func(kind string, status map[string]any) *unstructured.Unstructured {
		o := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": kind,
			"metadata": map[string]any{"name": "x", "namespace": "ns", "generation": int64(1)}}}
		if status != nil {
			o.Object["status"] = status
		}
		return o
	}
	for _, tc := range []struct {
		name          string
		obj           *unstructured.Unstructured
		ready, failed bool
	}{
		{"configmap", obj("ConfigMap", nil), true, false},
		{"bound pvc", obj("PersistentVolumeClaim", map[string]any{"phase": "Bound"}), true, false},
		{"pending pvc", obj("PersistentVolumeClaim", map[string]any{"phase": "Pending"}), false, false},
		{"failed job", func() *unstructured.Unstructured {
			o := obj("Job", map[string]any{"conditions": []any{map[string]any{"type": "Failed", "status": "True"}}})
			o.SetAPIVersion("batch/v1")
			return o
		}(), false, true},
		{"statefulset rolling", func() *unstructured.Unstructured {
			o := obj("StatefulSet", map[string]any{"observedGeneration": int64(1), "replicas": int64(2), "readyReplicas": int64(1)})
			o.SetAPIVersion("apps/v1")
			o.Object["spec"] = map[string]any{"replicas": int64(2)}
			return o
		}(), false, false},
	} {
		r := readinessOf(tc.obj, nil)
		if r.ready() != tc.ready || r.failed() != tc.failed {
			t.Errorf("%s: %s; want ready %v failed %v", tc.name, r, tc.ready, tc.failed)
		}
	}
}
