package merge

import (
	"bytes"
	"fmt"

	"github.com/ecachedb/ecache/internal/msgp"
	"github.com/ecachedb/ecache/vclock"
)

// This file holds what the counter and set strategies share: an object is
// absent (zero) or one sibling carrying the encoded state, and the sibling's
// (HLC, Expiry) is a last-writer-wins expiry register.

// register is the expiry register of a counter or set. Merge keeps the
// greater (hlc, expiry). A key created without one has the zero register,
// which every explicit expiry write beats.
type register struct {
	hlc    vclock.Timestamp
	expiry int64
}

func (r register) less(o register) bool {
	if r.hlc != o.hlc {
		return r.hlc < o.hlc
	}
	return r.expiry < o.expiry
}

func (r register) expired(now int64) bool { return r.expiry != 0 && r.expiry <= now }

// next is a register write by the coordinator at: its timestamp exceeds the
// one it overwrites, so a causally later write wins even when the
// coordinator's clock is behind the previous writer's.
func (r register) next(at Coordinator, expiry int64) register {
	h := at.HLC
	if h <= r.hlc {
		h = r.hlc + 1
	}
	return register{hlc: h, expiry: expiry}
}

// crdtSibling checks that obj is a zero object or a valid object with exactly
// one live-flagged sibling, and returns that sibling (nil when zero).
func crdtSibling(obj *vclock.Object) (*vclock.Sibling, error) {
	if obj.IsZero() {
		return nil, nil
	}
	if len(obj.Siblings) != 1 {
		return nil, fmt.Errorf("%w: %d siblings, want 1", ErrMalformedState, len(obj.Siblings))
	}
	s := &obj.Siblings[0]
	if s.Tombstone {
		return nil, fmt.Errorf("%w: tombstone sibling", ErrMalformedState)
	}
	if err := obj.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedState, err)
	}
	return s, nil
}

// crdtObject builds a counter or set object.
func crdtObject(clock vclock.VV, d vclock.Dot, reg register, state []byte) vclock.Object {
	return vclock.Object{Clock: clock, Siblings: []vclock.Sibling{{Dot: d, HLC: reg.hlc, Expiry: reg.expiry, Value: state}}}
}

// mergeMalformed is Merge when one side or both are not valid states: a
// malformed side is treated as absent, so it can never cover (and so drop)
// what the valid side holds.
func mergeMalformed(a, b vclock.Object, errA, errB error) vclock.Object {
	switch {
	case errA == nil:
		return cloneShallow(a)
	case errB == nil:
		return cloneShallow(b)
	}
	return vclock.Object{}
}

// cloneShallow copies o's clock and sibling slice but shares Value bytes, so
// that a caller decoding into its result cannot overwrite an argument.
func cloneShallow(o vclock.Object) vclock.Object {
	c := vclock.Object{Clock: o.Clock.Clone()}
	if o.Siblings != nil {
		c.Siblings = append([]vclock.Sibling(nil), o.Siblings...)
	}
	return c
}

// canonReader reads the MessagePack forms msgp writes and nothing else: a
// state that decodes re-encodes to the same bytes, so replicas holding equal
// states hash them identically.
type canonReader struct {
	b []byte
	r msgp.Reader
}

func newCanonReader(b []byte) canonReader { return canonReader{b: b, r: msgp.NewReader(b)} }

func (c *canonReader) done() error {
	if c.r.Len() != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformedState, c.r.Len())
	}
	return nil
}

func (c *canonReader) arrayHeader() (int, error) {
	off := c.r.Offset()
	n, err := c.r.ArrayHeader()
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrMalformedState, err)
	}
	if c.r.Offset()-off != arrayHeaderSize(n) {
		return 0, fmt.Errorf("%w: non-canonical array header", ErrMalformedState)
	}
	return n, nil
}

func (c *canonReader) uint() (uint64, error) {
	off := c.r.Offset()
	v, err := c.r.Uint()
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrMalformedState, err)
	}
	// The shortest length alone would admit a signed encoding of the same
	// size (int64 for values above MaxUint32).
	if t := c.b[off]; (t >= 0x80 && (t < 0xcc || t > 0xcf)) || c.r.Offset()-off != uintSize(v) {
		return 0, fmt.Errorf("%w: non-canonical integer", ErrMalformedState)
	}
	return v, nil
}

func (c *canonReader) bytes() ([]byte, error) {
	off := c.r.Offset()
	v, err := c.r.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedState, err)
	}
	if t := c.b[off]; t < 0xc4 || t > 0xc6 || c.r.Offset()-off != bytesHeaderSize(len(v))+len(v) {
		return nil, fmt.Errorf("%w: non-canonical byte string", ErrMalformedState)
	}
	return v, nil
}

func arrayHeaderSize(n int) int {
	switch {
	case n < 16:
		return 1
	case n <= 0xffff:
		return 3
	}
	return 5
}

func uintSize(v uint64) int {
	switch {
	case v < 0x80:
		return 1
	case v <= 0xff:
		return 2
	case v <= 0xffff:
		return 3
	case v <= 0xffffffff:
		return 5
	}
	return 9
}

func bytesHeaderSize(n int) int {
	switch {
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	}
	return 5
}

// compareMembers orders set members bytewise.
func compareMembers(a, b []byte) int { return bytes.Compare(a, b) }
