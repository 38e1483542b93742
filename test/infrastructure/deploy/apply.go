package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
)

// Polling knobs; tests shorten them.
var (
	pollInterval = time.Second
	crdTimeout   = time.Minute
	// How long a kind served by a just-established CRD may stay missing from discovery.
	discoveryGrace = 30 * time.Second
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// mapped is a document with its REST mapping resolved.
type mapped struct {
	Document
	gvr        schema.GroupVersionResource
	namespaced bool
}

func (m mapped) id() string {
	if m.namespaced {
		return m.Object.GetKind() + "/" + m.Object.GetNamespace() + "/" + m.Object.GetName()
	}
	return m.Object.GetKind() + "/" + m.Object.GetName()
}

type applier struct {
	c    Clients
	opts Options
	// Kinds defined by the CRDs applied in this run: their mappings may lag behind Established.
	crdKinds map[schema.GroupKind]bool
}

func isFirst(o *unstructured.Unstructured) bool {
	gvk := o.GroupVersionKind()
	return (gvk.Group == "" && gvk.Kind == "Namespace") ||
		(gvk.Group == "apiextensions.k8s.io" && gvk.Kind == "CustomResourceDefinition")
}

// applyDocuments applies Namespaces, then CRDs (and waits for them to be established), then the
// remaining files in parallel, then waits for the Deployments' rollouts.
func applyDocuments(ctx context.Context, c Clients, docs []Document, opts Options) (Result, error) {
	opts = opts.withDefaults()
	if c.Dynamic == nil || c.Mapper == nil {
		return Result{}, errors.New("deploy: clients need a dynamic client and a REST mapper")
	}
	a := &applier{c: c, opts: opts, crdKinds: map[schema.GroupKind]bool{}}
	for _, img := range opts.Images {
		opts.Log("image %s: %s %s", img.Service, img.Ref, img.ID)
	}
	var res Result

	var namespaces, crds []Document
	rest := map[string][]Document{}
	var files []string
	for _, d := range docs {
		switch {
		case isFirst(d.Object) && d.Object.GetKind() == "Namespace":
			namespaces = append(namespaces, d)
		case isFirst(d.Object):
			crds = append(crds, d)
			a.noteCRD(d.Object)
		default:
			if _, ok := rest[d.File]; !ok {
				files = append(files, d.File)
			}
			rest[d.File] = append(rest[d.File], d)
		}
	}

	first, err := a.mapAll(ctx, append(namespaces, crds...), false)
	if err != nil {
		return res, err
	}
	for _, m := range first {
		if err := a.apply(ctx, m); err != nil {
			return res, err
		}
		res.Applied = append(res.Applied, m.id())
	}
	if len(first) > 0 {
		opts.Log("applied %d namespace(s) and %d CRD(s)", len(namespaces), len(crds))
	}
	if len(crds) > 0 {
		if err := a.waitEstablished(ctx, crds); err != nil {
			return res, err
		}
		a.resetMapper()
	}

	var all []Document
	for _, f := range files {
		all = append(all, rest[f]...)
	}
	ms, err := a.mapAll(ctx, all, true)
	if err != nil {
		return res, err
	}
	byFile := map[string][]mapped{}
	for _, m := range ms {
		byFile[m.File] = append(byFile[m.File], m)
	}
	applied := make([][]string, len(files))
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Go(func() {
			for _, m := range byFile[f] {
				if err := a.apply(ctx, m); err != nil {
					errs[i] = err
					return
				}
				applied[i] = append(applied[i], m.id())
			}
			opts.Log("applied %s (%d object(s))", f, len(applied[i]))
		})
	}
	wg.Wait()
	for _, ids := range applied {
		res.Applied = append(res.Applied, ids...)
	}
	if err := errors.Join(errs...); err != nil {
		return res, err
	}

	rollouts, err := a.waitRollouts(ctx, ms)
	res.Rollouts = rollouts
	return res, err
}

func (a *applier) noteCRD(o *unstructured.Unstructured) {
	group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
	kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
	if kind != "" {
		a.crdKinds[schema.GroupKind{Group: group, Kind: kind}] = true
	}
}

func (a *applier) resetMapper() {
	if r, ok := a.c.Mapper.(meta.ResettableRESTMapper); ok {
		r.Reset()
	}
}

// mapAll resolves every document before any of them is applied, so a typo in a kind or a missing
// namespace fails the group as a whole.
func (a *applier) mapAll(ctx context.Context, docs []Document, retryCRDKinds bool) ([]mapped, error) {
	out := make([]mapped, 0, len(docs))
	var errs []error
	for _, d := range docs {
		m, err := a.mapping(ctx, d, retryCRDKinds)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, m)
	}
	return out, errors.Join(errs...)
}

func (a *applier) mapping(ctx context.Context, d Document, retryCRDKinds bool) (mapped, error) {
	gvk := d.Object.GroupVersionKind()
	where := fmt.Sprintf("%s: %s %s", d.File, gvk.Kind, objectName(d.Object.GetNamespace(), d.Object.GetName()))
	var m mapped
	var lastErr error
	// A CRD's kinds reach discovery a moment after it is established: retry those briefly.
	err := wait.PollUntilContextTimeout(ctx, pollInterval, discoveryGrace, true, func(context.Context) (bool, error) {
		rm, err := a.c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err == nil {
			m = mapped{Document: d, gvr: rm.Resource, namespaced: rm.Scope.Name() == meta.RESTScopeNameNamespace}
			return true, nil
		}
		lastErr = err
		if !meta.IsNoMatchError(err) || !retryCRDKinds || !a.crdKinds[gvk.GroupKind()] {
			return false, err
		}
		a.resetMapper()
		return false, nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return mapped{}, ctx.Err()
		}
		return mapped{}, fmt.Errorf("deploy: %s: the cluster does not serve %s: %w (is its CRD among the manifests?)", where, gvk.GroupVersion(), lastErr)
	}
	if m.namespaced && d.Object.GetNamespace() == "" {
		return m, fmt.Errorf("deploy: %s is namespaced but has no metadata.namespace; set it (the suite's namespace is kindling)", where)
	}
	return m, nil
}

func (a *applier) resource(m mapped) dynamic.ResourceInterface {
	r := a.c.Dynamic.Resource(m.gvr)
	if m.namespaced {
		return r.Namespace(m.Object.GetNamespace())
	}
	return r
}

func (a *applier) apply(ctx context.Context, m mapped) error {
	body, err := m.Object.MarshalJSON()
	if err != nil {
		return fmt.Errorf("deploy: %s: encode %s: %w", m.File, m.id(), err)
	}
	force := true
	_, err = a.resource(m).Patch(ctx, m.Object.GetName(), types.ApplyPatchType, body,
		metav1.PatchOptions{FieldManager: a.opts.FieldManager, Force: &force})
	if err != nil {
		return fmt.Errorf("deploy: %s: apply %s: %w", m.File, m.id(), err)
	}
	return nil
}

// waitEstablished waits until every CRD reports Established=True.
func (a *applier) waitEstablished(ctx context.Context, crds []Document) error {
	pending := map[string]string{} // name → file
	for _, d := range crds {
		pending[d.Object.GetName()] = d.File
	}
	start := time.Now()
	err := wait.PollUntilContextTimeout(ctx, pollInterval, crdTimeout, true, func(ctx context.Context) (bool, error) {
		for name := range pending {
			obj, err := a.c.Dynamic.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err == nil && conditionTrue(obj, "Established") {
				delete(pending, name)
			}
		}
		return len(pending) == 0, nil
	})
	if err != nil {
		var names []string
		for n, f := range pending {
			names = append(names, fmt.Sprintf("%s (%s)", n, f))
		}
		slices.Sort(names)
		return fmt.Errorf("deploy: CRDs not established within %s: %s: %w; check `kubectl get crd -o yaml` for NamesAccepted/Established conditions",
			crdTimeout, strings.Join(names, ", "), err)
	}
	a.opts.Log("CRDs established after %s", time.Since(start).Round(time.Millisecond))
	return nil
}

func conditionTrue(obj *unstructured.Unstructured, condType string) bool {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == condType && m["status"] == "True" {
			return true
		}
	}
	return false
}
