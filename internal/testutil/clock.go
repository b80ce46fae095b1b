package testutil

import (
	"sync/atomic"
	"time"
)

// Clock is a settable wall clock for tests of time-driven behaviour (TTL,
// expiry sweeps, HLC): pass its Now where a config takes a clock.
type Clock struct{ ns atomic.Int64 }

// NewClock returns a Clock reading start.
func NewClock(start time.Time) *Clock {
	c := &Clock{}
	c.ns.Store(start.UnixNano())
	return c
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Advance moves the clock by d (which may be negative).
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
