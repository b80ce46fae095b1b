package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecachedb/ecache/node"
	"github.com/ecachedb/ecache/storage"
)

func TestParse(t *testing.T) {
	if g, s, err := ParseRatio("9:1"); err != nil || g != 9 || s != 1 {
		t.Fatalf("ParseRatio(9:1) = %d, %d, %v", g, s, err)
	}
	for _, bad := range []string{"", "9", "0:0", "-1:2", "a:b"} {
		if _, _, err := ParseRatio(bad); err == nil {
			t.Errorf("ParseRatio(%q): no error", bad)
		}
	}
	if z, err := ParseDist("zipf:0.99"); err != nil || z != 0.99 {
		t.Fatalf("ParseDist(zipf:0.99) = %v, %v", z, err)
	}
	if z, err := ParseDist("uniform"); err != nil || z != 0 {
		t.Fatalf("ParseDist(uniform) = %v, %v", z, err)
	}
	for _, bad := range []string{"zipf", "zipf:1", "zipf:-2", "normal"} {
		if _, err := ParseDist(bad); err == nil {
			t.Errorf("ParseDist(%q): no error", bad)
		}
	}
	if lo, hi, err := ParseValueSize("10-200"); err != nil || lo != 10 || hi != 200 {
		t.Fatalf("ParseValueSize(10-200) = %d, %d, %v", lo, hi, err)
	}
	if lo, hi, err := ParseValueSize("100"); err != nil || lo != 100 || hi != 100 {
		t.Fatalf("ParseValueSize(100) = %d, %d, %v", lo, hi, err)
	}
	for _, bad := range []string{"", "x", "20-10", "-5"} {
		if _, _, err := ParseValueSize(bad); err == nil {
			t.Errorf("ParseValueSize(%q): no error", bad)
		}
	}
}

func draw(w Workload, n int) []int {
	g := NewGenerator(w, 0)
	c := make([]int, w.Keys)
	for range n {
		c[g.KeyIndex()]++
	}
	return c
}

// Uniform keys cover the keyspace evenly, within generous bounds.
func TestUniformCoverage(t *testing.T) {
	w := Workload{Gets: 1, Keys: 100, ValueMax: 1, ValueMin: 1, Seed: 42}
	for k, n := range draw(w, 100_000) {
		if n < 700 || n > 1300 {
			t.Errorf("key %d drawn %d times of 100000, want about 1000", k, n)
		}
	}
}

// Zipf concentrates on the top key far more than uniform does, for skews
// below 1 (own generator) and above 1 (math/rand's).
func TestZipfSkew(t *testing.T) {
	const keys, n = 1000, 100_000
	for _, s := range []float64{0.99, 0.5, 1.5} {
		w := Workload{Gets: 1, Keys: keys, Zipf: s, ValueMin: 1, ValueMax: 1, Seed: 7}
		c := draw(w, n)
		top := 0
		for _, v := range c {
			top = max(top, v)
		}
		if c[0] != top {
			t.Errorf("zipf:%v: key 0 drawn %d times, not the most (%d)", s, c[0], top)
		}
		// uniform gives each key 1/keys = 0.1%; the top key's share must be
		// many times that.
		share := float64(top) / n
		if share < 10.0/keys {
			t.Errorf("zipf:%v: top key share %.4f, want at least %.4f", s, share, 10.0/keys)
		}
		if c[keys-1] > top/10 {
			t.Errorf("zipf:%v: coldest key drawn %d times vs top %d", s, c[keys-1], top)
		}
	}
}

// The GET:SET mix is exact over any prefix of a generator's sequence.
func TestRatioExact(t *testing.T) {
	for _, tc := range []struct{ gets, sets, n int }{{9, 1, 10_000}, {1, 3, 999}, {0, 1, 100}, {1, 0, 100}, {7, 5, 1201}} {
		g := NewGenerator(Workload{Gets: tc.gets, Sets: tc.sets, Keys: 10, ValueMin: 1, ValueMax: 1, Seed: 1}, 3)
		gets := 0
		for i := 1; i <= tc.n; i++ {
			var op Op
			g.Next(&op)
			if op.Get {
				gets++
			} else if len(op.Value) != 1 {
				t.Fatalf("SET value size %d", len(op.Value))
			}
			if want := i * tc.gets / (tc.gets + tc.sets); gets != want {
				t.Fatalf("%d:%d after %d ops: %d GETs, want %d", tc.gets, tc.sets, i, gets, want)
			}
		}
	}
}

func TestValueSizeRange(t *testing.T) {
	g := NewGenerator(Workload{Gets: 0, Sets: 1, Keys: 10, ValueMin: 10, ValueMax: 20, Seed: 1}, 0)
	seen := map[int]bool{}
	for range 10_000 {
		var op Op
		g.Next(&op)
		n := len(op.Value)
		if n < 10 || n > 20 {
			t.Fatalf("value size %d outside 10-20", n)
		}
		seen[n] = true
	}
	if len(seen) != 11 {
		t.Fatalf("sizes seen %v, want all of 10..20", seen)
	}
	g = NewGenerator(Workload{Sets: 1, Keys: 10, ValueMin: 100, ValueMax: 100}, 0)
	if n := g.ValueSize(); n != 100 {
		t.Fatalf("fixed size: %d", n)
	}
}

// Two merged histograms give the percentiles of the union.
func TestHistogramMerge(t *testing.T) {
	a, b, all := NewHistogram(), NewHistogram(), NewHistogram()
	for v := int64(1); v <= 5000; v++ {
		h := a
		if v%3 == 0 {
			h = b // interleaved, unequal halves
		}
		h.RecordValue(v * 7)
		all.RecordValue(v * 7)
	}
	r := newRecorder(2)
	r.shards[0].total.Merge(a)
	r.shards[1].total.Merge(b)
	_, m, _ := r.totals()
	if m.TotalCount() != 5000 {
		t.Fatalf("merged count %d", m.TotalCount())
	}
	for _, q := range []float64{0, 50, 90, 99, 99.9, 100} {
		if got, want := m.ValueAtQuantile(q), all.ValueAtQuantile(q); got != want {
			t.Errorf("p%v: merged %d, union %d", q, got, want)
		}
	}
	if l := Summarize(m); l.Max != all.Max() || l.P99 != all.ValueAtQuantile(99) {
		t.Errorf("Summarize = %+v", l)
	}
}

// fakeClock is advanced only by SleepUntil and the fake driver.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) SleepUntil(_ context.Context, t time.Time) {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	c.mu.Unlock()
}
func (c *fakeClock) advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// stallDriver takes 100µs per request, except request number stallAt, which
// stalls for 50ms.
type stallDriver struct {
	clk     *fakeClock
	n       int
	stallAt int
}

func (d *stallDriver) Do(_ context.Context, ops []Op, res []Result) {
	for i := range ops {
		if d.n == d.stallAt {
			d.clk.advance(50 * time.Millisecond)
		} else {
			d.clk.advance(100 * time.Microsecond)
		}
		d.n++
		res[i] = Result{Hit: true}
	}
}
func (d *stallDriver) Workers() int { return 1 }
func (d *stallDriver) Batch() int   { return 1 }
func (d *stallDriver) Close() error { return nil }

func runStall(t *testing.T, rate float64) Stats {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	o := Options{
		Target: "fake://", Workload: Workload{Gets: 1, Keys: 10, ValueMin: 1, ValueMax: 1},
		Conns: 1, Pipeline: 1, Ops: 10, Rate: rate, Clock: clk,
		Dial: func(context.Context, string, int, int) (Driver, error) {
			return &stallDriver{clk: clk, stallAt: 2}, nil
		},
	}
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return rep.Results[0]
}

// Open loop measures from the scheduled time: the requests queued behind a
// stalled one include the stall in their latency. Closed loop (for
// contrast) charges it to the stalled request only.
func TestOpenLoopScheduledLatency(t *testing.T) {
	// 1000 ops/s: request k is scheduled at k ms. Request 2 ends at ~52ms;
	// requests 3..9 start late, so 8 of 10 latencies are >= 40ms.
	open := runStall(t, 1000)
	if open.Ops != 10 || open.Errors != 0 {
		t.Fatalf("open loop: %+v", open)
	}
	if open.Latency.P50 < 40_000 || open.Latency.P90 < 40_000 {
		t.Errorf("open loop p50 %dµs p90 %dµs: the stall is missing from the queued requests", open.Latency.P50, open.Latency.P90)
	}
	if open.Percentiles == nil {
		t.Error("no percentiles")
	}
	closed := runStall(t, 0)
	if closed.Latency.P50 > 1000 || closed.Latency.Max < 50_000 {
		t.Errorf("closed loop p50 %dµs max %dµs: want ~100µs and the 50ms stall", closed.Latency.P50, closed.Latency.Max)
	}
	// The fake clock ran 10 requests at 1ms intervals plus the stall.
	if open.ElapsedSec < 0.05 || open.ElapsedSec > 0.07 {
		t.Errorf("open loop elapsed %vs on the fake clock", open.ElapsedSec)
	}
}

func sampleReport() *Report {
	h := NewHistogram()
	for v := int64(100); v <= 1000; v++ {
		h.RecordValue(v)
	}
	pts := []Point{{TSec: 1, OpsPerSec: 12345, P50Us: 300, P99Us: 987, MaxUs: 1000}, {TSec: 2, OpsPerSec: 12000, P50Us: 310, P99Us: 990, MaxUs: 1000}}
	a := statsOf("ecache://127.0.0.1:1", counts{Ops: 901, Gets: 800, Hits: 600, Sets: 101}, h, nil, time.Second, pts)
	b := statsOf("redis://127.0.0.1:2", counts{Ops: 450, Gets: 400, Hits: 400, Sets: 50, Errors: 3}, h, fmt.Errorf("boom"), time.Second, pts)
	o := Options{Target: "ecache://127.0.0.1:1", Compare: "redis://127.0.0.1:2", Workload: DefaultWorkload(), Conns: 50, Pipeline: 16, Duration: 2 * time.Second, Slices: 4}
	return &Report{Started: time.Unix(0, 0), Options: optionsInfo(o), Results: []Stats{a, b}, Ratios: ratios(a, b)}
}

func TestReportJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var m struct {
		Options map[string]any   `json:"options"`
		Results []map[string]any `json:"results"`
		Ratios  map[string]any   `json:"ratios"`
	}
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"target", "compare", "ratio", "keys", "dist", "value_size", "conns", "pipeline"} {
		if _, ok := m.Options[k]; !ok {
			t.Errorf("options.%s missing", k)
		}
	}
	for _, k := range []string{"ops", "gets", "hits", "sets", "errors", "ops_per_sec", "hit_ratio", "latency_us", "percentiles", "timeline"} {
		if _, ok := m.Results[0][k]; !ok {
			t.Errorf("results[0].%s missing", k)
		}
	}
	lat := m.Results[0]["latency_us"].(map[string]any)
	for _, k := range []string{"p50", "p90", "p99", "p99_9", "max"} {
		if _, ok := lat[k]; !ok {
			t.Errorf("latency_us.%s missing", k)
		}
	}
	if m.Results[0]["hit_ratio"].(float64) != 0.75 {
		t.Errorf("hit_ratio %v, want 0.75", m.Results[0]["hit_ratio"])
	}
	if m.Results[1]["first_error"] != "boom" {
		t.Errorf("first_error %v", m.Results[1]["first_error"])
	}
	if m.Ratios["throughput"].(float64) < 2 {
		t.Errorf("ratios %v", m.Ratios)
	}
}

func TestReportHTMLAndText(t *testing.T) {
	r := sampleReport()
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	s := r.Results[0]
	for _, want := range []string{
		"<svg", "<polyline", "Latency over time", "Latency by percentile",
		fmt.Sprint(s.Latency.P99), fmt.Sprint(s.Latency.P50), fmt.Sprintf("%.0f", s.OpsPerSec),
		"ecache://127.0.0.1:1", "redis://127.0.0.1:2", "2.00x",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if n := strings.Count(html, "<polyline"); n != 2*2+2 {
		t.Errorf("%d polylines, want 6 (p50+p99 per target, one distribution each)", n)
	}
	if strings.Contains(html, "<script") || strings.Contains(html, "http://") && !strings.Contains(html, "http://www.w3.org/2000/svg") {
		t.Error("HTML must be self-contained")
	}
	buf.Reset()
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"throughput 2.00x", "first error: boom", "75.0"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, buf.String())
		}
	}
}

// End to end against an in-process node: native and RESP, interleaved.
func TestRunAgainstNode(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.RESPListen = "127.0.0.1:0"
	cfg.Storage.Persistence = storage.PersistenceNone
	cfg.Storage.MemoryLimit = 16 << 20
	n, err := node.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := Workload{Gets: 3, Sets: 1, Keys: 200, ValueMin: 10, ValueMax: 300, Seed: 5}
	rep, err := Run(ctx, Options{
		Target: "ecache://" + n.Addr(), Compare: "redis://" + n.RESPAddr(),
		Workload: w, Conns: 2, Pipeline: 4, Ops: 400, Preload: true, Slices: 2,
		Interval: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 || rep.Ratios == nil {
		t.Fatalf("report: %+v", rep)
	}
	for _, s := range rep.Results {
		// each worker's generator mixes exactly; across workers, roughly.
		if s.Ops != 400 || s.Errors != 0 || s.Gets+s.Sets != 400 || s.Gets < 250 || s.Gets > 350 {
			t.Errorf("%s: ops %d gets %d sets %d errors %d (%s)", s.Target, s.Ops, s.Gets, s.Sets, s.Errors, s.FirstError)
		}
		if s.HitRatio != 1 {
			t.Errorf("%s: hit ratio %v after preload", s.Target, s.HitRatio)
		}
		if s.Latency.Max <= 0 || s.OpsPerSec <= 0 {
			t.Errorf("%s: latency %+v, %v ops/s", s.Target, s.Latency, s.OpsPerSec)
		}
	}
	// Open loop, a short duration, no preload: some GETs miss.
	rep, err = Run(ctx, Options{
		Target: "ecache://" + n.Addr(), Workload: Workload{Gets: 1, Sets: 1, Keys: 100_000, ValueMin: 8, ValueMax: 8},
		Conns: 2, Pipeline: 2, Duration: 300 * time.Millisecond, Rate: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := rep.Results[0]; s.Errors != 0 || s.Ops == 0 || s.HitRatio == 1 {
		t.Errorf("open loop: ops %d errors %d hit ratio %v", s.Ops, s.Errors, s.HitRatio)
	}
	// Several nodes in one target (here the same one twice).
	rep, err = Run(ctx, Options{
		Target: "ecache://" + n.Addr() + "," + n.Addr(), Workload: w, Conns: 2, Pipeline: 2, Ops: 100,
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := rep.Results[0]; s.Errors != 0 || s.Ops != 100 {
		t.Errorf("two-address target: ops %d errors %d (%s)", s.Ops, s.Errors, s.FirstError)
	}
	for _, bad := range []string{"ecache://127.0.0.1", "ecache://127.0.0.1:1,nohostport"} {
		if d, err := Dial(ctx, bad, 1, 1); err == nil {
			d.Close()
			t.Errorf("Dial(%q) accepted", bad)
		}
	}
}

// Prepared shares the zipf table among generators without changing the
// sequence they draw.
func TestPreparedWorkloadSameSequence(t *testing.T) {
	w := Workload{Gets: 1, Keys: 1000, Zipf: 0.99, ValueMin: 10, ValueMax: 10, Seed: 3}
	p := w.Prepared()
	if p.zipf == nil || p.Prepared().zipf != p.zipf {
		t.Fatal("Prepared did not compute the table once")
	}
	a, b := NewGenerator(w, 7), NewGenerator(p, 7)
	var x, y Op
	for i := range 1000 {
		a.Next(&x)
		b.Next(&y)
		if x.Key != y.Key || x.Get != y.Get {
			t.Fatalf("op %d: %+v vs %+v", i, x, y)
		}
	}
}
