package merge

import (
	"fmt"
	"math"
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

// SetObject is a set object decoded into a mutable form in which an add or
// remove costs O(members in the op) rather than O(members in the set): a
// store keeps one for a large, hot set and encodes it (Object) only when
// the object itself is needed — for a read, a scan, persistence or
// replication. Apply is setStrategy.Apply for OpSAdd and OpSRem performed in
// place: the object it yields encodes to the same bytes (property-tested),
// so replication and merge never see a difference.
//
// Object re-encodes incrementally: it keeps the state's last encoding and
// the members touched since, and merges the two in one pass that copies
// the untouched runs of the old encoding as they are (no per-member
// allocation, no sort of the whole set). A SetObject is not safe for
// concurrent use; the store serialises it under the key's lock.
type SetObject struct {
	live    bool // a sibling exists (the object is not zero)
	clock   vclock.VV
	dot     vclock.Dot
	reg     register
	members map[string][]vclock.Dot // dot slices are never modified in place
	// body is the encoded size of the entries (without the array header).
	body     int
	maxValue int // bound of the encoded state; 0 for none

	// enc is the state's encoding as of the last Object (or NewSetObject),
	// never modified (objects returned by Object share it); touched holds
	// the members added, re-added or removed since. full means enc is of no
	// use (an add restarted an expired set, or there was none).
	enc     []byte
	touched map[string]struct{}
	full    bool
}

// NewSetObject decodes obj, a set object (the zero Object for an absent
// key), into a SetObject whose encoded state Apply keeps within maxValue
// bytes (0: unbounded). The result shares no memory with obj.
func NewSetObject(obj vclock.Object, maxValue int) (*SetObject, error) {
	sib, st, err := decodeSetObject(&obj)
	if err != nil {
		return nil, err
	}
	s := &SetObject{
		members:  make(map[string][]vclock.Dot, len(st.entries)),
		touched:  make(map[string]struct{}),
		maxValue: maxValue,
		full:     true,
	}
	if sib == nil {
		return s, nil
	}
	s.live = true
	s.clock = obj.Clock.Clone()
	s.dot = sib.Dot
	s.reg = register{hlc: sib.HLC, expiry: sib.Expiry}
	s.enc, s.full = slices.Clone(sib.Value), false
	for i := range st.entries {
		m := string(st.entries[i].member)
		dots := slices.Clone(st.dotsOf(i))
		s.members[m] = dots
		s.body += setEntrySize(len(m), dots)
	}
	return s, nil
}

// setEntrySize is the encoded size of a member of n bytes and its dots.
func setEntrySize(n int, dots []vclock.Dot) int {
	size := bytesHeaderSize(n) + n + arrayHeaderSize(2*len(dots))
	for _, d := range dots {
		size += uintSize(uint64(d.Node)) + uintSize(d.Counter)
	}
	return size
}

// EncodedSize is the size of the encoded set state (the sibling's value).
func (s *SetObject) EncodedSize() int { return arrayHeaderSize(2*len(s.members)) + s.body }

// MemSize estimates the memory s holds, in bytes: the map with its members
// and dots, and the last encoding.
func (s *SetObject) MemSize() int { return 64 + 2*s.body + 64*len(s.members) + 16*len(s.touched) }

// MaxHLC is the greatest HLC in the object, as vclock.Object.MaxHLC.
func (s *SetObject) MaxHLC() vclock.Timestamp { return s.reg.hlc }

// Has reports whether a reader at now (Unix nanoseconds) sees member.
func (s *SetObject) Has(member []byte, now int64) bool {
	if !s.live || s.reg.expired(now) {
		return false
	}
	_, ok := s.members[string(member)]
	return ok
}

// Len is how many members a reader at now sees.
func (s *SetObject) Len(now int64) int {
	if !s.live || s.reg.expired(now) {
		return 0
	}
	return len(s.members)
}

// Apply performs an OpSAdd or OpSRem as its coordinator at, exactly as the
// set strategy's Apply would on s's object, and reports whether the object
// changed. An add that would grow the state beyond the bound NewSetObject
// was given fails with ErrStateTooLarge and changes nothing.
// FloorCounter raises node's clock entry to floor-1 when it is lower, as
// vclock.Object.WithCounterFloor does for a stored object (a set that is
// absent stays so: it has no sibling to carry the clock), so the next dot
// Apply issues for node is at least floor.
func (s *SetObject) FloorCounter(node vclock.NodeID, floor uint64) {
	if s.live && floor > 0 && s.clock.Get(node) < floor-1 {
		s.clock = s.clock.With(vclock.Dot{Node: node, Counter: floor - 1})
	}
}

func (s *SetObject) Apply(op Op, at Coordinator) (bool, error) {
	if err := checkOp(setStrategy{}, op, at, OpSAdd, OpSRem); err != nil {
		return false, err
	}
	if len(op.Members) == 0 {
		return false, nil
	}
	members := sortedMembers(op.Members)
	if op.Kind == OpSRem {
		removed := false
		for _, m := range members {
			if dots, ok := s.members[string(m)]; ok {
				s.body -= setEntrySize(len(m), dots)
				delete(s.members, string(m))
				s.touch(m)
				removed = true
			}
		}
		if !removed {
			return false, nil
		}
		s.clock, s.dot = nextClock(s.clock, nil, at.Node)
		return true, nil
	}
	// OpSAdd: check the bound before changing anything.
	expired := s.live && s.reg.expired(applyNow(at))
	body, n := s.body, len(s.members)
	if expired {
		body, n = 0, 0
	}
	d := vclock.Dot{Node: at.Node, Counter: s.clock.Get(at.Node) + 1}
	added := []vclock.Dot{d}
	for _, m := range members {
		if old, ok := s.members[string(m)]; ok && !expired {
			body -= setEntrySize(len(m), old)
		} else {
			n++
		}
		body += setEntrySize(len(m), added)
	}
	if s.maxValue > 0 && arrayHeaderSize(2*n)+body > s.maxValue {
		return false, fmt.Errorf("%w: set state of %d bytes, limit %d", ErrStateTooLarge, arrayHeaderSize(2*n)+body, s.maxValue)
	}
	if expired {
		// As in setStrategy.Apply: an add to an expired set starts a new one.
		clear(s.members)
		clear(s.touched)
		s.full = true
		s.reg = s.reg.next(at, 0)
	}
	for _, m := range members {
		s.members[string(m)] = added
		s.touch(m)
	}
	s.body = body
	s.live = true
	s.clock, s.dot = nextClock(s.clock, nil, at.Node)
	return true, nil
}

func (s *SetObject) touch(m []byte) {
	if !s.full {
		s.touched[string(m)] = struct{}{}
	}
}

// Object encodes s: the object the set strategy would hold after the same
// operations. The result shares memory with s that s never modifies.
func (s *SetObject) Object() vclock.Object {
	if !s.live {
		return vclock.Object{}
	}
	var b []byte
	switch {
	case !s.full && len(s.touched) == 0:
		b = s.enc
	case !s.full:
		b = s.appendMerged(make([]byte, 0, s.EncodedSize()))
	}
	if b == nil {
		b = s.appendFull(make([]byte, 0, s.EncodedSize()))
	}
	s.enc, s.full = b, false
	clear(s.touched)
	// nextClock gives every op a new clock slice, so sharing it is safe.
	return crdtObject(s.clock, s.dot, s.reg, b)
}

// appendFull appends the encoding of every member, sorting them all.
func (s *SetObject) appendFull(b []byte) []byte {
	keys := make([]string, 0, len(s.members))
	for m := range s.members {
		keys = append(keys, m)
	}
	slices.Sort(keys)
	b = msgp.AppendArrayHeader(b, 2*len(keys))
	for _, m := range keys {
		b = s.appendMember(b, m)
	}
	return b
}

func (s *SetObject) appendMember(b []byte, m string) []byte {
	b = appendBinString(b, m)
	dots := s.members[m]
	b = msgp.AppendArrayHeader(b, 2*len(dots))
	for _, d := range dots {
		b = msgp.AppendUint(b, uint64(d.Node))
		b = msgp.AppendUint(b, d.Counter)
	}
	return b
}

// appendMerged appends the encoding of the members by merging enc with the
// touched members in one pass. It returns nil if enc does not parse (it
// always should: it is an encoding this package wrote or validated).
func (s *SetObject) appendMerged(b []byte) []byte {
	keys := make([]string, 0, len(s.touched))
	for m := range s.touched {
		keys = append(keys, m)
	}
	slices.Sort(keys)
	b = msgp.AppendArrayHeader(b, 2*len(s.members))
	pos, ok := skipArrayHeader(s.enc, 0)
	if !ok {
		return nil
	}
	run, k := pos, 0 // enc[run:pos] is an untouched run not yet copied
	emit := func(m string) {
		if _, live := s.members[m]; live {
			b = s.appendMember(b, m)
		}
	}
	for pos < len(s.enc) {
		m, next, ok := scanSetEntry(s.enc, pos)
		if !ok {
			return nil
		}
		for k < len(keys) && keys[k] < string(m) {
			b = append(b, s.enc[run:pos]...)
			run = pos
			emit(keys[k])
			k++
		}
		if k < len(keys) && keys[k] == string(m) {
			b = append(b, s.enc[run:pos]...)
			run = next
			emit(keys[k])
			k++
		}
		pos = next
	}
	b = append(b, s.enc[run:]...)
	for ; k < len(keys); k++ {
		emit(keys[k])
	}
	return b
}

// skipArrayHeader returns the offset after the array header at b[i:].
func skipArrayHeader(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch t := b[i]; {
	case t&0xf0 == 0x90:
		return i + 1, true
	case t == 0xdc:
		return i + 3, i+3 <= len(b)
	case t == 0xdd:
		return i + 5, i+5 <= len(b)
	}
	return 0, false
}

// scanSetEntry reads the member at b[i:] and returns it with the offset
// after its dots, without decoding them.
func scanSetEntry(b []byte, i int) (member []byte, next int, ok bool) {
	if i >= len(b) {
		return nil, 0, false
	}
	var n, h int
	switch b[i] {
	case 0xc4:
		if i+2 > len(b) {
			return nil, 0, false
		}
		n, h = int(b[i+1]), 2
	case 0xc5:
		if i+3 > len(b) {
			return nil, 0, false
		}
		n, h = int(b[i+1])<<8|int(b[i+2]), 3
	case 0xc6:
		if i+5 > len(b) {
			return nil, 0, false
		}
		n, h = int(b[i+1])<<24|int(b[i+2])<<16|int(b[i+3])<<8|int(b[i+4]), 5
	default:
		return nil, 0, false
	}
	if i+h+n > len(b) {
		return nil, 0, false
	}
	member, i = b[i+h:i+h+n], i+h+n
	if i >= len(b) {
		return nil, 0, false
	}
	var cnt int
	switch t := b[i]; {
	case t&0xf0 == 0x90:
		cnt, i = int(t&0x0f), i+1
	case t == 0xdc && i+3 <= len(b):
		cnt, i = int(b[i+1])<<8|int(b[i+2]), i+3
	default:
		return nil, 0, false
	}
	for range cnt {
		if i >= len(b) {
			return nil, 0, false
		}
		switch t := b[i]; {
		case t < 0x80:
			i++
		case t == 0xcc:
			i += 2
		case t == 0xcd:
			i += 3
		case t == 0xce:
			i += 5
		case t == 0xcf:
			i += 9
		default:
			return nil, 0, false
		}
	}
	return member, i, i <= len(b)
}

// appendBinString is msgp.AppendBytes for a member held as a string.
func appendBinString(b []byte, v string) []byte {
	n := len(v)
	switch {
	case n <= math.MaxUint8:
		b = append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		b = append(b, 0xc5, byte(n>>8), byte(n))
	default:
		b = append(b, 0xc6, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, v...)
}
