// Package imageref is the one place image references are read and compared, with the rules
// containerd and the CRI apply (github.com/distribution/reference): "busybox" is
// "docker.io/library/busybox:latest", "localhost/x:1" stays as it is, a digest is kept.
package imageref

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
)

// Ref is a parsed image reference.
type Ref struct{ named reference.Named }

// Parse reads a reference as the runtime would, adding docker.io/library/ and :latest where the
// reference leaves them out. The error says what is wrong with it.
func Parse(s string) (Ref, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return Ref{}, fmt.Errorf("%q is not a valid image reference: %w", s, err)
	}
	return Ref{reference.TagNameOnly(named)}, nil
}

// String is the full reference: "docker.io/library/busybox:latest".
func (r Ref) String() string {
	if r.named == nil {
		return ""
	}
	return r.named.String()
}

// Familiar is the short spelling docker prints: "busybox:latest", "localhost/x:1".
func (r Ref) Familiar() string {
	if r.named == nil {
		return ""
	}
	return reference.FamiliarString(r.named)
}

// Domain is the registry host: "docker.io", "localhost", "registry:5000".
func (r Ref) Domain() string { return reference.Domain(r.named) }

// Path is the repository path without the domain: "library/busybox".
func (r Ref) Path() string { return reference.Path(r.named) }

// Tag is the tag ("latest" when the reference gave none); "" for a reference by digest only.
func (r Ref) Tag() string {
	if t, ok := r.named.(reference.Tagged); ok {
		return t.Tag()
	}
	return ""
}

// Normalize is the full spelling of s, or s itself when it is not a valid reference.
func Normalize(s string) string {
	r, err := Parse(s)
	if err != nil {
		return s
	}
	return r.String()
}

// Same reports whether two references name the same image, as the runtime resolves them.
func Same(a, b string) bool { return Normalize(a) == Normalize(b) }

// shortPrefixes are the registry prefixes the engines add to short names: podman "localhost/" for
// local builds, docker and podman "docker.io/library/" and "docker.io/" for Docker Hub names.
var shortPrefixes = []string{"localhost/", "docker.io/library/", "docker.io/"}

// Shortened is s and s without each registry prefix the engines add to short names, as a user
// may have written it (a pattern as much as a reference).
func Shortened(s string) []string {
	names := []string{s}
	for _, prefix := range shortPrefixes {
		if rest, ok := strings.CutPrefix(s, prefix); ok {
			names = append(names, rest)
		}
	}
	return names
}

// Spellings are the names ref goes by in a user's words: Shortened, each with and without its tag
// or digest.
func Spellings(ref string) []string {
	var names []string
	for _, name := range Shortened(ref) {
		names = append(names, name)
		if repo := repository(name); repo != name {
			names = append(names, repo)
		}
	}
	return names
}

// repository strips a ":tag" or "@digest" from ref.
func repository(ref string) string {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	return ref
}
