// Package cluster creates, reuses and deletes Kind clusters through kind's Go library (no kind
// binary), and reports where each node keeps its images.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	kindlog "sigs.k8s.io/kind/pkg/log"
	"sigs.k8s.io/yaml"
)

// Providers kind can run nodes with.
const (
	ProviderDocker = "docker"
	ProviderPodman = "podman"
)

// ErrClusterExists is wrapped by Create when the cluster exists and Options.Reuse is false.
var ErrClusterExists = errors.New("cluster already exists")

// Options for Create.
type Options struct {
	Name        string           // cluster name, see DefaultName
	Provider    string           // "docker" or "podman": the engine chosen for the run
	NodeImage   string           // KIND_NODE_IMAGE as the provider knows it (see EnsureNodeImage); empty: kind's default
	ConfigPath  string           // Kind config file; empty: one control-plane node
	ExtraMounts []v1alpha4.Mount // added to every node of the config
	Workers     int              // worker nodes added to those of the config
	// ContainerdConfigPatches are added to the config's (e.g. registry.ContainerdPatch).
	ContainerdConfigPatches []string
	KubeconfigPath          string        // run-local kubeconfig, written with mode 0600; required
	Reuse                   bool          // reuse an existing cluster of that name instead of failing
	WaitForReady            time.Duration // wait for the control plane to be Ready; 0: don't wait
	DeleteHint              string        // command that deletes the cluster, for the "exists" error, e.g. `go run magefile.go aianalysis:down`
	Log                     func(format string, args ...any)
}

// Cluster is a created or reused Kind cluster.
type Cluster struct {
	Name       string
	Provider   string
	Kubeconfig string   // path of the kubeconfig file
	Nodes      []string // node container names
}

// ExistsError is returned by Create when the cluster exists and reuse was not asked for.
type ExistsError struct {
	Name, Provider, DeleteHint string
}

func (e *ExistsError) Error() string {
	kindDelete := "kind delete cluster --name " + e.Name
	if e.Provider == ProviderPodman {
		kindDelete = "KIND_EXPERIMENTAL_PROVIDER=podman " + kindDelete
	}
	how := fmt.Sprintf("%q", kindDelete)
	if e.DeleteHint != "" {
		how = fmt.Sprintf("%q (or %s)", e.DeleteHint, kindDelete)
	}
	return fmt.Sprintf("cluster %q already exists (provider %s): delete it with %s, or set E2E_REUSE_CLUSTER=true to reuse it",
		e.Name, e.Provider, how)
}

func (e *ExistsError) Unwrap() error { return ErrClusterExists }

// Create creates the cluster, or reuses an existing one when o.Reuse is set, and writes its
// kubeconfig to o.KubeconfigPath. kind's Create cannot be interrupted: when ctx ends meanwhile,
// Create waits for it, deletes the new cluster and returns ctx.Err().
func Create(ctx context.Context, o Options) (Cluster, error) {
	logf := orNop(o.Log)
	if err := ValidateName(o.Name); err != nil {
		return Cluster{}, err
	}
	if o.KubeconfigPath == "" {
		return Cluster{}, fmt.Errorf("create cluster %q: no kubeconfig path given (it must be run-local, not ~/.kube/config)", o.Name)
	}
	p, err := newProvider(o.Provider, logf)
	if err != nil {
		return Cluster{}, err
	}
	if err := ctx.Err(); err != nil {
		return Cluster{}, err
	}
	exists, err := exists(p, o.Name)
	if err != nil {
		return Cluster{}, fmt.Errorf("check whether cluster %q exists (provider %s): %w", o.Name, o.Provider, err)
	}
	if exists {
		if !o.Reuse {
			return Cluster{}, &ExistsError{Name: o.Name, Provider: o.Provider, DeleteHint: o.DeleteHint}
		}
		logf("reusing cluster %q (provider %s)", o.Name, o.Provider)
		if err := p.ExportKubeConfig(o.Name, o.KubeconfigPath, false); err != nil {
			return Cluster{}, fmt.Errorf("export kubeconfig of cluster %q to %s: %w", o.Name, o.KubeconfigPath, err)
		}
		c, err := finish(p, o)
		if err != nil || o.Workers == 0 {
			return c, err
		}
		// Workers asked for and a cluster that has another number of nodes: the run would test
		// something else than asked, silently.
		if want, err := NodeCount(o.ConfigPath, o.Workers); err == nil && want != len(c.Nodes) {
			hint := o.DeleteHint
			if hint == "" {
				hint = "kind delete cluster --name " + o.Name
			}
			return Cluster{}, fmt.Errorf("cluster %q has %d node(s), but its config with %d more worker(s) (E2E_WORKERS) has %d: delete it (%s) to create it anew, or set E2E_WORKERS to match",
				o.Name, len(c.Nodes), o.Workers, want, hint)
		}
		return c, nil
	}

	opts := []kindcluster.CreateOption{
		kindcluster.CreateWithKubeconfigPath(o.KubeconfigPath),
		kindcluster.CreateWithWaitForReady(o.WaitForReady),
		kindcluster.CreateWithDisplayUsage(false),
		kindcluster.CreateWithDisplaySalutation(false),
	}
	config, err := nodeConfig(o.ConfigPath, o.ExtraMounts, o.Workers)
	if err != nil {
		return Cluster{}, err
	}
	config.ContainerdConfigPatches = append(config.ContainerdConfigPatches, o.ContainerdConfigPatches...)
	opts = append(opts, kindcluster.CreateWithV1Alpha4Config(config))
	if o.NodeImage != "" {
		opts = append(opts, kindcluster.CreateWithNodeImage(o.NodeImage))
	}
	if err := os.MkdirAll(filepath.Dir(o.KubeconfigPath), 0o700); err != nil {
		return Cluster{}, fmt.Errorf("create directory for kubeconfig: %w", err)
	}
	if o.Provider == ProviderPodman {
		if err := ensureModulesDir(hostModulesDir, logf); err != nil {
			return Cluster{}, err
		}
	}

	logf("creating cluster %q (provider %s, node image %s, config %s, %d node(s))", o.Name, o.Provider, orDefault(o.NodeImage), orDefault(o.ConfigPath), len(config.Nodes))
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- p.Create(o.Name, opts...) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		logf("interrupted: waiting for kind to finish creating cluster %q so it can be deleted", o.Name)
		err = <-done
	}
	if ctx.Err() != nil {
		if err == nil {
			if derr := p.Delete(o.Name, o.KubeconfigPath); derr != nil {
				return Cluster{}, fmt.Errorf("%w (and deleting the half-created cluster %q failed: %v)", ctx.Err(), o.Name, derr)
			}
		}
		return Cluster{}, ctx.Err()
	}
	if err != nil {
		return Cluster{}, fmt.Errorf("create cluster %q (provider %s): %w", o.Name, o.Provider, err)
	}
	logf("created cluster %q in %s", o.Name, time.Since(start).Round(100*time.Millisecond))
	return finish(p, o)
}

// finish enforces the kubeconfig mode (kind keeps the mode of an existing file) and lists nodes.
func finish(p *kindcluster.Provider, o Options) (Cluster, error) {
	if err := os.Chmod(o.KubeconfigPath, 0o600); err != nil {
		return Cluster{}, fmt.Errorf("restrict kubeconfig %s: %w", o.KubeconfigPath, err)
	}
	ns, err := p.ListNodes(o.Name)
	if err != nil {
		return Cluster{}, fmt.Errorf("list nodes of cluster %q: %w", o.Name, err)
	}
	if len(ns) == 0 {
		return Cluster{}, fmt.Errorf("cluster %q (provider %s) has no nodes", o.Name, o.Provider)
	}
	c := Cluster{Name: o.Name, Provider: o.Provider, Kubeconfig: o.KubeconfigPath}
	for _, n := range ns {
		c.Nodes = append(c.Nodes, n.String())
	}
	slices.Sort(c.Nodes)
	return c, nil
}

// Delete deletes the cluster's nodes and removes its entry from kubeconfig (when not empty).
// Deleting a cluster that does not exist is not an error.
func Delete(ctx context.Context, name, provider, kubeconfig string) error {
	p, err := newProvider(provider, nil)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err = p.Delete(name, kubeconfig)
	if err != nil {
		// podman's rm -f of a node that is still stopping fails now and then (exit 125) and
		// works a moment later: try once more unless the nodes are gone already.
		time.Sleep(time.Second)
		if ok, eerr := exists(p, name); eerr == nil && !ok {
			return nil
		}
		err = p.Delete(name, kubeconfig)
	}
	if err != nil {
		return fmt.Errorf("delete cluster %q (provider %s): %w", name, provider, err)
	}
	return nil
}

// Exists reports whether the cluster has nodes.
func Exists(ctx context.Context, name, provider string) (bool, error) {
	p, err := newProvider(provider, nil)
	if err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	ok, err := exists(p, name)
	if err != nil {
		return false, fmt.Errorf("check whether cluster %q exists (provider %s): %w", name, provider, err)
	}
	return ok, nil
}

// Nodes returns the cluster's nodes; use them to run commands inside nodes.
func Nodes(ctx context.Context, name, provider string) ([]nodes.Node, error) {
	p, err := newProvider(provider, nil)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ns, err := p.ListNodes(name)
	if err != nil {
		return nil, fmt.Errorf("list nodes of cluster %q (provider %s): %w", name, provider, err)
	}
	if len(ns) == 0 {
		return nil, fmt.Errorf("cluster %q (provider %s) has no nodes: create it first", name, provider)
	}
	return ns, nil
}

// ExportLogs writes kind's log collection for the cluster (journals, container logs, images) to dir.
func ExportLogs(ctx context.Context, name, provider, dir string) error {
	p, err := newProvider(provider, nil)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := p.CollectLogs(name, dir); err != nil {
		return fmt.Errorf("export logs of cluster %q (provider %s) to %s: %w", name, provider, dir, err)
	}
	return nil
}

func exists(p *kindcluster.Provider, name string) (bool, error) {
	ns, err := p.ListNodes(name)
	return len(ns) > 0, err
}

func newProvider(provider string, logf func(string, ...any)) (*kindcluster.Provider, error) {
	var opt kindcluster.ProviderOption
	switch provider {
	case ProviderDocker:
		opt = kindcluster.ProviderWithDocker()
	case ProviderPodman:
		opt = kindcluster.ProviderWithPodman()
	default:
		return nil, fmt.Errorf("unknown Kind provider %q: use %q or %q", provider, ProviderDocker, ProviderPodman)
	}
	return kindcluster.NewProvider(kindcluster.ProviderWithLogger(kindLogger{orNop(logf)}), opt), nil
}

// hostModulesDir is bind-mounted read-only into every node by kind.
var hostModulesDir = "/lib/modules"

// ensureModulesDir creates an empty dir where the host has none (a VM kernel without modules):
// docker creates a missing bind-mount source itself, podman refuses to start the node ("statfs
// /lib/modules: no such file or directory").
func ensureModulesDir(dir string, logf func(string, ...any)) error {
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("kind mounts %s into every node and podman needs it to exist, but it does not and cannot be created (%v): create it (an empty directory will do) and retry", dir, err)
	}
	logf("created the empty %s that kind mounts into every node: this host has none, and podman needs the mount source to exist", dir)
	return nil
}

func orNop(logf func(string, ...any)) func(string, ...any) {
	if logf == nil {
		return func(string, ...any) {}
	}
	return logf
}

func orDefault(s string) string {
	if s == "" {
		return "kind's default"
	}
	return s
}

// kindLogger adapts kind's logger to a printf-style func; kind's debug levels (V>0) are dropped.
type kindLogger struct{ logf func(string, ...any) }

var _ kindlog.Logger = kindLogger{}

func (l kindLogger) Warn(m string)                { l.logf("kind: warning: %s", trim(m)) }
func (l kindLogger) Warnf(f string, args ...any)  { l.Warn(fmt.Sprintf(f, args...)) }
func (l kindLogger) Error(m string)               { l.logf("kind: error: %s", trim(m)) }
func (l kindLogger) Errorf(f string, args ...any) { l.Error(fmt.Sprintf(f, args...)) }

func (l kindLogger) V(level kindlog.Level) kindlog.InfoLogger {
	if level > 0 {
		return kindInfo{}
	}
	return kindInfo(l)
}

type kindInfo struct{ logf func(string, ...any) }

func (i kindInfo) Enabled() bool { return i.logf != nil }

func (i kindInfo) Info(m string) {
	if m = trim(m); i.logf != nil && m != "" {
		i.logf("kind: %s", m)
	}
}

func (i kindInfo) Infof(f string, args ...any) { i.Info(fmt.Sprintf(f, args...)) }

func trim(s string) string { return strings.TrimSpace(s) }

// nodeConfig reads a Kind config (none: one control-plane node), adds workers (plain worker nodes)
// and mounts to every node.
func nodeConfig(path string, mounts []v1alpha4.Mount, workers int) (*v1alpha4.Cluster, error) {
	config := &v1alpha4.Cluster{}
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read Kind config: %w", err)
		}
		if err := yaml.UnmarshalStrict(raw, config); err != nil {
			//lint:ignore ST1005 Kind is a name
			return nil, fmt.Errorf("Kind config %s: %w", path, err)
		}
	}
	if len(config.Nodes) == 0 {
		config.Nodes = []v1alpha4.Node{{Role: v1alpha4.ControlPlaneRole}}
	}
	for range workers {
		config.Nodes = append(config.Nodes, v1alpha4.Node{Role: v1alpha4.WorkerRole})
	}
	for i := range config.Nodes {
		config.Nodes[i].ExtraMounts = append(config.Nodes[i].ExtraMounts, mounts...)
	}
	return config, nil
}

// NodeCount is the number of nodes a cluster of the Kind config at path (none: one node) and
// workers more would have.
func NodeCount(path string, workers int) (int, error) {
	c, err := nodeConfig(path, nil, workers)
	if err != nil {
		return 0, err
	}
	return len(c.Nodes), nil
}
