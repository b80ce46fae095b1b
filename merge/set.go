package merge

import (
	"fmt"
	"slices"

	"github.com/ecachedb/ecache/internal/msgp"
	"github.com/ecachedb/ecache/vclock"
)

// setEntry is one member of an ORSWOT and, in the owning setState's dots,
// the dots of the adds that put it there: dots[lo:hi], sorted.
type setEntry struct {
	member []byte
	lo, hi int
}

// setState is an ORSWOT's payload: members sorted bytewise, each with at
// least one dot. The set's clock is the object's clock.
type setState struct {
	entries []setEntry
	dots    []vclock.Dot
}

func (s *setState) dotsOf(i int) []vclock.Dot { return s.dots[s.entries[i].lo:s.entries[i].hi] }

func (s *setState) push(member []byte, dots ...vclock.Dot) {
	lo := len(s.dots)
	s.dots = append(s.dots, dots...)
	s.entries = append(s.entries, setEntry{member: member, lo: lo, hi: len(s.dots)})
}

type setStrategy struct{}

func (setStrategy) Name() string { return NameSet }

func (setStrategy) Type() Type { return TypeSet }

// decodeSetObject returns obj's sibling (nil when absent), state and
// register, checking that every dot in the state is covered by the clock.
func decodeSetObject(obj *vclock.Object) (*vclock.Sibling, setState, error) {
	sib, err := crdtSibling(obj)
	if err != nil || sib == nil {
		return nil, setState{}, err
	}
	st, err := decodeSet(sib.Value)
	if err != nil {
		return nil, setState{}, err
	}
	for _, d := range st.dots {
		if !obj.Clock.Covers(d) {
			return nil, setState{}, fmt.Errorf("%w: set dot %v not covered by clock %v", ErrMalformedState, d, obj.Clock)
		}
	}
	return sib, st, nil
}

func (s setStrategy) Apply(cur vclock.Object, op Op, at Coordinator) (vclock.Object, error) {
	if err := checkOp(s, op, at, OpSAdd, OpSRem, OpDelete, OpExpire); err != nil {
		return vclock.Object{}, err
	}
	sib, st, err := decodeSetObject(&cur)
	if err != nil {
		return vclock.Object{}, err
	}
	var reg register
	if sib != nil {
		reg = register{hlc: sib.HLC, expiry: sib.Expiry}
	}
	expired := sib != nil && reg.expired(applyNow(at))
	var out setState
	switch op.Kind {
	case OpSAdd:
		if len(op.Members) == 0 {
			return cur, nil
		}
		if expired {
			// An expired set reads as absent, so an add starts a new one:
			// remove every observed member and clear the expiry.
			st = setState{}
			reg = reg.next(at, 0)
		}
		clock, d := nextClock(cur.Clock, nil, at.Node)
		return crdtObject(clock, d, reg, st.appendAdd(nil, sortedMembers(op.Members), d)), nil
	case OpSRem:
		var removed bool
		if out, removed = st.remove(sortedMembers(op.Members)); !removed {
			return cur, nil
		}
	case OpDelete:
		if len(st.entries) == 0 {
			return cur, nil
		}
	case OpExpire:
		if sib == nil || expired || len(st.entries) == 0 {
			return vclock.Object{}, fmt.Errorf("%w: %s %v", ErrNotFound, NameSet, op.Kind)
		}
		// The members are unchanged: keep their encoding.
		clock, d := nextClock(cur.Clock, nil, at.Node)
		return crdtObject(clock, d, reg.next(at, op.Expiry), sib.Value), nil
	}
	// Removes issue a dot too, though the ORSWOT merge would not need it, so
	// that a clock which dominates another always means a state that has
	// seen everything the other has.
	clock, d := nextClock(cur.Clock, nil, at.Node)
	return crdtObject(clock, d, reg, out.appendMsgpack(make([]byte, 0, out.encodedSize()))), nil
}

// sortedMembers returns ms sorted bytewise without duplicates, copying the
// slice headers only when ms is not already so.
func sortedMembers(ms [][]byte) [][]byte {
	sorted := true
	for i := 1; i < len(ms) && sorted; i++ {
		sorted = compareMembers(ms[i-1], ms[i]) < 0
	}
	if sorted {
		return ms
	}
	ms = slices.Clone(ms)
	slices.SortFunc(ms, compareMembers)
	return slices.CompactFunc(ms, func(a, b []byte) bool { return compareMembers(a, b) == 0 })
}

// appendAdd appends the encoding of s with each of members (sorted,
// unique) holding the single dot d: an add replaces the dots it has
// observed. It encodes directly rather than building the new state.
func (s *setState) appendAdd(b []byte, members [][]byte, d vclock.Dot) []byte {
	n, size := len(s.entries), s.encodedSize()
	for i, j := 0, 0; j < len(members); j++ {
		for i < len(s.entries) && compareMembers(s.entries[i].member, members[j]) < 0 {
			i++
		}
		if i == len(s.entries) || compareMembers(s.entries[i].member, members[j]) != 0 {
			n++
		}
		size += 5 + len(members[j]) + 1 + 18
	}
	if b == nil {
		b = make([]byte, 0, size)
	}
	b = msgp.AppendArrayHeader(b, 2*n)
	added := []vclock.Dot{d}
	i, j := 0, 0
	for i < len(s.entries) || j < len(members) {
		c := 0
		switch {
		case j == len(members):
			c = -1
		case i == len(s.entries):
			c = 1
		default:
			c = compareMembers(s.entries[i].member, members[j])
		}
		switch {
		case c < 0:
			b = appendSetEntry(b, s.entries[i].member, s.dotsOf(i))
			i++
		case c > 0:
			b = appendSetEntry(b, members[j], added)
			j++
		default:
			b = appendSetEntry(b, members[j], added)
			i++
			j++
		}
	}
	return b
}

// remove returns s without members (sorted, unique) and whether any was
// there.
func (s *setState) remove(members [][]byte) (setState, bool) {
	var out setState
	removed := false
	j := 0
	for i := range s.entries {
		m := s.entries[i].member
		for j < len(members) && compareMembers(members[j], m) < 0 {
			j++
		}
		if j < len(members) && compareMembers(members[j], m) == 0 {
			removed = true
			continue
		}
		out.push(m, s.dotsOf(i)...)
	}
	return out, removed
}

func (setStrategy) Merge(a, b vclock.Object) vclock.Object {
	sa, x, errA := decodeSetObject(&a)
	sb, y, errB := decodeSetObject(&b)
	switch {
	case errA != nil || errB != nil:
		return mergeMalformed(a, b, errA, errB)
	case sa == nil:
		return cloneShallow(b)
	case sb == nil:
		return cloneShallow(a)
	}
	out := setState{
		entries: make([]setEntry, 0, max(len(x.entries), len(y.entries))),
		dots:    make([]vclock.Dot, 0, max(len(x.dots), len(y.dots))),
	}
	i, j := 0, 0
	for i < len(x.entries) || j < len(y.entries) {
		c := 0
		switch {
		case j == len(y.entries):
			c = -1
		case i == len(x.entries):
			c = 1
		default:
			c = compareMembers(x.entries[i].member, y.entries[j].member)
		}
		var member []byte
		lo := len(out.dots)
		switch {
		case c < 0:
			member = x.entries[i].member
			out.dots = keepUnseen(out.dots, x.dotsOf(i), b.Clock)
			i++
		case c > 0:
			member = y.entries[j].member
			out.dots = keepUnseen(out.dots, y.dotsOf(j), a.Clock)
			j++
		default:
			member = x.entries[i].member
			out.dots = joinDots(out.dots, x.dotsOf(i), y.dotsOf(j), a.Clock, b.Clock)
			i++
			j++
		}
		if len(out.dots) > lo {
			out.entries = append(out.entries, setEntry{member: member, lo: lo, hi: len(out.dots)})
		}
	}
	reg := register{hlc: sa.HLC, expiry: sa.Expiry}
	if rb := (register{hlc: sb.HLC, expiry: sb.Expiry}); reg.less(rb) {
		reg = rb
	}
	d := sa.Dot
	if d.Less(sb.Dot) {
		d = sb.Dot
	}
	return crdtObject(a.Clock.Join(b.Clock), d, reg, out.appendMsgpack(make([]byte, 0, out.encodedSize())))
}

// keepUnseen appends the dots of a member only one side holds that the other
// side's clock has not seen: the ones it has seen, it has removed.
func keepUnseen(out, dots []vclock.Dot, other vclock.VV) []vclock.Dot {
	for _, d := range dots {
		if !other.Covers(d) {
			out = append(out, d)
		}
	}
	return out
}

// joinDots appends, in order, the dots of a member both sides hold that
// survive: those both hold, and those one holds that the other has not seen.
func joinDots(out, x, y []vclock.Dot, xClock, yClock vclock.VV) []vclock.Dot {
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		c := 0
		switch {
		case j == len(y):
			c = -1
		case i == len(x):
			c = 1
		default:
			c = compareDots(x[i], y[j])
		}
		switch {
		case c < 0:
			if !yClock.Covers(x[i]) {
				out = append(out, x[i])
			}
			i++
		case c > 0:
			if !xClock.Covers(y[j]) {
				out = append(out, y[j])
			}
			j++
		default:
			out = append(out, x[i])
			i++
			j++
		}
	}
	return out
}

func (setStrategy) Read(obj vclock.Object, now int64) Result {
	sib, st, err := decodeSetObject(&obj)
	if err != nil || sib == nil || sib.Expired(now) || len(st.entries) == 0 {
		return Result{}
	}
	members := make([][]byte, len(st.entries))
	for i := range st.entries {
		members[i] = st.entries[i].member
	}
	return Result{Found: true, Members: members, Expiry: sib.Expiry}
}

// appendMsgpack appends the state's deterministic encoding: a MessagePack
// array alternating each member (a binary string, in bytewise order) and its
// dots (an array of node, counter pairs of unsigned integers, in dot order).
func (s *setState) appendMsgpack(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 2*len(s.entries))
	for i := range s.entries {
		b = appendSetEntry(b, s.entries[i].member, s.dotsOf(i))
	}
	return b
}

func appendSetEntry(b, member []byte, dots []vclock.Dot) []byte {
	b = msgp.AppendBytes(b, member)
	b = msgp.AppendArrayHeader(b, 2*len(dots))
	for _, d := range dots {
		b = msgp.AppendUint(b, uint64(d.Node))
		b = msgp.AppendUint(b, d.Counter)
	}
	return b
}

// encodedSize is an upper bound of the encoding's length.
func (s *setState) encodedSize() int {
	n := 5 + len(s.entries)*(5+5) + len(s.dots)*18
	for i := range s.entries {
		n += len(s.entries[i].member)
	}
	return n
}

// decodeSet decodes a state written by appendMsgpack; members alias b. It
// accepts only what appendMsgpack produces: canonical encodings, members
// strictly increasing, each with a non-empty strictly increasing list of
// dots with non-zero nodes and counters.
func decodeSet(b []byte) (setState, error) {
	r := newCanonReader(b)
	n, err := r.arrayHeader()
	if err != nil {
		return setState{}, err
	}
	if n%2 != 0 {
		return setState{}, fmt.Errorf("%w: set has odd length %d", ErrMalformedState, n)
	}
	st := setState{entries: make([]setEntry, 0, n/2)}
	for k := 0; k < n/2; k++ {
		m, err := r.bytes()
		if err != nil {
			return setState{}, err
		}
		if k > 0 && compareMembers(st.entries[k-1].member, m) >= 0 {
			return setState{}, fmt.Errorf("%w: set members not sorted", ErrMalformedState)
		}
		nd, err := r.arrayHeader()
		if err != nil {
			return setState{}, err
		}
		if nd == 0 || nd%2 != 0 {
			return setState{}, fmt.Errorf("%w: set member has %d dot integers", ErrMalformedState, nd)
		}
		lo := len(st.dots)
		if st.dots == nil {
			// A guess that fits the common single dot per member.
			st.dots = make([]vclock.Dot, 0, max(n/2, nd/2))
		}
		for range nd / 2 {
			node, err := r.uint()
			if err != nil {
				return setState{}, err
			}
			c, err := r.uint()
			if err != nil {
				return setState{}, err
			}
			d := vclock.Dot{Node: vclock.NodeID(node), Counter: c}
			if d.Node == 0 || d.Counter == 0 {
				return setState{}, fmt.Errorf("%w: zero set dot", ErrMalformedState)
			}
			if len(st.dots) > lo && !st.dots[len(st.dots)-1].Less(d) {
				return setState{}, fmt.Errorf("%w: set dots not sorted", ErrMalformedState)
			}
			st.dots = append(st.dots, d)
		}
		st.entries = append(st.entries, setEntry{member: m, lo: lo, hi: len(st.dots)})
	}
	if err := r.done(); err != nil {
		return setState{}, err
	}
	return st, nil
}
