package merge

import (
	"fmt"

	"github.com/ecachedb/ecache/vclock"
)

// Names of the built-in strategies.
const (
	NameLWW      = "lww"
	NameSiblings = "siblings"
	NameCounter  = "counter"
	NameSet      = "set"
)

// valueStrategy is every value-type strategy: the stored object is the DVV
// set itself and Merge is vclock.Join. They differ only in how a write treats
// the local siblings and in what a reader sees.
type valueStrategy struct {
	name string
	// lww: a write supersedes every local sibling, and readers see the
	// greatest (HLC, node) sibling.
	lww bool
	// resolve, when not nil, turns the live siblings into what readers see.
	resolve func(live []vclock.Sibling) []vclock.Sibling
}

// NewValueStrategy returns a value-type strategy whose read-time resolution
// is resolve: it receives a fresh slice of the live siblings (neither
// tombstones nor expired) in dot order, which it may reorder or reuse but
// whose Value bytes it must not modify, and returns what readers see; a nil
// resolve returns every live sibling, as the siblings strategy does. Writes
// drop exactly the siblings their context covers and storage merge is the
// DVV join, so the strategy is a semilattice whatever resolve does. OpExpire
// needs resolve to yield exactly one sibling, whose value it rewrites with
// the new expiry.
func NewValueStrategy(name string, resolve func(live []vclock.Sibling) []vclock.Sibling) Strategy {
	return &valueStrategy{name: name, resolve: resolve}
}

func (s *valueStrategy) Name() string { return s.name }

func (s *valueStrategy) Type() Type { return TypeValue }

func (s *valueStrategy) Apply(cur vclock.Object, op Op, at Coordinator) (vclock.Object, error) {
	if err := checkOp(s, op, at, OpPut, OpDelete, OpExpire); err != nil {
		return vclock.Object{}, err
	}
	switch op.Kind {
	case OpPut:
		return s.write(cur, op.Context, at.Node, vclock.Sibling{HLC: at.HLC, Expiry: op.Expiry, Value: op.Value}), nil
	case OpDelete:
		return s.write(cur, op.Context, at.Node, vclock.Sibling{HLC: at.HLC, Tombstone: true}), nil
	}
	// OpExpire rewrites the one visible value with the new expiry, as a write
	// that has read the whole object.
	now := applyNow(at)
	var value []byte
	if s.lww {
		w := lwwWinner(cur.Siblings)
		if w == nil || !w.Live(now) {
			return vclock.Object{}, fmt.Errorf("%w: %s %v", ErrNotFound, s.name, op.Kind)
		}
		value = w.Value
	} else {
		vis := s.visible(cur.Siblings, now)
		switch len(vis) {
		case 0:
			return vclock.Object{}, fmt.Errorf("%w: %s %v", ErrNotFound, s.name, op.Kind)
		case 1:
			value = vis[0].Value
		default:
			return vclock.Object{}, fmt.Errorf("%w: %s %v over %d siblings", ErrSiblings, s.name, op.Kind, len(vis))
		}
	}
	return supersede(cur, nil, at.Node, vclock.Sibling{HLC: at.HLC, Expiry: op.Expiry, Value: value}), nil
}

// write issues one new dot for sib. lww writes supersede every local sibling
// (a blind write is newer than anything this node holds); the others keep
// every sibling ctx does not cover.
func (s *valueStrategy) write(cur vclock.Object, ctx vclock.VV, node vclock.NodeID, sib vclock.Sibling) vclock.Object {
	if s.lww {
		return supersede(cur, ctx, node, sib)
	}
	obj, _ := cur.Update(ctx, node, sib)
	return obj
}

// supersede is cur.Update(ctx ∪ cur.Clock, node, sib) in two allocations:
// the joined context covers every sibling of a valid cur, so sib is the only
// one left.
func supersede(cur vclock.Object, ctx vclock.VV, node vclock.NodeID, sib vclock.Sibling) vclock.Object {
	clock, d := nextClock(cur.Clock, ctx, node)
	sib.Dot = d
	return vclock.Object{Clock: clock, Siblings: []vclock.Sibling{sib}}
}

func (s *valueStrategy) Merge(a, b vclock.Object) vclock.Object { return vclock.Join(a, b) }

func (s *valueStrategy) Read(obj vclock.Object, now int64) Result {
	if s.lww {
		w := lwwWinner(obj.Siblings)
		if w == nil || !w.Live(now) {
			return Result{}
		}
		return Result{Found: true, Values: [][]byte{w.Value}, Expiry: w.Expiry}
	}
	var res Result
	if s.resolve == nil {
		// The siblings strategy: no need for an intermediate slice.
		for i := range obj.Siblings {
			if sib := &obj.Siblings[i]; sib.Live(now) {
				res.add(sib)
			}
		}
		return res
	}
	for _, sib := range s.visible(obj.Siblings, now) {
		res.add(&sib)
	}
	return res
}

func (r *Result) add(s *vclock.Sibling) {
	r.Found = true
	r.Values = append(r.Values, s.Value)
	if s.Expiry != 0 && (r.Expiry == 0 || s.Expiry < r.Expiry) {
		r.Expiry = s.Expiry
	}
}

// visible returns what a non-lww reader sees: the live siblings, resolved.
func (s *valueStrategy) visible(sibs []vclock.Sibling, now int64) []vclock.Sibling {
	var live []vclock.Sibling
	for i := range sibs {
		if sibs[i].Live(now) {
			live = append(live, sibs[i])
		}
	}
	if s.resolve == nil || len(live) == 0 {
		return live
	}
	return s.resolve(live)
}

// lwwWinner returns the sibling with the greatest (HLC, node), tombstones and
// expired ones included; the dot counter breaks the tie a node could only
// create by reusing a timestamp. It returns nil when there is none.
func lwwWinner(sibs []vclock.Sibling) *vclock.Sibling {
	var w *vclock.Sibling
	for i := range sibs {
		s := &sibs[i]
		if w == nil || s.HLC > w.HLC ||
			(s.HLC == w.HLC && (s.Dot.Node > w.Dot.Node || (s.Dot.Node == w.Dot.Node && s.Dot.Counter > w.Dot.Counter))) {
			w = s
		}
	}
	return w
}
