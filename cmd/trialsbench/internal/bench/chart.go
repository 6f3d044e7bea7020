package bench

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// chartSeries is one line of a lag chart.
type chartSeries struct {
	Name   string
	Color  string
	Points [][2]float64 // x seconds, y milliseconds
}

// lagChart draws lag over time as an SVG with a logarithmic lag axis (1 ms
// to the largest lag), so a sub-second scheduler and a minute-long cron
// sweep fit on one chart and both stay readable.
func lagChart(title, xLabel string, series []chartSeries) string {
	const w, h, left, right, top, bottom = 800.0, 420.0, 70.0, 20.0, 40.0, 60.0
	maxX, maxY := 1.0, 10.0
	for _, s := range series {
		for _, p := range s.Points {
			maxX, maxY = math.Max(maxX, p[0]), math.Max(maxY, p[1])
		}
	}
	decades := math.Ceil(math.Log10(maxY))
	x := func(v float64) float64 { return left + v/maxX*(w-left-right) }
	y := func(v float64) float64 {
		v = math.Max(v, 1)
		return h - bottom - math.Log10(v)/decades*(h-top-bottom)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%g" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(title))
	for d := 0.0; d <= decades; d++ {
		yy := y(math.Pow(10, d))
		fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ddd"/>`+"\n", left, yy, w-right, yy)
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, yy+4, msLabel(math.Pow(10, d)))
	}
	step := niceStep(maxX / 8)
	for v := 0.0; v <= maxX+1e-9; v += step {
		xx := x(v)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#eee"/>`+"\n", xx, top, xx, h-bottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle">%g</text>`+"\n", xx, h-bottom+16, v)
	}
	fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="black"/>`+"\n", left, h-bottom, w-right, h-bottom)
	fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="black"/>`+"\n", left, top, left, h-bottom)
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle">%s</text>`+"\n", (left+w-right)/2, h-bottom+38, html.EscapeString(xLabel))
	fmt.Fprintf(&b, `<text x="16" y="%g" transform="rotate(-90 16 %g)" text-anchor="middle">lag (log scale)</text>`+"\n", (top+h-bottom)/2, (top+h-bottom)/2)
	for i, s := range series {
		var pts []string
		for _, p := range s.Points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p[0]), y(p[1])))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", s.Color, strings.Join(pts, " "))
		ly := top + 8 + float64(i)*16
		fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="3"/>`+"\n", w-right-230, ly, w-right-210, ly, s.Color)
		fmt.Fprintf(&b, `<text x="%g" y="%g">%s</text>`+"\n", w-right-204, ly+4, html.EscapeString(s.Name))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func msLabel(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%gs", v/1000)
	}
	return fmt.Sprintf("%gms", v)
}

// niceStep rounds a tick interval up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// seriesOf turns a lag series into chart points of one statistic.
func seriesOf(name, color string, pts []lagPoint, stat func(lagPoint) float64) chartSeries {
	s := chartSeries{Name: name, Color: color}
	for _, p := range pts {
		s.Points = append(s.Points, [2]float64{p.DueS, stat(p)})
	}
	return s
}
