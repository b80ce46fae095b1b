package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Report is a run's outcome: one Stats per target, and the ratios of the
// first to the second when comparing.
type Report struct {
	Started time.Time   `json:"started"`
	Options OptionsInfo `json:"options"`
	Results []Stats     `json:"results"`
	Ratios  *Ratios     `json:"ratios,omitempty"`
}

// OptionsInfo records the workload and load shape of a run.
type OptionsInfo struct {
	Target      string  `json:"target"`
	Compare     string  `json:"compare,omitempty"`
	Ratio       string  `json:"ratio"`
	Keys        int     `json:"keys"`
	Dist        string  `json:"dist"`
	ValueSize   string  `json:"value_size"`
	Conns       int     `json:"conns"`
	Pipeline    int     `json:"pipeline"`
	DurationSec float64 `json:"duration_sec,omitempty"`
	Ops         int64   `json:"ops,omitempty"`
	Rate        float64 `json:"rate,omitempty"`
	WarmupSec   float64 `json:"warmup_sec,omitempty"`
	Preload     bool    `json:"preload"`
	Slices      int     `json:"slices,omitempty"`
}

func optionsInfo(o Options) OptionsInfo {
	w := o.Workload
	vs := fmt.Sprint(w.ValueMin)
	if w.ValueMax != w.ValueMin {
		vs = fmt.Sprintf("%d-%d", w.ValueMin, w.ValueMax)
	}
	oi := OptionsInfo{
		Target: redact(o.Target), Ratio: fmt.Sprintf("%d:%d", w.Gets, w.Sets), Keys: w.Keys,
		Dist: w.Dist(), ValueSize: vs, Conns: o.Conns, Pipeline: o.Pipeline,
		DurationSec: o.Duration.Seconds(), Ops: o.Ops, Rate: o.Rate,
		WarmupSec: o.Warmup.Seconds(), Preload: o.Preload,
	}
	if o.Compare != "" {
		oi.Compare, oi.Slices = redact(o.Compare), o.Slices
	}
	return oi
}

// Stats are one target's measurements. Latencies are in microseconds.
type Stats struct {
	Target      string     `json:"target"`
	Ops         int64      `json:"ops"`
	Gets        int64      `json:"gets"`
	Hits        int64      `json:"hits"`
	Sets        int64      `json:"sets"`
	Errors      int64      `json:"errors"`
	FirstError  string     `json:"first_error,omitempty"`
	ElapsedSec  float64    `json:"elapsed_sec"`
	OpsPerSec   float64    `json:"ops_per_sec"`
	HitRatio    float64    `json:"hit_ratio"`
	Latency     Latency    `json:"latency_us"`
	Percentiles []PctPoint `json:"percentiles"`
	Timeline    []Point    `json:"timeline"`
}

// Latency summarizes a histogram, in microseconds.
type Latency struct {
	P50  int64   `json:"p50"`
	P90  int64   `json:"p90"`
	P99  int64   `json:"p99"`
	P999 int64   `json:"p99_9"`
	Max  int64   `json:"max"`
	Mean float64 `json:"mean"`
}

// PctPoint is one point of the percentile distribution.
type PctPoint struct {
	Percentile float64 `json:"percentile"`
	Us         int64   `json:"us"`
}

// Point is one interval of the latency-over-time series.
type Point struct {
	TSec      float64 `json:"t_sec"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50Us     int64   `json:"p50_us"`
	P99Us     int64   `json:"p99_us"`
	MaxUs     int64   `json:"max_us"`
	Errors    int64   `json:"errors"`
}

// Ratios are the first target's figures over the second's: throughput
// above 1 and latencies below 1 favour the first.
type Ratios struct {
	Throughput float64 `json:"throughput"`
	P50        float64 `json:"p50"`
	P99        float64 `json:"p99"`
	P999       float64 `json:"p99_9"`
}

var distPercentiles = []float64{0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 100}

// Summarize computes the latency summary of h.
func Summarize(h *hdr.Histogram) Latency {
	return Latency{
		P50: h.ValueAtQuantile(50), P90: h.ValueAtQuantile(90), P99: h.ValueAtQuantile(99),
		P999: h.ValueAtQuantile(99.9), Max: h.Max(), Mean: h.Mean(),
	}
}

func statsOf(url string, c counts, h *hdr.Histogram, first error, elapsed time.Duration, pts []Point) Stats {
	s := Stats{
		Target: redact(url), Ops: c.Ops, Gets: c.Gets, Hits: c.Hits, Sets: c.Sets, Errors: c.Errors,
		ElapsedSec: elapsed.Seconds(), Latency: Summarize(h), Timeline: pts,
	}
	if first != nil {
		s.FirstError = first.Error()
	}
	if elapsed > 0 {
		s.OpsPerSec = float64(c.Ops) / elapsed.Seconds()
	}
	if c.Gets > 0 {
		s.HitRatio = float64(c.Hits) / float64(c.Gets)
	}
	if h.TotalCount() > 0 {
		for _, q := range distPercentiles {
			s.Percentiles = append(s.Percentiles, PctPoint{q, h.ValueAtQuantile(q)})
		}
	}
	if s.Timeline == nil {
		s.Timeline = []Point{}
	}
	return s
}

func (t *target) stats() Stats {
	c, h, first := t.rec.totals()
	return statsOf(t.url, c, h, first, t.elapsed, t.points)
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func ratios(a, b Stats) *Ratios {
	return &Ratios{
		Throughput: ratio(a.OpsPerSec, b.OpsPerSec),
		P50:        ratio(float64(a.Latency.P50), float64(b.Latency.P50)),
		P99:        ratio(float64(a.Latency.P99), float64(b.Latency.P99)),
		P999:       ratio(float64(a.Latency.P999), float64(b.Latency.P999)),
	}
}

// WriteText prints the human-readable report.
func (r *Report) WriteText(w io.Writer) error {
	o := r.Options
	var b strings.Builder
	fmt.Fprintf(&b, "workload: GET:SET %s, %d keys %s, values %s B, %d conns x pipeline %d",
		o.Ratio, o.Keys, o.Dist, o.ValueSize, o.Conns, o.Pipeline)
	if o.Rate > 0 {
		fmt.Fprintf(&b, ", open loop at %.0f ops/s", o.Rate)
	} else {
		b.WriteString(", closed loop")
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "%-32s %12s %8s %8s %8s %8s %9s %9s %8s %7s\n",
		"target", "ops/s", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "max µs", "ops", "errors", "hit %")
	for _, s := range r.Results {
		fmt.Fprintf(&b, "%-32s %12.0f %8d %8d %8d %8d %9d %9d %8d %7.1f\n",
			s.Target, s.OpsPerSec, s.Latency.P50, s.Latency.P90, s.Latency.P99, s.Latency.P999,
			s.Latency.Max, s.Ops, s.Errors, 100*s.HitRatio)
		if s.FirstError != "" {
			fmt.Fprintf(&b, "  first error: %s\n", s.FirstError)
		}
	}
	if x := r.Ratios; x != nil {
		fmt.Fprintf(&b, "ratio %s / %s: throughput %.2fx, p50 %.2fx, p99 %.2fx, p99.9 %.2fx\n",
			r.Results[0].Target, r.Results[1].Target, x.Throughput, x.P50, x.P99, x.P999)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

// SaveJSON and SaveHTML write the report to a file.
func (r *Report) SaveJSON(path string) error { return save(path, r.WriteJSON) }

// SaveHTML writes the HTML page to path.
func (r *Report) SaveHTML(path string) error { return save(path, r.WriteHTML) }

func save(path string, fn func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
