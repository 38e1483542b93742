package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
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
	missing := fmt.Errorf("Kind node image %q not found for provider %s: run ../shared/kindenv/setup to build it, or set KIND_NODE_IMAGE to an image that exists", image, provider)
	dockerRef, dockerID, err := dockerNodeImage(ctx, image)
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
	podID, err := imageID(ctx, "podman", name)
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
	if err := copyDockerToPodman(ctx, dockerRef); err != nil {
		return "", fmt.Errorf("copy Kind node image %q from docker to podman: %w", dockerRef, err)
	}
	stale := podID
	if podID, err = imageID(ctx, "podman", name); err != nil {
		return "", err
	}
	if podID != dockerID {
		return "", fmt.Errorf("after copying Kind node image %q to podman, podman's %s has ID %q, want %q", dockerRef, name, podID, dockerID)
	}
	if stale != "" {
		// the stale copy is untagged now; it stays if containers still use it
		if _, err := run(ctx, nil, "podman", "image", "rm", stale); err != nil {
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
func dockerNodeImage(ctx context.Context, image string) (ref, id string, err error) {
	refs := []string{image}
	if s, ok := strings.CutPrefix(image, "localhost/"); ok {
		refs = append(refs, s)
	}
	for _, ref := range refs {
		if id, err = imageID(ctx, "docker", ref); id != "" || err != nil {
			return ref, id, err
		}
	}
	return image, "", nil
}

// imageID returns the engine's ID ("sha256:...") for ref, or "" when the engine lacks the image.
func imageID(ctx context.Context, engine, ref string) (string, error) {
	if _, err := exec.LookPath(engine); err != nil {
		return "", fmt.Errorf("look for Kind node image %q: %s is not installed (run ../shared/kindenv/setup)", ref, engine)
	}
	out, err := run(ctx, nil, engine, "image", "inspect", "--format", "{{.Id}}", ref)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", nil
	}
	id := strings.TrimSpace(string(out))
	if id != "" && !strings.HasPrefix(id, "sha256:") {
		id = "sha256:" + id
	}
	return id, nil
}

// copyDockerToPodman streams `docker save ref` into `podman load` without a temporary file.
func copyDockerToPodman(ctx context.Context, ref string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	var saveErr, loadErr bytes.Buffer
	save := exec.CommandContext(ctx, "docker", "save", ref)
	save.Stdout = pw
	save.Stderr = &saveErr
	load := exec.CommandContext(ctx, "podman", "load")
	load.Stdin = pr
	load.Stderr = &loadErr
	if err := save.Start(); err != nil {
		return fmt.Errorf("start docker save: %w", err)
	}
	saved := make(chan error, 1)
	go func() {
		err := save.Wait()
		pw.CloseWithError(err) // nil: EOF for podman load
		saved <- err
	}()
	lerr := load.Run()
	pr.CloseWithError(errors.New("podman load exited")) // unblocks docker save if podman stopped early
	if lerr != nil {
		cancel()
	}
	var errs []error
	if serr := <-saved; serr != nil {
		errs = append(errs, cmdError(save.Args, serr, saveErr.String()))
	}
	if lerr != nil {
		errs = append(errs, cmdError(load.Args, lerr, loadErr.String()))
	}
	return errors.Join(errs...)
}

func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
