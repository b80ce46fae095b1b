package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Clock is the time source of the scheduler; tests inject a fake one.
type Clock interface {
	Now() time.Time
	// SleepUntil returns at t or when ctx is done.
	SleepUntil(ctx context.Context, t time.Time)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) SleepUntil(ctx context.Context, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
	}
}

// Options configure a run.
type Options struct {
	// Target is the URL measured (ecache://HOST:PORT or redis://HOST:PORT).
	Target string
	// Compare, when set, is measured too, in slices alternating with
	// Target's.
	Compare  string
	Workload Workload
	// Conns is the connections per target; Pipeline the requests in flight
	// per connection.
	Conns, Pipeline int
	// Duration or Ops bound the measured phase (per target); at least one.
	Duration time.Duration
	Ops      int64
	// Rate, when positive, is the open-loop request rate (ops/s): requests
	// are scheduled at fixed intervals and latency is measured from the
	// scheduled time. Zero is closed loop (as fast as the workers go).
	Rate float64
	// Warmup runs the workload unmeasured first.
	Warmup time.Duration
	// Preload writes every key once before measuring.
	Preload bool
	// Slices is the number of alternating slices per target with Compare.
	Slices int
	// Interval is the timeline (and progress line) period; 0 means 1s.
	Interval time.Duration
	// Progress, when set, receives a live status line every Interval.
	Progress io.Writer
	// Clock is the scheduler's time source; nil means the real clock.
	Clock Clock
	// Dial opens a target's driver; nil means Dial.
	Dial func(ctx context.Context, target string, conns, pipeline int) (Driver, error)
}

func (o *Options) defaults() error {
	if o.Conns == 0 {
		o.Conns = 50
	}
	if o.Pipeline == 0 {
		o.Pipeline = 1
	}
	if o.Slices <= 0 {
		o.Slices = 4
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.Dial == nil {
		o.Dial = Dial
	}
	switch {
	case o.Target == "":
		return errors.New("no target: give --target ecache://HOST:PORT or redis://HOST:PORT")
	case o.Duration <= 0 && o.Ops <= 0:
		return errors.New("give --duration or --ops")
	case o.Rate < 0:
		return fmt.Errorf("rate %v is negative", o.Rate)
	case o.Conns < 1 || o.Pipeline < 1:
		return fmt.Errorf("conns %d, pipeline %d: both must be at least 1", o.Conns, o.Pipeline)
	}
	return o.Workload.Validate()
}

// target is one measured target's state across slices.
type target struct {
	url     string
	d       Driver
	rec     *recorder
	elapsed time.Duration
	points  []Point
}

// Run runs the benchmark and returns its report.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	o.Workload = o.Workload.Prepared()
	urls := []string{o.Target}
	if o.Compare != "" {
		urls = append(urls, o.Compare)
	}
	var ts []*target
	defer func() {
		for _, t := range ts {
			t.d.Close()
		}
	}()
	for _, u := range urls {
		d, err := o.Dial(ctx, u, o.Conns, o.Pipeline)
		if err != nil {
			return nil, err
		}
		ts = append(ts, &target{url: u, d: d, rec: newRecorder(4 * runtime.GOMAXPROCS(0))})
	}
	rep := &Report{Started: time.Now().UTC(), Options: optionsInfo(o)}
	for _, t := range ts {
		if o.Preload {
			if err := preload(ctx, t.d, o.Workload); err != nil {
				return nil, fmt.Errorf("preload %s: %w", redact(t.url), err)
			}
		}
		if o.Warmup > 0 {
			p := &phase{d: t.d, o: &o, dur: o.Warmup, seed: 1 << 20}
			p.run(ctx)
		}
	}
	slices := 1
	if len(ts) > 1 {
		slices = o.Slices
	}
	for s := range slices {
		for _, t := range ts {
			if ctx.Err() != nil {
				break
			}
			p := &phase{d: t.d, o: &o, rec: t.rec, seed: s + 1, tgt: t}
			if o.Duration > 0 {
				p.dur = o.Duration / time.Duration(slices)
			}
			if o.Ops > 0 {
				p.ops = o.Ops / int64(slices)
				if s == slices-1 {
					p.ops = o.Ops - p.ops*int64(slices-1)
				}
			}
			t.elapsed += p.run(ctx)
		}
	}
	for _, t := range ts {
		rep.Results = append(rep.Results, t.stats())
	}
	if len(rep.Results) == 2 {
		rep.Ratios = ratios(rep.Results[0], rep.Results[1])
	}
	return rep, ctx.Err()
}

// preload writes every key once, split among the driver's workers.
func preload(ctx context.Context, d Driver, w Workload) error {
	W, B := d.Workers(), d.Batch()
	var wg sync.WaitGroup
	var first atomic.Pointer[error]
	for id := range W {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := NewGenerator(w, -1-id)
			ops := make([]Op, 0, B)
			res := make([]Result, B)
			flush := func() {
				d.Do(ctx, ops, res[:len(ops)])
				for _, r := range res[:len(ops)] {
					if r.Err != nil {
						first.CompareAndSwap(nil, &r.Err)
					}
				}
				ops = ops[:0]
			}
			for k := id; k < w.Keys && ctx.Err() == nil && first.Load() == nil; k += W {
				ops = append(ops, Op{Key: Key(k), Value: g.Value()})
				if len(ops) == B {
					flush()
				}
			}
			if len(ops) > 0 {
				flush()
			}
		}()
	}
	wg.Wait()
	if e := first.Load(); e != nil {
		return *e
	}
	return ctx.Err()
}

// phase is one stretch of load against one driver.
type phase struct {
	d    Driver
	o    *Options
	rec  *recorder // nil: not measured (warmup)
	tgt  *target   // receives timeline points
	dur  time.Duration
	ops  int64
	seed int
}

// run drives the load and returns the measured time.
func (p *phase) run(ctx context.Context) time.Duration {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	clk := p.o.Clock
	W, B := p.d.Workers(), p.d.Batch()
	var period time.Duration
	if p.o.Rate > 0 {
		period = time.Duration(float64(time.Second) / p.o.Rate)
		if period <= 0 {
			period = 1
		}
	}
	start := clk.Now()
	deadline := start.Add(p.dur)
	var next atomic.Int64
	var wg sync.WaitGroup
	for id := range W {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := NewGenerator(p.o.Workload, p.seed*100_003+id)
			ops := make([]Op, B)
			res := make([]Result, B)
			lat := make([]time.Duration, B)
			sched := make([]time.Time, B)
			for ctx.Err() == nil {
				k := next.Add(int64(B)) - int64(B)
				n := int64(B)
				if p.ops > 0 {
					if k >= p.ops {
						return
					}
					n = min(n, p.ops-k)
				}
				if period > 0 {
					for i := range n {
						sched[i] = start.Add(time.Duration(k+i) * period)
					}
					if p.dur > 0 && !sched[0].Before(deadline) {
						return
					}
					clk.SleepUntil(ctx, sched[n-1])
					if ctx.Err() != nil {
						return
					}
				} else if p.dur > 0 && !clk.Now().Before(deadline) {
					return
				}
				for i := range n {
					g.Next(&ops[i])
				}
				begin := clk.Now()
				p.d.Do(ctx, ops[:n], res[:n])
				end := clk.Now()
				for i := range n {
					if period > 0 {
						lat[i] = end.Sub(sched[i])
					} else {
						lat[i] = end.Sub(begin)
					}
				}
				if p.rec != nil {
					p.rec.record(id, ops[:n], res[:n], lat[:n])
				}
			}
		}()
	}
	done := make(chan struct{})
	var tickWG sync.WaitGroup
	if p.rec != nil {
		tickWG.Add(1)
		go func() {
			defer tickWG.Done()
			tk := time.NewTicker(p.o.Interval)
			defer tk.Stop()
			last := time.Now()
			for {
				select {
				case <-done:
					p.point(time.Since(last), true)
					return
				case now := <-tk.C:
					p.point(now.Sub(last), false)
					last = now
				}
			}
		}()
	}
	wg.Wait()
	elapsed := clk.Now().Sub(start)
	close(done)
	tickWG.Wait()
	return elapsed
}

// point takes the interval's numbers into the timeline and the progress
// line.
func (p *phase) point(d time.Duration, final bool) {
	c, h := p.rec.takeInterval()
	if final && (c.Ops == 0 || d < p.o.Interval/4) {
		return // a sliver at the end would plot as noise; totals have it
	}
	t := p.tgt
	var base time.Duration
	if n := len(t.points); n > 0 {
		base = time.Duration(t.points[n-1].TSec * float64(time.Second))
	}
	pt := Point{
		TSec:      (base + d).Seconds(),
		OpsPerSec: float64(c.Ops) / max(d.Seconds(), 1e-9),
		P50Us:     h.ValueAtQuantile(50),
		P99Us:     h.ValueAtQuantile(99),
		MaxUs:     h.Max(),
		Errors:    c.Errors,
	}
	t.points = append(t.points, pt)
	if p.o.Progress != nil && !final {
		fmt.Fprintf(p.o.Progress, "\r%-28s %10.0f ops/s  p99 %7d µs  errors %d   ",
			redact(t.url), pt.OpsPerSec, pt.P99Us, pt.Errors)
	}
}
