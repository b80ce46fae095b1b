package merge

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/ecachedb/ecache/internal/msgp"
	"github.com/ecachedb/ecache/vclock"
)

// counterEntry is one node's contribution to a counter: p and n are the
// totals of the increments and decrements the node ever coordinated, rp and
// rn the parts of them that resets have since cancelled. All four only grow,
// so a state is joined by pointwise maximum.
type counterEntry struct {
	node         vclock.NodeID
	p, n, rp, rn uint64
}

// counterState is a counter's entries sorted by node, none of them all zero.
type counterState []counterEntry

// counterFields is the number of integers one entry encodes to.
const counterFields = 5

type counterStrategy struct{}

func (counterStrategy) Name() string { return NameCounter }

func (counterStrategy) Type() Type { return TypeCounter }

func (c counterStrategy) Apply(cur vclock.Object, op Op, at Coordinator) (vclock.Object, error) {
	if err := checkOp(c, op, at, OpIncr, OpDelete, OpExpire); err != nil {
		return vclock.Object{}, err
	}
	sib, err := crdtSibling(&cur)
	if err != nil {
		return vclock.Object{}, err
	}
	var (
		buf [4]counterEntry
		st  = counterState(buf[:0])
		reg register
	)
	if sib != nil {
		if st, err = decodeCounter(sib.Value, st); err != nil {
			return vclock.Object{}, err
		}
		reg = register{hlc: sib.HLC, expiry: sib.Expiry}
	}
	expired := sib != nil && reg.expired(applyNow(at))
	switch op.Kind {
	case OpIncr:
		if expired {
			// An expired counter reads as absent, so an increment starts a
			// new one: cancel what this node has seen and clear the expiry.
			st.reset()
			reg = reg.next(at, 0)
		}
		if st, err = st.add(at.Node, op.Delta); err != nil {
			return vclock.Object{}, err
		}
	case OpDelete:
		if sib == nil {
			return cur, nil // nothing observed, nothing to reset
		}
		st.reset()
	case OpExpire:
		if sib == nil || expired {
			return vclock.Object{}, fmt.Errorf("%w: %s %v", ErrNotFound, NameCounter, op.Kind)
		}
		reg = reg.next(at, op.Expiry)
	}
	clock, d := nextClock(cur.Clock, nil, at.Node)
	return crdtObject(clock, d, reg, st.appendMsgpack(make([]byte, 0, st.encodedSize()))), nil
}

func (counterStrategy) Merge(a, b vclock.Object) vclock.Object {
	sa, errA := crdtSibling(&a)
	sb, errB := crdtSibling(&b)
	var bufA, bufB [4]counterEntry
	var x, y counterState
	if errA == nil && sa != nil {
		x, errA = decodeCounter(sa.Value, bufA[:0])
	}
	if errB == nil && sb != nil {
		y, errB = decodeCounter(sb.Value, bufB[:0])
	}
	switch {
	case errA != nil || errB != nil:
		return mergeMalformed(a, b, errA, errB)
	case sa == nil:
		return cloneShallow(b)
	case sb == nil:
		return cloneShallow(a)
	}
	st := joinCounters(x, y)
	reg := register{hlc: sa.HLC, expiry: sa.Expiry}
	if rb := (register{hlc: sb.HLC, expiry: sb.Expiry}); reg.less(rb) {
		reg = rb
	}
	d := sa.Dot
	if d.Less(sb.Dot) {
		d = sb.Dot
	}
	return crdtObject(a.Clock.Join(b.Clock), d, reg, st.appendMsgpack(make([]byte, 0, st.encodedSize())))
}

func (counterStrategy) Read(obj vclock.Object, now int64) Result {
	sib, err := crdtSibling(&obj)
	if err != nil || sib == nil || sib.Expired(now) {
		return Result{}
	}
	var buf [8]counterEntry
	st, err := decodeCounter(sib.Value, buf[:0])
	if err != nil {
		return Result{}
	}
	v, _ := st.value()
	return Result{Found: true, Counter: v, Expiry: sib.Expiry}
}

// reset cancels everything the state holds: an observed reset. Increments
// that other nodes make concurrently raise their totals beyond what is
// cancelled here and survive; concurrent resets cancel the same totals and
// so do not subtract twice.
func (s counterState) reset() {
	for i := range s {
		s[i].rp, s[i].rn = s[i].p, s[i].n
	}
}

// add adds delta to node's totals.
func (s counterState) add(node vclock.NodeID, delta int64) (counterState, error) {
	if delta == 0 {
		return s, nil
	}
	i := 0
	for i < len(s) && s[i].node < node {
		i++
	}
	if i == len(s) || s[i].node != node {
		s = append(s, counterEntry{})
		copy(s[i+1:], s[i:])
		s[i] = counterEntry{node: node}
	}
	e := &s[i]
	mag := uint64(delta)
	total := &e.p
	if delta < 0 {
		mag = -mag // two's complement: also right for MinInt64
		total = &e.n
	}
	sum, carry := bits.Add64(*total, mag, 0)
	if carry != 0 {
		return nil, fmt.Errorf("%w: node %v total wraps", ErrOverflow, node)
	}
	old := *total
	*total = sum
	if _, ok := s.value(); !ok {
		*total = old
		return nil, fmt.Errorf("%w: adding %d", ErrOverflow, delta)
	}
	return s, nil
}

// value returns the counter's value, saturated to the int64 range, and
// whether it fits. Totals are summed in 128 bits: each fits a uint64 but
// their sum need not, though the difference usually does.
func (s counterState) value() (int64, bool) {
	var pHi, pLo, nHi, nLo, c uint64
	for i := range s {
		e := &s[i]
		pLo, c = bits.Add64(pLo, e.p-e.rp, 0)
		pHi += c
		nLo, c = bits.Add64(nLo, e.n-e.rn, 0)
		nHi += c
	}
	lo, borrow := bits.Sub64(pLo, nLo, 0)
	hi := pHi - nHi - borrow
	switch {
	case hi == 0 && lo <= math.MaxInt64:
		return int64(lo), true
	case hi == math.MaxUint64 && lo >= 1<<63:
		return int64(lo), true
	case int64(hi) < 0:
		return math.MinInt64, false
	}
	return math.MaxInt64, false
}

// joinCounters returns the pointwise maximum of x and y.
func joinCounters(x, y counterState) counterState {
	out := make(counterState, 0, len(x)+len(y))
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case j == len(y) || (i < len(x) && x[i].node < y[j].node):
			out = append(out, x[i])
			i++
		case i == len(x) || y[j].node < x[i].node:
			out = append(out, y[j])
			j++
		default:
			a, b := &x[i], &y[j]
			out = append(out, counterEntry{node: a.node, p: max(a.p, b.p), n: max(a.n, b.n), rp: max(a.rp, b.rp), rn: max(a.rn, b.rn)})
			i++
			j++
		}
	}
	return out
}

// appendMsgpack appends the state's deterministic encoding: a MessagePack
// array of 5 unsigned integers per entry, node, p, n, rp, rn, in node order.
func (s counterState) appendMsgpack(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, counterFields*len(s))
	for i := range s {
		e := &s[i]
		b = msgp.AppendUint(b, uint64(e.node))
		b = msgp.AppendUint(b, e.p)
		b = msgp.AppendUint(b, e.n)
		b = msgp.AppendUint(b, e.rp)
		b = msgp.AppendUint(b, e.rn)
	}
	return b
}

// encodedSize is an upper bound of the encoding's length.
func (s counterState) encodedSize() int { return 5 + len(s)*counterFields*9 }

// decodeCounter decodes a state written by appendMsgpack, appending its
// entries to dst[:0]. It accepts only what appendMsgpack produces: canonical
// integers, nodes non-zero and strictly increasing, no all-zero entry, and
// cancelled parts no greater than their totals.
func decodeCounter(b []byte, dst counterState) (counterState, error) {
	r := newCanonReader(b)
	n, err := r.arrayHeader()
	if err != nil {
		return nil, err
	}
	if n%counterFields != 0 {
		return nil, fmt.Errorf("%w: counter has %d integers, not a multiple of %d", ErrMalformedState, n, counterFields)
	}
	dst = dst[:0]
	var f [counterFields]uint64
	for k := 0; k < n/counterFields; k++ {
		for i := range f {
			if f[i], err = r.uint(); err != nil {
				return nil, err
			}
		}
		e := counterEntry{node: vclock.NodeID(f[0]), p: f[1], n: f[2], rp: f[3], rn: f[4]}
		switch {
		case e.node == 0:
			return nil, fmt.Errorf("%w: counter entry for node zero", ErrMalformedState)
		case k > 0 && dst[k-1].node >= e.node:
			return nil, fmt.Errorf("%w: counter entries not sorted by node", ErrMalformedState)
		case e.p == 0 && e.n == 0:
			return nil, fmt.Errorf("%w: empty counter entry", ErrMalformedState)
		case e.rp > e.p || e.rn > e.n:
			return nil, fmt.Errorf("%w: counter cancels more than its totals", ErrMalformedState)
		}
		dst = append(dst, e)
	}
	if err := r.done(); err != nil {
		return nil, err
	}
	return dst, nil
}
