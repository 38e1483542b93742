package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kindling-dev/kindling/test/infrastructure/engine"
)

// EnsureNodeImage makes the Kind node image available to the provider and returns the name to
// pass as Options.NodeImage. The node image is built into docker (../shared/kindenv/setup); for
// podman it is streamed `docker save | podman load` when podman lacks it or holds a stale copy
// (different ID). podman stores unqualified names under localhost/, and kind's podman provider
// would look for docker.io/<name>, so podman gets "localhost/kindenv/node:v1.34.4". An empty
// image means kind's default (which needs a registry) and is returned as is.
func EnsureNodeImage(ctx context.Context, provider, image string, log func(format string, args ...any)) (string, error) {
	logf := orNop(log)
	if image == "" {
		return "", nil
	}
	if provider != ProviderDocker && provider != ProviderPodman {
		return "", fmt.Errorf("unknown Kind provider %q: use %q or %q", provider, ProviderDocker, ProviderPodman)
	}
	docker, podman := mustEngine(engine.Docker), mustEngine(engine.Podman)
	//lint:ignore ST1005 Kind is a name
	missing := fmt.Errorf("Kind node image %q not found for provider %s: run ../shared/kindenv/setup to build it, or set KIND_NODE_IMAGE to an image that exists", image, provider)
	dockerRef, dockerID, err := dockerNodeImage(ctx, docker, image)
	if provider == ProviderDocker {
		if err != nil {
			return "", err
		}
		if dockerID == "" {
			return "", missing
		}
		return dockerRef, nil
	}
	// podman: docker is only a source here, so a missing docker is not an error

	name := PodmanImageName(image)
	podID, _, err := podman.ImageID(ctx, name)
	if err != nil {
		return "", err
	}
	switch {
	case podID != "" && (dockerID == "" || podID == dockerID):
		return name, nil
	case dockerID == "":
		return "", missing
	case strings.Contains(dockerRef, "@"):
		return "", fmt.Errorf("copy Kind node image %q from docker to podman: use a tagged name, not a digest", image)
	case podID != "":
		logf("podman's copy of node image %s is stale (%s, docker has %s): copying it from docker", name, short(podID), short(dockerID))
	default:
		logf("node image %s is not in podman: copying it from docker (docker save | podman load)", image)
	}
	if err := copyImage(ctx, docker, podman, dockerRef); err != nil {
		return "", fmt.Errorf("copy Kind node image %q from docker to podman: %w", dockerRef, err)
	}
	stale := podID
	if podID, _, err = podman.ImageID(ctx, name); err != nil {
		return "", err
	}
	if podID != dockerID {
		return "", fmt.Errorf("after copying Kind node image %q to podman, podman's %s has ID %q, want %q", dockerRef, name, podID, dockerID)
	}
	if stale != "" {
		// the stale copy is untagged now; it stays if containers still use it
		if err := podman.Remove(ctx, []string{stale}); err != nil {
			logf("kept podman's stale node image %s: %v", short(stale), err)
		}
	}
	return name, nil
}

// PodmanImageName is the name podman gives an image loaded from a docker archive: names without a
// registry host get "localhost/".
func PodmanImageName(image string) string {
	first, _, ok := strings.Cut(image, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return image
	}
	return "localhost/" + image
}

// dockerNodeImage finds the image in docker, also without podman's "localhost/" prefix. A missing
// image returns an empty ID; a missing docker is an error.
func dockerNodeImage(ctx context.Context, docker engine.Engine, image string) (ref, id string, err error) {
	refs := []string{image}
	if s, ok := strings.CutPrefix(image, "localhost/"); ok {
		refs = append(refs, s)
	}
	for _, ref := range refs {
		if id, _, err = docker.ImageID(ctx, ref); id != "" || err != nil {
			return ref, id, err
		}
	}
	return image, "", nil
}

// copyImage streams `from save ref` into `to load` without a temporary file.
func copyImage(ctx context.Context, from, to engine.Engine, ref string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	saved := make(chan error, 1)
	go func() {
		err := from.SaveImage(ctx, pw, ref)
		pw.CloseWithError(err) // nil: EOF for the load
		saved <- err
	}()
	lerr := to.LoadImage(ctx, pr)
	pr.CloseWithError(errors.New("load exited")) // unblocks the save if the load stopped early
	if lerr != nil {
		cancel()
	}
	return errors.Join(<-saved, lerr)
}

func mustEngine(name string) engine.Engine {
	e, err := engine.New(name, nil)
	if err != nil {
		panic(err) // only for a name New does not know, which these constants are not
	}
	return e
}

func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// KindenvFile is written by ../shared/kindenv/setup on machines without registry access; it
// names the offline node image (KIND_NODE_IMAGE=...).
const KindenvFile = "/etc/kindenv.env"

// NodeImageFromFile reads KIND_NODE_IMAGE from a NAME=value file, or returns "".
func NodeImageFromFile(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "KIND_NODE_IMAGE="); ok {
			return strings.Trim(v, `"'`)
		}
	}
	return ""
}
