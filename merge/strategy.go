package merge

import (
	"fmt"
	"math"
	"strconv"

	"github.com/ecachedb/ecache/vclock"
)

// Type says which operations a strategy accepts. The values are persisted
// and sent between nodes: the list is append-only.
type Type uint8

const (
	// TypeValue strategies hold opaque values: OpPut, OpDelete, OpExpire.
	TypeValue Type = iota + 1
	// TypeCounter strategies hold an integer: OpIncr, OpDelete, OpExpire.
	TypeCounter
	// TypeSet strategies hold a set of byte strings: OpSAdd, OpSRem,
	// OpDelete, OpExpire.
	TypeSet
)

func (t Type) String() string {
	switch t {
	case TypeValue:
		return "value"
	case TypeCounter:
		return "counter"
	case TypeSet:
		return "set"
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// OpKind is the kind of a write. The values are persisted and sent between
// nodes: the list is append-only. The zero OpKind is invalid, so a forgotten
// field is never taken for a put.
type OpKind uint8

const (
	// OpPut writes Op.Value with expiry Op.Expiry.
	OpPut OpKind = iota + 1
	// OpDelete deletes: a tombstone for values, an observed reset for
	// counters, an observed remove of every member for sets.
	OpDelete
	// OpIncr adds Op.Delta to a counter.
	OpIncr
	// OpSAdd adds Op.Members to a set.
	OpSAdd
	// OpSRem removes Op.Members from a set.
	OpSRem
	// OpExpire sets the expiry of a live key to Op.Expiry (0 removes it).
	OpExpire
)

func (k OpKind) String() string {
	switch k {
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	case OpIncr:
		return "incr"
	case OpSAdd:
		return "sadd"
	case OpSRem:
		return "srem"
	case OpExpire:
		return "expire"
	}
	return "OpKind(" + strconv.Itoa(int(k)) + ")"
}

// Op is one client write, before a coordinator applies it.
type Op struct {
	Kind OpKind
	// Context is the causal context the client last read (value types); nil
	// is a blind write. Counters and sets ignore it.
	Context vclock.VV
	// Value is the new value of an OpPut.
	Value []byte
	// Delta is what OpIncr adds; negative decrements.
	Delta int64
	// Members are the members of an OpSAdd or OpSRem.
	Members [][]byte
	// Expiry is an absolute deadline in Unix nanoseconds, 0 for none: the new
	// version's expiry for OpPut, the new expiry for OpExpire (0 persists).
	Expiry int64
}

// Coordinator is the node applying an op and the HLC reading it took for it.
// The reading's wall-clock part is also the "now" against which Apply decides
// whether the current version has expired.
type Coordinator struct {
	Node vclock.NodeID
	HLC  vclock.Timestamp
}

// Result is what a reader sees. Its byte slices alias the object read.
type Result struct {
	Found bool
	// Values are the values of the live siblings in dot order (value types;
	// lww: at most one).
	Values [][]byte
	// Counter is a counter's value, saturated to the int64 range.
	Counter int64
	// Members are a set's members, sorted bytewise.
	Members [][]byte
	// Expiry is the governing expiry of what was returned, 0 for none; with
	// several siblings, the earliest non-zero one.
	Expiry int64
}

// Strategy decides how one namespace's objects are written, merged and read.
// Implementations must be safe for concurrent use and keep no per-key state.
//
// Objects are values: no method modifies its arguments, and results may
// share memory with them (Apply's result may alias op.Value and cur; Read's
// result aliases obj). Callers that reuse those buffers must encode or Clone
// first.
type Strategy interface {
	// Name is the name namespaces use to select the strategy.
	Name() string
	// Type says which op kinds Apply accepts.
	Type() Type
	// Apply performs op as its coordinator on cur (the zero Object when the
	// key is absent), issuing at most one new dot. Unsupported op kinds
	// return an error wrapping ErrWrongType that names strategy and op.
	Apply(cur vclock.Object, op Op, at Coordinator) (vclock.Object, error)
	// Merge joins two replicas' versions of one key. It is commutative,
	// associative and idempotent, and never modifies its arguments.
	Merge(a, b vclock.Object) vclock.Object
	// Read returns what a reader sees at now (Unix nanoseconds).
	Read(obj vclock.Object, now int64) Result
}

// checkOp rejects what no strategy can apply and op kinds outside kinds.
func checkOp(s Strategy, op Op, at Coordinator, kinds ...OpKind) error {
	supported := false
	for _, k := range kinds {
		supported = supported || k == op.Kind
	}
	if !supported {
		return fmt.Errorf("%w: strategy %q (%v) does not support %v", ErrWrongType, s.Name(), s.Type(), op.Kind)
	}
	if at.Node == 0 {
		return fmt.Errorf("%w: zero coordinator node", ErrInvalidOp)
	}
	if op.Expiry < 0 {
		return fmt.Errorf("%w: negative expiry %d", ErrInvalidOp, op.Expiry)
	}
	return nil
}

// applyNow is the wall time, in Unix nanoseconds, of the coordinator's HLC
// reading: the "now" against which Apply checks expiry.
func applyNow(at Coordinator) int64 {
	ms := int64(at.HLC >> 16)
	if ms > math.MaxInt64/1_000_000 {
		return math.MaxInt64
	}
	return ms * 1e6
}

// nextClock returns a ∪ b with node's counter advanced by one, and the dot
// that issues, in a single allocation.
func nextClock(a, b vclock.VV, node vclock.NodeID) (vclock.VV, vclock.Dot) {
	out := make(vclock.VV, 0, len(a)+len(b)+1)
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i].Node < b[j].Node):
			out = append(out, a[i])
			i++
		case i == len(a) || b[j].Node < a[i].Node:
			out = append(out, b[j])
			j++
		default:
			out = append(out, vclock.Entry{Node: a[i].Node, Counter: max(a[i].Counter, b[j].Counter)})
			i++
			j++
		}
	}
	k := 0
	for k < len(out) && out[k].Node < node {
		k++
	}
	if k < len(out) && out[k].Node == node {
		out[k].Counter++
		return out, vclock.Dot{Node: node, Counter: out[k].Counter}
	}
	out = append(out, vclock.Entry{})
	copy(out[k+1:], out[k:])
	out[k] = vclock.Entry{Node: node, Counter: 1}
	return out, vclock.Dot{Node: node, Counter: 1}
}

func compareDots(a, b vclock.Dot) int {
	switch {
	case a.Less(b):
		return -1
	case b.Less(a):
		return 1
	}
	return 0
}
