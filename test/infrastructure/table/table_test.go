package table

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/fatih/color"
)

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// Colour goes around a cell's text after the columns are aligned: stripped, the table is the
// plain one, and a cell that repeats an earlier one's text is coloured in its own place.
func TestColourKeepsTheColumns(t *testing.T) {
	t.Setenv("NO_COLOR", "") // CI sets it; color.New reads it
	old := color.NoColor
	color.NoColor = false
	t.Cleanup(func() { color.NoColor = old })
	rows := func() [][]Cell {
		return [][]Cell{Headed("NAME", "DELTA"), {Plain("+1 B"), {Text: "+1 B", Style: Grow()}}, {Plain("a long name"), Plain("0 B")}}
	}
	var coloured, plain bytes.Buffer
	if err := Write(&coloured, "  ", rows()); err != nil {
		t.Fatal(err)
	}
	color.NoColor = true
	if err := Write(&plain, "  ", rows()); err != nil {
		t.Fatal(err)
	}
	want := "  NAME         DELTA\n  +1 B         +1 B\n  a long name  0 B\n"
	if plain.String() != want || ansi.ReplaceAllString(coloured.String(), "") != want {
		t.Errorf("plain:\n%s\ncoloured, stripped:\n%s\nwant:\n%s", plain.String(), ansi.ReplaceAllString(coloured.String(), ""), want)
	}
	if !bytes.Contains(coloured.Bytes(), []byte("+1 B         \x1b[33m+1 B\x1b[0m")) {
		t.Errorf("the second +1 B is not the coloured one: %q", coloured.String())
	}
}

func TestMarkdownEscapesCells(t *testing.T) {
	var b bytes.Buffer
	if err := Markdown(&b, []string{"a", "b"}, []string{"---:"}, [][]string{{"x|y", "two\nlines"}}); err != nil {
		t.Fatal(err)
	}
	if want := "| a | b |\n|---:|---|\n| x\\|y | two lines |\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}
