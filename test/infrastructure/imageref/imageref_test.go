package imageref

import (
	"slices"
	"strings"
	"testing"
)

func TestNormalizeAsDeployUsesIt(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                         "docker.io/library/busybox:latest",
		"busybox:1.36":                    "docker.io/library/busybox:1.36",
		"docker.io/library/busybox:1.36":  "docker.io/library/busybox:1.36",
		"index.docker.io/library/busybox": "docker.io/library/busybox:latest",
		"kindest/node:v1.33.1":            "docker.io/kindest/node:v1.33.1",
		"localhost/alpha:test-01":         "localhost/alpha:test-01",
		"localhost:5001/alpha:t1":         "localhost:5001/alpha:t1",
		"registry.k8s.io/pause:3.10":      "registry.k8s.io/pause:3.10",
		"quay.io/x/y@sha256:abc":          "quay.io/x/y@sha256:abc",
		"localhost:5001/alpha":            "localhost:5001/alpha:latest",
	} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNormalizeAsLoadUsesIt(t *testing.T) {
	for in, want := range map[string]string{
		"localhost/datastorage:aianalysis-0123abcd4567": "localhost/datastorage:aianalysis-0123abcd4567",
		"localhost/x":                   "localhost/x:latest",
		"busybox":                       "docker.io/library/busybox:latest",
		"docker.io/busybox:1":           "docker.io/library/busybox:1",
		"kindenv/node:v1.34.4":          "docker.io/kindenv/node:v1.34.4",
		"registry.k8s.io/pause:3.10":    "registry.k8s.io/pause:3.10",
		"host:5000/a/b":                 "host:5000/a/b:latest",
		"registry.k8s.io/x@sha256:abcd": "registry.k8s.io/x@sha256:abcd",
	} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

// The engines' spellings of one image compare equal: podman's "localhost/x", docker's short
// names, containerd's full ones.
func TestSameAcrossSpellings(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"localhost/datastorage:aianalysis-0123456789ab", "localhost/datastorage:aianalysis-0123456789ab", true},
		{"busybox", "docker.io/library/busybox:latest", true},
		{"debian:bookworm-slim", "docker.io/library/debian:bookworm-slim", true},
		{"index.docker.io/library/debian:bookworm", "debian:bookworm", true},
		{"localhost/x:1", "x:1", false},
		{"localhost:5001/x:1", "localhost/x:1", false},
		{"registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10", true},
		{"quay.io/x/y@sha256:" + strings.Repeat("ab", 32), "quay.io/x/y@sha256:" + strings.Repeat("ab", 32), true},
		{"a:1", "a:2", false},
	} {
		if got := Same(tc.a, tc.b); got != tc.same {
			t.Errorf("Same(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}

func TestParse(t *testing.T) {
	r, err := Parse("localhost:5001/kindling/datastorage:v1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Domain() != "localhost:5001" || r.Path() != "kindling/datastorage" || r.Familiar() != "localhost:5001/kindling/datastorage:v1" {
		t.Errorf("parsed %q: domain %q path %q familiar %q", r, r.Domain(), r.Path(), r.Familiar())
	}
	if r, _ := Parse("busybox"); r.Familiar() != "busybox:latest" || r.String() != "docker.io/library/busybox:latest" {
		t.Errorf("busybox: %q / %q", r.Familiar(), r)
	}
	for _, bad := range []string{"", "Upper:1", "x:tag with space", "host:port:bad/x", "x@sha256:short"} {
		if _, err := Parse(bad); err == nil || !strings.Contains(err.Error(), "not a valid image reference") {
			t.Errorf("Parse(%q) = %v, want an error", bad, err)
		}
	}
}

func TestTag(t *testing.T) {
	for in, want := range map[string]string{"localhost/x:aianalysis-1": "aianalysis-1", "busybox": "latest", "localhost:5000/a/b:v2": "v2"} {
		r, err := Parse(in)
		if err != nil || r.Tag() != want {
			t.Errorf("Tag(%q) = %q, %v; want %q", in, r.Tag(), err, want)
		}
	}
}

func TestSpellings(t *testing.T) {
	got := Spellings("docker.io/library/golang:1.26")
	want := []string{"docker.io/library/golang:1.26", "docker.io/library/golang", "golang:1.26", "golang", "library/golang:1.26", "library/golang"}
	if !slices.Equal(got, want) {
		t.Errorf("Spellings = %v, want %v", got, want)
	}
	if got := Shortened("localhost/aianalysis:s-1"); !slices.Equal(got, []string{"localhost/aianalysis:s-1", "aianalysis:s-1"}) {
		t.Errorf("Shortened = %v", got)
	}
}
