// Package deploy is the manifest-only deploy phase: it renders the suite's manifests against the set
// of images the load phase put on the nodes, refuses to apply anything that references an image that
// is not there, applies the manifests with server-side apply and waits for the Deployments to roll
// out. It has no path to a container engine: it only talks to the Kubernetes API.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// Image is one image the load phase put on every node.
type Image struct {
	Service string // service name, e.g. "holmesgpt-api"
	Ref     string // reference as the nodes know it, e.g. "localhost/holmesgpt-api:aianalysis-0123456789ab"
	ID      string // image ID (sha256 of the config); informational
}

// Registry switches Render to registry mode: placeholders become <Host>/<service>:<Tag> (without a
// Tag: each image's Ref), pull policy IfNotPresent, and images are not required to be in the
// loaded set.
type Registry struct {
	Host string // e.g. "localhost:5001"
	Tag  string
}

// Options configures Apply.
type Options struct {
	Kubeconfig     string        // path to the cluster's kubeconfig; required by Apply
	ManifestsDir   string        // directory whose *.yaml files are applied (subdirectories are ignored)
	Images         []Image       // the loaded set
	Registry       *Registry     // nil: local (loaded) images
	RolloutTimeout time.Duration // default 3m
	FieldManager   string        // default "kindling"
	Log            func(format string, args ...any)
	// CoverageDir, when set, is the node directory that receives the services' coverage counters
	// (see AddCoverage).
	CoverageDir string
	// Diagnostics receives what a person needs when Deployments do not become ready. When nil the
	// diagnostics are appended to the returned error instead.
	Diagnostics io.Writer
}

// Document is one object of a manifest file, rendered.
type Document struct {
	File   string // base name of the manifest file
	Object *unstructured.Unstructured
}

// Rollout is a workload (an object with a pod template) that became ready, as kstatus says, and
// how long the wait for it took.
type Rollout struct {
	Name     string // namespace/name
	Duration time.Duration
}

// Result is what Apply did.
type Result struct {
	Applied  []string // "Kind/namespace/name" ("Kind/name" for cluster-scoped objects), in apply order
	Rollouts []Rollout
}

// Clients are the API clients the deploy phase needs. Tests use the client-go fakes.
type Clients struct {
	Dynamic dynamic.Interface
	Kube    kubernetes.Interface // pods, events and logs for diagnostics; may be nil
	Mapper  meta.RESTMapper      // reset after CRDs are established when it implements meta.ResettableRESTMapper
}

const (
	defaultRolloutTimeout = 3 * time.Minute
	defaultFieldManager   = "kindling"
)

// Apply renders the manifests (preflight included: nothing is applied when an image is missing),
// connects to the cluster with opts.Kubeconfig and applies them. It needs no container engine.
func Apply(ctx context.Context, opts Options) (Result, error) {
	docs, err := render(opts)
	if err != nil {
		return Result{}, err
	}
	c, err := NewClients(opts.Kubeconfig)
	if err != nil {
		return Result{}, err
	}
	return applyDocuments(ctx, c, docs, opts)
}

// ApplyWith is Apply with clients supplied by the caller (e.g. fakes).
func ApplyWith(ctx context.Context, c Clients, opts Options) (Result, error) {
	docs, err := render(opts)
	if err != nil {
		return Result{}, err
	}
	return applyDocuments(ctx, c, docs, opts)
}

func render(opts Options) ([]Document, error) {
	docs, err := Render(opts.ManifestsDir, opts.Images, opts.Registry)
	if err == nil && opts.CoverageDir != "" {
		AddCoverage(docs, opts.Images, opts.CoverageDir)
	}
	return docs, err
}

// NewClients builds the clients from a kubeconfig file. The path is required: falling back to
// ~/.kube/config could deploy the suite into whatever cluster the user last talked to.
func NewClients(kubeconfig string) (Clients, error) {
	if kubeconfig == "" {
		return Clients{}, errors.New("deploy: no kubeconfig path given; pass the kubeconfig the cluster phase wrote")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return Clients{}, fmt.Errorf("deploy: load kubeconfig %s: %w (was the cluster created?)", kubeconfig, err)
	}
	// Files are applied in parallel; keep client-side throttling out of the way.
	cfg.QPS, cfg.Burst = 50, 100
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return Clients{}, fmt.Errorf("deploy: dynamic client for %s: %w", kubeconfig, err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return Clients{}, fmt.Errorf("deploy: clientset for %s: %w", kubeconfig, err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(kube.Discovery()))
	return Clients{Dynamic: dyn, Kube: kube, Mapper: mapper}, nil
}

func (o Options) withDefaults() Options {
	if o.RolloutTimeout <= 0 {
		o.RolloutTimeout = defaultRolloutTimeout
	}
	if o.FieldManager == "" {
		o.FieldManager = defaultFieldManager
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	} else {
		// Files and rollouts are handled in parallel; callers need not make their logger safe.
		var mu sync.Mutex
		log := o.Log
		o.Log = func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			log(format, args...)
		}
	}
	return o
}
