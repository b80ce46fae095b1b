package bench

import (
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: 1 µs to 100 s at 3 significant digits.
const (
	histMin  = 1
	histMax  = 100_000_000
	histSigs = 3
)

// NewHistogram returns a latency histogram in microseconds.
func NewHistogram() *hdr.Histogram { return hdr.New(histMin, histMax, histSigs) }

func micros(d time.Duration) int64 {
	us := d.Microseconds()
	if us < histMin {
		us = histMin
	}
	if us > histMax {
		us = histMax
	}
	return us
}

// counts are a run's operation counters.
type counts struct {
	Ops, Gets, Hits, Sets, Errors int64
}

func (c *counts) add(o counts) {
	c.Ops += o.Ops
	c.Gets += o.Gets
	c.Hits += o.Hits
	c.Sets += o.Sets
	c.Errors += o.Errors
}

// shard is one lock's share of a recorder.
type shard struct {
	mu              sync.Mutex
	total, interval *hdr.Histogram
	tc, ic          counts
	firstErr        error
	_               [64]byte
}

// recorder collects latencies and counts from many workers: each worker
// writes to shard id%len(shards), so workers rarely contend.
type recorder struct {
	shards []*shard
}

func newRecorder(n int) *recorder {
	r := &recorder{shards: make([]*shard, n)}
	for i := range r.shards {
		r.shards[i] = &shard{total: NewHistogram(), interval: NewHistogram()}
	}
	return r
}

// record adds a batch's results.
func (r *recorder) record(worker int, ops []Op, res []Result, lat []time.Duration) {
	s := r.shards[worker%len(r.shards)]
	s.mu.Lock()
	for i := range ops {
		var c counts
		c.Ops = 1
		if ops[i].Get {
			c.Gets = 1
		} else {
			c.Sets = 1
		}
		if res[i].Err != nil {
			c.Errors = 1
			if s.firstErr == nil {
				s.firstErr = res[i].Err
			}
		} else if ops[i].Get && res[i].Hit {
			c.Hits = 1
		}
		us := micros(lat[i])
		s.total.RecordValue(us)
		s.interval.RecordValue(us)
		s.tc.add(c)
		s.ic.add(c)
	}
	s.mu.Unlock()
}

// takeInterval returns and resets the counts and histogram since the last
// call.
func (r *recorder) takeInterval() (counts, *hdr.Histogram) {
	h := NewHistogram()
	var c counts
	for _, s := range r.shards {
		s.mu.Lock()
		h.Merge(s.interval)
		s.interval.Reset()
		c.add(s.ic)
		s.ic = counts{}
		s.mu.Unlock()
	}
	return c, h
}

// totals returns the merged histogram and counts of everything recorded.
func (r *recorder) totals() (counts, *hdr.Histogram, error) {
	h := NewHistogram()
	var c counts
	var first error
	for _, s := range r.shards {
		s.mu.Lock()
		h.Merge(s.total)
		c.add(s.tc)
		if first == nil {
			first = s.firstErr
		}
		s.mu.Unlock()
	}
	return c, h, first
}
