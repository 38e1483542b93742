package controller_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/yaml"

	"github.com/kindling-dev/kindling/services/aianalysis/api/v1alpha1"
	"github.com/kindling-dev/kindling/services/aianalysis/clients"
	"github.com/kindling-dev/kindling/services/aianalysis/controller"
	"github.com/kindling-dev/kindling/services/aianalysis/policy"
	dsapi "github.com/kindling-dev/kindling/services/datastorage/api"
	holmesapi "github.com/kindling-dev/kindling/services/holmesgpt-api/api"
)

// defaultPolicySource reads approval.rego from the ConfigMap the deploy phase applies.
func defaultPolicySource(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile("../../../manifests/aianalysis/30-policy.yaml")
	if err != nil {
		t.Fatalf("read the default policy: %v", err)
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		t.Fatalf("decode manifests/aianalysis/30-policy.yaml: %v", err)
	}
	src, ok := cm.Data["approval.rego"]
	if !ok {
		t.Fatal("manifests/aianalysis/30-policy.yaml has no approval.rego key")
	}
	return []byte(src)
}

func defaultPolicy(t *testing.T) *policy.Policy {
	t.Helper()
	p, err := policy.Compile(context.Background(), "approval.rego", defaultPolicySource(t))
	if err != nil {
		t.Fatalf("compile the default policy: %v", err)
	}
	return p
}

// holmesServer is holmesgpt-api: answer decides each reply from the attempt number (1-based).
type holmesServer struct {
	*httptest.Server
	mu      sync.Mutex
	signals []holmesapi.Signal
	answer  func(attempt int, s holmesapi.Signal) (int, any)
}

func newHolmes(t *testing.T, answer func(attempt int, s holmesapi.Signal) (int, any)) *holmesServer {
	h := &holmesServer{answer: answer}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/investigate" {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no route " + r.Method + " " + r.URL.Path})
			return
		}
		var body struct {
			Signal holmesapi.Signal `json:"signal"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		h.mu.Lock()
		h.signals = append(h.signals, body.Signal)
		attempt := len(h.signals)
		h.mu.Unlock()
		status, reply := h.answer(attempt, body.Signal)
		writeJSON(w, status, reply)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *holmesServer) calls() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.signals)
}

// rulesAnswer follows the deterministic table of the holmesgpt-api contract.
func rulesAnswer(_ int, s holmesapi.Signal) (int, any) {
	params := map[string]string{"name": s.Name, "namespace": s.Namespace}
	inv := func(cause, workflow string, conf float64, review bool) holmesapi.Investigation {
		return holmesapi.Investigation{RootCause: cause, Confidence: conf, NeedsHumanReview: review, Analyser: "rules/v1",
			RecommendedWorkflow: holmesapi.Workflow{ID: workflow, Parameters: params}}
	}
	switch s.Reason {
	case "OOMKilled":
		return 200, inv("container exceeded its memory limit", "increase-memory-limit", 0.92, false)
	case "CrashLoopBackOff":
		return 200, inv("recent rollout crashes", "rollback-deployment", 0.85, false)
	case "NodeNotReady":
		return 200, inv("node is not ready", "drain-node", 0.9, false)
	case "HighLatency":
		return 200, inv("saturated replicas", "scale-out", 0.75, false)
	default:
		return 200, inv("unclassified signal", "manual-investigation", 0.2, true)
	}
}

// datastorageServer is datastorage: it keeps one event per event_id and answers 200 for a repeat.
type datastorageServer struct {
	*httptest.Server
	mu     sync.Mutex
	down   bool // answer 503 without storing
	posts  int
	stored []dsapi.EventRequest
}

func newDatastorage(t *testing.T) *datastorageServer {
	d := &datastorageServer{}
	d.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev dsapi.EventRequest
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		d.posts++
		if d.down {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "database is closed"})
			return
		}
		for _, s := range d.stored {
			if ev.EventID != "" && s.EventID == ev.EventID {
				writeJSON(w, http.StatusOK, s)
				return
			}
		}
		d.stored = append(d.stored, ev)
		writeJSON(w, http.StatusCreated, ev)
	}))
	t.Cleanup(d.Close)
	return d
}

func (d *datastorageServer) setDown(down bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.down = down
}

// counts returns the number of POSTs received and a copy of the stored events.
func (d *datastorageServer) counts() (int, []dsapi.EventRequest) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.posts, slices.Clone(d.stored)
}

// payload decodes the payload of an event the fake datastorage stored.
func payload(t *testing.T, ev dsapi.EventRequest) map[string]any {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		t.Fatalf("payload of event %s: %v", ev.EventID, err)
	}
	return p
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

// env is a reconciler wired to a fake API server, holmesgpt-api and datastorage.
type env struct {
	t        *testing.T
	client   client.Client
	r        *controller.Reconciler
	holmes   *holmesServer
	ds       *datastorageServer
	clock    *fakeClock
	recorder *events.FakeRecorder

	mu              sync.Mutex
	persistedPhases []v1alpha1.Phase // phase of every status update, in order
}

func newEnv(t *testing.T, answer func(int, holmesapi.Signal) (int, any), objs ...client.Object) *env {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, clock: &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, recorder: events.NewFakeRecorder(100)}
	e.client = fake.NewClientBuilder().
		WithScheme(scheme).
		WithStatusSubresource(&v1alpha1.AIAnalysis{}).
		WithObjects(objs...).
		WithInterceptorFuncs(interceptor.Funcs{
			SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
				e.mu.Lock()
				e.persistedPhases = append(e.persistedPhases, obj.(*v1alpha1.AIAnalysis).Status.Phase)
				e.mu.Unlock()
				return c.SubResource(sub).Update(ctx, obj, opts...)
			},
		}).
		Build()
	e.holmes = newHolmes(t, answer)
	e.ds = newDatastorage(t)
	e.r = controller.New(e.client, clients.NewHolmesGPT(e.holmes.URL), clients.NewDatastorage(e.ds.URL), defaultPolicy(t))
	e.r.Now = e.clock.Now
	e.r.Recorder = e.recorder
	return e
}

func newAnalysis(name, namespace, reason string) *v1alpha1.AIAnalysis {
	return &v1alpha1.AIAnalysis{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kindling", UID: types.UID("uid-" + name), Generation: 1},
		Spec: v1alpha1.AIAnalysisSpec{Signal: v1alpha1.Signal{
			Name: "api-7d9f", Namespace: namespace, Kind: "Pod", Severity: "critical", Reason: reason,
			Labels: map[string]string{"app": "api"},
		}},
	}
}

func (e *env) reconcile(name string) ctrl.Result {
	e.t.Helper()
	res, err := e.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "kindling", Name: name}})
	if err != nil {
		e.t.Fatalf("reconcile %s: %v", name, err)
	}
	return res
}

func (e *env) get(name string) *v1alpha1.AIAnalysis {
	e.t.Helper()
	var a v1alpha1.AIAnalysis
	if err := e.client.Get(context.Background(), types.NamespacedName{Namespace: "kindling", Name: name}, &a); err != nil {
		e.t.Fatalf("get %s: %v", name, err)
	}
	return &a
}

func (e *env) statusUpdates() []v1alpha1.Phase {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.persistedPhases)
}

func requestFor(name string) ctrl.Request {
	return ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "kindling", Name: name}}
}

// failingStatusClient fails the status updates that fail selects, writing nothing.
type failingStatusClient struct {
	client.Client
	fail func(*v1alpha1.AIAnalysis) bool
}

func (c failingStatusClient) Status() client.SubResourceWriter {
	return failingStatusWriter{SubResourceWriter: c.Client.Status(), fail: c.fail}
}

type failingStatusWriter struct {
	client.SubResourceWriter
	fail func(*v1alpha1.AIAnalysis) bool
}

func (w failingStatusWriter) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	if w.fail(obj.(*v1alpha1.AIAnalysis)) {
		return errors.New("injected: status update lost")
	}
	return w.SubResourceWriter.Update(ctx, obj, opts...)
}
