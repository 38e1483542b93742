// Package aianalysis holds the plain YAML the deploy phase applies for the aianalysis suite, in
// lexical file order (see docs/design.md, "Manifests"); its Kind cluster config is
// ../kind/aianalysis.yaml. The Go code here only tests them.
package aianalysis
