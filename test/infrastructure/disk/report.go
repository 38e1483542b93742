package disk

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/table"
)

// Report is a disk report: the measured filesystems, optionally the engine's own accounting and
// the image archives on disk.
type Report struct {
	Time        time.Time    `json:"time"`
	Filesystems []Filesystem `json:"filesystems"`
	Engine      *EngineUsage `json:"engine"`
	// Parts are the engine store's and the nodes' directories with what they hold (du).
	Parts []PartUsage `json:"parts"`
	// Residue is what the engine kept of a run's removed images although nothing uses it.
	Residue []Residue `json:"residue"`
	// KeptCaches are the compile caches a suite's prune kept for its next build.
	KeptCaches []KeptCaches `json:"kept_compile_caches"`
	Archives   []Archive    `json:"archives"`
	Suites     []Suite      `json:"suites"`
	Plan       []PlanStep   `json:"plan"`
}

// PlanStep is what one phase of a suite's next run is predicted to write, and where.
type PlanStep struct {
	Suite string `json:"suite"`
	Phase string `json:"phase"`
	Place string `json:"place,omitempty"` // "" when there is no prediction
	Bytes uint64 `json:"bytes"`
	Basis string `json:"basis"` // how it was predicted, or why it cannot be
}

func (p PlanStep) cells() []string {
	if p.Place == "" {
		return []string{p.Suite, p.Phase, "-", "-", p.Basis}
	}
	return []string{p.Suite, p.Phase, HumanBytes(p.Bytes), p.Place, p.Basis}
}

var planHeader = []string{"SUITE", "PHASE", "PREDICTED", "WHERE", "BASIS"}

// Suite is what one suite's builds added to the filesystem holding the engine's storage, split
// as build.Footprint splits it. Built is false when no build of the current run was measured.
type Suite struct {
	Name        string `json:"name"`
	Cluster     string `json:"cluster,omitempty"`
	Built       bool   `json:"built"`
	Filesystem  string `json:"filesystem,omitempty"`
	PulledBases int64  `json:"pulled_bases_bytes"`
	BuildCache  int64  `json:"build_cache_bytes"`
	SuiteImages int64  `json:"suite_images_bytes"`
}

func (s Suite) cells() []string {
	if !s.Built {
		return []string{s.Name, orDash(s.Cluster), "-", "-", "-", "no build measured"}
	}
	return []string{s.Name, orDash(s.Cluster), HumanSize(s.PulledBases), HumanSize(s.BuildCache), HumanSize(s.SuiteImages), s.Filesystem}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

var suiteHeader = []string{"SUITE", "CLUSTER", "PULLED BASES", "BUILD CACHE", "SUITE IMAGES", "ADDED TO"}

// fstypeLabel marks a filesystem that keeps its files in memory.
func fstypeLabel(fstype string) string {
	if InMemory(fstype) {
		return fstype + " (memory)"
	}
	return fstype
}

// Residue is what a suite's prune found the containerd store still holding of the removed
// images with no image using it, and the commands that remove exactly that.
type Residue struct {
	Suite     string   `json:"suite"`
	Blobs     int      `json:"blobs"`
	Snapshots int      `json:"snapshots"`
	Bytes     int64    `json:"bytes"`
	Reclaim   []string `json:"reclaim"`
}

func (r Residue) String() string {
	return fmt.Sprintf("suite %s: the containerd store kept %d blobs and %d snapshots (%s) of the pruned images that no image uses; remove exactly those with: %s",
		r.Suite, r.Blobs, r.Snapshots, HumanSize(r.Bytes), strings.Join(r.Reclaim, " && "))
}

// KeptCaches are the compile caches (cache mounts) a suite's prune kept for its next build.
type KeptCaches struct {
	Suite string   `json:"suite"`
	Where []string `json:"where"`
	Bytes int64    `json:"bytes"`
	Max   int64    `json:"max_bytes"`
}

func (k KeptCaches) String() string {
	return fmt.Sprintf("suite %s keeps compile caches for its next build: %s, %s (E2E_BUILD_CACHE_MAX=%s; 0 or E2E_PRUNE=aggressive removes them)",
		k.Suite, strings.Join(k.Where, ", "), HumanSize(k.Bytes), HumanSize(k.Max))
}

var partHeader = []string{"DIRECTORY (du)", "HOLDS", "PATH"}

func partCells(parts []PartUsage) [][]string {
	rows := make([][]string, 0, len(parts))
	for _, p := range parts {
		held := HumanBytes(uint64(p.Bytes))
		if p.Missing {
			held = "not there"
		}
		rows = append(rows, []string{p.Name, held, p.Path})
	}
	return rows
}

// EngineUsage is what the container engine says it holds (bytes), e.g. from `podman system df`.
type EngineUsage struct {
	Name        string `json:"name"`
	Images      int64  `json:"images_bytes"`
	Containers  int64  `json:"containers_bytes"`
	Volumes     int64  `json:"volumes_bytes"`
	BuildCache  int64  `json:"build_cache_bytes"`
	Reclaimable int64  `json:"reclaimable_bytes"`
}

// Archive is an image archive on disk.
type Archive struct {
	Path string `json:"path"`
	Size int64  `json:"size_bytes"`
}

// WriteText writes the report as aligned columns, coloured unless color.NoColor is set.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", table.Title().Sprint("disk usage"), r.Time.Format(time.RFC3339))
	if err := writeString(w, b.String()); err != nil {
		return err
	}
	rows := [][]table.Cell{table.Headed("MOUNT", "DEVICE", "TYPE", "SIZE", "USED", "FREE", "USE%", "PLACES")}
	for _, f := range r.Filesystems {
		first := ""
		if len(f.Places) > 0 {
			first = f.Places[0]
		}
		rows = append(rows, []table.Cell{
			table.Plain(f.Mountpoint), table.Plain(f.Device), table.Plain(fstypeLabel(f.Fstype)), table.Plain(HumanBytes(f.Total)),
			table.Plain(HumanBytes(f.Used)), table.Plain(HumanBytes(f.Free)),
			{Text: fmt.Sprintf("%.1f%%", f.UsedPercent), Style: table.PercentStyle(f.UsedPercent)}, table.Plain(first),
		})
		for _, p := range f.Places[min(1, len(f.Places)):] {
			rows = append(rows, []table.Cell{{}, {}, {}, {}, {}, {}, {}, table.Plain(p)})
		}
	}
	if err := table.Write(w, "", rows); err != nil {
		return err
	}
	if e := r.Engine; e != nil {
		if err := writeString(w, "\n"); err != nil {
			return err
		}
		rows := [][]table.Cell{
			{{Text: "ENGINE", Style: table.Header()}, {Text: "IMAGES", Style: table.Header()}, {Text: "CONTAINERS", Style: table.Header()},
				{Text: "VOLUMES", Style: table.Header()}, {Text: "BUILD CACHE", Style: table.Header()}, {Text: "RECLAIMABLE", Style: table.Header()}},
			{table.Plain(e.Name), table.Plain(HumanSize(e.Images)), table.Plain(HumanSize(e.Containers)),
				table.Plain(HumanSize(e.Volumes)), table.Plain(HumanSize(e.BuildCache)), table.Plain(HumanSize(e.Reclaimable))},
		}
		if err := table.Write(w, "", rows); err != nil {
			return err
		}
	}
	if len(r.Parts) > 0 {
		if err := table.WriteUnder(w, "\n", partHeader, partCells(r.Parts)); err != nil {
			return err
		}
	}
	for _, res := range r.Residue {
		if err := writeString(w, "\n"+table.Warn().Sprint(res.String())+"\n"); err != nil {
			return err
		}
	}
	for _, k := range r.KeptCaches {
		if err := writeString(w, "\n"+k.String()+"\n"); err != nil {
			return err
		}
	}
	if len(r.Suites) > 0 {
		var rows [][]string
		for _, st := range r.Suites {
			rows = append(rows, st.cells())
		}
		if err := table.WriteUnder(w, "\n", suiteHeader, rows); err != nil {
			return err
		}
	}
	if len(r.Plan) > 0 {
		var rows [][]string
		for _, p := range r.Plan {
			rows = append(rows, p.cells())
		}
		if err := table.WriteUnder(w, "\nplan of the next run (checked against E2E_DISK_BUDGET before each phase):\n", planHeader, rows); err != nil {
			return err
		}
	}
	if len(r.Archives) == 0 {
		return writeString(w, "\nARCHIVES  none\n")
	}
	{
		if err := writeString(w, "\n"); err != nil {
			return err
		}
		rows := [][]table.Cell{table.Headed("ARCHIVE", "SIZE")}
		var total int64
		for _, a := range r.Archives {
			total += a.Size
			rows = append(rows, []table.Cell{table.Plain(a.Path), table.Plain(HumanSize(a.Size))})
		}
		rows = append(rows, []table.Cell{{Text: fmt.Sprintf("total (%d)", len(r.Archives)), Style: table.Header()}, {Text: HumanSize(total), Style: table.Header()}})
		if err := table.Write(w, "", rows); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON writes the report as indented JSON; byte counts are integers, absent parts are
// null/[] so every field name is always present.
func (r Report) WriteJSON(w io.Writer) error {
	if r.Filesystems == nil {
		r.Filesystems = []Filesystem{}
	}
	fss := make([]Filesystem, len(r.Filesystems))
	for i, f := range r.Filesystems {
		if f.Places == nil {
			f.Places = []string{}
		}
		fss[i] = f
	}
	r.Filesystems = fss
	if r.Archives == nil {
		r.Archives = []Archive{}
	}
	if r.Suites == nil {
		r.Suites = []Suite{}
	}
	if r.Plan == nil {
		r.Plan = []PlanStep{}
	}
	if r.Parts == nil {
		r.Parts = []PartUsage{}
	}
	if r.Residue == nil {
		r.Residue = []Residue{}
	}
	if r.KeptCaches == nil {
		r.KeptCaches = []KeptCaches{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteMarkdown writes the report as GitHub-flavoured markdown tables.
func (r Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "### Disk usage\n\n_%s_\n\n", r.Time.Format(time.RFC3339))
	rows := make([][]string, 0, len(r.Filesystems))
	for _, f := range r.Filesystems {
		rows = append(rows, []string{f.Mountpoint, f.Device, fstypeLabel(f.Fstype), HumanBytes(f.Total), HumanBytes(f.Used),
			HumanBytes(f.Free), fmt.Sprintf("%.1f%%", f.UsedPercent), strings.Join(f.Places, "<br>")})
	}
	table.Markdown(&b,
		[]string{"Mount", "Device", "Type", "Size", "Used", "Free", "Use%", "Places"},
		[]string{"---", "---", "---", "---:", "---:", "---:", "---:", "---"}, rows)
	if e := r.Engine; e != nil {
		b.WriteString("\n")
		table.Markdown(&b,
			[]string{"Engine", "Images", "Containers", "Volumes", "Build cache", "Reclaimable"},
			[]string{"---", "---:", "---:", "---:", "---:", "---:"},
			[][]string{{e.Name, HumanSize(e.Images), HumanSize(e.Containers), HumanSize(e.Volumes),
				HumanSize(e.BuildCache), HumanSize(e.Reclaimable)}})
	}
	if len(r.Parts) > 0 {
		b.WriteString("\n")
		table.Markdown(&b, []string{"Directory (du)", "Holds", "Path"}, []string{"---", "---:", "---"}, partCells(r.Parts))
	}
	for _, res := range r.Residue {
		fmt.Fprintf(&b, "\n> [!WARNING]\n> %s\n", res)
	}
	for _, k := range r.KeptCaches {
		fmt.Fprintf(&b, "\n> [!NOTE]\n> %s\n", k)
	}
	if len(r.Suites) > 0 {
		b.WriteString("\n")
		var rows [][]string
		for _, st := range r.Suites {
			rows = append(rows, st.cells())
		}
		var header []string
		for _, h := range suiteHeader {
			header = append(header, strings.ToUpper(h[:1])+strings.ToLower(h[1:]))
		}
		table.Markdown(&b, header, []string{"---", "---", "---:", "---:", "---:", "---"}, rows)
	}
	if len(r.Plan) > 0 {
		b.WriteString("\n")
		var rows [][]string
		for _, p := range r.Plan {
			rows = append(rows, p.cells())
		}
		table.Markdown(&b, []string{"Suite", "Phase", "Predicted", "Where", "Basis"}, []string{"---", "---", "---:", "---", "---"}, rows)
	}
	if len(r.Archives) > 0 {
		b.WriteString("\n")
		var total int64
		rows := make([][]string, 0, len(r.Archives)+1)
		for _, a := range r.Archives {
			total += a.Size
			rows = append(rows, []string{a.Path, HumanSize(a.Size)})
		}
		rows = append(rows, []string{fmt.Sprintf("**total (%d)**", len(r.Archives)), "**" + HumanSize(total) + "**"})
		table.Markdown(&b, []string{"Archive", "Size"}, []string{"---", "---:"}, rows)
	}
	return writeString(w, b.String())
}

// Format is a report output format.
type Format string

// Report formats selectable with DISK_REPORT_FORMAT.
const (
	FormatText Format = "text"
	FormatJSON Format = "json"
)

// FormatEnv names the environment variable read by FormatFromEnv.
const FormatEnv = "DISK_REPORT_FORMAT"

// ParseFormat accepts "text" (also the empty string) and "json", case-insensitively.
func ParseFormat(s string) (Format, error) {
	switch Format(strings.ToLower(strings.TrimSpace(s))) {
	case "", FormatText:
		return FormatText, nil
	case FormatJSON:
		return FormatJSON, nil
	}
	return "", fmt.Errorf("disk report format %q is not supported: use %q or %q", s, FormatText, FormatJSON)
}

// FormatFromEnv reads DISK_REPORT_FORMAT (default "text").
func FormatFromEnv() (Format, error) {
	f, err := ParseFormat(os.Getenv(FormatEnv))
	if err != nil {
		return "", fmt.Errorf("%s: %w", FormatEnv, err)
	}
	return f, nil
}

// Write writes the report in format f.
func (r Report) Write(w io.Writer, f Format) error {
	switch f {
	case FormatText, "":
		return r.WriteText(w)
	case FormatJSON:
		return r.WriteJSON(w)
	}
	return fmt.Errorf("disk report format %q is not supported: use %q or %q", f, FormatText, FormatJSON)
}

// StepSummaryEnv names the file GitHub Actions renders as the job summary.
const StepSummaryEnv = "GITHUB_STEP_SUMMARY"

// AppendStepSummary appends the report as markdown to $GITHUB_STEP_SUMMARY; without that variable
// (outside GitHub Actions) it does nothing.
func AppendStepSummary(r Report) error {
	return AppendToStepSummary(r.WriteMarkdown)
}

func AppendToStepSummary(write func(io.Writer) error) error {
	path := os.Getenv(StepSummaryEnv)
	if path == "" {
		return nil
	}
	var b strings.Builder
	if err := write(&b); err != nil {
		return err
	}
	b.WriteString("\n")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open step summary %s=%s: %w", StepSummaryEnv, path, err)
	}
	_, werr := io.WriteString(f, b.String())
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("append to step summary %s: %w", path, werr)
	}
	return nil
}

func writeString(w io.Writer, s string) error {
	_, err := io.WriteString(w, s)
	return err
}
