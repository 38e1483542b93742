// Package engine puts podman and docker behind one small interface: build, inspect, export,
// remove and prune images, and report where and how much the engine stores.
//
// Every call runs the engine's CLI through a Runner with an argv. Reclaimed bytes are what the
// engine itself reports: docker's and podman's "Total reclaimed space: X" where they print it; where
// the engine prints nothing (rmi, podman image prune) the sum of the sizes the engine listed for the
// images it then deleted. Image sizes include layers shared with other images, so such sums are
// estimates that can count a shared layer more than once.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Engine names, and the environment variable that chooses one.
const (
	Podman = "podman"
	Docker = "docker"
	EnvVar = "CONTAINER_ENGINE"
)

// Errors that Ping and Detect wrap; test with errors.Is.
var (
	ErrNotInstalled = errors.New("container engine not installed")
	ErrNotRunning   = errors.New("container engine not running")
)

// Engine is a container engine CLI.
type Engine interface {
	// Name is "podman" or "docker".
	Name() string
	// Ping checks that the binary exists and the engine answers.
	Ping(ctx context.Context) error
	// Build builds an image; a failure's error ends with the tail of the build log.
	Build(ctx context.Context, spec BuildSpec) error
	// ImageID returns the image ID ("sha256:<hex>") of ref; found is false when there is no such image.
	ImageID(ctx context.Context, ref string) (id string, found bool, err error)
	// Pull pulls an image.
	Pull(ctx context.Context, ref string) error
	// Push pushes the image src to the registry as dst (only the layers the registry lacks);
	// src keeps its name and dst is not left behind as a name in the engine. Insecure allows
	// plain HTTP (a registry on the loopback or the Kind network).
	Push(ctx context.Context, src, dst string, insecure bool) error
	// Inspect returns the images refs (or IDs) name; those that do not exist are left out.
	Inspect(ctx context.Context, refs []string) ([]Image, error)
	// RemoveRefs untags refs; an image goes with its last name. Missing refs are ignored; refs
	// that stay (an image in use) make it return an error naming them.
	RemoveRefs(ctx context.Context, refs []string) error
	// AllImageIDs lists every image ID, intermediate build images included.
	AllImageIDs(ctx context.Context) ([]string, error)
	// Images lists top-level images (not intermediate build layers) carrying all the given labels;
	// an empty value matches any value of that label.
	Images(ctx context.Context, labelFilter map[string]string) ([]Image, error)
	// Save writes one docker-archive at path holding all refs. podman refuses to overwrite path.
	Save(ctx context.Context, path string, refs []string) error
	// Remove deletes the images with these IDs, untagging every name they carry. IDs that no
	// longer exist are ignored.
	Remove(ctx context.Context, ids []string) error
	// PruneDangling removes dangling images and dangling build cache (podman has no separate build
	// cache: its intermediate images are pruned with the dangling ones). Reclaimed bytes are counted
	// as the package doc says.
	PruneDangling(ctx context.Context) (reclaimedBytes int64, err error)
	// PruneAll removes every image that keep does not match (see Kept), stopped containers,
	// unused volumes and networks, and all build cache: "system prune -f --volumes" (never -a,
	// which would ignore keep), rmi of the unkept images, and on docker "builder prune -a -f".
	// Images that cannot be removed (in use by a container) make it return an error naming them,
	// together with the bytes reclaimed so far.
	PruneAll(ctx context.Context, keep []string) (reclaimedBytes int64, err error)
	// Info reports where the engine stores its data and which builder it uses.
	Info(ctx context.Context) (Info, error)
	// PlatformManifest returns the digest of the host platform's image manifest of ref on engines
	// whose image IDs are manifest or index digests (Docker's containerd store): the ID itself
	// for a plain manifest, the host platform's entry for an index (BuildKit's attestations,
	// multi-platform images). It returns "" on engines whose IDs are config digests, and an
	// error naming the platform when an index has no manifest for it.
	PlatformManifest(ctx context.Context, ref string) (string, error)
	// BuildCache lists BuildKit's build cache records (docker buildx du); nil where builds leave
	// intermediate images instead (podman, docker's legacy builder).
	BuildCache(ctx context.Context) ([]CacheRecord, error)
	// RemoveBuildCache removes the build cache records with these IDs that nothing uses, and
	// returns the bytes BuildKit reports it reclaimed. IDs that no longer exist are ignored.
	RemoveBuildCache(ctx context.Context, ids []string) (int64, error)
	// CompileCaches finds the builder's caches of these cache mounts (buildah's directories,
	// BuildKit's exec.cachemount records); appeared are the build cache records this run's
	// builds added.
	CompileCaches(ctx context.Context, mounts []CacheMount, appeared []string) ([]CompileCache, error)
	// RemoveCompileCaches removes these caches, returning the bytes they held.
	RemoveCompileCaches(ctx context.Context, caches []CompileCache) (int64, error)
	// StoreObjects lists the blobs and snapshots the images with these IDs hold in the
	// containerd store (empty for other stores), so that StoreResidue can check them after a
	// delete.
	StoreObjects(ctx context.Context, ids []string) (StoreObjects, error)
	// StoreResidue is what of gone is still in the containerd store with no image using it.
	StoreResidue(ctx context.Context, gone StoreObjects) (Residue, error)
	// DiskUsage reports the engine's own accounting ("system df").
	DiskUsage(ctx context.Context) (Usage, error)
	// SaveImage writes refs as one archive to w (what Save writes to a file), for streaming.
	SaveImage(ctx context.Context, w io.Writer, refs ...string) error
	// LoadImage loads a docker-archive from r.
	LoadImage(ctx context.Context, r io.Reader) error
	// BuildContainers lists the working containers of the builds in progress: buildah's, which
	// outlive a killed podman build; nil on docker, whose daemon cancels a build with its client.
	BuildContainers(ctx context.Context) ([]string, error)
	// StopBuildContainers ends working containers that BuildContainers listed: it kills the RUN
	// step still running in one and removes them.
	StopBuildContainers(ctx context.Context, ids []string) error
}

// BuildSpec describes one image build.
type BuildSpec struct {
	Ref        string
	Dockerfile string // a Dockerfile or Containerfile
	ContextDir string
	Target     string            // stage; "" is the last
	Args       map[string]string // build args
	Labels     map[string]string
	// NoLayerCache keeps no intermediate image per instruction (podman --layers=false): for a
	// context of one binary, each would be another copy of it.
	NoLayerCache bool
}

// Image is one image as the engine lists it. Size is the engine's figure, shared layers included.
type Image struct {
	ID     string
	Refs   []string
	Size   int64
	Labels map[string]string
}

// Info is where and what the engine is. Remote is podman's host.serviceIsRemote; for docker it
// is true when DOCKER_HOST names a tcp:// or ssh:// daemon.
type Info struct {
	GraphRoot string
	// Store is how the engine keeps images: StoreContainerd for Docker's containerd image store
	// (image IDs are manifest digests, save writes an OCI layout), else the storage driver
	// ("overlay2", "overlay", ...: image IDs are config digests).
	Store string
	// Snapshotter is the containerd snapshotter of the containerd store ("overlayfs").
	Snapshotter string
	// Storage are the directories that hold the image bytes: the graph root, and with the
	// containerd store also containerd's content and snapshotter directories.
	Storage []string
	// CacheMountRoot is where buildah keeps RUN --mount=type=cache directories (podman).
	CacheMountRoot string
	// ContentRoot and SnapshotRoot are, with the containerd store, where containerd keeps the
	// compressed blobs and the unpacked layers (each layer is held in both); Containerd is its
	// socket, for ctr.
	ContentRoot, SnapshotRoot, Containerd string
	// BuildNetwork is "host" when the engine's default network gives builds no way out (a
	// bridge that does not masquerade); builds then use the host's network.
	BuildNetwork string
	// Builder is what runs the engine's builds: BuilderBuildKit, BuilderLegacy or BuilderBuildah.
	Builder string
	// OCIRuntime is the runtime podman runs containers and buildah's RUN steps with.
	OCIRuntime string
	Remote     bool
	Version    string
}

// Builders, as Info.Builder names them.
const (
	// BuilderBuildKit is docker build through the buildx plugin (every CI runner's docker): no
	// intermediate images, a build cache of its own (docker buildx du), RUN --mount.
	BuilderBuildKit = "buildkit"
	// BuilderLegacy is docker's deprecated legacy builder (no buildx, or DOCKER_BUILDKIT=0): an
	// intermediate image per instruction is its cache; no RUN --mount.
	BuilderLegacy = "legacy"
	// BuilderBuildah is podman build: intermediate images as cache, RUN --mount supported.
	BuilderBuildah = "buildah"
)

// CacheRecord is one record of BuildKit's build cache as docker buildx du lists it.
type CacheRecord struct {
	ID          string
	Size        int64
	Type        string // "regular", "source.local", "exec.cachemount", ...
	Description string
	// Shared records hold bytes that an image also uses: they free nothing while it exists.
	Shared bool
	// Reclaimable is false for a record that another one holds (a local source's snapshot
	// under the mutable record of its next transfer): it goes once that one is pruned.
	Reclaimable bool
	InUse       bool
}

// StoreContainerd is Info.Store for Docker's containerd image store (the default since Docker 29).
const StoreContainerd = "containerd"

// IDsAreManifests reports whether the engine's image IDs are manifest digests (the containerd
// store) rather than config digests, the IDs of archives' manifest.json and of the nodes' CRI.
func (i Info) IDsAreManifests() bool { return i.Store == StoreContainerd }

// Usage is the engine's "system df" accounting in bytes. Reclaimable sums all categories.
type Usage struct {
	Images      int64
	Containers  int64
	Volumes     int64
	BuildCache  int64
	Reclaimable int64
}

// New returns the engine called name ("podman" or "docker") running its CLI through runner
// (nil means ExecRunner), with env (KEY=value entries, e.g. DOCKER_HOST=...) added to the
// environment of every command it runs.
func New(name string, runner Runner, env ...string) (Engine, error) {
	if name != Podman && name != Docker {
		return nil, fmt.Errorf("unknown container engine %q: valid values are %q and %q", name, Podman, Docker)
	}
	if runner == nil {
		runner = ExecRunner{}
	}
	if len(env) > 0 {
		runner = envRunner{runner, env}
	}
	c := &cli{name: name, runner: runner}
	if name == Podman {
		p := &podmanCLI{c}
		c.own = p
		return p, nil
	}
	d := &dockerCLI{c}
	c.own = d
	return d, nil
}

// envRunner adds env to every command.
type envRunner struct {
	Runner
	env []string
}

func (r envRunner) Run(ctx context.Context, cmd Cmd) error {
	cmd.Env = append(append([]string{}, r.env...), cmd.Env...)
	return r.Runner.Run(ctx, cmd)
}

// Detect returns a working engine. preferred is the value of CONTAINER_ENGINE: "podman" or
// "docker" selects that engine (an error when it does not work); "" tries podman, then docker,
// and returns the first whose binary exists and whose Ping succeeds.
func Detect(ctx context.Context, preferred string) (Engine, error) {
	return DetectWith(ctx, preferred, ExecRunner{})
}

// DetectWith is Detect running the engines through runner.
func DetectWith(ctx context.Context, preferred string, runner Runner) (Engine, error) {
	var candidates []string
	switch preferred {
	case Podman, Docker:
		candidates = []string{preferred}
	case "":
		candidates = []string{Podman, Docker}
	default:
		return nil, fmt.Errorf("%s=%q is not valid: use %q, %q, or leave it empty to use the first that works (podman, then docker)",
			EnvVar, preferred, Podman, Docker)
	}
	var failures []error
	for _, name := range candidates {
		engine, err := New(name, runner)
		if err != nil {
			return nil, err
		}
		if err := engine.Ping(ctx); err != nil {
			if preferred != "" {
				return nil, err
			}
			failures = append(failures, err)
			continue
		}
		return engine, nil
	}
	return nil, fmt.Errorf("no usable container engine (%w); run ../shared/kindenv/setup, or install podman or docker and make sure `podman info` or `docker info` works",
		errors.Join(failures...))
}

// cli is what podman's and docker's CLIs share: running commands, images by ID, reference and
// label, removal, save and load, disk usage. podmanCLI and dockerCLI add what differs.
type cli struct {
	name   string
	runner Runner
	own    flavor // the engine's own type, for what the shared code asks of it

	infoOnce sync.Once
	info     Info // what Build and Save need to know of the daemon, read once
	infoErr  error
}

// flavor is what the shared code asks of an engine's own type.
type flavor interface {
	Engine
	// saveArgs are the arguments of "save" for one image or several (multi).
	saveArgs(ctx context.Context, multi bool) ([]string, error)
	// startHow says how to start the engine's daemon or service.
	startHow() string
	// other is the other engine, to suggest.
	other() string
}

// cachedInfo is Info, asked once per engine value.
func (e *cli) cachedInfo(ctx context.Context) (Info, error) {
	e.infoOnce.Do(func() { e.info, e.infoErr = e.own.Info(ctx) })
	return e.info, e.infoErr
}

func (e *cli) Name() string { return e.name }

// run runs the engine with args. stdout may be nil (discarded). On failure the error names the
// command and carries the tail of its stderr.
func (e *cli) run(ctx context.Context, stdin io.Reader, stdout io.Writer, args ...string) error {
	if stdout == nil {
		stdout = io.Discard
	}
	err := Quiet(ctx, e.runner, Cmd{Name: e.name, Args: args, Stdin: stdin, Stdout: stdout})
	if errors.Is(err, exec.ErrNotFound) {
		return e.notInstalled(err)
	}
	return err
}

// output runs the engine and returns its stdout.
func (e *cli) output(ctx context.Context, args ...string) ([]byte, error) {
	var stdout strings.Builder
	err := e.run(ctx, nil, &stdout, args...)
	return []byte(stdout.String()), err
}

type commandError struct {
	command string
	err     error
	stderr  string
}

func (c *commandError) Error() string {
	if c.stderr == "" {
		return fmt.Sprintf("%s failed: %v", c.command, c.err)
	}
	return fmt.Sprintf("%s failed: %v: %s", c.command, c.err, c.stderr)
}

func (c *commandError) Unwrap() error { return c.err }

// unavailableError is an engine that is missing or not answering; it wraps a sentinel and the cause.
type unavailableError struct {
	message string
	kind    error
	cause   error
}

func (u *unavailableError) Error() string   { return u.message }
func (u *unavailableError) Unwrap() []error { return []error{u.kind, u.cause} }

func (e *cli) notInstalled(cause error) error {
	return &unavailableError{
		message: fmt.Sprintf("%s is not installed: %v; install it (../shared/kindenv/setup installs podman and docker) or set %s=%s",
			e.name, cause, EnvVar, e.own.other()),
		kind:  ErrNotInstalled,
		cause: cause,
	}
}

// HostOf is the daemon an engine's CLI talks to as the environment says: DOCKER_HOST for docker,
// CONTAINER_HOST for podman, "" for the default one.
func HostOf(name string) string {
	if name == Podman {
		return os.Getenv("CONTAINER_HOST")
	}
	return os.Getenv("DOCKER_HOST")
}

func (e *cli) notRunning(cause error) error {
	return &unavailableError{
		message: fmt.Sprintf("%s is installed but its daemon/socket does not answer: %v; %s, or set %s=%s",
			e.name, cause, e.own.startHow(), EnvVar, e.own.other()),
		kind:  ErrNotRunning,
		cause: cause,
	}
}

// connectionFailure reports whether err says the CLI could not reach its daemon or socket.
func connectionFailure(err error) bool {
	text := strings.ToLower(err.Error())
	for _, marker := range []string{
		"cannot connect to the docker daemon",
		"is the docker daemon running",
		"error during connect",
		"permission denied while trying to connect",
		"cannot connect to podman",
		"unable to connect to podman",
	} {
		if strings.Contains(text, marker) {
			return true
		}
	}
	return false
}

// notFound reports whether err says an image does not exist.
func notFound(err error) bool {
	var cmdErr *commandError
	if !errors.As(err, &cmdErr) {
		return false
	}
	text := strings.ToLower(cmdErr.stderr)
	return strings.Contains(text, "image not known") || strings.Contains(text, "no such image")
}

// unresolvedImage returns the image whose metadata BuildKit failed to load in a build log
// ("#3 [internal] load metadata for <image>" and then "#3 ERROR: ..."), or "".
func unresolvedImage(log string) string {
	for _, m := range loadMetadata.FindAllStringSubmatch(log, -1) {
		if strings.Contains(log, "#"+m[1]+" ERROR") {
			return strings.TrimPrefix(strings.TrimPrefix(m[2], "docker.io/library/"), "docker.io/")
		}
	}
	return ""
}

var loadMetadata = regexp.MustCompile(`(?m)^#(\d+) \[internal\] load metadata for (\S+)`)

func (e *cli) ImageID(ctx context.Context, ref string) (string, bool, error) {
	out, err := e.output(ctx, "image", "inspect", "--format", "{{.Id}}", ref)
	if err != nil {
		if notFound(err) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("look up image %s: %w", ref, err)
	}
	id := normalizeID(string(out))
	if id == "" {
		return "", false, fmt.Errorf("look up image %s: %s printed no image ID", ref, e.name)
	}
	return id, true, nil
}

func (e *cli) AllImageIDs(ctx context.Context) ([]string, error) {
	out, err := e.output(ctx, "images", "--all", "--quiet", "--no-trunc")
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	return imageIDs(out), nil
}

// imageIDs reads the output of "images --quiet --no-trunc": one ID per line, repeated for
// every name an image has.
func imageIDs(out []byte) []string {
	var ids []string
	for _, line := range strings.Split(string(out), "\n") {
		if id := normalizeID(line); id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

func (e *cli) Images(ctx context.Context, labelFilter map[string]string) ([]Image, error) {
	var filters []string
	for _, key := range slices.Sorted(maps.Keys(labelFilter)) {
		if value := labelFilter[key]; value != "" {
			filters = append(filters, "label="+key+"="+value)
		} else {
			filters = append(filters, "label="+key)
		}
	}
	return e.listImages(ctx, filters...)
}

// listImages lists top-level images matching all filters and inspects them.
func (e *cli) listImages(ctx context.Context, filters ...string) ([]Image, error) {
	args := []string{"images", "--quiet", "--no-trunc"}
	for _, filter := range filters {
		args = append(args, "--filter", filter)
	}
	out, err := e.output(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	return e.inspect(ctx, imageIDs(out))
}

type inspected struct {
	ID       string            `json:"Id"`
	RepoTags []string          `json:"RepoTags"`
	Size     int64             `json:"Size"`
	Labels   map[string]string `json:"Labels"`
	Config   struct {
		Labels map[string]string `json:"Labels"`
	} `json:"Config"`
}

// inspect returns the images with these IDs; IDs that vanished meanwhile are left out.
func (e *cli) inspect(ctx context.Context, ids []string) ([]Image, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	out, err := e.output(ctx, append([]string{"image", "inspect"}, ids...)...)
	if err != nil {
		if !notFound(err) {
			return nil, fmt.Errorf("inspect images: %w", err)
		}
		if len(ids) == 1 {
			return nil, nil
		}
		var images []Image
		for _, id := range ids {
			one, err := e.inspect(ctx, []string{id})
			if err != nil {
				return nil, err
			}
			images = append(images, one...)
		}
		return images, nil
	}
	var raw []inspected
	if err := decodeJSON(out, &raw); err != nil {
		return nil, fmt.Errorf("inspect images: parse %s output: %w", e.name, err)
	}
	images := make([]Image, 0, len(raw))
	for _, r := range raw {
		labels := r.Config.Labels
		if labels == nil {
			labels = r.Labels
		}
		var refs []string
		for _, tag := range r.RepoTags {
			if tag != "" && tag != "<none>:<none>" {
				refs = append(refs, tag)
			}
		}
		images = append(images, Image{ID: normalizeID(r.ID), Refs: refs, Size: r.Size, Labels: labels})
	}
	return images, nil
}

func (e *cli) Save(ctx context.Context, path string, refs []string) error {
	if path == "" || len(refs) == 0 {
		return fmt.Errorf("%s save: a path and at least one image reference are required", e.name)
	}
	args, err := e.own.saveArgs(ctx, true)
	if err != nil {
		return err
	}
	args = append(args, "-o", path)
	if err := e.run(ctx, nil, nil, append(args, refs...)...); err != nil {
		return fmt.Errorf("export %s to %s: %w", strings.Join(refs, ", "), path, err)
	}
	return nil
}

func (e *cli) SaveImage(ctx context.Context, w io.Writer, refs ...string) error {
	if len(refs) == 0 {
		return fmt.Errorf("%s save: at least one image reference is required", e.name)
	}
	args, err := e.own.saveArgs(ctx, len(refs) > 1)
	if err != nil {
		return err
	}
	if err := e.run(ctx, nil, w, append(args, refs...)...); err != nil {
		return fmt.Errorf("export %s from %s: %w", strings.Join(refs, ", "), e.name, err)
	}
	return nil
}

func (e *cli) LoadImage(ctx context.Context, r io.Reader) error {
	if err := e.run(ctx, r, nil, "load", "--quiet"); err != nil {
		return fmt.Errorf("load image archive into %s: %w", e.name, err)
	}
	return nil
}

func (e *cli) Remove(ctx context.Context, ids []string) error {
	var normalized []string
	for _, id := range ids {
		if id = normalizeID(id); id != "" && !slices.Contains(normalized, id) {
			normalized = append(normalized, id)
		}
	}
	images, err := e.inspect(ctx, normalized)
	if err != nil {
		return fmt.Errorf("remove images: %w", err)
	}
	_, err = e.remove(ctx, images)
	return err
}

// remove deletes images by untagging all their names (or by ID when they have none): removing an
// image by ID that carries several names needs --force, which would also delete podman containers.
// An image that other images build on goes once they are gone, so rmi runs again on what is left
// as long as each pass removes something: intermediate build images form such chains. It returns
// the IDs the engine reported as deleted.
func (e *cli) remove(ctx context.Context, images []Image) (map[string]bool, error) {
	deleted := map[string]bool{}
	for pass := 0; len(images) > 0; pass++ {
		args := []string{"rmi"}
		for _, img := range images {
			if len(img.Refs) == 0 || pass > 0 {
				args = append(args, img.ID)
			} else {
				args = append(args, img.Refs...)
			}
		}
		var stdout, stderr strings.Builder
		runErr := Quiet(ctx, e.runner, Cmd{Name: e.name, Args: args, Stdout: &stdout, Stderr: &stderr})
		for _, line := range strings.Split(stdout.String()+"\n"+stderr.String(), "\n") {
			if id, ok := strings.CutPrefix(strings.TrimSpace(line), "Deleted:"); ok {
				deleted[normalizeID(id)] = true
			}
		}
		if runErr == nil {
			return deleted, nil
		}
		if errors.Is(runErr, exec.ErrNotFound) {
			runErr = e.notInstalled(runErr)
		}
		if errors.Is(runErr, ErrNotInstalled) || ctx.Err() != nil {
			return deleted, runErr
		}
		// rmi goes on past images it cannot remove; see which are still there.
		var left []Image
		for _, img := range images {
			if _, found, err := e.ImageID(ctx, img.ID); err != nil || found {
				left = append(left, img)
			}
		}
		if len(left) == len(images) {
			var names []string
			for _, img := range left {
				names = append(names, describe(img))
			}
			return deleted, fmt.Errorf("could not remove %d image(s) (%s): %w; remove the containers or images that use them (%s ps -a) and retry",
				len(left), strings.Join(names, ", "), runErr, e.name)
		}
		images = left
	}
	return deleted, nil
}

// RemoveRefs untags refs; an image goes with its last name. Refs that do not exist are ignored.
func (e *cli) RemoveRefs(ctx context.Context, refs []string) error {
	if len(refs) == 0 {
		return nil
	}
	err := e.run(ctx, nil, nil, append([]string{"rmi"}, refs...)...)
	if err == nil || errors.Is(err, ErrNotInstalled) || ctx.Err() != nil {
		return err
	}
	var left []string
	for _, ref := range refs {
		if _, found, lookErr := e.ImageID(ctx, ref); lookErr != nil || found {
			left = append(left, ref)
		}
	}
	if len(left) == 0 {
		return nil
	}
	return fmt.Errorf("could not remove %s: %w", strings.Join(left, ", "), err)
}

// Inspect returns the images refs name (sizes included); refs that do not exist are left out.
func (e *cli) Inspect(ctx context.Context, refs []string) ([]Image, error) {
	return e.inspect(ctx, refs)
}

func describe(img Image) string {
	if len(img.Refs) > 0 {
		return strings.Join(img.Refs, " ")
	}
	return img.ID
}

// pruneReported runs a prune command that prints "Total reclaimed space: X".
func (e *cli) pruneReported(ctx context.Context, args ...string) (int64, error) {
	out, err := e.output(ctx, args...)
	if err != nil {
		return 0, fmt.Errorf("prune: %w", err)
	}
	n, err := reclaimedSpace(string(out))
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", e.name, strings.Join(args, " "), err)
	}
	return n, nil
}

func (e *cli) infoError(err error) error {
	if errors.Is(err, ErrNotInstalled) {
		return err
	}
	if connectionFailure(err) {
		return e.notRunning(err)
	}
	return fmt.Errorf("%s info: %w", e.name, err)
}

func (e *cli) DiskUsage(ctx context.Context) (Usage, error) {
	// podman 4 prints the literal word "json" for every row with --format json; a template works
	// for both engines (podman: numbers, docker: human-readable strings).
	out, err := e.output(ctx, "system", "df", "--format", "{{json .}}")
	if err != nil {
		return Usage{}, fmt.Errorf("disk usage: %w", err)
	}
	usage, err := parseDiskUsage(out)
	if err != nil {
		return Usage{}, fmt.Errorf("disk usage: parse `%s system df` output: %w", e.name, err)
	}
	return usage, nil
}

// pingTimeout bounds Ping: a hung daemon must not hang detection.
const pingTimeout = 30 * time.Second

// ping runs args, which print the server's version, and says why the engine does not answer.
func (e *cli) ping(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	out, err := e.output(ctx, args...)
	if err != nil {
		if errors.Is(err, ErrNotInstalled) {
			return err
		}
		if connectionFailure(err) {
			return e.notRunning(err)
		}
		return fmt.Errorf("%s does not answer: %w; check `%s info`", e.name, err, e.name)
	}
	if strings.TrimSpace(string(out)) == "" {
		return e.notRunning(fmt.Errorf("%s %s printed no server version", e.name, strings.Join(args, " ")))
	}
	return nil
}

// build runs "build" with the engine's own flags; a failure's error ends with the tail of the log.
func (e *cli) build(ctx context.Context, spec BuildSpec, flags []string) error {
	if spec.Ref == "" || spec.Dockerfile == "" || spec.ContextDir == "" {
		return fmt.Errorf("%s build: Ref, Dockerfile and ContextDir are required (got %+v)", e.name, spec)
	}
	args := append([]string{"build", "-f", spec.Dockerfile, "-t", spec.Ref}, flags...)
	if spec.Target != "" {
		args = append(args, "--target", spec.Target)
	}
	for _, key := range slices.Sorted(maps.Keys(spec.Args)) {
		args = append(args, "--build-arg", key+"="+spec.Args[key])
	}
	for _, key := range slices.Sorted(maps.Keys(spec.Labels)) {
		args = append(args, "--label", key+"="+spec.Labels[key])
	}
	args = append(args, spec.ContextDir)
	log := NewTailBuffer(256 << 10)
	err := e.runner.Run(ctx, Cmd{Name: e.name, Args: args, Stdout: log, Stderr: log})
	if err == nil {
		return nil
	}
	if errors.Is(err, exec.ErrNotFound) {
		return e.notInstalled(err)
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("interrupted: %w", ctx.Err())
	}
	hint := "fix the Dockerfile, its build context or base images and retry"
	if image := unresolvedImage(log.String()); image != "" {
		hint = fmt.Sprintf("BuildKit could not resolve %s from its registry (BuildKit asks the registry itself, without the daemon's mirrors): pull it first (%s pull %s), or check the name", image, e.name, image)
	}
	return fmt.Errorf("%s build of %s failed: %w; %s. Last lines of the build log:\n%s",
		e.name, spec.Ref, err, hint, LastLines(log.String(), 20))
}

// pull runs a pull; the error says which image could not be pulled, with the engine's last lines.
func (e *cli) pull(ctx context.Context, args ...string) error {
	ref := args[len(args)-1]
	if err := e.run(ctx, nil, nil, args...); err != nil {
		return fmt.Errorf("pull %s: %w; check the image name and that its registry (or mirror) answers", ref, err)
	}
	return nil
}

// pushed is the error of a push of src as dst.
func (e *cli) pushed(src, dst string, err error) error {
	if err != nil {
		return fmt.Errorf("push %s as %s: %w; check that the registry answers and accepts pushes (credentials: %s login)", src, dst, err, e.name)
	}
	return nil
}

// pruneAll is what both engines' PruneAll do: "system prune -f --volumes" (never -a, which would
// ignore keep), then rmi of every image keep does not protect.
func (e *cli) pruneAll(ctx context.Context, keep []string) (int64, error) {
	if err := validateKeep(keep); err != nil {
		return 0, err
	}
	// Without -a: "system prune -a" would delete every image without a container, kept ones included.
	total, err := e.pruneReported(ctx, "system", "prune", "-f", "--volumes")
	if err != nil {
		return total, err
	}
	images, err := e.listImages(ctx)
	if err != nil {
		return total, fmt.Errorf("prune images: %w", err)
	}
	var doomed []Image
	for _, img := range images {
		if !Kept(img, keep) {
			doomed = append(doomed, img)
		}
	}
	deleted, removeErr := e.remove(ctx, doomed)
	for _, img := range doomed {
		if deleted[img.ID] {
			total += img.Size
		}
	}
	if removeErr != nil {
		return total, fmt.Errorf("prune images: %w", removeErr)
	}
	return total, nil
}
