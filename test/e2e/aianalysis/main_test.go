//go:build e2e

// Package aianalysis is the e2e suite of the AIAnalysis chain on a running cluster: the controller
// asks holmesgpt-api, applies the Rego approval policy and writes audit events to datastorage.
//
// Run it through `go run magefile.go aianalysis:test`, or directly with
// `KUBECONFIG=<kubeconfig> go test -tags e2e ./test/e2e/aianalysis` against a deployed cluster.
package aianalysis

import (
	"fmt"
	"os"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kindling-dev/kindling/services/aianalysis/api/v1alpha1"
)

const namespace = "kindling"

var (
	k8s            client.Client
	datastorageURL = envOr("DATASTORAGE_URL", "http://127.0.0.1:30081") // NodePort mapped by manifests/kind/aianalysis.yaml; kindling passes it from test/suites/aianalysis.yaml
)

func TestMain(m *testing.M) {
	if err := connect(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func connect() error {
	path := os.Getenv("KUBECONFIG")
	if path == "" {
		return fmt.Errorf("KUBECONFIG is not set: run the suite with `go run magefile.go aianalysis:test`, or point KUBECONFIG at the cluster's kubeconfig")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	return err
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
