package vclock

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Timestamp is a hybrid logical clock reading: the upper 48 bits are
// wall-clock milliseconds since the Unix epoch, the lower 16 a logical
// counter that orders events within one millisecond (or while the wall clock
// lags behind the greatest timestamp seen). Timestamps compare as integers.
type Timestamp uint64

const logicalBits = 16

// MakeTimestamp builds a Timestamp from a wall time and a logical counter.
func MakeTimestamp(wall time.Time, logical uint16) Timestamp {
	return Timestamp(uint64(wall.UnixMilli())<<logicalBits | uint64(logical))
}

// Wall returns the timestamp's wall-clock part.
func (t Timestamp) Wall() time.Time { return time.UnixMilli(int64(t >> logicalBits)) }

// Logical returns the timestamp's logical counter.
func (t Timestamp) Logical() uint16 { return uint16(t) }

func (t Timestamp) String() string {
	return fmt.Sprintf("%s+%d", t.Wall().UTC().Format("2006-01-02T15:04:05.000Z"), t.Logical())
}

// ErrClockDrift reports a remote timestamp further ahead of the local wall
// clock than the HLC's configured maximum offset.
var ErrClockDrift = errors.New("vclock: remote clock too far ahead")

// HLC is a hybrid logical clock. Its readings never go backwards, even when
// the wall clock steps back, and stay close to wall time otherwise. It is safe
// for concurrent use.
type HLC struct {
	now       func() time.Time
	maxOffset time.Duration
	last      atomic.Uint64
}

// NewHLC returns an HLC reading wall time from now (time.Now when nil).
// maxOffset bounds how far ahead of the local wall clock a remote timestamp
// may be for Observe to adopt it; zero means unbounded.
func NewHLC(now func() time.Time, maxOffset time.Duration) *HLC {
	if now == nil {
		now = time.Now
	}
	return &HLC{now: now, maxOffset: maxOffset}
}

func (h *HLC) physical() uint64 {
	ms := h.now().UnixMilli()
	if ms < 0 {
		ms = 0
	}
	return uint64(ms) << logicalBits
}

// Now returns a timestamp greater than every timestamp it returned or
// observed before.
func (h *HLC) Now() Timestamp {
	pt := h.physical()
	for {
		last := h.last.Load()
		next := max(pt, last+1)
		if h.last.CompareAndSwap(last, next) {
			return Timestamp(next)
		}
	}
}

// Observe merges a timestamp seen on a message from another node, so that
// later local readings order after it, and returns a fresh reading. A remote
// timestamp too far ahead of the wall clock is refused with ErrClockDrift and
// not adopted: one node with a broken clock must not drag every other along.
func (h *HLC) Observe(remote Timestamp) (Timestamp, error) {
	pt := h.physical()
	// Compare in whole milliseconds: converting the gap to a Duration would
	// overflow for remote timestamps centuries ahead and let them through.
	if h.maxOffset > 0 && uint64(remote) > pt && uint64(remote)>>logicalBits-pt>>logicalBits > uint64(h.maxOffset/time.Millisecond) {
		return 0, fmt.Errorf("%w: %v is more than %v ahead of local %v", ErrClockDrift, remote, h.maxOffset, Timestamp(pt))
	}
	for {
		last := h.last.Load()
		next := max(pt, last+1, uint64(remote)+1)
		if h.last.CompareAndSwap(last, next) {
			return Timestamp(next), nil
		}
	}
}

// Last returns the greatest timestamp issued or observed so far.
func (h *HLC) Last() Timestamp { return Timestamp(h.last.Load()) }
