// Package imageref compares image references as the container runtime on the nodes sees them.
package imageref

import "strings"

// Normalize expands a reference the way containerd and the CRI do: a registry host ("docker.io"
// when the first component is not one, "library/" for one-component names there) and a tag
// (":latest" when neither tag nor digest is given). So "busybox" and
// "docker.io/library/busybox:latest" compare equal, and "localhost/x:1" stays as it is.
func Normalize(ref string) string {
	name, digest, _ := strings.Cut(ref, "@")
	tag := ""
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name, tag = name[:i], name[i+1:]
	}
	domain, rest, found := strings.Cut(name, "/")
	if !found || !(strings.ContainsAny(domain, ".:") || domain == "localhost") {
		domain, rest = "docker.io", name
	}
	if domain == "index.docker.io" {
		domain = "docker.io"
	}
	if domain == "docker.io" && !strings.Contains(rest, "/") {
		rest = "library/" + rest
	}
	out := domain + "/" + rest
	if tag == "" && digest == "" {
		tag = "latest"
	}
	if tag != "" {
		out += ":" + tag
	}
	if digest != "" {
		out += "@" + digest
	}
	return out
}

// Same reports whether two references name the same image, as the runtime resolves them.
func Same(a, b string) bool { return Normalize(a) == Normalize(b) }
