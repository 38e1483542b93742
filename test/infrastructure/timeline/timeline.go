// Package timeline draws a run's disk usage over time — used bytes of every filesystem, the phases
// marked where they end — as an SVG, for CI systems that show files rather than GitHub's mermaid.
package timeline

import (
	"fmt"
	"image/color"
	"io"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/kindling-dev/kindling/test/infrastructure/disk"
)

// WriteSVG writes the timeline of series, with a dashed line and the checkpoint's name where each
// phase ends. Time runs in seconds from the first point; used bytes are in GiB.
// Parts (directories measured with du at each checkpoint) are drawn dotted.
func WriteSVG(w io.Writer, title string, series, parts []disk.Series, phases []disk.Phase) error {
	var start, end float64
	first := true
	for _, s := range series {
		for _, p := range s.Points {
			t := float64(p.Time.UnixNano()) / 1e9
			if first || t < start {
				start = t
			}
			end = max(end, t)
			first = false
		}
	}
	if first {
		return fmt.Errorf("no disk measurements to draw")
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "seconds since the first measurement"
	p.Y.Label.Text = "GiB used"
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.Left = true
	var top float64
	for i, s := range append(slices.Clone(series), parts...) {
		xys := make(plotter.XYs, len(s.Points))
		for j, pt := range s.Points {
			xys[j].X = float64(pt.Time.UnixNano())/1e9 - start
			xys[j].Y = float64(pt.Used) / (1 << 30)
			top = max(top, xys[j].Y)
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return fmt.Errorf("timeline of %s: %w", s.Label, err)
		}
		line.Color = plotutil.Color(i)
		line.Width = vg.Points(1.5)
		if i >= len(series) {
			line.Dashes = []vg.Length{vg.Points(1), vg.Points(2)}
		}
		p.Add(line)
		p.Legend.Add(s.Label, line)
	}
	top *= 1.1
	p.Y.Max = top
	var marks plotter.XYLabels
	for _, ph := range phases {
		x := float64(ph.Time.UnixNano())/1e9 - start
		if x < 0 {
			continue
		}
		mark, err := plotter.NewLine(plotter.XYs{{X: x, Y: 0}, {X: x, Y: top}})
		if err != nil {
			return err
		}
		mark.Color = color.Gray{Y: 160}
		mark.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
		p.Add(mark)
		marks.XYs = append(marks.XYs, plotter.XY{X: x, Y: top})
		marks.Labels = append(marks.Labels, ph.Name)
	}
	if len(marks.XYs) > 0 {
		labels, err := plotter.NewLabels(marks)
		if err != nil {
			return err
		}
		for i := range labels.TextStyle {
			labels.TextStyle[i].Rotation = -1.5708 // read downwards along the mark
			labels.TextStyle[i].XAlign = draw.XLeft
			labels.TextStyle[i].YAlign = draw.YBottom
		}
		p.Add(labels)
	}
	p.X.Max = max(end-start, 1)
	wt, err := p.WriterTo(10*vg.Inch, 5*vg.Inch, "svg")
	if err != nil {
		return err
	}
	_, err = wt.WriteTo(w)
	return err
}
