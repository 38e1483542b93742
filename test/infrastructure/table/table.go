// Package table lays out the reports' tables: aligned text columns, coloured in place without
// disturbing the alignment, and GitHub markdown tables.
package table

import (
	"bytes"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/fatih/color"
)

// Styles, made when used: color.New reads NO_COLOR when it is called, and color.NoColor (false
// for non-terminals) when it renders.
func Header() *color.Color { return color.New(color.Bold) }
func Title() *color.Color  { return color.New(color.FgCyan, color.Bold) }
func Grow() *color.Color   { return color.New(color.FgYellow) }
func Shrink() *color.Color { return color.New(color.FgGreen) }
func Warn() *color.Color   { return color.New(color.FgYellow, color.Bold) }
func Crit() *color.Color   { return color.New(color.FgRed, color.Bold) }

// PercentStyle warns from 80 % of a filesystem used, and alarms from 90 %.
func PercentStyle(p float64) *color.Color {
	switch {
	case p >= 90:
		return Crit()
	case p >= 80:
		return Warn()
	default:
		return nil
	}
}

// DeltaStyle shows growth and shrinkage apart.
func DeltaStyle(d int64) *color.Color {
	switch {
	case d > 0:
		return Grow()
	case d < 0:
		return Shrink()
	default:
		return nil
	}
}

// Cell is one table cell, with the style it is printed in (nil: plain).
type Cell struct {
	Text  string
	Style *color.Color
}

// Plain is a cell without style.
func Plain(s string) Cell { return Cell{Text: s} }

// Headed is a row of header cells.
func Headed(names ...string) []Cell {
	row := make([]Cell, len(names))
	for i, n := range names {
		row[i] = Cell{n, Header()}
	}
	return row
}

// WriteText writes rows of plain text as aligned columns.
func WriteText(w io.Writer, indent string, rows [][]string) error {
	cells := make([][]Cell, len(rows))
	for i, row := range rows {
		for _, s := range row {
			cells[i] = append(cells[i], Plain(s))
		}
	}
	return Write(w, indent, cells)
}

// WriteUnder writes title, then rows of plain cells under a bold header.
func WriteUnder(w io.Writer, title string, header []string, rows [][]string) error {
	if _, err := io.WriteString(w, title); err != nil {
		return err
	}
	table := [][]Cell{Headed(header...)}
	for _, row := range rows {
		cells := make([]Cell, len(row))
		for i, s := range row {
			cells[i] = Plain(s)
		}
		table = append(table, cells)
	}
	return Write(w, "", table)
}

// Write aligns rows with text/tabwriter on the plain text, then colours each styled cell in
// place, so escape codes never disturb the alignment.
func Write(w io.Writer, indent string, rows [][]Cell) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	for _, row := range rows {
		for i := range row {
			row[i].Text = oneLine(row[i].Text)
		}
		var line strings.Builder
		for i, c := range row {
			if i > 0 {
				line.WriteByte('\t')
			}
			line.WriteString(c.Text)
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

func colourLine(line string, row []Cell) string {
	var b strings.Builder
	pos := 0
	for _, c := range row {
		if c.Text == "" {
			continue
		}
		i := strings.Index(line[pos:], c.Text)
		if i < 0 {
			break
		}
		start := pos + i
		b.WriteString(line[pos:start])
		if c.Style != nil {
			b.WriteString(c.Style.Sprint(c.Text))
		} else {
			b.WriteString(c.Text)
		}
		pos = start + len(c.Text)
	}
	b.WriteString(line[pos:])
	return b.String()
}

func oneLine(s string) string {
	return strings.TrimSpace(strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s))
}

// Markdown writes a GitHub table; align holds each column's delimiter ("---", "---:"), "---" for
// the columns it does not name.
func Markdown(w io.Writer, header, align []string, rows [][]string) error {
	var b strings.Builder
	b.WriteString("| " + strings.Join(header, " | ") + " |\n|")
	for i := range header {
		a := "---"
		if i < len(align) {
			a = align[i]
		}
		b.WriteString(a + "|")
	}
	b.WriteString("\n")
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = Escape(c)
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Escape makes text safe for a GitHub table cell.
func Escape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ").Replace(s)
}
