package bench

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
)

// chart geometry
const (
	chartW, chartH = 760, 300
	padL, padR     = 70, 20
	padT, padB     = 20, 40
)

var colors = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd"}

type svgLine struct {
	Color, Dash, Points, Label string
}

type svgTick struct {
	X, Y  float64
	Label string
}

type svgChart struct {
	Title, XLabel, YLabel string
	W, H                  int
	X0, X1, Y0, Y1        float64 // plot area
	Lines                 []svgLine
	XTicks, YTicks        []svgTick
}

type htmlData struct {
	R      *Report
	Charts []svgChart
}

// WriteHTML writes a self-contained page: the summary table, latency over
// time and the percentile distribution as inline SVG (no scripts).
func (r *Report) WriteHTML(w io.Writer) error {
	d := htmlData{R: r, Charts: []svgChart{r.timeChart(), r.pctChart()}}
	return htmlTmpl.Execute(w, d)
}

func newChart(title, xl, yl string) svgChart {
	return svgChart{Title: title, XLabel: xl, YLabel: yl, W: chartW, H: chartH,
		X0: padL, X1: chartW - padR, Y0: padT, Y1: chartH - padB}
}

func (c *svgChart) px(v, lo, hi float64) float64 {
	if hi <= lo {
		hi = lo + 1
	}
	return c.X0 + (v-lo)/(hi-lo)*(c.X1-c.X0)
}

func (c *svgChart) py(v, lo, hi float64) float64 {
	if hi <= lo {
		hi = lo + 1
	}
	return c.Y1 - (v-lo)/(hi-lo)*(c.Y1-c.Y0)
}

// timeChart: p50 (dashed) and p99 per interval, per target, in µs.
func (r *Report) timeChart() svgChart {
	c := newChart("Latency over time", "seconds", "µs (p99 solid, p50 dashed)")
	var tmax, ymax float64
	for _, s := range r.Results {
		for _, p := range s.Timeline {
			tmax = math.Max(tmax, p.TSec)
			ymax = math.Max(ymax, float64(p.P99Us))
		}
	}
	ymax = niceCeil(ymax)
	for i, s := range r.Results {
		col := colors[i%len(colors)]
		var p50, p99 []string
		for _, p := range s.Timeline {
			x := c.px(p.TSec, 0, tmax)
			p50 = append(p50, fmt.Sprintf("%.1f,%.1f", x, c.py(float64(p.P50Us), 0, ymax)))
			p99 = append(p99, fmt.Sprintf("%.1f,%.1f", x, c.py(float64(p.P99Us), 0, ymax)))
		}
		c.Lines = append(c.Lines,
			svgLine{Color: col, Points: strings.Join(p99, " "), Label: s.Target + " p99"},
			svgLine{Color: col, Dash: "4 3", Points: strings.Join(p50, " "), Label: s.Target + " p50"})
	}
	for i := 0; i <= 4; i++ {
		v := tmax * float64(i) / 4
		c.XTicks = append(c.XTicks, svgTick{X: c.px(v, 0, tmax), Y: c.Y1, Label: fmt.Sprintf("%.1f", v)})
		y := ymax * float64(i) / 4
		c.YTicks = append(c.YTicks, svgTick{X: c.X0, Y: c.py(y, 0, ymax), Label: fmt.Sprintf("%.0f", y)})
	}
	return c
}

// pctX maps a percentile to the "nines" axis: log10(1/(1-q)).
func pctX(q float64) float64 {
	q = math.Min(q, 99.9999)
	return math.Log10(100 / (100 - q))
}

// pctChart: latency by percentile, both axes logarithmic.
func (r *Report) pctChart() svgChart {
	c := newChart("Latency by percentile", "percentile", "µs (log)")
	const xmax = 6
	ymax := 1.0
	for _, s := range r.Results {
		for _, p := range s.Percentiles {
			ymax = math.Max(ymax, float64(p.Us))
		}
	}
	lmax := math.Ceil(math.Log10(ymax))
	if lmax < 1 {
		lmax = 1
	}
	for i, s := range r.Results {
		var pts []string
		for _, p := range s.Percentiles {
			y := math.Log10(math.Max(float64(p.Us), 1))
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", c.px(pctX(p.Percentile), 0, xmax), c.py(y, 0, lmax)))
		}
		c.Lines = append(c.Lines, svgLine{Color: colors[i%len(colors)], Points: strings.Join(pts, " "), Label: s.Target})
	}
	for i, l := range []string{"0", "90", "99", "99.9", "99.99", "99.999", "99.9999"} {
		c.XTicks = append(c.XTicks, svgTick{X: c.px(float64(i), 0, xmax), Y: c.Y1, Label: l})
	}
	for e := 0.0; e <= lmax; e++ {
		c.YTicks = append(c.YTicks, svgTick{X: c.X0, Y: c.py(e, 0, lmax), Label: fmt.Sprintf("%.0f", math.Pow(10, e))})
	}
	return c
}

func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

var htmlTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct":   func(f float64) string { return fmt.Sprintf("%.1f", 100*f) },
	"f0":    func(f float64) string { return fmt.Sprintf("%.0f", f) },
	"f2":    func(f float64) string { return fmt.Sprintf("%.2f", f) },
	"add":   func(a float64, b int) float64 { return a + float64(b) },
	"mul14": func(i int) int { return 14*i + 12 },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ecache bench {{.R.Options.Target}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}
td:first-child,th:first-child{text-align:left}
svg{background:#fafafa;border:1px solid #ddd;margin:1em 0;display:block}
svg text{font-size:11px;fill:#444}
</style></head><body>
<h1>ecache bench</h1>
<p>{{.R.Started.Format "2006-01-02 15:04:05 MST"}} — GET:SET {{.R.Options.Ratio}}, {{.R.Options.Keys}} keys {{.R.Options.Dist}},
values {{.R.Options.ValueSize}} B, {{.R.Options.Conns}} conns × pipeline {{.R.Options.Pipeline}}{{if .R.Options.Rate}}, open loop at {{f0 .R.Options.Rate}} ops/s{{else}}, closed loop{{end}}{{if .R.Options.Preload}}, preloaded{{end}}.</p>
<table><tr><th>target</th><th>ops/s</th><th>p50 µs</th><th>p90 µs</th><th>p99 µs</th><th>p99.9 µs</th><th>max µs</th><th>ops</th><th>errors</th><th>hit %</th></tr>
{{range .R.Results}}<tr><td>{{.Target}}</td><td>{{f0 .OpsPerSec}}</td><td>{{.Latency.P50}}</td><td>{{.Latency.P90}}</td><td>{{.Latency.P99}}</td><td>{{.Latency.P999}}</td><td>{{.Latency.Max}}</td><td>{{.Ops}}</td><td>{{.Errors}}</td><td>{{pct .HitRatio}}</td></tr>
{{end}}</table>
{{with .R.Ratios}}<p>Ratio first/second: throughput <b>{{f2 .Throughput}}x</b>, p50 {{f2 .P50}}x, p99 {{f2 .P99}}x, p99.9 {{f2 .P999}}x.</p>{{end}}
{{range .Charts}}<h2>{{.Title}}</h2>
<svg xmlns="http://www.w3.org/2000/svg" width="{{.W}}" height="{{.H}}" viewBox="0 0 {{.W}} {{.H}}">
<line x1="{{.X0}}" y1="{{.Y1}}" x2="{{.X1}}" y2="{{.Y1}}" stroke="#888"/><line x1="{{.X0}}" y1="{{.Y0}}" x2="{{.X0}}" y2="{{.Y1}}" stroke="#888"/>
{{$c := .}}{{range .XTicks}}<line x1="{{.X}}" y1="{{$c.Y0}}" x2="{{.X}}" y2="{{$c.Y1}}" stroke="#eee"/><text x="{{.X}}" y="{{add .Y 14}}" text-anchor="middle">{{.Label}}</text>
{{end}}{{range .YTicks}}<line x1="{{$c.X0}}" y1="{{.Y}}" x2="{{$c.X1}}" y2="{{.Y}}" stroke="#eee"/><text x="{{add .X -6}}" y="{{add .Y 4}}" text-anchor="end">{{.Label}}</text>
{{end}}{{range $i, $l := .Lines}}<polyline fill="none" stroke="{{.Color}}" stroke-width="2"{{if .Dash}} stroke-dasharray="{{.Dash}}"{{end}} points="{{.Points}}"><title>{{.Label}}</title></polyline>
{{end}}<text x="{{.X1}}" y="{{add .Y1 32}}" text-anchor="end">{{.XLabel}}</text><text x="12" y="{{.Y0}}" transform="rotate(-90 12 {{.Y0}})" text-anchor="end">{{.YLabel}}</text>
{{range $i, $l := .Lines}}<text x="{{add $c.X0 10}}" y="{{add $c.Y0 (mul14 $i)}}" fill="{{.Color}}">{{.Label}}</text>
{{end}}</svg>
{{end}}
</body></html>
`))
