package timeline

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/kindling-dev/kindling/test/infrastructure/disk"
)

func TestWriteSVG(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	series := []disk.Series{
		{Label: "/ (/dev/vda)", Points: []disk.Point{{Time: at(0), Used: 10 << 30}, {Time: at(30), Used: 12 << 30}, {Time: at(60), Used: 11 << 30}}},
		{Label: "/tmp (tmpfs)", Points: []disk.Point{{Time: at(5), Used: 1 << 30}, {Time: at(60), Used: 2 << 30}}},
	}
	parts := []disk.Series{{Label: "containerd snapshots (du)", Points: []disk.Point{{Time: at(30), Used: 3 << 30}, {Time: at(60), Used: 1 << 30}}}}
	phases := []disk.Phase{
		{Checkpoint: disk.Checkpoint{Name: "START", Time: at(0)}},
		{Checkpoint: disk.Checkpoint{Name: "IMAGES_BUILT", Time: at(30)}, Start: at(0)},
		{Checkpoint: disk.Checkpoint{Name: "EXPORTED", Time: at(60)}, Start: at(30)},
	}
	var b bytes.Buffer
	if err := WriteSVG(&b, Timeline{Title: "kindling unit", Series: series, Parts: parts, Phases: phases, Budget: 3 << 30}); err != nil {
		t.Fatal(err)
	}
	// Well-formed XML whose root is svg, naming every filesystem and every phase.
	dec := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	var root string
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
			}
		case xml.CharData:
			text.Write(tok)
		}
	}
	if root != "svg" {
		t.Errorf("root element %q, want svg", root)
	}
	for _, want := range []string{"kindling unit", "/ (/dev/vda)", "/tmp (tmpfs)", "containerd snapshots (du)", "IMAGES_BUILT", "EXPORTED",
		"GiB above the start", "peak +2.0 GiB on / (/dev/vda), during IMAGES_BUILT", "disk budget 3.0 GiB"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("the SVG's text lacks %q", want)
		}
	}
}

func TestWriteSVGWithoutMeasurements(t *testing.T) {
	if err := WriteSVG(io.Discard, Timeline{Title: "empty"}); err == nil {
		t.Error("want an error for a timeline without measurements")
	}
}
