package merge

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecachedb/ecache/vclock"
)

func mustLookup(t testing.TB, r *Registry, name string) Strategy {
	t.Helper()
	s, err := r.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ts is an HLC reading at base plus ms milliseconds.
func ts(ms int64) vclock.Timestamp {
	return vclock.MakeTimestamp(testBase.Add(time.Duration(ms)*time.Millisecond), 0)
}

// nowAt is base plus ms milliseconds in Unix nanoseconds.
func nowAt(ms int64) int64 { return testBase.Add(time.Duration(ms) * time.Millisecond).UnixNano() }

func mustApply(t testing.TB, s Strategy, cur vclock.Object, op Op, node vclock.NodeID, ms int64) vclock.Object {
	t.Helper()
	obj, err := s.Apply(cur, op, Coordinator{Node: node, HLC: ts(ms)})
	if err != nil {
		t.Fatalf("%s.Apply(%v): %v", s.Name(), op.Kind, err)
	}
	if err := obj.Validate(); err != nil {
		t.Fatalf("%s.Apply(%v) = invalid object: %v", s.Name(), op.Kind, err)
	}
	return obj
}

func values(res Result) []string {
	var out []string
	for _, v := range res.Values {
		out = append(out, string(v))
	}
	for _, v := range res.Members {
		out = append(out, string(v))
	}
	return out
}

func TestStrings(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{TypeValue.String(), "value"},
		{TypeCounter.String(), "counter"},
		{TypeSet.String(), "set"},
		{Type(0).String(), "Type(0)"},
		{OpPut.String(), "put"},
		{OpDelete.String(), "delete"},
		{OpIncr.String(), "incr"},
		{OpSAdd.String(), "sadd"},
		{OpSRem.String(), "srem"},
		{OpExpire.String(), "expire"},
		{OpKind(0).String(), "OpKind(0)"},
		{OpKind(200).String(), "OpKind(200)"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestWrongType(t *testing.T) {
	r := NewRegistry()
	if err := r.Register(NewValueStrategy("custom", nil)); err != nil {
		t.Fatal(err)
	}
	supported := map[Type][]OpKind{
		TypeValue:   {OpPut, OpDelete, OpExpire},
		TypeCounter: {OpIncr, OpDelete, OpExpire},
		TypeSet:     {OpSAdd, OpSRem, OpDelete, OpExpire},
	}
	for _, name := range r.Names() {
		s := mustLookup(t, r, name)
		for k := OpKind(0); k <= OpExpire+1; k++ {
			if slices.Contains(supported[s.Type()], k) {
				continue
			}
			_, err := s.Apply(vclock.Object{}, Op{Kind: k, Value: []byte("v"), Delta: 1, Members: [][]byte{[]byte("m")}}, Coordinator{Node: 1, HLC: ts(0)})
			if !errors.Is(err, ErrWrongType) {
				t.Errorf("%s %v: err = %v, want ErrWrongType", name, k, err)
				continue
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "merge: ") || !strings.Contains(msg, name) || !strings.Contains(msg, k.String()) {
				t.Errorf("%s %v: message %q does not name strategy and op", name, k, msg)
			}
		}
	}
}

func TestInvalidOp(t *testing.T) {
	r := NewRegistry()
	for _, name := range r.Names() {
		s := mustLookup(t, r, name)
		kind := map[Type]OpKind{TypeValue: OpPut, TypeCounter: OpIncr, TypeSet: OpSAdd}[s.Type()]
		op := Op{Kind: kind, Value: []byte("v"), Delta: 1, Members: [][]byte{[]byte("m")}}
		if _, err := s.Apply(vclock.Object{}, op, Coordinator{HLC: ts(0)}); !errors.Is(err, ErrInvalidOp) {
			t.Errorf("%s: zero node: err = %v", name, err)
		}
		op.Expiry = -1
		if _, err := s.Apply(vclock.Object{}, op, Coordinator{Node: 1, HLC: ts(0)}); !errors.Is(err, ErrInvalidOp) {
			t.Errorf("%s: negative expiry: err = %v", name, err)
		}
	}
}

func TestErrorsPrefixed(t *testing.T) {
	for _, err := range []error{ErrWrongType, ErrUnknownStrategy, ErrDuplicate, ErrInvalidName, ErrNotFound, ErrSiblings, ErrOverflow, ErrMalformedState, ErrInvalidOp} {
		if !strings.HasPrefix(err.Error(), "merge: ") {
			t.Errorf("%q lacks the package prefix", err)
		}
	}
}

// namedStrategy wraps a built-in under another name.
type namedStrategy struct {
	Strategy
	name string
}

func (n namedStrategy) Name() string { return n.name }

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	if got, want := r.Names(), []string{"counter", "lww", "set", "siblings"}; !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	for _, c := range []struct {
		name string
		typ  Type
	}{{"lww", TypeValue}, {"siblings", TypeValue}, {"counter", TypeCounter}, {"set", TypeSet}} {
		s := mustLookup(t, r, c.name)
		if s.Name() != c.name || s.Type() != c.typ {
			t.Errorf("Lookup(%q) = %s/%v", c.name, s.Name(), s.Type())
		}
	}

	_, err := r.Lookup("nope")
	if !errors.Is(err, ErrUnknownStrategy) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("Lookup(nope) = %v", err)
	}
	if err := r.Register(NewValueStrategy("lww", nil)); !errors.Is(err, ErrDuplicate) {
		t.Errorf("Register(lww) = %v, want ErrDuplicate", err)
	}
	for _, name := range []string{"", "LWW", "1st", "-x", "a b", "a/b", "é", strings.Repeat("a", 65), "x\x00"} {
		if err := r.Register(NewValueStrategy(name, nil)); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Register(%q) = %v, want ErrInvalidName", name, err)
		}
	}
	if err := r.Register(nil); !errors.Is(err, ErrInvalidName) {
		t.Errorf("Register(nil) = %v", err)
	}
	for _, name := range []string{"a", "max-value", "json.merge_v2", strings.Repeat("a", 64)} {
		if err := r.Register(NewValueStrategy(name, nil)); err != nil {
			t.Errorf("Register(%q) = %v", name, err)
		}
	}

	// Registries are independent: no global state.
	r1, r2 := NewRegistry(), NewRegistry()
	if err := r1.Register(namedStrategy{mustLookup(t, r1, "counter"), "hits"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Lookup("hits"); !errors.Is(err, ErrUnknownStrategy) {
		t.Errorf("a strategy registered in one registry shows in another: %v", err)
	}
	if err := r2.Register(namedStrategy{mustLookup(t, r2, "set"), "hits"}); err != nil {
		t.Errorf("the same name in another registry: %v", err)
	}
	if s1, s2 := mustLookup(t, r1, "hits"), mustLookup(t, r2, "hits"); s1.Type() != TypeCounter || s2.Type() != TypeSet {
		t.Errorf("hits: %v in r1, %v in r2", s1.Type(), s2.Type())
	}
	if len(r1.Names()) != 5 || len(NewRegistry().Names()) != 4 {
		t.Errorf("Names: %v, %v", r1.Names(), NewRegistry().Names())
	}
}

// TestCustomStrategy registers a value strategy whose readers see only the
// bytewise greatest live value, and uses it through a registry.
func TestCustomStrategy(t *testing.T) {
	r := NewRegistry()
	maxValue := NewValueStrategy("max-value", func(live []vclock.Sibling) []vclock.Sibling {
		best := live[0]
		for _, s := range live[1:] {
			if bytes.Compare(s.Value, best.Value) > 0 {
				best = s
			}
		}
		return []vclock.Sibling{best}
	})
	if err := r.Register(maxValue); err != nil {
		t.Fatal(err)
	}
	s := mustLookup(t, r, "max-value")
	if s.Name() != "max-value" || s.Type() != TypeValue {
		t.Fatalf("%s %v", s.Name(), s.Type())
	}
	// Two concurrent writes on two replicas: both survive the merge, and
	// readers see the greater.
	a := mustApply(t, s, vclock.Object{}, Op{Kind: OpPut, Value: []byte("apple"), Expiry: nowAt(1000)}, 1, 0)
	b := mustApply(t, s, vclock.Object{}, Op{Kind: OpPut, Value: []byte("pear")}, 2, 0)
	m := s.Merge(a, b)
	if len(m.Siblings) != 2 {
		t.Fatalf("merged %v", m)
	}
	if res := s.Read(m, nowAt(0)); !res.Found || !slices.Equal(values(res), []string{"pear"}) || res.Expiry != 0 {
		t.Errorf("Read = %+v", res)
	}
	// Expire resolves too: the one resolved value gets the expiry.
	e, err := s.Apply(m, Op{Kind: OpExpire, Expiry: nowAt(500)}, Coordinator{Node: 1, HLC: ts(1)})
	if err != nil {
		t.Fatal(err)
	}
	if res := s.Read(e, nowAt(100)); !slices.Equal(values(res), []string{"pear"}) || res.Expiry != nowAt(500) || len(e.Siblings) != 1 {
		t.Errorf("after expire: %v, %+v", e, res)
	}
	if res := s.Read(e, nowAt(500)); res.Found {
		t.Errorf("expired value still read: %+v", res)
	}
	// A context write resolves siblings as for the siblings strategy.
	w := mustApply(t, s, m, Op{Kind: OpPut, Context: m.Clock, Value: []byte("fig")}, 2, 2)
	if res := s.Read(w, nowAt(0)); len(w.Siblings) != 1 || !slices.Equal(values(res), []string{"fig"}) {
		t.Errorf("after resolving write: %v, %+v", w, res)
	}
	if _, err := s.Apply(m, Op{Kind: OpIncr, Delta: 1}, Coordinator{Node: 1, HLC: ts(1)}); !errors.Is(err, ErrWrongType) {
		t.Errorf("incr: %v", err)
	}
}

func TestLWW(t *testing.T) {
	s := mustLookup(t, NewRegistry(), NameLWW)
	put := func(v string, expiry int64) Op { return Op{Kind: OpPut, Value: []byte(v), Expiry: expiry} }

	t.Run("blind writes supersede local siblings", func(t *testing.T) {
		o := mustApply(t, s, vclock.Object{}, put("a", 0), 1, 10)
		o = mustApply(t, s, o, put("b", 0), 1, 5) // HLC behind the first write
		if len(o.Siblings) != 1 || !slices.Equal(values(s.Read(o, 0)), []string{"b"}) {
			t.Fatalf("%v", o)
		}
	})
	t.Run("concurrent: greatest HLC then node", func(t *testing.T) {
		a := mustApply(t, s, vclock.Object{}, put("a", 0), 1, 20)
		b := mustApply(t, s, vclock.Object{}, put("b", 0), 2, 10)
		c := mustApply(t, s, vclock.Object{}, put("c", 0), 3, 10)
		m := s.Merge(s.Merge(a, b), c)
		if len(m.Siblings) != 3 || !slices.Equal(values(s.Read(m, 0)), []string{"a"}) {
			t.Fatalf("%v: %v", m, s.Read(m, 0))
		}
		if m := s.Merge(b, c); !slices.Equal(values(s.Read(m, 0)), []string{"c"}) {
			t.Fatalf("tie on HLC not broken by node: %v", s.Read(m, 0))
		}
		// The next write, even blind and with an old timestamp, replaces
		// them all.
		w := mustApply(t, s, m, put("w", 0), 2, 1)
		if len(w.Siblings) != 1 || !slices.Equal(values(s.Read(w, 0)), []string{"w"}) {
			t.Fatalf("%v", w)
		}
	})
	t.Run("causally later write wins with an older HLC", func(t *testing.T) {
		a := mustApply(t, s, vclock.Object{}, put("early", 0), 1, 1_000_000)
		b := mustApply(t, s, a, put("late", 0), 2, 0)
		if got := values(s.Read(s.Merge(a, b), 0)); !slices.Equal(got, []string{"late"}) {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("tombstone wins when it is the greatest", func(t *testing.T) {
		a := mustApply(t, s, vclock.Object{}, put("a", 0), 1, 10)
		d := mustApply(t, s, vclock.Object{}, Op{Kind: OpDelete}, 2, 20)
		if res := s.Read(s.Merge(a, d), 0); res.Found {
			t.Fatalf("deleted key read: %+v", res)
		}
		d = mustApply(t, s, vclock.Object{}, Op{Kind: OpDelete}, 2, 5)
		if res := s.Read(s.Merge(a, d), 0); !res.Found {
			t.Fatalf("older concurrent delete won")
		}
	})
	t.Run("expired winner hides older live siblings", func(t *testing.T) {
		a := mustApply(t, s, vclock.Object{}, put("a", 0), 1, 10)
		b := mustApply(t, s, vclock.Object{}, put("b", nowAt(100)), 2, 20)
		m := s.Merge(a, b)
		if res := s.Read(m, nowAt(99)); !slices.Equal(values(res), []string{"b"}) || res.Expiry != nowAt(100) {
			t.Fatalf("%+v", res)
		}
		if res := s.Read(m, nowAt(100)); res.Found {
			t.Fatalf("expired winner: %+v", res)
		}
	})
	t.Run("expire", func(t *testing.T) {
		if _, err := s.Apply(vclock.Object{}, Op{Kind: OpExpire, Expiry: 1}, Coordinator{Node: 1, HLC: ts(0)}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expire absent: %v", err)
		}
		o := mustApply(t, s, vclock.Object{}, put("a", nowAt(50)), 1, 0)
		o = mustApply(t, s, o, Op{Kind: OpExpire, Expiry: nowAt(200)}, 2, 10)
		if res := s.Read(o, nowAt(100)); !slices.Equal(values(res), []string{"a"}) || res.Expiry != nowAt(200) {
			t.Fatalf("%+v", res)
		}
		o = mustApply(t, s, o, Op{Kind: OpExpire}, 2, 20) // persist
		if res := s.Read(o, math.MaxInt64); !res.Found || res.Expiry != 0 {
			t.Fatalf("persisted: %+v", res)
		}
		if _, err := s.Apply(o, Op{Kind: OpExpire}, Coordinator{Node: 2, HLC: ts(30)}); err != nil {
			t.Fatal(err)
		}
		gone := mustApply(t, s, vclock.Object{}, put("b", nowAt(5)), 1, 0)
		if _, err := s.Apply(gone, Op{Kind: OpExpire, Expiry: nowAt(100)}, Coordinator{Node: 1, HLC: ts(5)}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expire expired: %v", err)
		}
		del := mustApply(t, s, o, Op{Kind: OpDelete}, 1, 30)
		if _, err := s.Apply(del, Op{Kind: OpExpire, Expiry: nowAt(100)}, Coordinator{Node: 1, HLC: ts(40)}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expire deleted: %v", err)
		}
	})
}

func TestSiblings(t *testing.T) {
	s := mustLookup(t, NewRegistry(), NameSiblings)
	a := mustApply(t, s, vclock.Object{}, Op{Kind: OpPut, Value: []byte("a"), Expiry: nowAt(300)}, 1, 0)
	b := mustApply(t, s, a, Op{Kind: OpPut, Value: []byte("b"), Expiry: nowAt(200)}, 1, 1) // blind: concurrent
	c := mustApply(t, s, vclock.Object{}, Op{Kind: OpPut, Value: []byte("c")}, 2, 2)
	m := s.Merge(b, c)
	res := s.Read(m, nowAt(0))
	if !slices.Equal(values(res), []string{"a", "b", "c"}) || res.Expiry != nowAt(200) {
		t.Fatalf("Read = %+v", res)
	}
	if res := s.Read(m, nowAt(250)); !slices.Equal(values(res), []string{"a", "c"}) || res.Expiry != nowAt(300) {
		t.Fatalf("Read after b expired = %+v", res)
	}
	if _, err := s.Apply(m, Op{Kind: OpExpire, Expiry: nowAt(500)}, Coordinator{Node: 1, HLC: ts(3)}); !errors.Is(err, ErrSiblings) {
		t.Fatalf("expire over siblings: %v", err)
	}
	// A write with the read context resolves them.
	w := mustApply(t, s, m, Op{Kind: OpPut, Context: m.Clock, Value: []byte("w")}, 2, 4)
	if len(w.Siblings) != 1 || !slices.Equal(values(s.Read(w, 0)), []string{"w"}) {
		t.Fatalf("%v", w)
	}
	// A delete with the context leaves only a tombstone.
	d := mustApply(t, s, w, Op{Kind: OpDelete, Context: w.Clock}, 1, 5)
	if res := s.Read(d, 0); res.Found || len(d.Siblings) != 1 || !d.Siblings[0].Tombstone {
		t.Fatalf("%v %+v", d, res)
	}
	if _, err := s.Apply(d, Op{Kind: OpExpire, Expiry: 1}, Coordinator{Node: 1, HLC: ts(6)}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expire deleted: %v", err)
	}
	// Expire with one live sibling and a tombstone beside it.
	x := mustApply(t, s, d, Op{Kind: OpPut, Value: []byte("x")}, 2, 7) // blind: keeps the tombstone
	x = mustApply(t, s, x, Op{Kind: OpExpire, Expiry: nowAt(400)}, 2, 8)
	if res := s.Read(x, 0); len(x.Siblings) != 1 || !slices.Equal(values(res), []string{"x"}) || res.Expiry != nowAt(400) {
		t.Fatalf("%v %+v", x, res)
	}
}

// TestSiblingExplosion is Riak's riak_test sibling_explosion: two clients
// alternately read-modify-write one key through one coordinator, each
// writing back with its own last context (the clock its previous write
// returned) rather than a fresh read. With dotted version vectors each write
// replaces the writer's own previous value, so siblings never pile up.
func TestSiblingExplosion(t *testing.T) {
	s := mustLookup(t, NewRegistry(), NameSiblings)
	var (
		obj  vclock.Object
		ctx  [2]vclock.VV // each writer's own last context
		last [2]string    // each writer's latest value
	)
	for i := range 100 {
		w := i % 2
		v := string(rune('a'+w)) + "-" + string(rune('0'+i%10)) + string(rune('0'+i/10))
		obj = mustApply(t, s, obj, Op{Kind: OpPut, Context: ctx[w], Value: []byte(v)}, 1, int64(i))
		ctx[w], last[w] = obj.Clock, v
		if len(obj.Siblings) > 2 {
			t.Fatalf("write %d: %d siblings", i, len(obj.Siblings))
		}
		// Not superseded: each writer's latest write (the other writer's
		// was made without having been read by this one).
		want := []string{last[0], last[1]}
		if i == 0 {
			want = want[:1]
		}
		if got := values(s.Read(obj, 0)); !sameStrings(got, want) {
			t.Fatalf("write %d: siblings %v, want %v", i, got, want)
		}
	}
}

// TestSiblingExplosionTwoCoordinators: the same, with each writer going
// through its own replica and the replicas syncing both ways after every
// write.
func TestSiblingExplosionTwoCoordinators(t *testing.T) {
	s := mustLookup(t, NewRegistry(), NameSiblings)
	var (
		rep  [2]vclock.Object
		ctx  [2]vclock.VV
		last [2]string
	)
	nodes := [2]vclock.NodeID{10, 20}
	for i := range 100 {
		w := i % 2
		v := string(rune('a'+w)) + "-" + string(rune('0'+i%10)) + string(rune('0'+i/10))
		rep[w] = mustApply(t, s, rep[w], Op{Kind: OpPut, Context: ctx[w], Value: []byte(v)}, nodes[w], int64(i))
		ctx[w], last[w] = rep[w].Clock, v
		rep[0], rep[1] = s.Merge(rep[0], rep[1]), s.Merge(rep[1], rep[0])
		if !vclock.ObjectsEqual(rep[0], rep[1]) {
			t.Fatalf("write %d: replicas differ after sync", i)
		}
		if len(rep[0].Siblings) > 2 {
			t.Fatalf("write %d: %d siblings", i, len(rep[0].Siblings))
		}
		want := []string{last[0], last[1]}
		if i == 0 {
			want = want[:1]
		}
		if got := values(s.Read(rep[0], 0)); !sameStrings(got, want) {
			t.Fatalf("write %d: siblings %v, want %v", i, got, want)
		}
	}
}

func sameStrings(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestCounter(t *testing.T) {
	s := mustLookup(t, NewRegistry(), NameCounter)
	incr := func(d int64) Op { return Op{Kind: OpIncr, Delta: d} }
	read := func(o vclock.Object) int64 {
		t.Helper()
		res := s.Read(o, nowAt(0))
		if !res.Found {
			t.Fatalf("counter not found: %v", o)
		}
		return res.Counter
	}

	t.Run("incr and decr", func(t *testing.T) {
		o := mustApply(t, s, vclock.Object{}, incr(5), 1, 0)
		o = mustApply(t, s, o, incr(-7), 1, 1)
		if read(o) != -2 || len(o.Siblings) != 1 || o.Siblings[0].Dot != (vclock.Dot{Node: 1, Counter: 2}) {
			t.Fatalf("%v = %d", o, read(o))
		}
		z := mustApply(t, s, vclock.Object{}, incr(0), 1, 0)
		if read(z) != 0 {
			t.Fatal("incr 0")
		}
	})
	t.Run("concurrent increments add up", func(t *testing.T) {
		a := mustApply(t, s, vclock.Object{}, incr(3), 1, 0)
		b := mustApply(t, s, vclock.Object{}, incr(4), 2, 0)
		m := s.Merge(a, b)
		m = mustApply(t, s, m, incr(-1), 2, 1)
		if v := read(s.Merge(m, a)); v != 6 {
			t.Fatalf("got %d", v)
		}
	})
	t.Run("delete is an observed reset", func(t *testing.T) {
		base := mustApply(t, s, vclock.Object{}, incr(5), 1, 0)
		d := mustApply(t, s, base, Op{Kind: OpDelete}, 1, 1)
		if read(d) != 0 {
			t.Fatalf("after delete: %d", read(d))
		}
		// An increment the deleter has not seen survives.
		inc := mustApply(t, s, base, incr(2), 2, 1)
		if v := read(s.Merge(d, inc)); v != 2 {
			t.Fatalf("concurrent incr after merge: %d", v)
		}
		// Two concurrent deletes cancel the same 5, not 10.
		d2 := mustApply(t, s, base, Op{Kind: OpDelete}, 2, 1)
		if v := read(s.Merge(d, d2)); v != 0 {
			t.Fatalf("concurrent deletes: %d", v)
		}
		if v := read(s.Merge(s.Merge(d, d2), inc)); v != 2 {
			t.Fatalf("concurrent deletes and incr: %d", v)
		}
		// Deleting an absent counter changes nothing.
		if o, err := s.Apply(vclock.Object{}, Op{Kind: OpDelete}, Coordinator{Node: 1, HLC: ts(0)}); err != nil || !o.IsZero() {
			t.Fatalf("delete absent: %v, %v", o, err)
		}
	})
	t.Run("overflow", func(t *testing.T) {
		for _, c := range []struct {
			deltas []int64
			ok     bool
		}{
			{[]int64{math.MaxInt64}, true},
			{[]int64{math.MinInt64}, true},
			{[]int64{math.MaxInt64, 1}, false},
			{[]int64{math.MinInt64, -1}, false},
			{[]int64{math.MaxInt64, math.MinInt64, math.MaxInt64}, true},
			{[]int64{math.MaxInt64, math.MaxInt64}, false},
		} {
			var o vclock.Object
			var err error
			for i, d := range c.deltas {
				var next vclock.Object
				next, err = s.Apply(o, incr(d), Coordinator{Node: 1, HLC: ts(int64(i))})
				if err != nil {
					break
				}
				o = next
			}
			if c.ok != (err == nil) || (err != nil && !errors.Is(err, ErrOverflow)) {
				t.Errorf("%v: err = %v", c.deltas, err)
			}
		}
		// A node's total of decrements wraps after 2^64, though the value
		// (-2) would fit.
		o := mustApply(t, s, vclock.Object{}, incr(math.MaxInt64), 1, 0)
		o = mustApply(t, s, o, incr(math.MinInt64), 1, 1)
		o = mustApply(t, s, o, incr(math.MaxInt64), 1, 2)
		if _, err := s.Apply(o, incr(math.MinInt64), Coordinator{Node: 1, HLC: ts(3)}); !errors.Is(err, ErrOverflow) {
			t.Errorf("wrapping total: %v", err)
		}
		// Concurrent increments can overflow the merged value; reads
		// saturate, and only a change back into range is accepted.
		a := mustApply(t, s, vclock.Object{}, incr(math.MaxInt64), 1, 0)
		b := mustApply(t, s, vclock.Object{}, incr(math.MaxInt64), 2, 0)
		m := s.Merge(a, b)
		if v := read(m); v != math.MaxInt64 {
			t.Errorf("saturated read = %d", v)
		}
		if _, err := s.Apply(m, incr(-1), Coordinator{Node: 1, HLC: ts(1)}); !errors.Is(err, ErrOverflow) {
			t.Errorf("still out of range: %v", err)
		}
		back := mustApply(t, s, m, incr(math.MinInt64), 1, 1)
		if v := read(back); v != math.MaxInt64-1 {
			t.Errorf("back in range = %d", v)
		}
		if v := read(mustApply(t, s, m, Op{Kind: OpDelete}, 3, 1)); v != 0 {
			t.Errorf("reset of an overflowed counter = %d", v)
		}
	})
	t.Run("expiry", func(t *testing.T) {
		if _, err := s.Apply(vclock.Object{}, Op{Kind: OpExpire, Expiry: nowAt(10)}, Coordinator{Node: 1, HLC: ts(0)}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expire absent: %v", err)
		}
		o := mustApply(t, s, vclock.Object{}, incr(5), 1, 0)
		if o.Siblings[0].HLC != 0 || o.Siblings[0].Expiry != 0 {
			t.Fatalf("new counter register: %v", o.Siblings[0])
		}
		o = mustApply(t, s, o, Op{Kind: OpExpire, Expiry: nowAt(100)}, 1, 10)
		if res := s.Read(o, nowAt(99)); res.Counter != 5 || res.Expiry != nowAt(100) {
			t.Fatalf("%+v", res)
		}
		if res := s.Read(o, nowAt(100)); res.Found {
			t.Fatalf("expired counter read: %+v", res)
		}
		if _, err := s.Apply(o, Op{Kind: OpExpire}, Coordinator{Node: 1, HLC: ts(100)}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expire expired: %v", err)
		}
		// An increment of an expired counter starts a new one without expiry.
		n := mustApply(t, s, o, incr(2), 2, 150)
		if res := s.Read(n, nowAt(1000)); !res.Found || res.Counter != 2 || res.Expiry != 0 {
			t.Fatalf("restarted counter: %+v", res)
		}
		// Two replicas restarting it concurrently do not cancel twice.
		n2 := mustApply(t, s, o, incr(3), 3, 150)
		if res := s.Read(s.Merge(n, n2), nowAt(1000)); res.Counter != 5 {
			t.Fatalf("concurrent restarts: %+v", res)
		}
		// A causally later expiry wins even when its clock is behind.
		late := mustApply(t, s, n, Op{Kind: OpExpire, Expiry: nowAt(5000)}, 3, 0)
		if res := s.Read(s.Merge(n, late), nowAt(1000)); res.Expiry != nowAt(5000) {
			t.Fatalf("later expiry lost: %+v", res)
		}
		// A concurrent blind creation does not clear an expiry.
		blind := mustApply(t, s, vclock.Object{}, incr(1), 4, 1_000_000)
		if res := s.Read(s.Merge(o, blind), nowAt(50)); res.Counter != 6 || res.Expiry != nowAt(100) {
			t.Fatalf("blind create vs expiry: %+v", res)
		}
	})
}

func TestSet(t *testing.T) {
	s := mustLookup(t, NewRegistry(), NameSet)
	ms := func(xs ...string) [][]byte {
		var out [][]byte
		for _, x := range xs {
			out = append(out, []byte(x))
		}
		return out
	}
	add := func(xs ...string) Op { return Op{Kind: OpSAdd, Members: ms(xs...)} }
	rem := func(xs ...string) Op { return Op{Kind: OpSRem, Members: ms(xs...)} }
	read := func(o vclock.Object) []string { return values(s.Read(o, nowAt(0))) }

	t.Run("add and remove", func(t *testing.T) {
		o := mustApply(t, s, vclock.Object{}, add("b", "a", "b", ""), 1, 0)
		if got := read(o); !slices.Equal(got, []string{"", "a", "b"}) {
			t.Fatalf("%q", got)
		}
		if o.Clock.Get(1) != 1 {
			t.Fatalf("one add op, one dot: %v", o.Clock)
		}
		o = mustApply(t, s, o, rem("a", "zz"), 1, 1)
		if got := read(o); !slices.Equal(got, []string{"", "b"}) {
			t.Fatalf("%q", got)
		}
		same, err := s.Apply(o, rem("zz"), Coordinator{Node: 1, HLC: ts(2)})
		if err != nil || !vclock.ObjectsEqual(same, o) {
			t.Fatalf("removing an absent member changed the set: %v", err)
		}
		o = mustApply(t, s, o, Op{Kind: OpDelete}, 1, 3)
		if res := s.Read(o, 0); res.Found || o.IsZero() {
			t.Fatalf("after delete: %v %+v", o, res)
		}
	})
	t.Run("add wins over concurrent remove", func(t *testing.T) {
		base := mustApply(t, s, vclock.Object{}, add("x", "y"), 1, 0)
		removed := mustApply(t, s, base, rem("x", "y"), 2, 1)
		readded := mustApply(t, s, base, add("x"), 3, 1)
		if got := read(s.Merge(removed, readded)); !slices.Equal(got, []string{"x"}) {
			t.Fatalf("%q", got)
		}
		deleted := mustApply(t, s, base, Op{Kind: OpDelete}, 2, 1)
		if got := read(s.Merge(readded, deleted)); !slices.Equal(got, []string{"x"}) {
			t.Fatalf("add vs delete: %q", got)
		}
		// A remove that has seen the add wins.
		if got := read(s.Merge(base, removed)); len(got) != 0 {
			t.Fatalf("observed remove lost: %q", got)
		}
	})
	t.Run("expiry", func(t *testing.T) {
		if _, err := s.Apply(vclock.Object{}, Op{Kind: OpExpire, Expiry: 1}, Coordinator{Node: 1, HLC: ts(0)}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expire absent: %v", err)
		}
		o := mustApply(t, s, vclock.Object{}, add("a"), 1, 0)
		o = mustApply(t, s, o, Op{Kind: OpExpire, Expiry: nowAt(100)}, 1, 10)
		if res := s.Read(o, nowAt(50)); res.Expiry != nowAt(100) || !res.Found {
			t.Fatalf("%+v", res)
		}
		if res := s.Read(o, nowAt(100)); res.Found {
			t.Fatalf("expired set read: %+v", res)
		}
		n := mustApply(t, s, o, add("b"), 1, 200)
		if res := s.Read(n, nowAt(10_000)); !slices.Equal(values(res), []string{"b"}) || res.Expiry != 0 {
			t.Fatalf("re-created set: %+v", res)
		}
		empty := mustApply(t, s, n, rem("b"), 1, 201)
		if _, err := s.Apply(empty, Op{Kind: OpExpire, Expiry: 1}, Coordinator{Node: 1, HLC: ts(202)}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expire empty set: %v", err)
		}
	})
	t.Run("ops do not alias their members", func(t *testing.T) {
		m := []byte("abc")
		o := mustApply(t, s, vclock.Object{}, Op{Kind: OpSAdd, Members: [][]byte{m}}, 1, 0)
		m[0] = 'z'
		if got := read(o); !slices.Equal(got, []string{"abc"}) {
			t.Fatalf("%q", got)
		}
	})
}

// TestMalformed feeds objects that are not valid states of their strategy:
// Apply reports ErrMalformedState, Read sees nothing, Merge treats them as
// absent, and nothing panics.
func TestMalformed(t *testing.T) {
	r := NewRegistry()
	clock := vclock.VV{{Node: 1, Counter: 3}}
	sib := func(v []byte) vclock.Sibling { return vclock.Sibling{Dot: vclock.Dot{Node: 1, Counter: 3}, Value: v} }
	for _, c := range []struct {
		strategy string
		obj      vclock.Object
	}{
		{NameCounter, vclock.Object{Clock: clock}},
		{NameCounter, vclock.Object{Clock: clock, Siblings: []vclock.Sibling{sib([]byte{0x90}), {Dot: vclock.Dot{Node: 1, Counter: 2}, Value: []byte{0x90}}}}},
		{NameCounter, vclock.Object{Clock: clock, Siblings: []vclock.Sibling{{Dot: vclock.Dot{Node: 1, Counter: 3}, Tombstone: true}}}},
		{NameCounter, vclock.Object{Clock: clock, Siblings: []vclock.Sibling{sib(nil)}}},
		{NameCounter, vclock.Object{Clock: clock, Siblings: []vclock.Sibling{sib([]byte{0x95, 1, 0, 0, 0, 0})}}},
		{NameCounter, vclock.Object{Clock: vclock.VV{{Node: 1, Counter: 1}}, Siblings: []vclock.Sibling{sib([]byte{0x90})}}}, // dot not covered
		{NameSet, vclock.Object{Clock: clock, Siblings: []vclock.Sibling{sib([]byte{0x92, 0xc4, 1, 'a', 0x92, 1, 9})}}},      // dot 1:9 not covered
		{NameSet, vclock.Object{Clock: clock, Siblings: []vclock.Sibling{sib([]byte{0x91})}}},
		{NameSet, vclock.Object{Clock: clock, Siblings: []vclock.Sibling{sib([]byte{0x92, 0xa1, 'a', 0x92, 1, 1})}}}, // str, not bin
	} {
		s := mustLookup(t, r, c.strategy)
		op := Op{Kind: OpIncr, Delta: 1}
		if s.Type() == TypeSet {
			op = Op{Kind: OpSAdd, Members: [][]byte{[]byte("m")}}
		}
		if _, err := s.Apply(c.obj, op, Coordinator{Node: 1, HLC: ts(0)}); !errors.Is(err, ErrMalformedState) {
			t.Errorf("%s Apply(%v): err = %v", c.strategy, c.obj, err)
		}
		if res := s.Read(c.obj, 0); res.Found {
			t.Errorf("%s Read(%v) = %+v", c.strategy, c.obj, res)
		}
		good := mustApply(t, s, vclock.Object{}, op, 2, 0)
		if m := s.Merge(c.obj, good); !vclock.ObjectsEqual(m, good) {
			t.Errorf("%s Merge(bad, good) = %v", c.strategy, m)
		}
		if m := s.Merge(good, c.obj); !vclock.ObjectsEqual(m, good) {
			t.Errorf("%s Merge(good, bad) = %v", c.strategy, m)
		}
		if m := s.Merge(c.obj, c.obj); !m.IsZero() {
			t.Errorf("%s Merge(bad, bad) = %v", c.strategy, m)
		}
	}
}

// TestApplyAliasing documents what Apply's result shares: value types keep
// op.Value as is (no copy on the hot path); CRDT states are always fresh.
func TestApplyAliasing(t *testing.T) {
	s := mustLookup(t, NewRegistry(), NameLWW)
	v := []byte("value")
	o := mustApply(t, s, vclock.Object{}, Op{Kind: OpPut, Value: v}, 1, 0)
	if &o.Siblings[0].Value[0] != &v[0] {
		t.Fatal("lww Apply copied the value")
	}
	c := o.Clone()
	v[0] = 'X'
	if string(c.Siblings[0].Value) != "value" {
		t.Fatal("Clone shares the value")
	}
}

func TestSetEmptyOps(t *testing.T) {
	s := mustLookup(t, NewRegistry(), NameSet)
	o := mustApply(t, s, vclock.Object{}, Op{Kind: OpSAdd, Members: [][]byte{[]byte("a")}}, 1, 0)
	for _, op := range []Op{{Kind: OpSAdd}, {Kind: OpSRem}, {Kind: OpSRem, Members: [][]byte{[]byte("b")}}} {
		got, err := s.Apply(o, op, Coordinator{Node: 2, HLC: ts(1)})
		if err != nil || !vclock.ObjectsEqual(got, o) {
			t.Errorf("%v %q changed the set: %v, %v", op.Kind, op.Members, got, err)
		}
	}
	for _, op := range []Op{{Kind: OpSAdd}, {Kind: OpSRem}, {Kind: OpDelete}} {
		got, err := s.Apply(vclock.Object{}, op, Coordinator{Node: 2, HLC: ts(1)})
		if err != nil || !got.IsZero() {
			t.Errorf("%v on an absent set: %v, %v", op.Kind, got, err)
		}
	}
}
