package build

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kindling-dev/kindling/test/infrastructure/engine"
)

func writeDockerfile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "Dockerfile")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const multiStage = `ARG GO_IMAGE=golang:1.26-bookworm
FROM ${GO_IMAGE} AS builder
RUN go version

FROM builder AS tested
RUN go vet ./...

FROM debian:bookworm-slim AS production
COPY --from=builder /out/app /app

FROM scratch AS debug
COPY --from=builder /out/app /app
`

func TestParseDockerfileBasesUpToTarget(t *testing.T) {
	path := writeDockerfile(t, multiStage)
	for _, tc := range []struct {
		target  string
		args    map[string]string
		bases   []string
		runtime string
	}{
		{"", nil, []string{"golang:1.26-bookworm", "debian:bookworm-slim"}, ""},
		{"builder", nil, []string{"golang:1.26-bookworm"}, "golang:1.26-bookworm"},
		{"PRODUCTION", nil, []string{"golang:1.26-bookworm", "debian:bookworm-slim"}, "debian:bookworm-slim"},
		{"tested", map[string]string{"GO_IMAGE": "golang:1.26"}, []string{"golang:1.26"}, "golang:1.26"},
	} {
		df, err := ParseDockerfile(path, tc.target, tc.args)
		if err != nil {
			t.Fatalf("target %q: %v", tc.target, err)
		}
		if df.Runtime != tc.runtime {
			t.Errorf("target %q: runtime base %q, want %q", tc.target, df.Runtime, tc.runtime)
		}
		if !slices.Equal(df.Bases, tc.bases) {
			t.Errorf("target %q args %v: bases %v, want %v", tc.target, tc.args, df.Bases, tc.bases)
		}
		if want := []string{"builder", "tested", "production", "debug"}; !slices.Equal(df.Stages, want) {
			t.Errorf("stages %v, want %v", df.Stages, want)
		}
	}
}

func TestParseDockerfileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text, target string
		want               []string
	}{
		{"unknown target", multiStage, "prod", []string{"target stage \"prod\" not found", "builder, tested, production, debug"}},
		{"unknown instruction", "FROM debian:bookworm-slim\nRUNN echo\n", "", []string{":2:", "RUNN"}},
		{"no FROM", "# nothing\n", "", []string{"file with no instructions"}},
		{"instruction before FROM", "RUN echo hi\nFROM scratch\n", "", []string{":1:", "no build stage"}},
		{"bad stage name", "FROM debian AS Bad!\n", "", []string{":1:", "invalid name for build stage"}},
		{"empty FROM after args", "ARG BASE\nFROM ${BASE}\n", "", []string{"empty after expanding build args"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeDockerfile(t, tc.text)
			_, err := ParseDockerfile(path, tc.target, nil)
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			for _, w := range append(tc.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if _, err := ParseDockerfile(filepath.Join(t.TempDir(), "missing"), "", nil); err == nil || !os.IsNotExist(err) {
		t.Errorf("missing file: %v, want a not-exist error", err)
	}
}

func TestParseDockerfileFindsRunMounts(t *testing.T) {
	path := writeDockerfile(t, `ARG CACHE=go
FROM golang:1.26-bookworm AS builder
RUN go version
RUN --mount=type=cache,target=/go/pkg/mod,id=${CACHE}mod \
    --mount=type=cache,target=/root/.cache/go-build \
    --mount=type=bind,source=.,target=/src \
    go mod download
RUN --network=none true
RUN --mount=type=cache,dst=/tmp/x,id=x true
FROM scratch
COPY --from=builder /x /x
`)
	df, err := ParseDockerfile(path, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(df.Mounts, []int{4, 9}) {
		t.Errorf("mounts on lines %v, want [4 9]", df.Mounts)
	}
	// Cache mounts by id (build args expanded; target, dst or destination), or by target
	// without one; a bind mount is no cache.
	if want := []engine.CacheMount{{ID: "gomod", Target: "/go/pkg/mod"}, {ID: "/root/.cache/go-build", Target: "/root/.cache/go-build"},
		{ID: "x", Target: "/tmp/x"}}; !slices.Equal(df.CacheMounts, want) {
		t.Errorf("cache mounts %+v, want %+v", df.CacheMounts, want)
	}
}
