package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
	"github.com/kindling-dev/kindling/test/infrastructure/cluster"
	"github.com/kindling-dev/kindling/test/infrastructure/disk"
	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/suite"
)

// Config is the benchmark's settings, from the environment.
type Config struct {
	// Suite, when set, is the workload: that suite's images (built once, from their Dockerfiles
	// unless HostBuild); otherwise Synthetic.
	Suite      string
	HostBuild  bool
	Synthetic  Synthetic
	Strategies []string
	Format     string // text, json or markdown
	Engine     string // CONTAINER_ENGINE ("" detects)
	// Workers are worker nodes added to each strategy's cluster (BENCH_WORKERS), to measure the
	// load into several nodes.
	Workers   int
	NodeImage string
	Dir       string // where the benchmark writes (default: beside the archives)
}

// ConfigFromEnv reads BENCH_* and the engine and node image settings; every bad value at once.
func ConfigFromEnv() (Config, error) {
	c := Config{Synthetic: DefaultSynthetic, Strategies: Strategies, Format: "text",
		Engine: os.Getenv(engine.EnvVar), NodeImage: os.Getenv("KIND_NODE_IMAGE"), Dir: os.Getenv(archive.DirEnv)}
	var problems []string
	for _, v := range []struct {
		name string
		dst  *int
	}{
		{"BENCH_IMAGES", &c.Synthetic.Images}, {"BENCH_BASE_MIB", &c.Synthetic.BaseMiB},
		{"BENCH_UNIQUE_MIB", &c.Synthetic.UniqueMiB}, {"BENCH_GARBAGE_MIB", &c.Synthetic.GarbageMiB},
	} {
		if s := os.Getenv(v.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 || (v.name == "BENCH_IMAGES" && n < 1) {
				problems = append(problems, fmt.Sprintf("%s=%q: want a whole number (at least 1 image)", v.name, s))
				continue
			}
			*v.dst = n
		}
	}
	if s := os.Getenv("BENCH_WORKERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			problems = append(problems, fmt.Sprintf("BENCH_WORKERS=%q: want a whole number of worker nodes (0: the control plane alone)", s))
		}
		c.Workers = n
	}
	if s := os.Getenv("BENCH_COMPRESSIBLE"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			problems = append(problems, fmt.Sprintf("BENCH_COMPRESSIBLE=%q: use true or false", s))
		}
		c.Synthetic.Compressible = b
	}
	switch w := os.Getenv("BENCH_WORKLOAD"); {
	case w == "" || w == "synthetic":
	case strings.HasPrefix(w, "suite:") && len(w) > len("suite:"):
		c.Suite = strings.TrimPrefix(w, "suite:")
	default:
		problems = append(problems, fmt.Sprintf("BENCH_WORKLOAD=%q: use synthetic or suite:<name>", w))
	}
	if b := os.Getenv("E2E_BUILD"); b == "host" {
		c.HostBuild = true
	}
	if s := os.Getenv("BENCH_STRATEGIES"); s != "" {
		c.Strategies = nil
		for _, name := range strings.Split(s, ",") {
			if name = strings.TrimSpace(name); slices.Contains(Strategies, name) {
				c.Strategies = append(c.Strategies, name)
			} else {
				problems = append(problems, fmt.Sprintf("BENCH_STRATEGIES: unknown strategy %q (use %s)", name, strings.Join(Strategies, ", ")))
			}
		}
	}
	c.Format = formatFromEnv(&problems)
	if c.NodeImage == "" {
		c.NodeImage = cluster.NodeImageFromFile(cluster.KindenvFile)
	}
	if len(problems) > 0 {
		return Config{}, fmt.Errorf("bad environment:\n  %s", strings.Join(problems, "\n  "))
	}
	return c, nil
}

// Main runs the benchmark as configured and writes the report to out (progress to log); the
// markdown goes to $GITHUB_STEP_SUMMARY too.
func Main(ctx context.Context, c Config, out, log io.Writer) error {
	logf := func(format string, args ...any) { fmt.Fprintf(log, "[bench]   "+format+"\n", args...) }
	eng, err := engine.Detect(ctx, c.Engine)
	if err != nil {
		return err
	}
	if c.Dir == "" {
		if c.Dir, err = archive.DefaultDir(); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp(c.Dir, "bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	nodeImage, err := cluster.EnsureNodeImage(ctx, eng.Name(), c.NodeImage, logf)
	if err != nil {
		return err
	}
	// A scratch build cache, as on a fresh runner: the original flow's system prune removes all
	// build cache, and what was there before the benchmark would lower its peak by as much.
	if freed, err := clearBuildCache(ctx, eng); err != nil {
		return err
	} else if freed > 0 {
		logf("removed the engine's build cache (%s) first: the original flow's system prune would free it too, and its peak read low by as much", disk.HumanSize(freed))
	}
	// Dangling images, too (what earlier builds or interrupted tests left): measured, a run after
	// the real tests read the original's peak 0.6 GiB low, below what its tars and node hold.
	if freed, err := eng.PruneDangling(ctx); err != nil {
		return err
	} else if freed > 0 {
		logf("removed the engine's dangling images (%s) first: the original flow's system prune would free them too", disk.HumanSize(freed))
	}
	if u, err := eng.DiskUsage(ctx); err == nil && u.Containers+u.Volumes > 0 {
		logf("warning: the engine holds containers (%s) and volumes (%s); the original flow's system prune removes the stopped and unused ones, and its peak reads low by what they free: remove them for a faithful baseline",
			disk.HumanSize(u.Containers), disk.HumanSize(u.Volumes))
	}
	before, err := eng.Images(ctx, nil)
	if err != nil {
		return err
	}
	var preexisting []string
	for _, img := range before {
		preexisting = append(preexisting, img.ID)
	}
	tag := strconv.FormatInt(time.Now().Unix(), 36)
	var w Workload
	if c.Suite != "" {
		w, err = suiteWorkload(ctx, eng, c, dir, tag, logf)
	} else {
		w, err = NewSynthetic(eng, c.Synthetic, filepath.Join(dir, "contexts"), tag)
	}
	if err != nil {
		return err
	}
	defer w.Remove(context.WithoutCancel(ctx))
	env := Env{Engine: eng, NodeImage: nodeImage, Dir: dir, Cluster: "kindling-bench-" + tag, Workers: c.Workers, Workload: w, Preexisting: preexisting, Log: logf}
	logf("%s; engine %s; %d node(s) a cluster; strategies %s", w.Name, eng.Name(), 1+c.Workers, strings.Join(c.Strategies, ", "))
	rep, err := Bench(ctx, env, c.Strategies)
	if len(rep.Results) > 0 {
		var werr error
		switch c.Format {
		case "json":
			werr = rep.WriteJSON(out)
		case "markdown":
			werr = rep.WriteMarkdown(out)
		default:
			werr = rep.WriteText(out)
		}
		if werr != nil && err == nil {
			err = werr
		}
		if serr := disk.AppendToStepSummary(rep.WriteMarkdown); serr != nil && err == nil {
			err = serr
		}
	}
	return err
}

// clearBuildCache removes every BuildKit record not in use and returns the bytes freed.
func clearBuildCache(ctx context.Context, eng engine.Engine) (int64, error) {
	records, err := eng.BuildCache(ctx)
	if err != nil {
		return 0, err
	}
	var ids []string
	for _, r := range records {
		if !r.InUse {
			ids = append(ids, r.ID)
		}
	}
	if len(ids) == 0 {
		return 0, nil
	}
	return eng.RemoveBuildCache(ctx, ids)
}

// suiteWorkload is the images of the suite c names, built from the working directory's sources.
func suiteWorkload(ctx context.Context, eng engine.Engine, c Config, dir, tag string, logf func(string, ...any)) (Workload, error) {
	root, err := os.Getwd()
	if err != nil {
		return Workload{}, err
	}
	s, err := loadSuite(root, c.Suite)
	if err != nil {
		return Workload{}, err
	}
	return NewSuite(ctx, eng, root, s, c.HostBuild, dir, tag, logf)
}

// loadSuite reads the suite files of root and returns the one named name.
func loadSuite(root, name string) (suite.Suite, error) {
	all, err := suite.LoadAll(root)
	if err != nil {
		return suite.Suite{}, err
	}
	selected, err := suite.Select(all, name)
	if err != nil {
		return suite.Suite{}, err
	}
	return selected[0], nil
}

// formatFromEnv reads BENCH_FORMAT (text, json or markdown; default text), adding a bad value to
// problems.
func formatFromEnv(problems *[]string) string {
	switch f := strings.ToLower(os.Getenv("BENCH_FORMAT")); f {
	case "", "text":
		return "text"
	case "json", "markdown":
		return f
	default:
		*problems = append(*problems, fmt.Sprintf("BENCH_FORMAT=%q: use text, json or markdown", f))
		return "text"
	}
}
