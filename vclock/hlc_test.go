package vclock_test

import (
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/ecachedb/ecache/vclock"
)

// fakeClock is a wall clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	// t is the time Now returns; guarded by mu.
	t time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// t0 is a wall time with sub-millisecond digits, which HLC drops.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535_897_932, time.UTC)

func TestTimestamp(t *testing.T) {
	ts := vclock.MakeTimestamp(t0, 7)
	if got, want := ts.Wall(), t0.Truncate(time.Millisecond); !got.Equal(want) {
		t.Errorf("Wall() = %v, want %v", got, want)
	}
	if ts.Logical() != 7 {
		t.Errorf("Logical() = %d, want 7", ts.Logical())
	}
	if got, want := ts.String(), "2025-03-14T15:09:26.535Z+7"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if a, b := vclock.MakeTimestamp(t0, math.MaxUint16), vclock.MakeTimestamp(t0.Add(time.Millisecond), 0); a >= b {
		t.Errorf("a later millisecond does not order after the largest logical counter: %v >= %v", a, b)
	}
	if a, b := vclock.MakeTimestamp(t0, 1), vclock.MakeTimestamp(t0, 2); a >= b {
		t.Errorf("logical counters do not order timestamps: %v >= %v", a, b)
	}
}

func TestHLCNowStrictlyIncreasing(t *testing.T) {
	clk := newFakeClock(t0)
	h := vclock.NewHLC(clk.Now, time.Second)
	prev := h.Now()
	for i := range 100_000 {
		if i%1000 == 0 {
			clk.Add(time.Millisecond)
		}
		ts := h.Now()
		if ts <= prev {
			t.Fatalf("call %d: Now() = %v, not after %v", i, ts, prev)
		}
		if h.Last() != ts {
			t.Fatalf("Last() = %v after Now() returned %v", h.Last(), ts)
		}
		prev = ts
	}
}

func TestHLCWallClockStepsBack(t *testing.T) {
	clk := newFakeClock(t0)
	h := vclock.NewHLC(clk.Now, time.Second)
	first := h.Now()
	if want := vclock.MakeTimestamp(t0, 0); first != want {
		t.Fatalf("first Now() = %v, want %v", first, want)
	}
	clk.Add(-5 * time.Second)
	prev := first
	for i := 1; i <= 100; i++ {
		ts := h.Now()
		if ts <= prev {
			t.Fatalf("after the clock stepped back, Now() = %v, not after %v", ts, prev)
		}
		if !ts.Wall().Equal(first.Wall()) || ts.Logical() != uint16(i) {
			t.Fatalf("reading %d = %v, want wall %v with logical %d", i, ts, first.Wall(), i)
		}
		prev = ts
		if i%10 == 0 {
			clk.Add(time.Millisecond) // still behind
		}
	}
	// Once wall time passes the last reading, readings follow it again.
	clk.Set(t0.Add(time.Second))
	if got, want := h.Now(), vclock.MakeTimestamp(t0.Add(time.Second), 0); got != want {
		t.Errorf("after the clock caught up, Now() = %v, want %v", got, want)
	}
}

func TestHLCFollowsWallClockForward(t *testing.T) {
	clk := newFakeClock(t0)
	h := vclock.NewHLC(clk.Now, time.Second)
	h.Now()
	h.Now()
	if ts := h.Now(); ts.Logical() != 2 {
		t.Fatalf("third reading in one millisecond has logical %d, want 2", ts.Logical())
	}
	for _, step := range []time.Duration{time.Millisecond, 10 * time.Millisecond, time.Hour} {
		clk.Add(step)
		want := vclock.MakeTimestamp(clk.Now(), 0)
		if got := h.Now(); got != want {
			t.Errorf("after +%v, Now() = %v, want %v", step, got, want)
		}
	}
	// Sub-millisecond progress is invisible to the wall part.
	clk.Add(time.Microsecond)
	if got := h.Now(); got.Logical() != 1 {
		t.Errorf("within the same millisecond, Now() = %v, want logical 1", got)
	}
}

func TestHLCObserve(t *testing.T) {
	tests := []struct {
		name   string
		remote vclock.Timestamp
	}{
		{"ahead within max offset", vclock.MakeTimestamp(t0.Add(300*time.Millisecond), 5)},
		{"exactly max offset ahead", vclock.MakeTimestamp(t0.Add(time.Second), 0)},
		{"max offset ahead with logical", vclock.MakeTimestamp(t0.Add(time.Second), math.MaxUint16)},
		{"same millisecond, larger logical", vclock.MakeTimestamp(t0, 40)},
		{"behind", vclock.MakeTimestamp(t0.Add(-time.Hour), 3)},
		{"zero", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock(t0)
			h := vclock.NewHLC(clk.Now, time.Second)
			before := h.Now()
			got, err := h.Observe(tt.remote)
			if err != nil {
				t.Fatalf("Observe(%v) = %v", tt.remote, err)
			}
			if got <= tt.remote || got <= before {
				t.Errorf("Observe(%v) = %v, want after the remote and %v", tt.remote, got, before)
			}
			if h.Last() != got {
				t.Errorf("Last() = %v, want %v", h.Last(), got)
			}
			for range 3 {
				if ts := h.Now(); ts <= tt.remote || ts <= got {
					t.Fatalf("Now() = %v after observing %v", ts, tt.remote)
				}
			}
		})
	}
}

func TestHLCObserveDrift(t *testing.T) {
	tests := []struct {
		name   string
		remote vclock.Timestamp
	}{
		{"just past max offset", vclock.MakeTimestamp(t0.Add(time.Second+time.Millisecond), 0)},
		{"minutes ahead", vclock.MakeTimestamp(t0.Add(5*time.Minute), 0)},
		{"years ahead", vclock.MakeTimestamp(t0.AddDate(30, 0, 0), 0)},
		// Gaps whose nanoseconds overflow an int64 must not wrap around into
		// acceptable offsets.
		{"centuries ahead", vclock.MakeTimestamp(time.Date(2400, 1, 1, 0, 0, 0, 0, time.UTC), 0)},
		{"top bit", 1 << 63},
		{"maximum", math.MaxUint64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock(t0)
			h := vclock.NewHLC(clk.Now, time.Second)
			h.Now()
			last := h.Last()
			got, err := h.Observe(tt.remote)
			if !errors.Is(err, vclock.ErrClockDrift) {
				t.Fatalf("Observe(%v) = %v, %v; want ErrClockDrift", tt.remote, got, err)
			}
			if h.Last() != last {
				t.Errorf("refused Observe moved Last() from %v to %v", last, h.Last())
			}
			if ts := h.Now(); ts.Wall().After(t0) {
				t.Errorf("Now() = %v after a refused Observe, want the local wall time", ts)
			}
		})
	}
}

func TestHLCObserveUnbounded(t *testing.T) {
	clk := newFakeClock(t0)
	h := vclock.NewHLC(clk.Now, 0)
	remote := vclock.MakeTimestamp(t0.AddDate(1, 0, 0), 0)
	got, err := h.Observe(remote)
	if err != nil || got <= remote {
		t.Fatalf("Observe(%v) with no max offset = %v, %v", remote, got, err)
	}
	if ts := h.Now(); ts <= remote {
		t.Errorf("Now() = %v, not after the adopted %v", ts, remote)
	}
}

func TestHLCBeforeEpoch(t *testing.T) {
	clk := newFakeClock(time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC))
	h := vclock.NewHLC(clk.Now, time.Second)
	a, b := h.Now(), h.Now()
	if a >= b {
		t.Errorf("readings before the epoch do not increase: %v, %v", a, b)
	}
}

func TestHLCDefaultsToTimeNow(t *testing.T) {
	h := vclock.NewHLC(nil, 0)
	before := time.Now().Truncate(time.Millisecond)
	ts := h.Now()
	after := time.Now()
	if w := ts.Wall(); w.Before(before) || w.After(after) {
		t.Errorf("Now() wall %v outside [%v, %v]", w, before, after)
	}
}

func TestHLCConcurrentNow(t *testing.T) {
	const goroutines, perGoroutine = 8, 5000
	clk := newFakeClock(t0)
	h := vclock.NewHLC(clk.Now, time.Second)
	results := make([][]vclock.Timestamp, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]vclock.Timestamp, 0, perGoroutine)
			for i := range perGoroutine {
				switch i % 500 {
				case 0:
					clk.Add(time.Millisecond)
				case 250:
					clk.Add(-3 * time.Millisecond)
				}
				if i%100 == 0 {
					if _, err := h.Observe(h.Last()); err != nil {
						t.Errorf("Observe: %v", err)
					}
				}
				out = append(out, h.Now())
			}
			results[g] = out
		}()
	}
	wg.Wait()
	seen := make(map[vclock.Timestamp]bool, goroutines*perGoroutine)
	for g, out := range results {
		for i, ts := range out {
			if seen[ts] {
				t.Fatalf("timestamp %v returned twice", ts)
			}
			seen[ts] = true
			if i > 0 && ts <= out[i-1] {
				t.Fatalf("goroutine %d: reading %d = %v, not after %v", g, i, ts, out[i-1])
			}
			if ts > h.Last() {
				t.Fatalf("reading %v is after Last() = %v", ts, h.Last())
			}
		}
	}
}
