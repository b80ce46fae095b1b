package antientropy_test

import (
	"slices"

	"github.com/ecachedb/ecache/antientropy"
	"github.com/ecachedb/ecache/vclock"
)

// model is an in-memory replica of one partition: the Replica the exchange
// tests run against, with its tree kept up to date.
type model struct {
	shape antientropy.Shape
	tree  *antientropy.Tree
	objs  map[string]*record
	// byLeaf indexes keys by leaf; a leaf's set is made on first use.
	byLeaf []map[string]struct{}
	// merged records every key Merge was called for.
	merged map[string]int
}

// tester is what the helpers need of *testing.T, *testing.B and *rapid.T.
type tester interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

type record struct {
	ns, key []byte
	obj     vclock.Object
}

func mkey(ns, key []byte) string {
	return string(append(append([]byte{byte(len(ns))}, ns...), key...))
}

func newModel(tb tester, s antientropy.Shape) *model {
	tb.Helper()
	tr, err := antientropy.NewTree(s)
	if err != nil {
		tb.Fatal(err)
	}
	return &model{shape: s, tree: tr, objs: map[string]*record{},
		byLeaf: make([]map[string]struct{}, s.Leaves()), merged: map[string]int{}}
}

// put stores obj for (ns, key), updating the tree.
func (m *model) put(ns, key []byte, obj vclock.Object) {
	k := mkey(ns, key)
	var old uint64
	if r, ok := m.objs[k]; ok {
		old = antientropy.VersionDigest(r.obj)
		r.obj = obj
	} else {
		m.objs[k] = &record{ns: slices.Clone(ns), key: slices.Clone(key), obj: obj}
		leaf := m.shape.LeafOf(ns, key)
		if m.byLeaf[leaf] == nil {
			m.byLeaf[leaf] = map[string]struct{}{}
		}
		m.byLeaf[leaf][k] = struct{}{}
	}
	m.tree.Update(ns, key, old, antientropy.VersionDigest(obj))
}

// forget removes (ns, key) entirely, as the expiry sweep or a wipe does.
func (m *model) forget(ns, key []byte) {
	k := mkey(ns, key)
	r, ok := m.objs[k]
	if !ok {
		return
	}
	m.tree.Remove(ns, key, antientropy.VersionDigest(r.obj))
	delete(m.objs, k)
	delete(m.byLeaf[m.shape.LeafOf(ns, key)], k)
}

func (m *model) get(ns, key []byte) (vclock.Object, bool) {
	r, ok := m.objs[mkey(ns, key)]
	if !ok {
		return vclock.Object{}, false
	}
	return r.obj, true
}

func (m *model) ListLeaves(leaves []uint32, fn func(ns, key []byte, obj *vclock.Object) error) error {
	for _, l := range leaves {
		for k := range m.byLeaf[l] {
			r := m.objs[k]
			if err := fn(r.ns, r.key, &r.obj); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *model) Get(ns, key []byte) (vclock.Object, bool, error) {
	o, ok := m.get(ns, key)
	return o, ok, nil
}

func (m *model) Merge(ns, key []byte, obj vclock.Object) error {
	if err := obj.Validate(); err != nil {
		return err
	}
	cur, _ := m.get(ns, key)
	m.put(ns, key, vclock.Join(cur, obj.Clone()))
	m.merged[mkey(ns, key)]++
	return nil
}

// wire counts what crossed the simulated network.
type wire struct {
	bytes, msgs int
}

// transmit encodes m, counts it and decodes it as the peer would.
func (w *wire) transmit(tb tester, m antientropy.Message) antientropy.Message {
	b := m.AppendMsgpack(nil)
	w.bytes += len(b)
	w.msgs++
	d, err := antientropy.DecodeMessage(b)
	if err != nil {
		tb.Fatalf("decoding %v: %v", m.Type, err)
	}
	return d
}

// exchange runs one exchange of a (initiator) with b (responder) to the end
// through encoded messages, at now.
func exchange(tb tester, cfg antientropy.Config, a, b antientropy.Replica, ta, tbr *antientropy.Tree, now int64) (antientropy.Stats, wire) {
	tb.Helper()
	ex, err := antientropy.NewExchange(cfg, 7, 3, ta, a)
	if err != nil {
		tb.Fatal(err)
	}
	resp := antientropy.NewResponder(3, tbr, b)
	var w wire
	out := ex.Start(now)
	for rounds := 0; len(out) > 0; rounds++ {
		if rounds > 1_000_000 {
			tb.Fatal("exchange does not end")
		}
		var next []antientropy.Message
		for _, m := range out {
			replies, err := resp.Step(w.transmit(tb, m))
			if err != nil {
				tb.Fatalf("responder: %v", err)
			}
			for _, r := range replies {
				next = append(next, ex.Step(now, w.transmit(tb, r))...)
			}
		}
		out = next
	}
	if !ex.Done() || ex.Err() != nil {
		tb.Fatalf("exchange ended: done %v err %v", ex.Done(), ex.Err())
	}
	return ex.Stats(), w
}

// evict drops (ns, key) from the replica without telling its tree, as a
// memory-only store's memory tier does when it makes room.
func (m *model) evict(ns, key []byte) {
	k := mkey(ns, key)
	delete(m.objs, k)
	delete(m.byLeaf[m.shape.LeafOf(ns, key)], k)
}
