package imageref

import "testing"

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
