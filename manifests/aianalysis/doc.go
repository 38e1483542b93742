// Package manifests holds the plain YAML the deploy phase applies, in lexical file order (see
// docs/design.md, "Manifests"), and the Kind cluster config in kind/. The Go code here only tests them.
package manifests
