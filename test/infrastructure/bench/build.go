package bench

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
	"github.com/kindling-dev/kindling/test/infrastructure/build"
	"github.com/kindling-dev/kindling/test/infrastructure/disk"
	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/suite"
	"github.com/kindling-dev/kindling/test/infrastructure/table"
)

// Build variants: what bench:build builds, and how.
const (
	// VariantIndependent replays the release before cache mounts: its Dockerfiles (go mod download
	// of the whole repository's graph in every builder stage, no cache mounts), every build at once.
	VariantIndependent = "independent"
	// VariantCacheMounts is today's Dockerfiles (shared cache mounts), every build at once.
	VariantCacheMounts = "cache-mounts"
	// VariantPlanned is today's Dockerfiles as the product builds them: the build that shares
	// the most goes first (build.PlanOrder), then the others.
	VariantPlanned = "planned"
)

// Build states, run in this order for each variant.
const (
	// StateCold: no compile caches, no bases, no layer cache of these builds.
	StateCold = "cold"
	// StateWarm: the second run, nothing changed, after the scoped prune of the first: its
	// images, intermediate images, layer cache and pulled bases gone, compile caches kept.
	StateWarm = "warm"
	// StateOneFile: as warm, after a change to one file of one service.
	StateOneFile = "one-file"
)

var (
	BuildVariants = []string{VariantIndependent, VariantCacheMounts, VariantPlanned}
	BuildStates   = []string{StateCold, StateWarm, StateOneFile}
)

//go:embed testdata/independent
var independentDockerfiles embed.FS

// BuildConfig is bench:build's settings, from the environment.
type BuildConfig struct {
	Suite    string
	Variants []string
	States   []string
	Format   string
	Engine   string
	Dir      string
	// Root holds go.mod and services/ (the working directory).
	Root string
}

// BuildConfigFromEnv reads BENCH_SUITE, BENCH_VARIANTS, BENCH_STATES, BENCH_FORMAT; every bad
// value at once.
func BuildConfigFromEnv() (BuildConfig, error) {
	c := BuildConfig{Suite: "aianalysis", Variants: BuildVariants, States: BuildStates, Format: "text",
		Engine: os.Getenv(engine.EnvVar), Dir: os.Getenv(archive.DirEnv)}
	var problems []string
	if s := os.Getenv("BENCH_SUITE"); s != "" {
		c.Suite = s
	}
	list := func(name string, known []string, dst *[]string) {
		s := os.Getenv(name)
		if s == "" {
			return
		}
		*dst = nil
		for _, v := range strings.Split(s, ",") {
			if v = strings.TrimSpace(v); slices.Contains(known, v) {
				*dst = append(*dst, v)
			} else {
				problems = append(problems, fmt.Sprintf("%s: unknown value %q (use %s)", name, v, strings.Join(known, ", ")))
			}
		}
	}
	list("BENCH_VARIANTS", BuildVariants, &c.Variants)
	list("BENCH_STATES", BuildStates, &c.States)
	if slices.ContainsFunc(c.States, func(s string) bool { return s != StateCold }) && !slices.Contains(c.States, StateCold) {
		problems = append(problems, "BENCH_STATES: warm and one-file follow a cold build; include cold")
	}
	c.Format = formatFromEnv(&problems)
	var err error
	if c.Root, err = os.Getwd(); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return BuildConfig{}, fmt.Errorf("bad environment:\n  %s", strings.Join(problems, "\n  "))
	}
	return c, nil
}

// BuildRow is one measured build.
type BuildRow struct {
	Variant string        `json:"variant"`
	State   string        `json:"state"`
	Time    time.Duration `json:"time_ns"`
	// Peak is how far the most-grown filesystem rose above the start during the build, named
	// by Filesystem; Left is what stayed there when it ended.
	Peak       int64  `json:"peak_bytes"`
	Left       int64  `json:"left_bytes"`
	Filesystem string `json:"filesystem"`
}

// BuildReport is bench:build's table.
type BuildReport struct {
	Suite  string `json:"suite"`
	Engine string `json:"engine"`
	CPUs   int    `json:"cpus"`
	// Floor is the host's go build of the same services with an empty build cache (modules
	// already downloaded), in one go command, measured in the same run.
	Floor BuildRow   `json:"floor"`
	Rows  []BuildRow `json:"rows"`
}

// BuildMain runs bench:build and writes its report to out (progress to log); the markdown goes
// to $GITHUB_STEP_SUMMARY too.
func BuildMain(ctx context.Context, c BuildConfig, out, log io.Writer) error {
	logf := func(format string, args ...any) { fmt.Fprintf(log, "[bench]   "+format+"\n", args...) }
	eng, err := engine.Detect(ctx, c.Engine)
	if err != nil {
		return err
	}
	s, err := loadSuite(c.Root, c.Suite)
	if err != nil {
		return err
	}
	if c.Dir == "" {
		if c.Dir, err = archive.DefaultDir(); err != nil {
			return err
		}
	}
	rep, err := Builds(ctx, BuildRun{Engine: eng, Suite: s, Root: c.Root, Dir: c.Dir, Variants: c.Variants, States: c.States, Log: logf})
	if err != nil {
		return err
	}
	switch c.Format {
	case "json":
		err = json.NewEncoder(out).Encode(rep)
	case "markdown":
		err = rep.WriteMarkdown(out)
	default:
		err = rep.WriteText(out)
	}
	if err != nil {
		return err
	}
	return disk.AppendToStepSummary(rep.WriteMarkdown)
}

// BuildRun is one bench:build run: Suite's builds on Engine, its Go sources in Root, the
// benchmark's files in a temporary directory under Dir.
type BuildRun struct {
	Engine   engine.Engine
	Suite    suite.Suite
	Root     string
	Dir      string
	Variants []string
	States   []string
	Log      func(string, ...any)
}

// Builds measures the floor, then every variant in every state, and leaves the engine as it
// found it: what the builds left removed, the compile caches of their mounts removed, the bases
// that were there pulled back.
func Builds(ctx context.Context, r BuildRun) (BuildReport, error) {
	dir, err := os.MkdirTemp(r.Dir, "bench-build-")
	if err != nil {
		return BuildReport{}, err
	}
	defer os.RemoveAll(dir)
	b := &buildBench{eng: r.Engine, suite: r.Suite, root: r.Root, dir: dir, logf: r.Log, tag: strconv.FormatInt(time.Now().UnixNano(), 36)}
	rep := BuildReport{Suite: r.Suite.Name, Engine: r.Engine.Name(), CPUs: runtime.NumCPU()}
	if err := b.keepBases(ctx); err != nil {
		return rep, err
	}
	defer b.restore(context.WithoutCancel(ctx))
	if rep.Floor, err = b.floor(ctx); err != nil {
		return rep, err
	}
	b.logf("floor: host go build of %s in %s", strings.Join(b.packages(), " "), rep.Floor.Time.Round(time.Second))
	for _, variant := range r.Variants {
		for _, state := range r.States {
			row, err := b.run(ctx, variant, state)
			if err != nil {
				return rep, fmt.Errorf("%s, %s: %w", variant, state, err)
			}
			b.logf("%s, %s: %s, peak %s, left %s", variant, state, row.Time.Round(time.Second), disk.HumanSize(row.Peak), disk.HumanSize(row.Left))
			rep.Rows = append(rep.Rows, row)
		}
	}
	return rep, nil
}

type buildBench struct {
	eng   engine.Engine
	suite suite.Suite
	root  string
	dir   string
	tag   string
	logf  func(string, ...any)
	// bases that were there before: pulled back at the end.
	bases []string
	// mounts are every cache mount the builds used, removed at the end; appeared are the build
	// cache records the builds made (BuildKit v0.8 names a cache mount's record by target only).
	mounts   []engine.CacheMount
	appeared []string
	// last is what the last build left, removed as the scoped prune removes it.
	last *build.Built
}

// keepBases notes which of the suite's bases the engine holds, to pull them back at the end.
func (b *buildBench) keepBases(ctx context.Context) error {
	ps, err := b.plan(ctx, VariantCacheMounts, b.root)
	if err != nil {
		return err
	}
	for _, p := range ps {
		for _, base := range p.Bases {
			if _, found, err := b.eng.ImageID(ctx, base); err != nil {
				return err
			} else if found && !slices.Contains(b.bases, base) {
				b.bases = append(b.bases, base)
			}
		}
	}
	return nil
}

// restore removes what the benchmark left and pulls back the bases that were there.
func (b *buildBench) restore(ctx context.Context) {
	b.prune(ctx)
	if err := b.removeCompileCaches(ctx); err != nil {
		b.logf("the compile caches stay: %v", err)
	}
	for _, base := range b.bases {
		if _, found, _ := b.eng.ImageID(ctx, base); !found {
			if err := b.eng.Pull(ctx, base); err != nil {
				b.logf("could not pull %s back: %v", base, err)
			}
		}
	}
}

// prune removes what the last build left, as the scoped prune does: its images, intermediate
// images, layer cache records and the bases it pulled; the compile caches stay.
func (b *buildBench) prune(ctx context.Context) {
	if b.last == nil {
		return
	}
	var refs []string
	for _, r := range b.last.Results {
		refs = append(refs, r.Ref)
	}
	if err := b.eng.RemoveRefs(ctx, refs); err != nil {
		b.logf("some images stay: %v", err)
	}
	if err := b.eng.Remove(ctx, b.last.Intermediate); err != nil {
		b.logf("some build leftovers stay: %v", err)
	}
	// The pulled bases by name, as the scoped prune removes them: another name of the same
	// image stays.
	var pulled []string
	for _, p := range b.last.Pulled {
		pulled = append(pulled, p.Ref)
	}
	if err := b.eng.RemoveRefs(ctx, pulled); err != nil {
		b.logf("some pulled bases stay: %v", err)
	}
	caches, err := b.eng.CompileCaches(ctx, b.mounts, b.appeared)
	if err != nil {
		b.logf("compile caches: %v", err)
	}
	records := slices.DeleteFunc(slices.Clone(b.last.BuildCache), func(id string) bool {
		return slices.ContainsFunc(caches, func(c engine.CompileCache) bool { return c.Record == id })
	})
	if _, err := b.eng.RemoveBuildCache(ctx, records); err != nil {
		b.logf("some build cache stays: %v", err)
	}
	b.last = nil
}

// cold removes what would make a build warm: the compile caches, the bases.
func (b *buildBench) cold(ctx context.Context, planned []build.Planned) error {
	b.prune(ctx)
	var bases []string
	for _, p := range planned {
		bases = append(bases, p.Bases...)
	}
	if err := b.removeCompileCaches(ctx); err != nil {
		return err
	}
	if len(bases) > 0 {
		if err := b.eng.RemoveRefs(ctx, bases); err != nil {
			return fmt.Errorf("remove the bases for a cold build: %w", err)
		}
	}
	return nil
}

func (b *buildBench) removeCompileCaches(ctx context.Context) error {
	caches, err := b.eng.CompileCaches(ctx, b.mounts, b.appeared)
	if err == nil {
		_, err = b.eng.RemoveCompileCaches(ctx, caches)
	}
	return err
}

func (b *buildBench) packages() []string {
	var pkgs []string
	for _, svc := range b.suite.Services {
		if svc.Host != nil {
			pkgs = append(pkgs, svc.Host.Package)
		}
	}
	return pkgs
}

// floor compiles the suite's Go services on the host with an empty build cache, modules
// already downloaded, as the Dockerfiles compile them.
func (b *buildBench) floor(ctx context.Context) (BuildRow, error) {
	pkgs := b.packages()
	if len(pkgs) == 0 {
		return BuildRow{}, fmt.Errorf("suite %s: no service has a host block naming its Go package: the floor cannot be measured", b.suite.Name)
	}
	run := func(cache string, args ...string) error {
		var stderr strings.Builder
		cmd := engine.Cmd{Name: "go", Args: args, Dir: b.root, Stderr: &stderr,
			Env: []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + runtime.GOARCH, "GOCACHE=" + cache}}
		if err := (engine.ExecRunner{}).Run(ctx, cmd); err != nil {
			return fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, engine.LastLines(stderr.String(), 10))
		}
		return nil
	}
	cache := filepath.Join(b.dir, "gocache")
	// Modules first, not timed: the builders' stages download theirs too, but the floor is the compile.
	if err := run(cache, append([]string{"list", "-deps"}, pkgs...)...); err != nil {
		return BuildRow{}, err
	}
	if err := os.RemoveAll(cache); err != nil {
		return BuildRow{}, err
	}
	m, err := b.measure(ctx, cache)
	if err != nil {
		return BuildRow{}, err
	}
	args := append([]string{"build", "-trimpath", "-buildvcs=false", "-gcflags=all=-dwarf=false", "-ldflags=-s -w", "-o", filepath.Join(b.dir, "bin") + "/"}, pkgs...)
	err = run(cache, args...)
	row := m.done(ctx, "floor", "host go build")
	os.RemoveAll(cache)
	os.RemoveAll(filepath.Join(b.dir, "bin"))
	return row, err
}

// workspace copies what the builds send (go.mod, go.sum, .dockerignore, services/) into a
// directory of the benchmark, where a one-file change touches nothing of the user's.
func (b *buildBench) workspace(variant string) (string, error) {
	ws := filepath.Join(b.dir, "ws-"+variant)
	if err := os.MkdirAll(ws, 0o755); err != nil {
		return "", err
	}
	for _, f := range []string{"go.mod", "go.sum", ".dockerignore"} {
		data, err := os.ReadFile(filepath.Join(b.root, f))
		if errors.Is(err, fs.ErrNotExist) && f != "go.mod" {
			continue // a module without dependencies has no go.sum
		}
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(ws, f), data, 0o644); err != nil {
			return "", err
		}
	}
	if err := os.CopyFS(filepath.Join(ws, "services"), os.DirFS(filepath.Join(b.root, "services"))); err != nil {
		return "", err
	}
	return ws, nil
}

// plan plans the suite's builds in root for variant: independent replays the Dockerfiles of the
// release before cache mounts (testdata/independent/<service>.Dockerfile).
func (b *buildBench) plan(ctx context.Context, variant, root string) ([]build.Planned, error) {
	services := slices.Clone(b.suite.Services)
	if variant == VariantIndependent {
		for i, svc := range services {
			data, err := independentDockerfiles.ReadFile("testdata/independent/" + svc.Name + ".Dockerfile")
			if err != nil {
				return nil, fmt.Errorf("variant %s replays the Dockerfiles of the release before cache mounts, and service %s had none", variant, svc.Name)
			}
			path := filepath.Join("bench-independent", svc.Name+".Dockerfile")
			if err := os.MkdirAll(filepath.Join(root, "bench-independent"), 0o755); err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(root, path), data, 0o644); err != nil {
				return nil, err
			}
			services[i].Dockerfile = path
		}
	}
	return build.Plan(ctx, b.options(variant, root), services)
}

func (b *buildBench) options(variant, root string) build.Options {
	return build.Options{Engine: b.eng, Suite: "bench-" + b.tag, RunID: "bench-" + b.tag, RepoRoot: root,
		WorkDir: filepath.Join(b.dir, "work"), Independent: variant != VariantPlanned, Log: b.logf}
}

// run measures one build of the suite: variant in state.
func (b *buildBench) run(ctx context.Context, variant, state string) (BuildRow, error) {
	ws := filepath.Join(b.dir, "ws-"+variant)
	if state == StateCold {
		os.RemoveAll(ws)
		var err error
		if ws, err = b.workspace(variant); err != nil {
			return BuildRow{}, err
		}
	}
	if state == StateOneFile {
		if err := changeOneFile(ws, b.packages()[0]); err != nil {
			return BuildRow{}, err
		}
	}
	b.prune(ctx)
	planned, err := b.plan(ctx, variant, ws)
	if err != nil {
		return BuildRow{}, err
	}
	for _, p := range planned {
		for _, m := range p.CacheMounts {
			if !slices.Contains(b.mounts, m) {
				b.mounts = append(b.mounts, m)
			}
		}
	}
	if state == StateCold {
		if err := b.cold(ctx, planned); err != nil {
			return BuildRow{}, err
		}
	}
	m, err := b.measure(ctx, ws)
	if err != nil {
		return BuildRow{}, err
	}
	built, err := build.Images(ctx, b.options(variant, ws), planned)
	b.last = &built
	b.appeared = append(b.appeared, built.BuildCache...)
	row := m.done(ctx, variant, state)
	return row, err
}

// changeOneFile appends a comment to the first Go file of the package pkg in ws: the package
// and those that import it compile again.
func changeOneFile(ws, pkg string) error {
	files, err := filepath.Glob(filepath.Join(ws, pkg, "*.go"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no Go file in %s to change: %v", pkg, err)
	}
	slices.Sort(files)
	f, err := os.OpenFile(files[0], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "\n// bench:build changed this file at %s.\n", time.Now().Format(time.RFC3339Nano))
	return errors.Join(err, f.Close())
}

// measurement samples the filesystems of the engine's storage, the temp dir and dir.
type measurement struct {
	rec   *disk.Recorder
	start time.Time
	used  map[string]uint64
}

func (b *buildBench) measure(ctx context.Context, dir string) (*measurement, error) {
	info, err := b.eng.Info(ctx)
	if err != nil {
		return nil, err
	}
	places := []disk.Place{{Name: "benchmark dir", Path: dir}, {Name: "temp dir", Path: os.TempDir()}, {Name: "/var/tmp", Path: "/var/tmp"}}
	for _, d := range info.Storage {
		places = append(places, disk.Place{Name: b.eng.Name() + " storage", Path: d})
	}
	m := &measurement{rec: disk.NewRecorder(func() []disk.Place { return places }, io.Discard, 100*time.Millisecond), used: map[string]uint64{}}
	cp, err := m.rec.Checkpoint(ctx, "START")
	if err != nil {
		return nil, err
	}
	for _, f := range cp.Filesystems {
		m.used[f.Mountpoint] = f.Used
	}
	m.rec.Start(context.WithoutCancel(ctx))
	m.start = time.Now()
	return m, nil
}

// done ends the measurement: the time, and the filesystem that rose most.
func (m *measurement) done(ctx context.Context, variant, state string) BuildRow {
	row := BuildRow{Variant: variant, State: state, Time: time.Since(m.start)}
	cp, err := m.rec.Checkpoint(context.WithoutCancel(ctx), "END")
	m.rec.Stop()
	if err != nil {
		return row
	}
	for _, f := range cp.Filesystems {
		peak := int64(f.Peak) - int64(m.used[f.Mountpoint])
		if row.Filesystem == "" || peak > row.Peak {
			row.Peak, row.Left, row.Filesystem = peak, int64(f.Used)-int64(m.used[f.Mountpoint]), f.Mountpoint
		}
	}
	return row
}

func (r BuildReport) rows() [][]string {
	rows := [][]string{{"variant", "state", "time", "peak above start", "left behind", "× floor"}}
	add := func(row BuildRow) {
		ratio := "-"
		if r.Floor.Time > 0 {
			ratio = fmt.Sprintf("%.2f", row.Time.Seconds()/r.Floor.Time.Seconds())
		}
		rows = append(rows, []string{row.Variant, row.State, row.Time.Round(100 * time.Millisecond).String(),
			disk.HumanSize(row.Peak), disk.HumanSize(row.Left), ratio})
	}
	add(r.Floor)
	for _, row := range r.Rows {
		add(row)
	}
	return rows
}

func (r BuildReport) title() string {
	return fmt.Sprintf("suite %s; engine %s; %d CPUs; peaks on %s", r.Suite, r.Engine, r.CPUs, r.filesystems())
}

func (r BuildReport) filesystems() string {
	var fs []string
	for _, row := range append([]BuildRow{r.Floor}, r.Rows...) {
		if row.Filesystem != "" && !slices.Contains(fs, row.Filesystem) {
			fs = append(fs, row.Filesystem)
		}
	}
	return strings.Join(fs, ", ")
}

// WriteText writes the table.
func (r BuildReport) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "%s\n\n", r.title())
	return table.WriteText(w, "", r.rows())
}

// WriteMarkdown writes the table for a GitHub step summary.
func (r BuildReport) WriteMarkdown(w io.Writer) error {
	fmt.Fprintf(w, "### Build benchmark\n\n%s\n\n", r.title())
	rows := r.rows()
	table.Markdown(w, rows[0], nil, rows[1:])
	_, err := fmt.Fprintln(w)
	return err
}
