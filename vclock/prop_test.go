package vclock_test

import (
	"maps"
	"math"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/ecachedb/ecache/vclock"
)

// model is the naive version vector the real one is checked against: a map
// from node to counter, absent meaning zero.
type model map[vclock.NodeID]uint64

// nodePool is small so that generated vectors share nodes often, and holds
// extreme IDs so that orderings and encodings see them.
var nodePool = []vclock.NodeID{1, 2, 3, 7, 1 << 32, 1 << 63, math.MaxUint64}

// genCounter favours small counters, so that equal counters are common.
var genCounter = rapid.OneOf(rapid.Uint64Range(1, 4), rapid.Uint64Range(1, math.MaxUint64))

var genModel = rapid.MapOfN(rapid.SampledFrom(nodePool), genCounter, 0, len(nodePool))

func (m model) vv() vclock.VV {
	if len(m) == 0 {
		return nil
	}
	v := make(vclock.VV, 0, len(m))
	for _, n := range slices.Sorted(maps.Keys(m)) {
		v = append(v, vclock.Entry{Node: n, Counter: m[n]})
	}
	return v
}

func (m model) compare(o model) vclock.Ordering {
	mAhead, oAhead := false, false
	for n, c := range m {
		if c > o[n] {
			mAhead = true
		}
	}
	for n, c := range o {
		if c > m[n] {
			oAhead = true
		}
	}
	switch {
	case mAhead && oAhead:
		return vclock.Concurrent
	case mAhead:
		return vclock.After
	case oAhead:
		return vclock.Before
	}
	return vclock.Equal
}

func (m model) join(o model) model {
	out := maps.Clone(m)
	if out == nil {
		out = model{}
	}
	for n, c := range o {
		out[n] = max(out[n], c)
	}
	return out
}

func drawVV(t *rapid.T, label string) (vclock.VV, model) {
	m := model(genModel.Draw(t, label))
	return m.vv(), m
}

// drawDescendant returns a vector that descends v, so that chains for the
// transitivity check are not left to chance.
func drawDescendant(t *rapid.T, v vclock.VV, label string) vclock.VV {
	if rapid.Bool().Draw(t, label+" equal") {
		return v.Clone()
	}
	extra, _ := drawVV(t, label)
	return v.Join(extra)
}

func TestPropVVModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, ma := drawVV(t, "a")
		b, mb := drawVV(t, "b")
		if err := a.Validate(); err != nil {
			t.Fatalf("generated invalid vector %v: %v", a, err)
		}
		if got, want := a.Compare(b), ma.compare(mb); got != want {
			t.Fatalf("%v.Compare(%v) = %v, model says %v", a, b, got, want)
		}
		if got, want := a.Descends(b), ma.compare(mb) == vclock.Equal || ma.compare(mb) == vclock.After; got != want {
			t.Fatalf("%v.Descends(%v) = %v, model says %v", a, b, got, want)
		}
		for _, n := range nodePool {
			if got := a.Get(n); got != ma[n] {
				t.Fatalf("%v.Get(%v) = %d, model says %d", a, n, got, ma[n])
			}
			for _, c := range []uint64{0, 1, ma[n], ma[n] + 1} {
				d := vclock.Dot{Node: n, Counter: c}
				if got, want := a.Covers(d), c != 0 && c <= ma[n]; got != want {
					t.Fatalf("%v.Covers(%v) = %v, model says %v", a, d, got, want)
				}
			}
		}
		d := vclock.Dot{Node: rapid.SampledFrom(nodePool).Draw(t, "node"), Counter: genCounter.Draw(t, "counter")}
		mw := ma.join(model{d.Node: d.Counter})
		if got := a.With(d); !slices.Equal(got, mw.vv()) {
			t.Fatalf("%v.With(%v) = %v, model says %v", a, d, got, mw.vv())
		}
	})
}

func TestPropVVCompareLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, _ := drawVV(t, "a")
		b, _ := drawVV(t, "b")
		ab, ba := a.Compare(b), b.Compare(a)
		if (ab == vclock.Before) != (ba == vclock.After) || (ab == vclock.After) != (ba == vclock.Before) {
			t.Fatalf("not antisymmetric: %v.Compare(%v) = %v but reverse is %v", a, b, ab, ba)
		}
		if (ab == vclock.Concurrent) != (ba == vclock.Concurrent) {
			t.Fatalf("Concurrent not symmetric: %v vs %v", ab, ba)
		}
		if (ab == vclock.Equal) != slices.Equal(a, b) {
			t.Fatalf("%v.Compare(%v) = %v, but entries equal is %v", a, b, ab, slices.Equal(a, b))
		}
		if (ab == vclock.Equal) != (ba == vclock.Equal) {
			t.Fatalf("Equal not symmetric")
		}
		if a.Compare(a) != vclock.Equal {
			t.Fatalf("%v not Equal to itself", a)
		}
	})
}

func TestPropVVDescendsTransitive(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c, _ := drawVV(t, "c")
		var b, a vclock.VV
		if rapid.Bool().Draw(t, "chain") {
			b = drawDescendant(t, c, "b")
			a = drawDescendant(t, b, "a")
		} else {
			b, _ = drawVV(t, "b")
			a, _ = drawVV(t, "a")
		}
		if a.Descends(b) && b.Descends(c) && !a.Descends(c) {
			t.Fatalf("%v >= %v >= %v but not %v >= %v", a, b, c, a, c)
		}
		// Strictness is transitive too.
		if a.Compare(b) == vclock.After && b.Descends(c) && a.Compare(c) != vclock.After {
			t.Fatalf("%v > %v >= %v but %v.Compare(%v) = %v", a, b, c, a, c, a.Compare(c))
		}
	})
}

func TestPropVVJoinLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, ma := drawVV(t, "a")
		b, mb := drawVV(t, "b")
		c, _ := drawVV(t, "c")
		ab := a.Join(b)
		if err := ab.Validate(); err != nil {
			t.Fatalf("%v.Join(%v) = %v invalid: %v", a, b, ab, err)
		}
		if ba := b.Join(a); !slices.Equal(ab, ba) {
			t.Fatalf("not commutative: %v vs %v", ab, ba)
		}
		if l, r := ab.Join(c), a.Join(b.Join(c)); !slices.Equal(l, r) {
			t.Fatalf("not associative: %v vs %v", l, r)
		}
		if aa := a.Join(a); !slices.Equal(aa, a) {
			t.Fatalf("not idempotent: %v.Join(itself) = %v", a, aa)
		}
		if !ab.Descends(a) || !ab.Descends(b) {
			t.Fatalf("%v is not an upper bound of %v and %v", ab, a, b)
		}
		if want := ma.join(mb).vv(); !slices.Equal(ab, want) {
			t.Fatalf("%v.Join(%v) = %v, model's pointwise max is %v", a, b, ab, want)
		}
		// Least: any upper bound of both descends the join.
		if c.Descends(a) && c.Descends(b) && !c.Descends(ab) {
			t.Fatalf("%v bounds %v and %v but not their join %v", c, a, b, ab)
		}
		if u := drawDescendant(t, ab, "upper"); !u.Descends(ab) {
			t.Fatalf("upper bound %v does not descend join %v", u, ab)
		}
	})
}

// history is a simulated run of several nodes writing one key and syncing it.
type history struct {
	// states holds every object any replica held, the zero Object first.
	states []vclock.Object
	// replicas is each node's final object.
	replicas []vclock.Object
	// writes holds every dot issued, and superseded those a later write's
	// context covered.
	writes     []vclock.Dot
	superseded map[vclock.Dot]bool
}

// simNodes are the simulated nodes' IDs, extreme values included so that the
// encodings see them.
var simNodes = []vclock.NodeID{3, 1 << 40, 7, math.MaxUint64}

func drawSibling(t *rapid.T) vclock.Sibling {
	s := vclock.Sibling{
		HLC:       vclock.Timestamp(rapid.Uint64().Draw(t, "hlc")),
		Tombstone: rapid.Bool().Draw(t, "tombstone"),
	}
	if rapid.Bool().Draw(t, "expires") {
		s.Expiry = rapid.Int64Range(0, math.MaxInt64).Draw(t, "expiry")
	}
	if !s.Tombstone {
		s.Value = rapid.SliceOfN(rapid.Byte(), 0, 20).Draw(t, "value")
	}
	return s
}

// drawHistory simulates nodes coordinating writes with contexts that clients
// read from any replica, and replicas exchanging whole objects with Join. It
// checks each Update's result on the way.
func drawHistory(t *rapid.T) history {
	n := rapid.IntRange(1, len(simNodes)).Draw(t, "nodes")
	h := history{
		states:     []vclock.Object{{}},
		replicas:   make([]vclock.Object, n),
		superseded: map[vclock.Dot]bool{},
	}
	contexts := []vclock.VV{nil}
	steps := rapid.IntRange(0, 30).Draw(t, "steps")
	for range steps {
		switch rapid.IntRange(0, 2).Draw(t, "op") {
		case 0: // a client reads a context from some replica
			r := rapid.IntRange(0, n-1).Draw(t, "read from")
			contexts = append(contexts, h.replicas[r].Clock.Clone())
		case 1: // a client writes with a context it read, via some coordinator
			c := rapid.IntRange(0, n-1).Draw(t, "coordinator")
			ctx := rapid.SampledFrom(contexts).Draw(t, "context")
			old := h.replicas[c]
			next, d := old.Update(ctx, simNodes[c], drawSibling(t))
			checkUpdate(t, old, ctx, simNodes[c], next, d)
			for _, w := range h.writes {
				if ctx.Covers(w) {
					h.superseded[w] = true
				}
			}
			h.writes = append(h.writes, d)
			h.replicas[c] = next
			h.states = append(h.states, next)
		case 2: // replica i pulls replica j's object
			i := rapid.IntRange(0, n-1).Draw(t, "to")
			j := rapid.IntRange(0, n-1).Draw(t, "from")
			h.replicas[i] = vclock.Join(h.replicas[i], h.replicas[j])
			h.states = append(h.states, h.replicas[i])
		}
	}
	return h
}

func checkUpdate(t *rapid.T, old vclock.Object, ctx vclock.VV, node vclock.NodeID, got vclock.Object, d vclock.Dot) {
	if err := got.Validate(); err != nil {
		t.Fatalf("Update result invalid: %v", err)
	}
	if want := (vclock.Dot{Node: node, Counter: max(old.Clock.Get(node), ctx.Get(node)) + 1}); d != want {
		t.Fatalf("Update issued %v, want %v (clock %v, ctx %v)", d, want, old.Clock, ctx)
	}
	if want := old.Clock.Join(ctx).With(d); !slices.Equal(got.Clock, want) {
		t.Fatalf("Update clock = %v, want %v", got.Clock, want)
	}
	var want []vclock.Dot
	for _, s := range old.Siblings {
		if !ctx.Covers(s.Dot) {
			want = append(want, s.Dot)
		}
	}
	want = append(want, d)
	slices.SortFunc(want, func(a, b vclock.Dot) int {
		if a.Less(b) {
			return -1
		}
		if b.Less(a) {
			return 1
		}
		return 0
	})
	if ds := dotsOf(got); !slices.Equal(ds, want) {
		t.Fatalf("Update kept siblings %v, want %v (old %v, ctx %v)", ds, want, dotsOf(old), ctx)
	}
}

func joinAll(objs []vclock.Object) vclock.Object {
	var out vclock.Object
	for _, o := range objs {
		out = vclock.Join(out, o)
	}
	return out
}

func TestPropObjectJoinLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := drawHistory(t)
		for i := range h.states {
			if err := h.states[i].Validate(); err != nil {
				t.Fatalf("state %d invalid: %v", i, err)
			}
		}
		pick := rapid.SampledFrom(h.states)
		a, b, c := pick.Draw(t, "a"), pick.Draw(t, "b"), pick.Draw(t, "c")
		ab, ba := vclock.Join(a, b), vclock.Join(b, a)
		for _, r := range []vclock.Object{ab, ba} {
			if err := r.Validate(); err != nil {
				t.Fatalf("join result invalid: %v", err)
			}
		}
		if !vclock.ObjectsEqual(ab, ba) {
			t.Fatalf("not commutative: %v vs %v", dotsOf(ab), dotsOf(ba))
		}
		l, r := vclock.Join(ab, c), vclock.Join(a, vclock.Join(b, c))
		if err := l.Validate(); err != nil {
			t.Fatalf("join result invalid: %v", err)
		}
		if !vclock.ObjectsEqual(l, r) {
			t.Fatalf("not associative: %v %v vs %v %v", l.Clock, dotsOf(l), r.Clock, dotsOf(r))
		}
		if aa := vclock.Join(a, a); !vclock.ObjectsEqual(aa, a) {
			t.Fatalf("not idempotent: %v vs %v", dotsOf(aa), dotsOf(a))
		}
		if az := vclock.Join(a, vclock.Object{}); !vclock.ObjectsEqual(az, a) {
			t.Fatalf("zero object is not the identity")
		}
		if !slices.Equal(ab.Clock, a.Clock.Join(b.Clock)) {
			t.Fatalf("joined clock %v, want %v", ab.Clock, a.Clock.Join(b.Clock))
		}
		// Equal objects encode to equal bytes.
		if x, y := ab.AppendMsgpack(nil), ba.AppendMsgpack(nil); string(x) != string(y) {
			t.Fatalf("equal objects encode differently:\n%x\n%x", x, y)
		}
	})
}

// Once every replica has exchanged state, exactly the writes no later write's
// context covered survive, and every replica agrees.
func TestPropObjectSupersession(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := drawHistory(t)
		all := joinAll(h.replicas)
		var want []vclock.Dot
		for _, w := range h.writes {
			if !h.superseded[w] {
				want = append(want, w)
			}
		}
		slices.SortFunc(want, func(a, b vclock.Dot) int {
			if a.Less(b) {
				return -1
			}
			return 1
		})
		if got := dotsOf(all); !slices.Equal(got, want) {
			t.Fatalf("siblings after full sync = %v, want the unsuperseded writes %v", got, want)
		}
		// Dots are never reused.
		seen := map[vclock.Dot]bool{}
		for _, w := range h.writes {
			if seen[w] {
				t.Fatalf("dot %v issued twice", w)
			}
			seen[w] = true
		}
		// Every replica that pulls everything converges on the same object.
		for i := range h.replicas {
			if r := vclock.Join(h.replicas[i], all); !vclock.ObjectsEqual(r, all) {
				t.Fatalf("replica %d after pulling everything differs", i)
			}
		}
	})
}
