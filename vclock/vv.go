package vclock

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ecachedb/ecache/internal/msgp"
)

// Entry is one node's counter in a version vector.
type Entry struct {
	Node    NodeID
	Counter uint64
}

// VV is a version vector: entries sorted by node, each counter non-zero. The
// zero value (nil) is the empty vector. Methods never modify their receiver;
// those that return a VV return a new one.
type VV []Entry

// Ordering is the outcome of comparing two version vectors.
type Ordering int8

const (
	// Equal: both vectors have seen exactly the same events.
	Equal Ordering = iota
	// Before: the left vector is strictly dominated by the right one.
	Before
	// After: the left vector strictly dominates the right one.
	After
	// Concurrent: each vector has seen an event the other has not.
	Concurrent
)

func (o Ordering) String() string {
	switch o {
	case Equal:
		return "equal"
	case Before:
		return "before"
	case After:
		return "after"
	case Concurrent:
		return "concurrent"
	}
	return "Ordering(" + strconv.Itoa(int(o)) + ")"
}

// Get returns node n's counter, zero if absent.
func (v VV) Get(n NodeID) uint64 {
	// Vectors are short (one entry per coordinating node), so a linear scan
	// beats a binary search.
	for _, e := range v {
		if e.Node == n {
			return e.Counter
		}
		if e.Node > n {
			break
		}
	}
	return 0
}

// Covers reports whether the vector has seen dot d.
func (v VV) Covers(d Dot) bool {
	return d.Counter != 0 && d.Counter <= v.Get(d.Node)
}

// Compare returns how v relates to o.
func (v VV) Compare(o VV) Ordering {
	vAhead, oAhead := false, false
	i, j := 0, 0
	for i < len(v) || j < len(o) {
		switch {
		case j == len(o) || (i < len(v) && v[i].Node < o[j].Node):
			vAhead = true
			i++
		case i == len(v) || o[j].Node < v[i].Node:
			oAhead = true
			j++
		default:
			if v[i].Counter > o[j].Counter {
				vAhead = true
			} else if v[i].Counter < o[j].Counter {
				oAhead = true
			}
			i++
			j++
		}
		if vAhead && oAhead {
			return Concurrent
		}
	}
	switch {
	case vAhead:
		return After
	case oAhead:
		return Before
	}
	return Equal
}

// Descends reports whether v has seen everything o has (v >= o).
func (v VV) Descends(o VV) bool {
	c := v.Compare(o)
	return c == Equal || c == After
}

// Join returns the pointwise maximum of v and o.
func (v VV) Join(o VV) VV {
	if len(o) == 0 {
		return v.Clone()
	}
	if len(v) == 0 {
		return o.Clone()
	}
	out := make(VV, 0, max(len(v), len(o)))
	i, j := 0, 0
	for i < len(v) || j < len(o) {
		switch {
		case j == len(o) || (i < len(v) && v[i].Node < o[j].Node):
			out = append(out, v[i])
			i++
		case i == len(v) || o[j].Node < v[i].Node:
			out = append(out, o[j])
			j++
		default:
			out = append(out, Entry{v[i].Node, max(v[i].Counter, o[j].Counter)})
			i++
			j++
		}
	}
	return out
}

// With returns a copy of v in which node d.Node's counter is at least
// d.Counter.
func (v VV) With(d Dot) VV {
	out := make(VV, 0, len(v)+1)
	placed := false
	for _, e := range v {
		if !placed && e.Node >= d.Node {
			placed = true
			if e.Node == d.Node {
				out = append(out, Entry{e.Node, max(e.Counter, d.Counter)})
				continue
			}
			if d.Counter != 0 {
				out = append(out, Entry(d))
			}
		}
		out = append(out, e)
	}
	if !placed && d.Counter != 0 {
		out = append(out, Entry(d))
	}
	return out
}

// Clone returns a copy of v that shares no memory with it.
func (v VV) Clone() VV {
	if v == nil {
		return nil
	}
	return slices.Clone(v)
}

// Validate reports whether v is well formed: sorted by node with no duplicate
// node, no zero node and no zero counter.
func (v VV) Validate() error {
	for i, e := range v {
		if e.Node == 0 || e.Counter == 0 {
			return fmt.Errorf("%w: zero node or counter in version vector", ErrMalformed)
		}
		if i > 0 && v[i-1].Node >= e.Node {
			return fmt.Errorf("%w: version vector not sorted by node", ErrMalformed)
		}
	}
	return nil
}

func (v VV) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, e := range v {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(Dot(e).String())
	}
	b.WriteByte('}')
	return b.String()
}

// AppendMsgpack appends v's deterministic encoding: a MessagePack array of
// 2*len(v) unsigned integers, node then counter, in node order.
func (v VV) AppendMsgpack(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 2*len(v))
	for _, e := range v {
		b = msgp.AppendUint(b, uint64(e.Node))
		b = msgp.AppendUint(b, e.Counter)
	}
	return b
}

// ReadVV reads a version vector written by AppendMsgpack and validates it.
// dst's storage is reused when large enough.
func ReadVV(r *msgp.Reader, dst VV) (VV, error) {
	n, err := r.ArrayHeader()
	if err != nil {
		return nil, fmt.Errorf("%w: version vector: %w", ErrMalformed, err)
	}
	if n%2 != 0 {
		return nil, fmt.Errorf("%w: version vector has odd length %d", ErrMalformed, n)
	}
	dst = dst[:0]
	if n == 0 {
		return dst, nil
	}
	if cap(dst) < n/2 {
		dst = make(VV, 0, n/2)
	}
	for i := 0; i < n/2; i++ {
		node, err := r.Uint()
		if err != nil {
			return nil, fmt.Errorf("%w: version vector node: %w", ErrMalformed, err)
		}
		c, err := r.Uint()
		if err != nil {
			return nil, fmt.Errorf("%w: version vector counter: %w", ErrMalformed, err)
		}
		dst = append(dst, Entry{NodeID(node), c})
	}
	if err := dst.Validate(); err != nil {
		return nil, err
	}
	return dst, nil
}

// EncodeContext returns the opaque causal context handed to clients: the
// encoding of v. Clients return it unchanged with their next write.
func EncodeContext(v VV) []byte { return v.AppendMsgpack(nil) }

// DecodeContext parses a causal context from a client. Empty input is the
// empty context (a blind write).
func DecodeContext(b []byte) (VV, error) {
	if len(b) == 0 {
		return nil, nil
	}
	r := msgp.NewReader(b)
	v, err := ReadVV(&r, nil)
	if err != nil {
		return nil, err
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after context", ErrMalformed, r.Len())
	}
	return v, nil
}
