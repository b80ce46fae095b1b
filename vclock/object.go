package vclock

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"

	"github.com/ecachedb/ecache/internal/msgp"
)

// Sibling is one version of an object's value, created by the write its Dot
// names. Two siblings with the same Dot are the same write.
type Sibling struct {
	Dot Dot
	// HLC timestamps the write; last-writer-wins orders siblings by (HLC, node).
	HLC Timestamp
	// Expiry is an absolute deadline in Unix nanoseconds; zero never expires.
	Expiry int64
	// Tombstone marks a delete. A tombstone carries no value.
	Tombstone bool
	// Value is the user's bytes or a CRDT's encoded state.
	Value []byte
}

// Expired reports whether the sibling's deadline has passed at now (Unix
// nanoseconds).
func (s *Sibling) Expired(now int64) bool { return s.Expiry != 0 && s.Expiry <= now }

// Live reports whether the sibling is visible to readers at now: neither a
// tombstone nor expired.
func (s *Sibling) Live(now int64) bool { return !s.Tombstone && !s.Expired(now) }

// Object is a dotted-version-vector set: everything the object has seen
// (Clock) and the concurrent siblings that survive it, sorted by Dot. Every
// sibling's dot is covered by Clock. The zero Object is an absent key.
//
// Objects are values: Update and Join return new ones and never modify their
// arguments, though results may share Value bytes with them.
type Object struct {
	Clock    VV
	Siblings []Sibling
}

// IsZero reports whether o has never been written.
func (o *Object) IsZero() bool { return len(o.Clock) == 0 && len(o.Siblings) == 0 }

// Update applies a write coordinated by node: it issues one new dot for s,
// drops exactly the siblings ctx covers, and keeps every other sibling as
// concurrent with s. ctx is the causal context the writer last read (nil for
// a blind write). The new dot is greater than any counter of node's that the
// object or ctx has seen, so it can never be mistaken for an older write.
func (o Object) Update(ctx VV, node NodeID, s Sibling) (Object, Dot) {
	clock := o.Clock.Join(ctx)
	d := Dot{Node: node, Counter: clock.Get(node) + 1}
	s.Dot = d
	sibs := make([]Sibling, 0, len(o.Siblings)+1)
	for _, x := range o.Siblings {
		if !ctx.Covers(x.Dot) {
			sibs = append(sibs, x)
		}
	}
	i, _ := slices.BinarySearchFunc(sibs, d, func(x Sibling, d Dot) int { return compareDots(x.Dot, d) })
	sibs = slices.Insert(sibs, i, s)
	return Object{Clock: clock.With(d), Siblings: sibs}, d
}

// WithCounterFloor returns o with node's clock entry raised to floor-1 when
// it is lower, so that the next dot issued for node on the result — by
// Update, or by any strategy that takes node's counter plus one — is at
// least floor. o is not modified; the result shares its siblings.
//
// A coordinator passes a floor that only grows (its hybrid logical clock),
// so that it never issues a dot for a key that a replica has seen already,
// even after it has forgotten the key (eviction in a memory-only node,
// tombstone collection): Riak's kv679. The result's clock then covers the
// dots this node issued for the key before it forgot them, so the new
// write supersedes them; dots of other nodes are untouched.
func (o Object) WithCounterFloor(node NodeID, floor uint64) Object {
	if floor == 0 || o.Clock.Get(node) >= floor-1 {
		return o
	}
	return Object{Clock: o.Clock.With(Dot{Node: node, Counter: floor - 1}), Siblings: o.Siblings}
}

// Join merges two replicas' versions of one object. A sibling survives when
// both hold it, or when the other side has not seen its dot; a sibling the
// other side has seen but no longer holds was superseded there. Join is
// commutative, associative and idempotent.
func Join(a, b Object) Object {
	out := Object{Clock: a.Clock.Join(b.Clock)}
	if n := len(a.Siblings) + len(b.Siblings); n > 0 {
		out.Siblings = make([]Sibling, 0, n)
	}
	i, j := 0, 0
	for i < len(a.Siblings) || j < len(b.Siblings) {
		var c int
		switch {
		case j == len(b.Siblings):
			c = -1
		case i == len(a.Siblings):
			c = 1
		default:
			c = compareDots(a.Siblings[i].Dot, b.Siblings[j].Dot)
		}
		switch {
		case c < 0:
			if s := a.Siblings[i]; !b.Clock.Covers(s.Dot) {
				out.Siblings = append(out.Siblings, s)
			}
			i++
		case c > 0:
			if s := b.Siblings[j]; !a.Clock.Covers(s.Dot) {
				out.Siblings = append(out.Siblings, s)
			}
			j++
		default:
			// The same dot is the same write, so the two are equal unless a
			// replica is corrupt; pick deterministically so Join stays
			// commutative even then.
			s, t := a.Siblings[i], b.Siblings[j]
			if compareSiblings(&s, &t) < 0 {
				s = t
			}
			out.Siblings = append(out.Siblings, s)
			i++
			j++
		}
	}
	return out
}

// ObjectsEqual reports whether a and b are the same object.
func ObjectsEqual(a, b Object) bool {
	if a.Clock.Compare(b.Clock) != Equal || len(a.Siblings) != len(b.Siblings) {
		return false
	}
	for i := range a.Siblings {
		if compareSiblings(&a.Siblings[i], &b.Siblings[i]) != 0 {
			return false
		}
	}
	return true
}

// MaxHLC returns the greatest HLC among the siblings.
func (o *Object) MaxHLC() Timestamp {
	var m Timestamp
	for i := range o.Siblings {
		m = max(m, o.Siblings[i].HLC)
	}
	return m
}

// Clone returns a deep copy of o that shares no memory with it.
func (o Object) Clone() Object {
	c := Object{Clock: o.Clock.Clone()}
	if o.Siblings != nil {
		c.Siblings = make([]Sibling, len(o.Siblings))
		for i, s := range o.Siblings {
			s.Value = bytes.Clone(s.Value)
			c.Siblings[i] = s
		}
	}
	return c
}

// Validate checks the invariants: a valid clock, siblings strictly sorted by
// dot, every dot covered by the clock, and no value on a tombstone.
func (o *Object) Validate() error {
	if err := o.Clock.Validate(); err != nil {
		return err
	}
	for i := range o.Siblings {
		s := &o.Siblings[i]
		if s.Dot.Node == 0 || !o.Clock.Covers(s.Dot) {
			return fmt.Errorf("%w: sibling %v not covered by clock %v", ErrMalformed, s.Dot, o.Clock)
		}
		if i > 0 && compareDots(o.Siblings[i-1].Dot, s.Dot) >= 0 {
			return fmt.Errorf("%w: siblings not sorted by dot", ErrMalformed)
		}
		if s.Tombstone && len(s.Value) != 0 {
			return fmt.Errorf("%w: tombstone %v carries a value", ErrMalformed, s.Dot)
		}
		if s.Expiry < 0 {
			return fmt.Errorf("%w: negative expiry", ErrMalformed)
		}
	}
	return nil
}

func compareDots(a, b Dot) int {
	if c := cmp.Compare(a.Node, b.Node); c != 0 {
		return c
	}
	return cmp.Compare(a.Counter, b.Counter)
}

// compareSiblings is a total order on siblings, used only to break ties
// deterministically.
func compareSiblings(a, b *Sibling) int {
	if c := compareDots(a.Dot, b.Dot); c != 0 {
		return c
	}
	if c := cmp.Compare(a.HLC, b.HLC); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Expiry, b.Expiry); c != 0 {
		return c
	}
	if a.Tombstone != b.Tombstone {
		if a.Tombstone {
			return 1
		}
		return -1
	}
	return bytes.Compare(a.Value, b.Value)
}

// siblingFields is the number of fields of an encoded sibling.
const siblingFields = 6

// AppendMsgpack appends o's deterministic encoding: the MessagePack array
// [clock, [sibling...]] where clock is as VV.AppendMsgpack and each sibling
// is [node, counter, hlc, expiry, tombstone, value].
func (o *Object) AppendMsgpack(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 2)
	b = o.Clock.AppendMsgpack(b)
	b = msgp.AppendArrayHeader(b, len(o.Siblings))
	for i := range o.Siblings {
		s := &o.Siblings[i]
		b = msgp.AppendArrayHeader(b, siblingFields)
		b = msgp.AppendUint(b, uint64(s.Dot.Node))
		b = msgp.AppendUint(b, s.Dot.Counter)
		b = msgp.AppendUint(b, uint64(s.HLC))
		b = msgp.AppendInt(b, s.Expiry)
		b = msgp.AppendBool(b, s.Tombstone)
		b = msgp.AppendBytes(b, s.Value)
	}
	return b
}

// EncodedSize returns an upper bound of len(o.AppendMsgpack(nil)).
func (o *Object) EncodedSize() int {
	n := 1 + 5 + len(o.Clock)*18 + 5
	for i := range o.Siblings {
		n += 1 + 9 + 9 + 9 + 9 + 1 + 5 + len(o.Siblings[i].Value)
	}
	return n
}

// DecodeObject decodes an object written by AppendMsgpack into dst, reusing
// dst's slices. Sibling values alias b. Extra trailing fields in an array
// (from newer versions) are skipped; the result is validated.
func DecodeObject(b []byte, dst *Object) error {
	r := msgp.NewReader(b)
	if err := ReadObject(&r, dst); err != nil {
		return err
	}
	if r.Len() != 0 {
		return fmt.Errorf("%w: %d trailing bytes after object", ErrMalformed, r.Len())
	}
	return nil
}

// ReadObject reads one object from r into dst; see DecodeObject.
func ReadObject(r *msgp.Reader, dst *Object) error {
	n, err := r.ArrayHeader()
	if err != nil {
		return fmt.Errorf("%w: object: %w", ErrMalformed, err)
	}
	if n < 2 {
		return fmt.Errorf("%w: object has %d fields, want 2", ErrMalformed, n)
	}
	if dst.Clock, err = ReadVV(r, dst.Clock); err != nil {
		return err
	}
	ns, err := r.ArrayHeader()
	if err != nil {
		return fmt.Errorf("%w: siblings: %w", ErrMalformed, err)
	}
	if cap(dst.Siblings) < ns {
		dst.Siblings = make([]Sibling, ns)
	}
	dst.Siblings = dst.Siblings[:ns]
	for i := range dst.Siblings {
		if err := readSibling(r, &dst.Siblings[i]); err != nil {
			return err
		}
	}
	for k := 2; k < n; k++ {
		if err := r.Skip(); err != nil {
			return fmt.Errorf("%w: object: %w", ErrMalformed, err)
		}
	}
	return dst.Validate()
}

func readSibling(r *msgp.Reader, s *Sibling) error {
	n, err := r.ArrayHeader()
	if err != nil {
		return fmt.Errorf("%w: sibling: %w", ErrMalformed, err)
	}
	if n < siblingFields {
		return fmt.Errorf("%w: sibling has %d fields, want %d", ErrMalformed, n, siblingFields)
	}
	node, err := r.Uint()
	if err != nil {
		return fmt.Errorf("%w: sibling node: %w", ErrMalformed, err)
	}
	if s.Dot.Counter, err = r.Uint(); err != nil {
		return fmt.Errorf("%w: sibling counter: %w", ErrMalformed, err)
	}
	s.Dot.Node = NodeID(node)
	hlc, err := r.Uint()
	if err != nil {
		return fmt.Errorf("%w: sibling hlc: %w", ErrMalformed, err)
	}
	s.HLC = Timestamp(hlc)
	if s.Expiry, err = r.Int(); err != nil {
		return fmt.Errorf("%w: sibling expiry: %w", ErrMalformed, err)
	}
	if s.Tombstone, err = r.Bool(); err != nil {
		return fmt.Errorf("%w: sibling tombstone: %w", ErrMalformed, err)
	}
	if s.Value, err = r.Bytes(); err != nil {
		return fmt.Errorf("%w: sibling value: %w", ErrMalformed, err)
	}
	for k := siblingFields; k < n; k++ {
		if err := r.Skip(); err != nil {
			return fmt.Errorf("%w: sibling: %w", ErrMalformed, err)
		}
	}
	return nil
}
