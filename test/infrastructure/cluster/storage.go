package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
)

// HostPath is the host directory that backs a node's /var, where its containerd keeps images.
type HostPath struct {
	Node string
	Path string
}

// NodeStorage returns, per node, the host directory of the anonymous volume kind mounts at /var,
// so disk measurements can statfs the filesystem that really holds the node's images. Without
// c.Nodes, the cluster's nodes are listed.
func NodeStorage(ctx context.Context, c Cluster) ([]HostPath, error) {
	if c.Provider != ProviderDocker && c.Provider != ProviderPodman {
		return nil, fmt.Errorf("unknown Kind provider %q: use %q or %q", c.Provider, ProviderDocker, ProviderPodman)
	}
	names := c.Nodes
	if len(names) == 0 {
		ns, err := Nodes(ctx, c.Name, c.Provider)
		if err != nil {
			return nil, err
		}
		for _, n := range ns {
			names = append(names, n.String())
		}
	}
	var out []HostPath
	for _, node := range names {
		js, err := engine.Output(ctx, nil, engine.Cmd{Name: c.Provider, Args: []string{"container", "inspect", node}})
		if err != nil {
			return nil, fmt.Errorf("inspect node %s of cluster %q: %w", node, c.Name, err)
		}
		path, err := varMountSource(js)
		if err != nil {
			return nil, fmt.Errorf("node %s of cluster %q: %w", node, c.Name, err)
		}
		out = append(out, HostPath{Node: node, Path: path})
	}
	return out, nil
}

// varMountSource finds the host source of the /var mount in `docker|podman container inspect` output.
func varMountSource(inspectJSON []byte) (string, error) {
	var containers []struct {
		Mounts []struct {
			Type        string
			Source      string
			Destination string
		}
	}
	if err := json.Unmarshal(inspectJSON, &containers); err != nil {
		return "", fmt.Errorf("parse container inspect output: %w", err)
	}
	if len(containers) != 1 {
		return "", fmt.Errorf("container inspect returned %d containers, want 1", len(containers))
	}
	for _, m := range containers[0].Mounts {
		if m.Destination == "/var" {
			if m.Source == "" {
				return "", fmt.Errorf("the /var mount (%s) has no host source", m.Type)
			}
			return m.Source, nil
		}
	}
	return "", fmt.Errorf("no mount at /var (kind mounts a volume there)")
}

// NodeImageBytes returns the bytes under /var/lib/containerd in the node (content store,
// snapshots, metadata), to compare with archive sizes. When du reports files that vanished while
// it ran (containerd garbage collection), its total is still returned.
func NodeImageBytes(ctx context.Context, node nodes.Node) (int64, error) {
	var stdout, stderr bytes.Buffer
	err := node.CommandContext(ctx, "du", "-sb", "/var/lib/containerd").SetStdout(&stdout).SetStderr(&stderr).Run()
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	n, perr := parseDu(stdout.String())
	if perr != nil {
		if err != nil {
			return 0, fmt.Errorf("du /var/lib/containerd in node %s: %w: %s", node, err, strings.TrimSpace(stderr.String()))
		}
		return 0, fmt.Errorf("du /var/lib/containerd in node %s: %w", node, perr)
	}
	return n, nil
}

// parseDu reads the total of `du -sb DIR` ("<bytes>\t<dir>").
func parseDu(out string) (int64, error) {
	fields := strings.Fields(out)
	if len(fields) < 2 {
		return 0, fmt.Errorf("unexpected du output %q", strings.TrimSpace(out))
	}
	n, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("unexpected du output %q", strings.TrimSpace(out))
	}
	return n, nil
}
