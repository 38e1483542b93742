// Command aianalysis runs the AIAnalysis controller: it investigates signals through holmesgpt-api,
// decides approval with a Rego policy and records every phase transition in datastorage.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/kindling-dev/kindling/services/aianalysis/api/v1alpha1"
	"github.com/kindling-dev/kindling/services/aianalysis/clients"
	"github.com/kindling-dev/kindling/services/aianalysis/controller"
	"github.com/kindling-dev/kindling/services/aianalysis/policy"
)

func main() {
	cfg, err := parseConfig(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "aianalysis: %v\n", err)
		os.Exit(2)
	}
	logger := logr.FromSlogHandler(slog.NewJSONHandler(os.Stderr, nil))
	ctrl.SetLogger(logger)
	klog.SetLogger(logger)
	if err := run(cfg, logger); err != nil {
		logger.Error(err, "aianalysis stopped")
		os.Exit(1)
	}
}

func run(cfg config, logger logr.Logger) error {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return fmt.Errorf("register Kubernetes types: %w", err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return fmt.Errorf("register AIAnalysis types: %w", err)
	}
	restConfig, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("find the Kubernetes API (in-cluster service account or KUBECONFIG): %w", err)
	}
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: cfg.metricsAddr},
		HealthProbeBindAddress: cfg.probeAddr,
		LeaderElection:         cfg.leaderElect,
		LeaderElectionID:       "aianalysis.kindling.dev",
	})
	if err != nil {
		return fmt.Errorf("create controller manager: %w", err)
	}

	policies := policy.NewWatcher(cfg.policyFile, cfg.policyPoll, logger.WithName("policy"))
	if err := mgr.Add(policies); err != nil {
		return fmt.Errorf("add policy watcher: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("add healthz check: %w", err)
	}
	if err := mgr.AddReadyzCheck("policy", policies.ReadyCheck); err != nil {
		return fmt.Errorf("add readyz check: %w", err)
	}

	r := controller.New(mgr.GetClient(), clients.NewHolmesGPT(cfg.holmesgptURL), clients.NewDatastorage(cfg.datastorageURL), policies)
	r.Reader = mgr.GetAPIReader()
	r.Recorder = mgr.GetEventRecorder("aianalysis-controller")
	if err := r.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the AIAnalysis controller: %w", err)
	}

	logger.Info("starting", "holmesgptURL", cfg.holmesgptURL, "datastorageURL", cfg.datastorageURL,
		"policyFile", cfg.policyFile, "leaderElect", cfg.leaderElect)
	return mgr.Start(ctrl.SetupSignalHandler())
}
