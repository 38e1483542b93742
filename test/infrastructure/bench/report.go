package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/disk"
	"github.com/kindling-dev/kindling/test/infrastructure/table"
)

// Report is one benchmark: the workload, the engine and every strategy's result.
type Report struct {
	Workload   string   `json:"workload"`
	Engine     string   `json:"engine"`
	ImageBytes int64    `json:"image_bytes"` // the workload's images, shared layers once
	Results    []Result `json:"results"`
}

// Goals the kindling strategy is measured against, relative to the original in the same run.
const (
	GoalPeak = 0.70 // peak of used bytes above the start
	GoalWall = 0.60 // wall time
	GoalNode = 1.10 // node store over the image bytes (not relative: absolute)
)

// Bench runs the strategies one after another, each on a freshly built workload.
func Bench(ctx context.Context, env Env, strategies []string) (Report, error) {
	rep := Report{Workload: env.Workload.Name, Engine: env.Engine.Name(), ImageBytes: env.Workload.Bytes}
	for _, s := range strategies {
		env.logf("%s: building the workload and running", s)
		res, err := Run(ctx, env, s)
		if err != nil {
			return rep, err
		}
		env.logf("%s: %s, peak %s above the start, nodes +%s", s, res.Total.Round(100*time.Millisecond),
			disk.HumanSize(res.MaxPeak()), disk.HumanSize(res.NodeBytes()))
		rep.Results = append(rep.Results, res)
	}
	return rep, nil
}

func (r Report) baseline() *Result {
	for i := range r.Results {
		if r.Results[i].Strategy == Original {
			return &r.Results[i]
		}
	}
	return nil
}

// Ratios are a result against the original's in the same run: peak and wall time; 0 without one.
func (r Report) Ratios(res Result) (peak, wall float64) {
	b := r.baseline()
	if b == nil || b.MaxPeak() <= 0 || b.Total <= 0 {
		return 0, 0
	}
	return float64(res.MaxPeak()) / float64(b.MaxPeak()), res.Total.Seconds() / b.Total.Seconds()
}

// NodeRatio is what a node keeps (the mean over the nodes) over the workload's image bytes.
func (r Report) NodeRatio(res Result) float64 {
	if r.ImageBytes <= 0 {
		return 0
	}
	return float64(res.NodeBytes()) / float64(max(res.Nodes, 1)) / float64(r.ImageBytes)
}

var phaseOrder = []string{"build", "export", "prune", "cluster", "load", "cleanup"}

func (res Result) phase(name string) string {
	for _, p := range res.Phases {
		if p.Name == name {
			return p.Duration.Round(100 * time.Millisecond).String()
		}
	}
	return "-"
}

func ratio(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", v)
}

func (r Report) rows() [][]string {
	header := append([]string{"strategy", "total after build"}, phaseOrder...)
	header = append(header, "peak above start", "node content", "node snapshots", "node/images (a node)", "archives", "peak vs original", "time vs original")
	rows := [][]string{header}
	for _, res := range r.Results {
		peak, wall := r.Ratios(res)
		row := []string{res.Strategy, res.Total.Round(100 * time.Millisecond).String()}
		for _, p := range phaseOrder {
			row = append(row, res.phase(p))
		}
		row = append(row, disk.HumanSize(res.MaxPeak()), disk.HumanSize(res.NodeContent), disk.HumanSize(res.NodeSnapshots),
			fmt.Sprintf("%.2f", r.NodeRatio(res)), disk.HumanSize(res.ArchiveBytes), ratio(peak), ratio(wall))
		rows = append(rows, row)
	}
	return rows
}

// Goals says which goals the kindling strategy reached.
func (r Report) Goals() []string {
	var out []string
	for _, res := range r.Results {
		if !strings.HasPrefix(res.Strategy, Kindling) {
			continue
		}
		peak, wall := r.Ratios(res)
		node := r.NodeRatio(res)
		mark := func(ok bool) string {
			if ok {
				return "reached"
			}
			return "NOT reached"
		}
		out = append(out,
			fmt.Sprintf("%s: peak %.2fx the original's (goal <= %.2fx): %s", res.Strategy, peak, GoalPeak, mark(peak > 0 && peak <= GoalPeak)),
			fmt.Sprintf("%s: wall time %.2fx the original's (goal <= %.2fx): %s", res.Strategy, wall, GoalWall, mark(wall > 0 && wall <= GoalWall)),
			fmt.Sprintf("%s: node store %.2fx the image bytes (goal <= %.2fx): %s", res.Strategy, node, GoalNode, mark(node > 0 && node <= GoalNode)))
	}
	return out
}

// WriteText writes the table, the peaks per filesystem and the goals.
func (r Report) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "%s; engine %s; image bytes %s\n\n", r.Workload, r.Engine, disk.HumanSize(r.ImageBytes))
	if err := table.WriteText(w, "", r.rows()); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, res := range r.Results {
		for _, p := range res.Peaks {
			fmt.Fprintf(w, "%s: peak on %s %s above the start, during %s (%d samples)\n", res.Strategy, p.Filesystem, disk.HumanSize(p.Bytes), p.Phase, res.Samples)
		}
	}
	for _, g := range r.Goals() {
		fmt.Fprintln(w, g)
	}
	return nil
}

// WriteJSON writes the report as one JSON document.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteMarkdown writes the table for a GitHub step summary.
func (r Report) WriteMarkdown(w io.Writer) error {
	fmt.Fprintf(w, "### Disk benchmark\n\n%s; engine %s; image bytes %s\n\n", r.Workload, r.Engine, disk.HumanSize(r.ImageBytes))
	rows := r.rows()
	table.Markdown(w, rows[0], nil, rows[1:])
	for _, g := range r.Goals() {
		fmt.Fprintf(w, "\n- %s", g)
	}
	_, err := fmt.Fprintln(w)
	return err
}
