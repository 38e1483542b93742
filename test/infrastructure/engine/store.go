package engine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

var errDaemonDown = errors.New("docker daemon not answering")

// parseDockerInfo reads `docker info --format '{{json .}}'`. The containerd image store shows as
// DriverStatus [["driver-type","io.containerd.snapshotter.v1"]]; its containerd's address is
// returned too.
func parseDockerInfo(out []byte) (Info, string, error) {
	var raw struct {
		DockerRootDir string      `json:"DockerRootDir"`
		ServerVersion string      `json:"ServerVersion"`
		ServerErrors  []string    `json:"ServerErrors"`
		Driver        string      `json:"Driver"`
		DriverStatus  [][2]string `json:"DriverStatus"`
		Containerd    *struct {
			Address string `json:"Address"`
		} `json:"Containerd"`
	}
	if err := decodeJSON(out, &raw); err != nil {
		return Info{}, "", fmt.Errorf("docker info: parse output: %w", err)
	}
	// With the daemon down, docker info still exits 0 and prints empty fields plus ServerErrors.
	if len(raw.ServerErrors) > 0 || raw.DockerRootDir == "" {
		return Info{}, "", fmt.Errorf("%w: docker info: %s", errDaemonDown, strings.Join(raw.ServerErrors, "; "))
	}
	info := Info{GraphRoot: raw.DockerRootDir, Store: raw.Driver, Snapshotter: raw.Driver, Storage: []string{raw.DockerRootDir}, Version: raw.ServerVersion}
	for _, kv := range raw.DriverStatus {
		if kv[0] == "driver-type" && kv[1] == "io.containerd.snapshotter.v1" {
			info.Store = StoreContainerd
		}
	}
	address := ""
	if raw.Containerd != nil {
		address = raw.Containerd.Address
	}
	return info, address, nil
}

// containerdRoots asks containerd (ctr plugins ls -d) where its content store and the
// snapshotter keep their data. Without ctr, or without an address, it returns an error and the
// report has only Docker's own root.
func (e *cli) containerdRoots(ctx context.Context, address, snapshotter string) (content, snapshots string, err error) {
	if address == "" {
		return "", "", errors.New("docker info names no containerd address")
	}
	var out strings.Builder
	err = e.runner.Run(ctx, Cmd{Name: "ctr", Args: []string{"--address", address, "plugins", "ls", "--detailed"}, Stdout: &out, Stderr: NewTailBuffer(4 << 10)})
	if errors.Is(err, exec.ErrNotFound) {
		return "", "", fmt.Errorf("ctr is not installed: %w", err)
	}
	if err != nil {
		return "", "", err
	}
	content, snapshots = parsePluginRoots(out.String(), snapshotter)
	return content, snapshots, nil
}

// parsePluginRoots reads the "root" exports of the content plugin and of the snapshotter called
// snapshotter from `ctr plugins ls --detailed`.
func parsePluginRoots(out, snapshotter string) (content, snapshots string) {
	typ, id := "", ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) == 2 && fields[0] == "Type:":
			typ, id = fields[1], ""
		case len(fields) == 2 && fields[0] == "ID:":
			id = fields[1]
		case len(fields) == 2 && fields[0] == "root" && typ == "io.containerd.content.v1":
			content = fields[1]
		case len(fields) == 2 && fields[0] == "root" && typ == "io.containerd.snapshotter.v1" && id == snapshotter:
			snapshots = fields[1]
		}
	}
	return content, snapshots
}

// buildNetwork reads the default bridge's options (docker network inspect bridge): a bridge
// that does not masquerade gives containers no way out, so builds need the host's network.
func buildNetwork(options []byte) string {
	var opts map[string]string
	if err := decodeJSON(options, &opts); err != nil {
		return ""
	}
	if opts["com.docker.network.bridge.enable_ip_masquerade"] == "false" {
		return "host"
	}
	return ""
}
