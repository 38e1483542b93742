package summary

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/fatih/color"

	"github.com/kindling-dev/kindling/test/infrastructure/disk"
	"github.com/kindling-dev/kindling/test/infrastructure/table"
)

type overall struct {
	label  string
	peak   uint64
	pct    float64
	phase  string
	places []string
}

// overallPeaks returns, per filesystem in first-seen order, the highest phase peak.
func overallPeaks(phases []disk.Phase) []overall {
	var order []string
	by := map[string]*overall{}
	for _, p := range phases {
		for _, c := range p.Filesystems {
			k := c.Key()
			o, ok := by[k]
			if !ok {
				o = &overall{label: c.Filesystem.Label()}
				by[k] = o
				order = append(order, k)
			}
			o.places = c.Places // the latest list: places appear as the run learns them
			if ok && c.Peak <= o.peak {
				continue
			}
			o.peak, o.phase = c.Peak, p.Name
			if capacity := c.Used + c.Free; capacity > 0 {
				o.pct = float64(c.Peak) / float64(capacity) * 100
			}
		}
	}
	out := make([]overall, len(order))
	for i, k := range order {
		out[i] = *by[k]
	}
	return out
}

// writeDisk prints, per phase and filesystem, used at the checkpoint, peak during the phase and delta,
// then the overall peak per filesystem.
func writeDisk(w io.Writer, phases []disk.Phase, sampler error) error {
	if len(phases) == 0 {
		return writeString(w, "disk: no checkpoints recorded\n")
	}
	if err := writeString(w, table.Title().Sprint("disk usage by phase")+"\n"); err != nil {
		return err
	}
	rows := [][]table.Cell{table.Headed("PHASE", "DURATION", "FILESYSTEM", "USED", "PEAK", "DELTA", "SAMPLES")}
	for _, p := range phases {
		if len(p.Filesystems) == 0 {
			rows = append(rows, []table.Cell{table.Plain(p.Name), table.Plain(disk.HumanDuration(p.Elapsed)), table.Plain("-"), {}, {}, {}, table.Plain(samplesText(p))})
		}
		for i, c := range p.Filesystems {
			row := []table.Cell{{}, {}, table.Plain(c.Filesystem.Label()), table.Plain(disk.HumanBytes(c.Used)),
				{Text: disk.HumanBytes(c.Peak), Style: peakStyle(c)}, c.DeltaCell(), {}}
			if i == 0 {
				row[0], row[1], row[6] = table.Plain(p.Name), table.Plain(disk.HumanDuration(p.Elapsed)), table.Plain(samplesText(p))
			}
			rows = append(rows, row)
		}
	}
	if err := table.Write(w, "", rows); err != nil {
		return err
	}
	rows = [][]table.Cell{table.Headed("OVERALL PEAK", "USE%", "DURING", "FILESYSTEM", "HOLDS")}
	for _, o := range overallPeaks(phases) {
		rows = append(rows, []table.Cell{{Text: disk.HumanBytes(o.peak), Style: table.PercentStyle(o.pct)}, {Text: fmt.Sprintf("%.1f%%", o.pct), Style: table.PercentStyle(o.pct)},
			table.Plain(o.phase), table.Plain(o.label), table.Plain(strings.Join(o.places, ", "))})
	}
	if err := writeString(w, "\n"); err != nil {
		return err
	}
	if err := table.Write(w, "", rows); err != nil {
		return err
	}
	if rows := partRows(phases); len(rows) > 0 {
		head := table.Headed("AT THE END OF", "DIRECTORY (du)", "HOLDS", "DELTA", "PATH")
		if err := writeString(w, "\n"); err != nil {
			return err
		}
		if err := table.Write(w, "", append([][]table.Cell{head}, rows...)); err != nil {
			return err
		}
	}
	if sampler != nil {
		return writeString(w, "\n"+table.Warn().Sprint("sampler: last failed measurement: "+sampler.Error())+"\n")
	}
	return nil
}

// partRows are the parts at every checkpoint: what each directory held when the phase ended.
func partRows(phases []disk.Phase) [][]table.Cell {
	var rows [][]table.Cell
	for _, p := range phases {
		for i, c := range p.Parts {
			name := ""
			if i == 0 {
				name = p.Name
			}
			rows = append(rows, []table.Cell{table.Plain(name), table.Plain(c.Name), table.Plain(disk.HumanBytes(uint64(c.Bytes))), c.DeltaCell(), table.Plain(c.Path)})
		}
	}
	return rows
}

// peakStyle highlights a peak above both ends of the phase: space needed only transiently.
func peakStyle(c disk.Change) *color.Color {
	start := int64(c.Used) - c.Delta
	if c.Peak > c.Used && int64(c.Peak) > start {
		return table.Warn()
	}
	return nil
}

func samplesText(p disk.Phase) string {
	if p.FailedSamples > 0 {
		return fmt.Sprintf("%d (%d failed)", p.Samples, p.FailedSamples)
	}
	return fmt.Sprint(p.Samples)
}

// writeDiskMarkdown writes the phase table and overall peaks as GitHub markdown.
func writeDiskMarkdown(w io.Writer, phases []disk.Phase) error {
	var b strings.Builder
	b.WriteString("### Disk usage by phase\n\n")
	if len(phases) == 0 {
		b.WriteString("_no checkpoints recorded_\n")
		return writeString(w, b.String())
	}
	var rows [][]string
	for _, p := range phases {
		for i, c := range p.Filesystems {
			name, dur, samples := "", "", ""
			if i == 0 {
				name, dur, samples = p.Name, disk.HumanDuration(p.Elapsed), samplesText(p)
			}
			delta := disk.HumanDelta(c.Delta)
			if c.New {
				delta = "new"
			}
			rows = append(rows, []string{name, dur, c.Filesystem.Label(), disk.HumanBytes(c.Used), disk.HumanBytes(c.Peak), delta, samples})
		}
		if len(p.Filesystems) == 0 {
			rows = append(rows, []string{p.Name, disk.HumanDuration(p.Elapsed), "-", "", "", "", samplesText(p)})
		}
	}
	table.Markdown(&b, []string{"Phase", "Duration", "Filesystem", "Used", "Peak", "Delta", "Samples"},
		[]string{"---", "---:", "---", "---:", "---:", "---:", "---:"}, rows)
	b.WriteString("\n")
	rows = rows[:0]
	for _, o := range overallPeaks(phases) {
		rows = append(rows, []string{o.label, disk.HumanBytes(o.peak), fmt.Sprintf("%.1f%%", o.pct), o.phase})
	}
	table.Markdown(&b, []string{"Filesystem", "Overall peak", "Use%", "During"},
		[]string{"---", "---:", "---:", "---"}, rows)
	if prows := partRows(phases); len(prows) > 0 {
		rows = rows[:0]
		for _, c := range prows {
			rows = append(rows, []string{c[0].Text, c[1].Text, c[2].Text, c[3].Text, "`" + c[4].Text + "`"})
		}
		b.WriteString("\n")
		table.Markdown(&b, []string{"At the end of", "Directory (du)", "Holds", "Delta", "Path"},
			[]string{"---", "---", "---:", "---:", "---"}, rows)
	}
	writeTimeline(&b, phases)
	return writeString(w, b.String())
}

// writeTimeline draws each filesystem's used bytes at every checkpoint (line) and the peak of the
// phase ending there (bars) as a mermaid xychart, which GitHub renders in a step summary.
func writeTimeline(b *strings.Builder, phases []disk.Phase) {
	type series struct {
		label             string
		names, used, peak []string
	}
	var order []string
	byKey := map[string]*series{}
	for _, p := range phases {
		for _, c := range p.Filesystems {
			k := c.Key()
			s := byKey[k]
			if s == nil {
				s = &series{label: c.Filesystem.Label()}
				byKey[k] = s
				order = append(order, k)
			}
			s.names = append(s.names, strconv.Quote(p.Name))
			s.used = append(s.used, fmt.Sprintf("%.2f", float64(c.Used)/(1<<30)))
			s.peak = append(s.peak, fmt.Sprintf("%.2f", float64(c.Peak)/(1<<30)))
		}
	}
	for _, k := range order {
		s := byKey[k]
		if len(s.names) < 2 {
			continue
		}
		fmt.Fprintf(b, "\n```mermaid\nxychart-beta\n    title %s\n    x-axis [%s]\n    y-axis \"GiB used\"\n    bar [%s]\n    line [%s]\n```\n",
			strconv.Quote("Used on "+s.label+": line at each checkpoint, bars the peak of the phase ending there"),
			strings.Join(s.names, ", "), strings.Join(s.peak, ", "), strings.Join(s.used, ", "))
	}
}

func writeString(w io.Writer, s string) error {
	_, err := io.WriteString(w, s)
	return err
}
