package loadtest

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"os"
	"strings"
)

// series is one line of a chart.
type series struct {
	Name  string
	Color string
	Y     []float64
}

// chart is a line chart over the run's seconds, drawn as inline SVG.
type chart struct {
	Title, Unit string
	X           []float64
	Lines       []series
}

const (
	chartW, chartH = 760.0, 260.0
	padL, padR     = 60.0, 130.0
	padT, padB     = 24.0, 30.0
)

// svg renders the chart; every number in it is computed here, nothing is fetched.
func (c chart) svg() template.HTML {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f">`, chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<text x="%.0f" y="16" font-weight="bold">%s (%s)</text>`, padL, template.HTMLEscapeString(c.Title), template.HTMLEscapeString(c.Unit))
	xmax, ymax := c.bounds()
	c.axes(&b, xmax, ymax)
	for i, s := range c.Lines {
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, s.Color, c.points(s.Y, xmax, ymax))
		y := padT + 16*float64(i) + 8
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="12" height="3" fill="%s"/><text x="%.0f" y="%.0f">%s</text>`,
			chartW-padR+10, y, s.Color, chartW-padR+26, y+4, template.HTMLEscapeString(s.Name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func (c chart) bounds() (xmax, ymax float64) {
	for _, x := range c.X {
		xmax = math.Max(xmax, x)
	}
	for _, s := range c.Lines {
		for _, y := range s.Y {
			ymax = math.Max(ymax, y)
		}
	}
	return math.Max(xmax, 1), niceCeil(ymax)
}

func (c chart) axes(b *strings.Builder, xmax, ymax float64) {
	x0, y0, x1, y1 := padL, chartH-padB, chartW-padR, padT
	fmt.Fprintf(b, `<path d="M%.0f %.0f V%.0f H%.0f" stroke="#444" fill="none"/>`, x0, y1, y0, x1)
	for i := 0; i <= 4; i++ {
		y := y0 - (y0-y1)*float64(i)/4
		fmt.Fprintf(b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`, x0, x1, y, y)
		fmt.Fprintf(b, `<text x="%.0f" y="%.1f" text-anchor="end">%s</text>`, x0-4, y+4, short(ymax*float64(i)/4))
	}
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="end">%s s</text>`, x1, chartH-8, short(xmax))
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f">0</text>`, x0, chartH-8)
}

func (c chart) points(ys []float64, xmax, ymax float64) string {
	var b strings.Builder
	for i, y := range ys {
		px := padL + (chartW-padL-padR)*c.X[i]/xmax
		py := chartH - padB - (chartH-padB-padT)*y/ymax
		fmt.Fprintf(&b, "%.1f,%.1f ", px, py)
	}
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func short(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 10 || v == 0:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2g", v)
}

// charts builds the throughput and latency plots from the timeline.
func (r *Report) charts() []chart {
	n := len(r.Timeline)
	x := make([]float64, n)
	acc, del := make([]float64, n), make([]float64, n)
	p50, p90, p99, pmax := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	for i, p := range r.Timeline {
		x[i] = p.T
		acc[i], del[i] = float64(p.Accepted), float64(p.Delivered)
		p50[i], p90[i], p99[i], pmax[i] = p.P50, p.P90, p.P99, p.Max
	}
	return []chart{
		{Title: "Throughput", Unit: "per second", X: x, Lines: []series{
			{"accepted/s", "#1f77b4", acc}, {"delivered/s", "#2ca02c", del}}},
		{Title: "End-to-end latency percentiles", Unit: "ms", X: x, Lines: []series{
			{"p50", "#2ca02c", p50}, {"p90", "#1f77b4", p90}, {"p99", "#ff7f0e", p99}, {"max", "#d62728", pmax}}},
	}
}

var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>notifyrelay loadtest: {{.R.Scenario}}</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
pre{background:#f6f6f6;padding:1em;overflow:auto}
svg.plot{display:block;margin:1em 0;font-size:11px;background:#fff;border:1px solid #eee}
</style></head><body>
<h1>notifyrelay loadtest: {{.R.Scenario}}</h1>
<p>Target {{.R.Target}}, started {{.R.Started.Format "2006-01-02 15:04:05 MST"}}.</p>
<pre>{{.Table}}</pre>
{{range .Charts}}{{.}}{{end}}
</body></html>
`))

// WriteHTML writes a self-contained page: the table and inline SVG plots.
func (r *Report) WriteHTML(path string) error {
	var table bytes.Buffer
	r.WriteTable(&table)
	var svgs []template.HTML
	if r.Memory == nil {
		for _, c := range append(r.charts(), r.serverCharts()...) {
			svgs = append(svgs, c.svg())
		}
	}
	if r.Ceiling != nil {
		for _, c := range r.Ceiling.charts() {
			c.Title += " — ceiling"
			svgs = append(svgs, c.svg())
		}
	}
	var out bytes.Buffer
	if err := pageTmpl.Execute(&out, map[string]any{"R": r, "Table": table.String(), "Charts": svgs}); err != nil {
		return fmt.Errorf("report HTML: %w", err)
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
