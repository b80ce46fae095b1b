package merge

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/ecachedb/ecache/vclock"
	"pgregory.net/rapid"
)

// The property tests run every built-in strategy on a model cluster of three
// replicas, each with its own NodeID and its own HLC over a fake wall clock
// that steps backwards as well as forwards. Random ops are applied at random
// replicas; replicas send snapshots of their objects to each other, and those
// are delivered late, out of order and more than once. A naive model, which
// knows nothing of dots or clocks, tracks the history: each op becomes events,
// and each replica (and each message) carries the set of events its object
// reflects. After every step each replica's object and reads must match what
// the model derives from that replica's event set, and after a final
// all-to-all sync every replica must hold an equal object that matches the
// model of the whole history. Every object produced along the way goes into
// a pool over which the merge laws are checked.

// event is one effect of an op in the model.
type event struct {
	id  int
	dot vclock.Dot
	hlc vclock.Timestamp

	// Value writes: covers holds the writes this one supersedes.
	write  bool
	value  []byte
	tomb   bool
	expiry int64

	// Counter increments; resets are events with covers (the increments they
	// cancel).
	incr  bool
	delta int64

	// Set adds, and removals (covers: the adds they remove from; members:
	// the members removed, unless all).
	add     bool
	remove  bool
	all     bool
	members [][]byte

	covers map[int]bool
	// reg is a write to a counter's or set's expiry register.
	reg *register
}

type replica struct {
	node vclock.NodeID
	wall time.Time
	hlc  *vclock.HLC
	obj  vclock.Object
	seen map[int]bool
}

type message struct {
	to   int
	obj  vclock.Object
	seen map[int]bool
}

// readCtx is a context some client read, with the events it covers.
type readCtx struct {
	clock vclock.VV
	seen  map[int]bool
}

type cluster struct {
	s        Strategy
	lww      bool
	kinds    []OpKind
	base     time.Time
	reps     []*replica
	events   []*event
	inflight []message
	reads    []readCtx
	pool     []vclock.Object
	nextVal  int
}

var testBase = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func newCluster(t *rapid.T, s Strategy, kinds []OpKind) *cluster {
	c := &cluster{s: s, kinds: kinds, base: testBase, pool: []vclock.Object{{}}}
	if vs, ok := s.(*valueStrategy); ok {
		c.lww = vs.lww
	}
	// Node order matters (lww ties, dot order): permute IDs of varied sizes.
	ids := rapid.Permutation([]vclock.NodeID{7, 300, 1 << 40}).Draw(t, "nodes")
	for _, id := range ids {
		r := &replica{node: id, wall: c.base, seen: map[int]bool{}}
		r.hlc = vclock.NewHLC(func() time.Time { return r.wall }, 0)
		c.reps = append(c.reps, r)
	}
	return c
}

func builtins() []Strategy {
	r := NewRegistry()
	var out []Strategy
	for _, n := range r.Names() {
		s, _ := r.Lookup(n)
		out = append(out, s)
	}
	return out
}

func defaultKinds(typ Type) []OpKind {
	switch typ {
	case TypeCounter:
		return []OpKind{OpIncr, OpIncr, OpIncr, OpDelete, OpExpire}
	case TypeSet:
		return []OpKind{OpSAdd, OpSAdd, OpSAdd, OpSRem, OpSRem, OpDelete, OpExpire}
	}
	return []OpKind{OpPut, OpPut, OpPut, OpDelete, OpExpire}
}

func (c *cluster) drawExpiry(t *rapid.T) int64 {
	if rapid.Bool().Draw(t, "hasExpiry") {
		return c.base.Add(time.Duration(rapid.IntRange(-100, 400).Draw(t, "expiryMs")) * time.Millisecond).UnixNano()
	}
	return 0
}

// drawOp draws an op for replica r and, for value types, the events its
// context covers.
func (c *cluster) drawOp(t *rapid.T, r int) (Op, map[int]bool) {
	op := Op{Kind: rapid.SampledFrom(c.kinds).Draw(t, "kind")}
	var ctxSeen map[int]bool
	switch op.Kind {
	case OpPut, OpDelete:
		if c.s.Type() == TypeValue {
			switch rapid.IntRange(0, 2).Draw(t, "ctx") {
			case 1:
				op.Context, ctxSeen = c.reps[r].obj.Clock.Clone(), maps.Clone(c.reps[r].seen)
			case 2:
				if len(c.reads) > 0 {
					rc := c.reads[rapid.IntRange(0, len(c.reads)-1).Draw(t, "read")]
					op.Context, ctxSeen = rc.clock, maps.Clone(rc.seen)
				}
			}
		}
		if op.Kind == OpPut {
			c.nextVal++
			op.Value = fmt.Appendf(nil, "v%d", c.nextVal)
			op.Expiry = c.drawExpiry(t)
		}
	case OpExpire:
		op.Expiry = c.drawExpiry(t)
	case OpIncr:
		op.Delta = rapid.Int64Range(-100, 100).Draw(t, "delta")
	case OpSAdd, OpSRem:
		// Few members, so that adds and removes of one member meet often.
		// (An op without members changes nothing: unit-tested.)
		for _, m := range rapid.SliceOfN(rapid.SampledFrom([]string{"", "a", "b", "c"}), 1, 3).Draw(t, "members") {
			op.Members = append(op.Members, []byte(m))
		}
	}
	return op, ctxSeen
}

// applyOp applies op at replica r and checks it against the model.
func (c *cluster) applyOp(t *rapid.T, r int, op Op, ctxSeen map[int]bool) {
	rep := c.reps[r]
	at := Coordinator{Node: rep.node, HLC: rep.hlc.Now()}
	now := int64(at.HLC>>16) * int64(time.Millisecond)
	before := rep.obj.AppendMsgpack(nil)
	got, err := c.s.Apply(rep.obj, op, at)
	if !bytes.Equal(before, rep.obj.AppendMsgpack(nil)) {
		t.Fatalf("Apply modified its argument")
	}
	evs, wantErr := c.expect(rep, op, at, now, ctxSeen)
	if wantErr != nil || err != nil {
		if !errors.Is(err, wantErr) || wantErr == nil {
			t.Fatalf("Apply(%v) at %v: error %v, want %v", op.Kind, rep.node, err, wantErr)
		}
		return
	}
	if len(evs) == 0 {
		if !vclock.ObjectsEqual(got, rep.obj) {
			t.Fatalf("Apply(%v): want no change, got %v -> %v", op.Kind, rep.obj, got)
		}
		return
	}
	// Exactly one new dot: the coordinator's next counter.
	bound := rep.obj.Clock
	if c.s.Type() == TypeValue {
		bound = bound.Join(op.Context)
	}
	d := vclock.Dot{Node: rep.node, Counter: bound.Get(rep.node) + 1}
	if want := bound.With(d); got.Clock.Compare(want) != vclock.Equal {
		t.Fatalf("Apply(%v): clock %v, want %v", op.Kind, got.Clock, want)
	}
	for _, e := range evs {
		e.id, e.dot = len(c.events), d
		c.events = append(c.events, e)
		rep.seen[e.id] = true
	}
	maps.Copy(rep.seen, ctxSeen)
	rep.obj = got
	c.pool = append(c.pool, got)
	if c.lww && op.Kind == OpPut {
		// A write supersedes everything its coordinator holds, whatever
		// the timestamps: the writer reads its own write.
		if res := c.s.Read(got, 0); !res.Found || !bytes.Equal(res.Values[0], op.Value) {
			t.Fatalf("lww: read after own write = %+v, want %q", res, op.Value)
		}
	}
}

// expect is the model of Apply: the error it must return, or the events the
// op creates (none: the op changes nothing).
func (c *cluster) expect(rep *replica, op Op, at Coordinator, now int64, ctxSeen map[int]bool) ([]*event, error) {
	view := rep.seen
	switch c.s.Type() {
	case TypeValue:
		switch op.Kind {
		case OpPut, OpDelete:
			covers := maps.Clone(ctxSeen)
			if covers == nil {
				covers = map[int]bool{}
			}
			if c.lww {
				maps.Copy(covers, view)
			}
			return []*event{{write: true, hlc: at.HLC, value: op.Value, tomb: op.Kind == OpDelete, expiry: op.Expiry, covers: covers}}, nil
		}
		surv := c.survivors(view)
		var value []byte
		if c.lww {
			w := winner(surv)
			if w == nil || w.tomb || expired(w.expiry, now) {
				return nil, ErrNotFound
			}
			value = w.value
		} else {
			live := liveOnly(surv, now)
			switch {
			case len(live) == 0:
				return nil, ErrNotFound
			case len(live) > 1:
				return nil, ErrSiblings
			}
			value = live[0].value
		}
		return []*event{{write: true, hlc: at.HLC, value: value, expiry: op.Expiry, covers: maps.Clone(view)}}, nil

	case TypeCounter:
		exists := len(view) > 0
		reg := c.register(view)
		isExpired := exists && expired(reg.expiry, now)
		switch op.Kind {
		case OpIncr:
			var evs []*event
			if isExpired {
				next := nextRegister(reg, at.HLC, 0)
				evs = append(evs, &event{covers: maps.Clone(view)}, &event{reg: &next})
			}
			return append(evs, &event{incr: true, delta: op.Delta}), nil
		case OpDelete:
			if !exists {
				return nil, nil
			}
			return []*event{{covers: maps.Clone(view)}}, nil
		case OpExpire:
			if !exists || isExpired {
				return nil, ErrNotFound
			}
			next := nextRegister(reg, at.HLC, op.Expiry)
			return []*event{{reg: &next}}, nil
		}

	case TypeSet:
		members := c.members(view)
		reg := c.register(view)
		isExpired := len(view) > 0 && expired(reg.expiry, now)
		switch op.Kind {
		case OpSAdd:
			if len(op.Members) == 0 {
				return nil, nil
			}
			var evs []*event
			if isExpired {
				next := nextRegister(reg, at.HLC, 0)
				evs = append(evs, &event{remove: true, all: true, covers: maps.Clone(view)}, &event{reg: &next})
			}
			return append(evs, &event{add: true, members: op.Members}), nil
		case OpSRem:
			for _, m := range op.Members {
				if slices.ContainsFunc(members, func(x []byte) bool { return bytes.Equal(x, m) }) {
					return []*event{{remove: true, members: op.Members, covers: maps.Clone(view)}}, nil
				}
			}
			return nil, nil
		case OpDelete:
			if len(members) == 0 {
				return nil, nil
			}
			return []*event{{remove: true, all: true, covers: maps.Clone(view)}}, nil
		case OpExpire:
			if len(members) == 0 || isExpired {
				return nil, ErrNotFound
			}
			next := nextRegister(reg, at.HLC, op.Expiry)
			return []*event{{reg: &next}}, nil
		}
	}
	return nil, ErrWrongType
}

func expired(expiry, now int64) bool { return expiry != 0 && expiry <= now }

// nextRegister is the model of a register write: its timestamp is the
// coordinator's, raised above the one it overwrites.
func nextRegister(r register, h vclock.Timestamp, expiry int64) register {
	return register{hlc: max(h, r.hlc+1), expiry: expiry}
}

// survivors are the writes in view that no write in view supersedes, in dot
// order.
func (c *cluster) survivors(view map[int]bool) []*event {
	var out []*event
	for id := range view {
		e := c.events[id]
		if !e.write {
			continue
		}
		superseded := false
		for w := range view {
			superseded = superseded || c.events[w].covers[id]
		}
		if !superseded {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *event) int { return compareDots(a.dot, b.dot) })
	return out
}

func winner(evs []*event) *event {
	var w *event
	for _, e := range evs {
		if w == nil || e.hlc > w.hlc || (e.hlc == w.hlc && w.dot.Less(e.dot)) {
			w = e
		}
	}
	return w
}

func liveOnly(evs []*event, now int64) []*event {
	var out []*event
	for _, e := range evs {
		if !e.tomb && !expired(e.expiry, now) {
			out = append(out, e)
		}
	}
	return out
}

func (c *cluster) counterValue(view map[int]bool) int64 {
	var v int64
	for id := range view {
		e := c.events[id]
		if !e.incr {
			continue
		}
		cancelled := false
		for r := range view {
			cancelled = cancelled || c.events[r].covers[id]
		}
		if !cancelled {
			v += e.delta
		}
	}
	return v
}

// members are the members of the adds in view that no removal in view has
// removed, sorted.
func (c *cluster) members(view map[int]bool) [][]byte {
	var out [][]byte
	for id := range view {
		e := c.events[id]
		if !e.add {
			continue
		}
		for _, m := range e.members {
			removed := false
			for r := range view {
				rm := c.events[r]
				removed = removed || (rm.remove && rm.covers[id] &&
					(rm.all || slices.ContainsFunc(rm.members, func(x []byte) bool { return bytes.Equal(x, m) })))
			}
			if !removed {
				out = append(out, m)
			}
		}
	}
	slices.SortFunc(out, bytes.Compare)
	return slices.CompactFunc(out, bytes.Equal)
}

func (c *cluster) register(view map[int]bool) register {
	var reg register
	for id := range view {
		if r := c.events[id].reg; r != nil && reg.less(*r) {
			reg = *r
		}
	}
	return reg
}

// modelRead is what a reader of an object reflecting view must see at now.
func (c *cluster) modelRead(view map[int]bool, now int64) Result {
	switch c.s.Type() {
	case TypeValue:
		surv := c.survivors(view)
		if c.lww {
			w := winner(surv)
			if w == nil || w.tomb || expired(w.expiry, now) {
				return Result{}
			}
			return Result{Found: true, Values: [][]byte{w.value}, Expiry: w.expiry}
		}
		var res Result
		for _, e := range liveOnly(surv, now) {
			res.Found = true
			res.Values = append(res.Values, e.value)
			if e.expiry != 0 && (res.Expiry == 0 || e.expiry < res.Expiry) {
				res.Expiry = e.expiry
			}
		}
		return res
	case TypeCounter:
		reg := c.register(view)
		if len(view) == 0 || expired(reg.expiry, now) {
			return Result{}
		}
		return Result{Found: true, Counter: c.counterValue(view), Expiry: reg.expiry}
	case TypeSet:
		reg := c.register(view)
		ms := c.members(view)
		if len(ms) == 0 || expired(reg.expiry, now) {
			return Result{}
		}
		return Result{Found: true, Members: ms, Expiry: reg.expiry}
	}
	return Result{}
}

func resultsEqual(a, b Result) bool {
	return a.Found == b.Found && a.Counter == b.Counter && a.Expiry == b.Expiry &&
		slices.EqualFunc(a.Values, b.Values, bytes.Equal) && slices.EqualFunc(a.Members, b.Members, bytes.Equal)
}

// checkObject checks obj, whose history is view, against the model.
func (c *cluster) checkObject(t *rapid.T, obj vclock.Object, view map[int]bool, nows ...int64) {
	if err := obj.Validate(); err != nil {
		t.Fatalf("invalid object %v: %v", obj, err)
	}
	switch c.s.Type() {
	case TypeValue:
		// The siblings are exactly the surviving writes.
		surv := c.survivors(view)
		if len(surv) != len(obj.Siblings) {
			t.Fatalf("object has %d siblings, model %d survivors", len(obj.Siblings), len(surv))
		}
		for i, e := range surv {
			s := obj.Siblings[i]
			if s.Dot != e.dot || s.HLC != e.hlc || s.Expiry != e.expiry || s.Tombstone != e.tomb || !bytes.Equal(s.Value, e.value) {
				t.Fatalf("sibling %d = %+v, model %+v", i, s, *e)
			}
		}
	case TypeCounter, TypeSet:
		sib, err := crdtSibling(&obj)
		if err != nil {
			t.Fatal(err)
		}
		if (sib == nil) != (len(view) == 0) {
			t.Fatalf("object %v for %d events", obj, len(view))
		}
		if sib != nil {
			if reg := c.register(view); sib.HLC != reg.hlc || sib.Expiry != reg.expiry {
				t.Fatalf("register (%v, %d), model (%v, %d)", sib.HLC, sib.Expiry, reg.hlc, reg.expiry)
			}
			if c.s.Type() == TypeCounter {
				if _, err := decodeCounter(sib.Value, nil); err != nil {
					t.Fatal(err)
				}
			} else if _, _, err := decodeSetObject(&obj); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, now := range append(nows, 0) {
		if got, want := c.s.Read(obj, now), c.modelRead(view, now); !resultsEqual(got, want) {
			t.Fatalf("Read at %d = %+v, model %+v", now, got, want)
		}
	}
}

func (c *cluster) checkReplicas(t *rapid.T) {
	for _, r := range c.reps {
		c.checkObject(t, r.obj, r.seen, r.wall.UnixNano(), r.wall.Add(300*time.Millisecond).UnixNano())
	}
}

// deliver merges msg into its destination.
func (c *cluster) deliver(t *rapid.T, msg message, observe bool) {
	rep := c.reps[msg.to]
	a, b := rep.obj.AppendMsgpack(nil), msg.obj.AppendMsgpack(nil)
	got := c.s.Merge(rep.obj, msg.obj)
	if !bytes.Equal(a, rep.obj.AppendMsgpack(nil)) || !bytes.Equal(b, msg.obj.AppendMsgpack(nil)) {
		t.Fatalf("Merge modified an argument")
	}
	if observe {
		_, _ = rep.hlc.Observe(msg.obj.MaxHLC())
	}
	rep.obj = got
	maps.Copy(rep.seen, msg.seen)
	c.pool = append(c.pool, got)
}

func (c *cluster) snapshot(from, to int) message {
	return message{to: to, obj: c.reps[from].obj.Clone(), seen: maps.Clone(c.reps[from].seen)}
}

// run drives the cluster through a random history.
func (c *cluster) run(t *rapid.T) {
	replicaGen := rapid.IntRange(0, len(c.reps)-1)
	apply := func(t *rapid.T) {
		r := replicaGen.Draw(t, "replica")
		op, ctxSeen := c.drawOp(t, r)
		c.applyOp(t, r, op, ctxSeen)
	}
	t.Repeat(map[string]func(*rapid.T){
		"apply":  apply,
		"apply2": apply,
		"send": func(t *rapid.T) {
			from, to := replicaGen.Draw(t, "from"), replicaGen.Draw(t, "to")
			if from == to {
				t.Skip("send to self")
			}
			c.inflight = append(c.inflight, c.snapshot(from, to))
		},
		"deliver": func(t *rapid.T) {
			if len(c.inflight) == 0 {
				t.Skip("nothing in flight")
			}
			// Any message, not the oldest: deliveries are reordered. A
			// kept message is delivered again later: a duplicate.
			i := rapid.IntRange(0, len(c.inflight)-1).Draw(t, "msg")
			msg := c.inflight[i]
			if !rapid.Bool().Draw(t, "duplicate") {
				c.inflight = slices.Delete(c.inflight, i, i+1)
			}
			c.deliver(t, msg, rapid.Bool().Draw(t, "observe"))
		},
		"tick": func(t *rapid.T) {
			r := c.reps[replicaGen.Draw(t, "replica")]
			r.wall = r.wall.Add(time.Duration(rapid.IntRange(-80, 120).Draw(t, "ms")) * time.Millisecond)
		},
		"read": func(t *rapid.T) {
			r := c.reps[replicaGen.Draw(t, "replica")]
			c.reads = append(c.reads, readCtx{clock: r.obj.Clock.Clone(), seen: maps.Clone(r.seen)})
		},
		"": c.checkReplicas,
	})
}

// syncAll merges every replica into every other.
func (c *cluster) syncAll(t *rapid.T) {
	for range 2 {
		for i := range c.reps {
			for j := range c.reps {
				if i != j {
					c.deliver(t, c.snapshot(j, i), false)
				}
			}
		}
	}
}

// checkConverged checks that all replicas hold equal objects that match the
// model of the whole history and read equally.
func (c *cluster) checkConverged(t *rapid.T) {
	all := map[int]bool{}
	for id := range c.events {
		all[id] = true
	}
	latest := c.base
	for _, r := range c.reps {
		if r.wall.After(latest) {
			latest = r.wall
		}
	}
	nows := []int64{0, c.base.UnixNano(), latest.UnixNano(), latest.Add(time.Hour).UnixNano()}
	first := c.reps[0]
	for _, r := range c.reps {
		if !maps.Equal(r.seen, all) {
			t.Fatalf("replica %v has seen %d of %d events after sync", r.node, len(r.seen), len(all))
		}
		if !vclock.ObjectsEqual(r.obj, first.obj) || !bytes.Equal(r.obj.AppendMsgpack(nil), first.obj.AppendMsgpack(nil)) {
			t.Fatalf("replicas diverge after sync:\n%v: %v\n%v: %v", first.node, first.obj, r.node, r.obj)
		}
		for _, now := range nows {
			if a, b := c.s.Read(r.obj, now), c.s.Read(first.obj, now); !resultsEqual(a, b) {
				t.Fatalf("reads diverge at %d: %+v vs %+v", now, a, b)
			}
		}
		c.checkObject(t, r.obj, all, nows...)
	}
}

// checkLaws checks the merge laws over objects the history reached.
func (c *cluster) checkLaws(t *rapid.T) {
	pick := rapid.IntRange(0, len(c.pool)-1)
	for range 20 {
		a, b, x := c.pool[pick.Draw(t, "a")], c.pool[pick.Draw(t, "b")], c.pool[pick.Draw(t, "c")]
		checkMergeLaws(t, c.s, a, b, x)
	}
}

func checkMergeLaws(t *rapid.T, s Strategy, a, b, x vclock.Object) {
	enc := func(o vclock.Object) []byte { return o.AppendMsgpack(nil) }
	same := func(p, q vclock.Object) bool { return vclock.ObjectsEqual(p, q) && bytes.Equal(enc(p), enc(q)) }
	ea, eb, ex := enc(a), enc(b), enc(x)
	ab, ba := s.Merge(a, b), s.Merge(b, a)
	if !same(ab, ba) {
		t.Fatalf("%s: Merge not commutative:\na  %v\nb  %v\nab %v\nba %v", s.Name(), a, b, ab, ba)
	}
	if aa := s.Merge(a, a); !same(aa, a) {
		t.Fatalf("%s: Merge not idempotent: %v -> %v", s.Name(), a, aa)
	}
	if l, r := s.Merge(ab, x), s.Merge(a, s.Merge(b, x)); !same(l, r) {
		t.Fatalf("%s: Merge not associative:\n(ab)c %v\na(bc) %v", s.Name(), l, r)
	}
	if abb := s.Merge(ab, b); !same(abb, ab) {
		t.Fatalf("%s: merging b again changed a∨b: %v -> %v", s.Name(), ab, abb)
	}
	if !bytes.Equal(ea, enc(a)) || !bytes.Equal(eb, enc(b)) || !bytes.Equal(ex, enc(x)) {
		t.Fatalf("%s: Merge modified an argument", s.Name())
	}
}

// TestConvergence is the main property: for every built-in strategy, any
// history of ops, clock steps and lossy, late, reordered, duplicated state
// transfers matches the model at every step, converges after a full sync,
// and obeys the merge laws.
func TestConvergence(t *testing.T) {
	for _, s := range builtins() {
		t.Run(s.Name(), func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				c := newCluster(t, s, defaultKinds(s.Type()))
				c.run(t)
				c.syncAll(t)
				c.checkConverged(t)
				c.checkLaws(t)
			})
		})
	}
}

// TestCounterNeverLosesIncrements: without resets, whatever the history, the
// converged counter is the sum of every delta applied.
func TestCounterNeverLosesIncrements(t *testing.T) {
	s, _ := NewRegistry().Lookup(NameCounter)
	rapid.Check(t, func(t *rapid.T) {
		c := newCluster(t, s, []OpKind{OpIncr})
		c.run(t)
		c.syncAll(t)
		c.checkConverged(t)
		var sum int64
		for _, e := range c.events {
			sum += e.delta
		}
		res := s.Read(c.reps[0].obj, 0)
		if len(c.events) > 0 && (!res.Found || res.Counter != sum) {
			t.Fatalf("counter = %+v, sum of deltas %d", res, sum)
		}
	})
}

// TestSetAddWinsProperty: after any history, an add and a remove of the same
// member, concurrent on two replicas, leave the member in the synced set.
func TestSetAddWinsProperty(t *testing.T) {
	s, _ := NewRegistry().Lookup(NameSet)
	rapid.Check(t, func(t *rapid.T) {
		c := newCluster(t, s, defaultKinds(TypeSet))
		c.run(t)
		c.syncAll(t)
		m := []byte(rapid.SampledFrom([]string{"", "a", "b", "z"}).Draw(t, "member"))
		adder := rapid.IntRange(0, 2).Draw(t, "adder")
		remover := (adder + 1 + rapid.IntRange(0, 1).Draw(t, "remover")) % 3
		if rapid.Bool().Draw(t, "present") {
			// Make sure the remove has something to remove.
			c.applyOp(t, remover, Op{Kind: OpSAdd, Members: [][]byte{m}}, nil)
		}
		c.applyOp(t, remover, Op{Kind: OpSRem, Members: [][]byte{m}}, nil)
		c.applyOp(t, adder, Op{Kind: OpSAdd, Members: [][]byte{m}}, nil)
		c.syncAll(t)
		c.checkConverged(t)
		res := s.Read(c.reps[0].obj, 0)
		if !slices.ContainsFunc(res.Members, func(x []byte) bool { return bytes.Equal(x, m) }) {
			t.Fatalf("concurrent add of %q lost to a remove: %+v", m, res)
		}
	})
}

// TestLWWCausallyLaterWins: after any history, a write made after merging an
// earlier one in wins, even when its coordinator's clock is far behind.
func TestLWWCausallyLaterWins(t *testing.T) {
	s, _ := NewRegistry().Lookup(NameLWW)
	rapid.Check(t, func(t *rapid.T) {
		c := newCluster(t, s, defaultKinds(TypeValue))
		c.run(t)
		// Nothing concurrent is left: only the two writes below compete.
		c.syncAll(t)
		first := rapid.IntRange(0, 2).Draw(t, "first")
		second := (first + 1 + rapid.IntRange(0, 1).Draw(t, "second")) % 3
		c.reps[first].wall = c.reps[first].wall.Add(time.Hour)
		c.reps[second].wall = c.reps[second].wall.Add(-time.Hour)
		c.applyOp(t, first, Op{Kind: OpPut, Value: []byte("earlier")}, nil)
		c.deliver(t, c.snapshot(first, second), false)
		c.applyOp(t, second, Op{Kind: OpPut, Value: []byte("later")}, nil)
		if c.reps[second].obj.Siblings[0].HLC >= c.reps[first].obj.Siblings[0].HLC {
			t.Fatalf("test setup: later write's HLC is not behind")
		}
		c.syncAll(t)
		c.checkConverged(t)
		if res := s.Read(c.reps[0].obj, 0); !res.Found || string(res.Values[0]) != "later" {
			t.Fatalf("causally later write lost: %+v", res)
		}
	})
}

// TestSupersedeIsUpdate: the lww fast path builds exactly what Object.Update
// with the joined context would.
func TestSupersedeIsUpdate(t *testing.T) {
	s, _ := NewRegistry().Lookup(NameSiblings)
	rapid.Check(t, func(t *rapid.T) {
		c := newCluster(t, s, defaultKinds(TypeValue))
		c.run(t)
		r := c.reps[rapid.IntRange(0, 2).Draw(t, "replica")]
		var ctx vclock.VV
		if len(c.reads) > 0 && rapid.Bool().Draw(t, "ctx") {
			ctx = c.reads[rapid.IntRange(0, len(c.reads)-1).Draw(t, "read")].clock
		}
		sib := vclock.Sibling{HLC: 42, Expiry: 7, Value: []byte("x")}
		want, _ := r.obj.Update(ctx.Join(r.obj.Clock), r.node, sib)
		if got := supersede(r.obj, ctx, r.node, sib); !vclock.ObjectsEqual(got, want) {
			t.Fatalf("supersede = %v, Update = %v", got, want)
		}
	})
}
