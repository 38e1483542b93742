package cluster

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

// NameEnv overrides DefaultName.
const NameEnv = "KIND_CLUSTER_NAME"

// maxNameLen is kind's own limit (longer names "might not work"): node hostnames append
// "-control-plane" and must stay within 64 characters.
const maxNameLen = 50

// A lowercase DNS label; stricter than kind's ^[a-z0-9.-]+$.
var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// DefaultName returns KIND_CLUSTER_NAME when set, else "kindling-<suite>", validated.
func DefaultName(suite string) (string, error) {
	if name := os.Getenv(NameEnv); name != "" {
		if err := ValidateName(name); err != nil {
			return "", fmt.Errorf("%s: %w", NameEnv, err)
		}
		return name, nil
	}
	if suite == "" {
		return "", fmt.Errorf("no suite given for the cluster name")
	}
	name := "kindling-" + suite
	if err := ValidateName(name); err != nil {
		return "", fmt.Errorf("suite %q: %w", suite, err)
	}
	return name, nil
}

// ValidateName checks a Kind cluster name: a lowercase DNS label (a-z, 0-9, '-', starting and
// ending with a letter or digit) of at most 50 characters.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty cluster name")
	case len(name) > maxNameLen:
		return fmt.Errorf("cluster name %q is %d characters long: use at most %d", name, len(name), maxNameLen)
	case !nameRE.MatchString(name):
		return fmt.Errorf("invalid cluster name %q: use lowercase letters, digits and '-', starting and ending with a letter or digit", name)
	}
	return nil
}

// Network is the container network kind puts the nodes of provider on: "kind", unless
// KIND_EXPERIMENTAL_DOCKER_NETWORK or KIND_EXPERIMENTAL_PODMAN_NETWORK names another.
func Network(provider string) string {
	if n := os.Getenv("KIND_EXPERIMENTAL_" + strings.ToUpper(provider) + "_NETWORK"); n != "" {
		return n
	}
	return "kind"
}
