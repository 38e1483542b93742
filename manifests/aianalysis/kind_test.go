package aianalysis

import (
	"os"
	"slices"
	"testing"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"
)

func TestKindConfig(t *testing.T) {
	raw, err := os.ReadFile("../kind/aianalysis.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c v1alpha4.Cluster
	if err := yaml.UnmarshalStrict(raw, &c); err != nil {
		t.Fatalf("../kind/aianalysis.yaml is not a kind v1alpha4 Cluster: %v", err)
	}
	if c.Kind != "Cluster" || c.APIVersion != "kind.x-k8s.io/v1alpha4" {
		t.Errorf("kind %q apiVersion %q", c.Kind, c.APIVersion)
	}
	if len(c.Nodes) != 1 || c.Nodes[0].Role != v1alpha4.ControlPlaneRole {
		t.Fatalf("nodes %+v, want one control-plane node", c.Nodes)
	}
	want := []v1alpha4.PortMapping{
		{ContainerPort: 30081, HostPort: 30081, ListenAddress: "127.0.0.1", Protocol: v1alpha4.PortMappingProtocolTCP},
		{ContainerPort: 30082, HostPort: 30082, ListenAddress: "127.0.0.1", Protocol: v1alpha4.PortMappingProtocolTCP},
	}
	if got := c.Nodes[0].ExtraPortMappings; !slices.Equal(got, want) {
		t.Errorf("port mappings %+v, want %+v", got, want)
	}

	var kubelet struct {
		Kind          string `json:"kind"`
		SyncFrequency string `json:"syncFrequency"`
	}
	found := false
	for _, patch := range c.KubeadmConfigPatches {
		if err := yaml.Unmarshal([]byte(patch), &kubelet); err == nil && kubelet.Kind == "KubeletConfiguration" {
			found = true
		}
	}
	if !found || kubelet.SyncFrequency != "10s" {
		t.Errorf("want a KubeletConfiguration patch with syncFrequency 10s, got %+v", c.KubeadmConfigPatches)
	}
}
