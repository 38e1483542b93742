package disk

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	units "github.com/docker/go-units"
	"github.com/fatih/color"
)

// Styles, made when used: color.New reads NO_COLOR when it is called, and color.NoColor (false
// for non-terminals) when it renders.
func styleHeader() *color.Color { return color.New(color.Bold) }
func styleTitle() *color.Color  { return color.New(color.FgCyan, color.Bold) }
func styleGrow() *color.Color   { return color.New(color.FgYellow) }
func styleShrink() *color.Color { return color.New(color.FgGreen) }
func styleWarn() *color.Color   { return color.New(color.FgYellow, color.Bold) }
func styleCrit() *color.Color   { return color.New(color.FgRed, color.Bold) }

var binaryAbbrs = []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

// HumanBytes formats n in binary units with go-units: "512 B", "1.2 GiB", "12.3 GiB", "300 MiB".
func HumanBytes(n uint64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	if s := units.CustomSize("%.1f %s", float64(n), 1024, binaryAbbrs); len(strings.Fields(s)[0]) <= 4 {
		return s
	}
	s := units.CustomSize("%.0f %s", float64(n), 1024, binaryAbbrs)
	if number, unit, _ := strings.Cut(s, " "); number == "1024" { // rounded up into the next unit
		if i := slices.Index(binaryAbbrs, unit); i+1 < len(binaryAbbrs) {
			return "1.0 " + binaryAbbrs[i+1]
		}
	}
	return s
}

// HumanSize formats a byte count that may be negative (a difference) without a "+": "-300 MiB".
func HumanSize(n int64) string {
	if n < 0 {
		return HumanDelta(n)
	}
	return HumanBytes(uint64(n))
}

// HumanDelta formats a signed byte difference: "+1.2 GiB", "-300 MiB", "0 B".
func HumanDelta(d int64) string {
	switch {
	case d > 0:
		return "+" + HumanBytes(uint64(d))
	case d < 0:
		return "-" + HumanBytes(uint64(-(d+1))+1)
	default:
		return "0 B"
	}
}

func humanDuration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

func percentStyle(p float64) *color.Color {
	switch {
	case p >= 90:
		return styleCrit()
	case p >= 80:
		return styleWarn()
	default:
		return nil
	}
}

func deltaStyle(d int64) *color.Color {
	switch {
	case d > 0:
		return styleGrow()
	case d < 0:
		return styleShrink()
	default:
		return nil
	}
}

type cell struct {
	text  string
	style *color.Color
}

func plain(s string) cell { return cell{text: s} }

// WriteTable writes rows of plain text as aligned columns: the one table layout of every report.
func WriteTable(w io.Writer, indent string, rows [][]string) error {
	cells := make([][]cell, len(rows))
	for i, row := range rows {
		for _, s := range row {
			cells[i] = append(cells[i], plain(s))
		}
	}
	return writeTable(w, indent, cells)
}

// writeTable aligns rows with text/tabwriter on the plain text, then colours each styled cell in
// place, so escape codes never disturb the alignment.
func writeTable(w io.Writer, indent string, rows [][]cell) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	for _, row := range rows {
		for i := range row {
			row[i].text = oneLine(row[i].text)
		}
		var line strings.Builder
		for i, c := range row {
			if i > 0 {
				line.WriteByte('\t')
			}
			line.WriteString(c.text)
		}
		line.WriteByte('\n')
		if _, err := io.WriteString(tw, line.String()); err != nil {
			return err
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var out strings.Builder
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	for li, line := range lines {
		line = strings.TrimRight(line, " ")
		out.WriteString(indent)
		if li < len(rows) {
			line = colourLine(line, rows[li])
		}
		out.WriteString(line)
		out.WriteByte('\n')
	}
	_, err := io.WriteString(w, out.String())
	return err
}

func colourLine(line string, row []cell) string {
	var b strings.Builder
	pos := 0
	for _, c := range row {
		if c.text == "" {
			continue
		}
		i := strings.Index(line[pos:], c.text)
		if i < 0 {
			break
		}
		start := pos + i
		b.WriteString(line[pos:start])
		if c.style != nil {
			b.WriteString(c.style.Sprint(c.text))
		} else {
			b.WriteString(c.text)
		}
		pos = start + len(c.text)
	}
	b.WriteString(line[pos:])
	return b.String()
}

func oneLine(s string) string {
	return strings.TrimSpace(strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s))
}

// mdCell escapes text for a GitHub table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ").Replace(s)
}

func writeMarkdownTable(b *strings.Builder, header []string, align []string, rows [][]string) {
	b.WriteString("| " + strings.Join(header, " | ") + " |\n")
	b.WriteString("|" + strings.Join(align, "|") + "|\n")
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = mdCell(c)
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
}
