// Package timeline draws a run's disk usage over time as an SVG, for CI systems that show files
// rather than GitHub's mermaid: each filesystem's bytes above its use at the start, the phases as
// shaded bands, the peak marked with its value and phase, the disk budget as a line when set.
package timeline

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/kindling-dev/kindling/test/infrastructure/disk"
)

// Timeline is what WriteSVG draws.
type Timeline struct {
	Title string
	// Series are the filesystems' used bytes; Parts directories measured with du at each
	// checkpoint, drawn dotted. Each is drawn above its own first point.
	Series, Parts []disk.Series
	// Phases end at their checkpoints.
	Phases []disk.Phase
	// Budget is what the run may add to a filesystem (E2E_DISK_BUDGET); 0 draws none, and one
	// far above the data is named in the legend only.
	Budget uint64
}

const width, height = 10 * vg.Inch, 5 * vg.Inch

// WriteSVG writes the timeline. Time runs in seconds from the first measurement.
func WriteSVG(w io.Writer, t Timeline) error {
	p, err := chart(t)
	if err != nil {
		return err
	}
	wt, err := p.WriterTo(width, height, "svg")
	if err != nil {
		return err
	}
	_, err = wt.WriteTo(w)
	return err
}

// drawing is a timeline's data in the plot's units.
type drawing struct {
	start   time.Time
	unit    float64
	unitStr string
	lo, hi  float64 // the data's range
	end     float64 // seconds
}

func (d drawing) x(t time.Time) float64 { return t.Sub(d.start).Seconds() }

func chart(t Timeline) (*plot.Plot, error) {
	all := append(slices.Clone(t.Series), t.Parts...)
	d := drawing{}
	first := true
	var top uint64
	for _, s := range all {
		for _, pt := range s.Points {
			if first || pt.Time.Before(d.start) {
				d.start = pt.Time
			}
			first = false
		}
	}
	if first {
		return nil, fmt.Errorf("no disk measurements to draw")
	}
	for _, s := range all {
		for _, pt := range s.Points {
			d.end = max(d.end, d.x(pt.Time))
			top = max(top, sub(pt.Used, s.Points[0].Used))
		}
	}
	d.unit, d.unitStr = 1<<20, "MiB"
	if top >= 2<<30 {
		d.unit, d.unitStr = 1<<30, "GiB"
	}
	above := func(s disk.Series, pt disk.Point) float64 {
		return (float64(pt.Used) - float64(s.Points[0].Used)) / d.unit
	}
	for _, s := range all {
		for _, pt := range s.Points {
			y := above(s, pt)
			d.lo, d.hi = min(d.lo, y), max(d.hi, y)
		}
	}
	budget := float64(t.Budget) / d.unit
	drawBudget := t.Budget > 0 && budget <= 3*max(d.hi, 1)
	if drawBudget {
		d.hi = max(d.hi, budget)
	}
	span := max(d.hi-d.lo, 1)
	yMin, yMax := d.lo-0.05*span, d.hi+0.45*span // room above for the phases' names and the legend

	p := plot.New()
	p.Title.Text = t.Title
	p.X.Label.Text = "seconds since the first measurement"
	p.Y.Label.Text = d.unitStr + " above the start"
	p.X.Min, p.X.Max = 0, max(d.end, 1)
	p.Y.Min, p.Y.Max = yMin, yMax
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.TextStyle.Font.Size = vg.Points(9)

	if err := addPhases(p, d, t.Phases, yMin, yMax); err != nil {
		return nil, err
	}
	zero, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: p.X.Max, Y: 0}})
	if err != nil {
		return nil, err
	}
	zero.Color = color.Gray{Y: 120}
	p.Add(zero)

	var peak struct {
		x, y  float64
		label string
		found bool
	}
	for i, s := range all {
		xys := make(plotter.XYs, len(s.Points))
		for j, pt := range s.Points {
			xys[j] = plotter.XY{X: d.x(pt.Time), Y: above(s, pt)}
			if i < len(t.Series) && (!peak.found || xys[j].Y > peak.y) {
				peak.x, peak.y, peak.label, peak.found = xys[j].X, xys[j].Y, s.Label, true
			}
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("timeline of %s: %w", s.Label, err)
		}
		line.Color = plotutil.Color(i)
		line.Width = vg.Points(1.5)
		if i >= len(t.Series) {
			line.Dashes = []vg.Length{vg.Points(1), vg.Points(2)}
		}
		p.Add(line)
		p.Legend.Add(s.Label, line)
	}
	if t.Budget > 0 {
		label := fmt.Sprintf("disk budget %s", disk.HumanBytes(t.Budget))
		if drawBudget {
			line, err := plotter.NewLine(plotter.XYs{{X: 0, Y: budget}, {X: p.X.Max, Y: budget}})
			if err != nil {
				return nil, err
			}
			line.Color = color.RGBA{R: 200, A: 255}
			line.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
			p.Add(line)
			p.Legend.Add(label, line)
		} else {
			p.Legend.Add(label + " (above the chart)")
		}
	}
	if peak.found && peak.y > 0 {
		if err := addPeak(p, d, peak.x, peak.y, fmt.Sprintf("peak +%s on %s, during %s",
			disk.HumanBytes(uint64(peak.y*d.unit)), peak.label, phaseAt(t.Phases, d.start.Add(time.Duration(peak.x*float64(time.Second)))))); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// addPhases shades every other phase from its start to its checkpoint and names it at the top:
// across the band where the name fits, upright in it where it does not.
func addPhases(p *plot.Plot, d drawing, phases []disk.Phase, yMin, yMax float64) error {
	var across, upright plotter.XYLabels
	plotWidth := float64(width/vg.Inch) * 0.85
	for i, ph := range phases {
		from, to := d.x(ph.Start), d.x(ph.Time)
		if ph.Start.IsZero() || to <= from {
			continue
		}
		if i%2 == 1 {
			band, err := plotter.NewPolygon(plotter.XYs{{X: from, Y: yMin}, {X: to, Y: yMin}, {X: to, Y: yMax}, {X: from, Y: yMax}})
			if err != nil {
				return err
			}
			band.Color = color.RGBA{R: 236, G: 240, B: 248, A: 255}
			band.LineStyle.Width = 0
			p.Add(band)
		}
		inches := (to - from) / p.X.Max * plotWidth
		mid := plotter.XY{X: (from + to) / 2, Y: yMax}
		switch {
		case ph.Name == "START": // the baseline, not work
		case float64(len(ph.Name))*0.075 < inches:
			across.XYs = append(across.XYs, mid)
			across.Labels = append(across.Labels, ph.Name)
		default:
			// Upright names of short phases side by side would overprint: each keeps a line's
			// width from the one before.
			if n := len(upright.XYs); n > 0 {
				mid.X = max(mid.X, upright.XYs[n-1].X+p.X.Max*0.14/plotWidth)
			}
			upright.XYs = append(upright.XYs, mid)
			upright.Labels = append(upright.Labels, ph.Name)
		}
	}
	for _, set := range []struct {
		labels plotter.XYLabels
		rotate bool
	}{{across, false}, {upright, true}} {
		if len(set.labels.XYs) == 0 {
			continue
		}
		labels, err := plotter.NewLabels(set.labels)
		if err != nil {
			return err
		}
		for i := range labels.TextStyle {
			style := &labels.TextStyle[i]
			style.Font.Size = vg.Points(8)
			style.Color = color.Gray{Y: 70}
			style.XAlign, style.YAlign = draw.XCenter, draw.YTop
			if set.rotate {
				style.Rotation = -math.Pi / 2 // read downwards from the top
				style.XAlign, style.YAlign = draw.XLeft, draw.YCenter
			}
		}
		p.Add(labels)
	}
	return nil
}

func addPeak(p *plot.Plot, d drawing, x, y float64, text string) error {
	dot, err := plotter.NewScatter(plotter.XYs{{X: x, Y: y}})
	if err != nil {
		return err
	}
	dot.GlyphStyle.Shape = draw.CircleGlyph{}
	dot.GlyphStyle.Radius = vg.Points(3.5)
	dot.GlyphStyle.Color = color.RGBA{R: 200, A: 255}
	p.Add(dot)
	label, err := plotter.NewLabels(plotter.XYLabels{XYs: []plotter.XY{{X: x, Y: y}}, Labels: []string{text}})
	if err != nil {
		return err
	}
	style := &label.TextStyle[0]
	style.Font.Size = vg.Points(9)
	style.YAlign = draw.YBottom
	style.XAlign = draw.XLeft
	if x > p.X.Max/2 { // keep the text inside the plot
		style.XAlign = draw.XRight
	}
	label.Offset = vg.Point{Y: vg.Points(5)}
	p.Add(label)
	return nil
}

// phaseAt names the phase that was under way at t.
func phaseAt(phases []disk.Phase, t time.Time) string {
	for _, ph := range phases {
		if !t.After(ph.Time) {
			return ph.Name
		}
	}
	return "the end"
}

func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}
