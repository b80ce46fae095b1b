package antientropy_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ecachedb/ecache/antientropy"
	"github.com/ecachedb/ecache/vclock"
	"pgregory.net/rapid"
)

const (
	nodeX vclock.NodeID = 1
	nodeY vclock.NodeID = 2
	nodeZ vclock.NodeID = 3
)

// now is the instant the tests' exchanges run at.
const now = int64(1_000_000_000_000)

func write(o vclock.Object, ctx vclock.VV, n vclock.NodeID, s vclock.Sibling) vclock.Object {
	out, _ := o.Update(ctx, n, s)
	return out
}

func live(v string) vclock.Sibling { return vclock.Sibling{HLC: 10, Value: []byte(v)} }
func expired(v string) vclock.Sibling {
	return vclock.Sibling{HLC: 10, Value: []byte(v), Expiry: now - 1}
}

// scenario builds replica a's and b's versions of one key (zero: absent).
type scenario struct {
	name string
	make func(v string) (a, b vclock.Object)
}

var scenarios = []scenario{
	{"same", func(v string) (vclock.Object, vclock.Object) {
		o := write(vclock.Object{}, nil, nodeX, live(v))
		return o, o
	}},
	{"only-a", func(v string) (vclock.Object, vclock.Object) {
		return write(vclock.Object{}, nil, nodeX, live(v)), vclock.Object{}
	}},
	{"only-b", func(v string) (vclock.Object, vclock.Object) {
		return vclock.Object{}, write(vclock.Object{}, nil, nodeY, live(v))
	}},
	{"stale-b", func(v string) (vclock.Object, vclock.Object) {
		base := write(vclock.Object{}, nil, nodeX, live(v))
		return write(base, base.Clock, nodeY, live(v+"'")), base
	}},
	{"stale-a", func(v string) (vclock.Object, vclock.Object) {
		base := write(vclock.Object{}, nil, nodeX, live(v))
		return base, write(base, base.Clock, nodeX, live(v+"'"))
	}},
	{"concurrent", func(v string) (vclock.Object, vclock.Object) {
		base := write(vclock.Object{}, nil, nodeX, live(v))
		return write(base, base.Clock, nodeX, live(v+"x")), write(base, base.Clock, nodeY, live(v+"y"))
	}},
	{"siblings-both", func(v string) (vclock.Object, vclock.Object) {
		base := write(vclock.Object{}, nil, nodeX, live(v))
		o := write(base, nil, nodeY, live(v+"s"))
		return o, o
	}},
	{"siblings-resolved-on-b", func(v string) (vclock.Object, vclock.Object) {
		base := write(vclock.Object{}, nil, nodeX, live(v))
		o := write(base, nil, nodeY, live(v+"s"))
		return o, write(o, o.Clock, nodeZ, live(v+"r"))
	}},
	{"tombstone-a", func(v string) (vclock.Object, vclock.Object) {
		base := write(vclock.Object{}, nil, nodeX, live(v))
		return write(base, base.Clock, nodeX, vclock.Sibling{HLC: 11, Tombstone: true}), base
	}},
	{"tombstone-only-b", func(v string) (vclock.Object, vclock.Object) {
		base := write(vclock.Object{}, nil, nodeX, live(v))
		return vclock.Object{}, write(base, base.Clock, nodeY, vclock.Sibling{HLC: 11, Tombstone: true})
	}},
	{"tombstone-both", func(v string) (vclock.Object, vclock.Object) {
		base := write(vclock.Object{}, nil, nodeX, live(v))
		o := write(base, base.Clock, nodeY, vclock.Sibling{HLC: 11, Tombstone: true})
		return o, o
	}},
	{"expired-only-a", func(v string) (vclock.Object, vclock.Object) {
		return write(vclock.Object{}, nil, nodeX, expired(v)), vclock.Object{}
	}},
	{"expired-differently", func(v string) (vclock.Object, vclock.Object) {
		a := write(vclock.Object{}, nil, nodeX, expired(v))
		return a, write(a, a.Clock, nodeY, expired(v+"'"))
	}},
	{"expired-concurrent", func(v string) (vclock.Object, vclock.Object) {
		return write(vclock.Object{}, nil, nodeX, expired(v)), write(vclock.Object{}, nil, nodeY, expired(v+"'"))
	}},
	{"expired-supersedes-live-b", func(v string) (vclock.Object, vclock.Object) {
		base := write(vclock.Object{}, nil, nodeX, live(v))
		return write(base, base.Clock, nodeX, expired(v+"'")), base
	}},
	{"partly-expired", func(v string) (vclock.Object, vclock.Object) {
		base := write(vclock.Object{}, nil, nodeX, expired(v))
		o := write(base, nil, nodeY, live(v+"s"))
		return o, base
	}},
	{"expires-later-a", func(v string) (vclock.Object, vclock.Object) {
		s := live(v)
		s.Expiry = now + 1
		return write(vclock.Object{}, nil, nodeX, s), vclock.Object{}
	}},
}

// replicaPair is a generated pair of replicas and the naive answer.
type replicaPair struct {
	a, b *model
	// a0, b0 are the versions before the exchange, by key.
	a0, b0 map[string]vclock.Object
	keys   map[string][2][]byte
	// differ is the naive full comparison: keys whose digests differ.
	differ map[string]bool
}

func genPair(t *rapid.T, s antientropy.Shape) *replicaPair {
	p := &replicaPair{a: newModel(t, s), b: newModel(t, s),
		a0: map[string]vclock.Object{}, b0: map[string]vclock.Object{},
		keys: map[string][2][]byte{}, differ: map[string]bool{}}
	n := rapid.IntRange(0, 300).Draw(t, "keys")
	weights := rapid.SliceOfN(rapid.IntRange(0, 3), len(scenarios), len(scenarios)).Draw(t, "weights")
	var pick []int
	for i, w := range weights {
		for range w {
			pick = append(pick, i)
		}
	}
	if len(pick) == 0 {
		pick = []int{0}
	}
	for i := range n {
		sc := scenarios[pick[rapid.IntRange(0, len(pick)-1).Draw(t, "scenario")]]
		ns := []byte([]string{"default", "s"}[i%2])
		key := []byte(fmt.Sprintf("key-%d", i))
		a, b := sc.make(fmt.Sprintf("v%d", i))
		k := mkey(ns, key)
		p.keys[k] = [2][]byte{ns, key}
		if !a.IsZero() {
			p.a.put(ns, key, a)
			p.a0[k] = a
		}
		if !b.IsZero() {
			p.b.put(ns, key, b)
			p.b0[k] = b
		}
		if antientropy.Digest(a, now) != antientropy.Digest(b, now) {
			p.differ[k] = true
		}
	}
	return p
}

func genConfig(t *rapid.T) antientropy.Config {
	cfg := antientropy.DefaultConfig()
	cfg.Shape = antientropy.Shape{Width: rapid.IntRange(2, 8).Draw(t, "width"), Depth: rapid.IntRange(1, 3).Draw(t, "depth")}
	cfg.NodesPerRequest = rapid.IntRange(1, 8).Draw(t, "nodesPerRequest")
	cfg.LeavesPerRequest = rapid.IntRange(1, 16).Draw(t, "leavesPerRequest")
	cfg.ObjectsPerRequest = rapid.IntRange(1, 16).Draw(t, "objectsPerRequest")
	return cfg
}

// TestExchangeDifferential checks one exchange against a naive full
// comparison: afterwards every key the naive comparison found different
// holds Join of both versions on both replicas, exactly those keys were
// transferred, and nothing else changed.
func TestExchangeDifferential(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := genConfig(t)
		p := genPair(t, cfg.Shape)
		st, _ := exchange(t, cfg, p.a, p.b, p.a.tree, p.b.tree, now)

		if st.KeysTransferred != len(p.differ) || st.KeysDiffering != len(p.differ) {
			t.Fatalf("transferred %d keys (%d differing), naive comparison finds %d", st.KeysTransferred, st.KeysDiffering, len(p.differ))
		}
		for k, nk := range p.keys {
			moved := p.a.merged[k] > 0 || p.b.merged[k] > 0
			if moved != p.differ[k] {
				t.Fatalf("key %q (differs %v) moved %v", k, p.differ[k], moved)
			}
			a, _ := p.a.get(nk[0], nk[1])
			b, _ := p.b.get(nk[0], nk[1])
			if !p.differ[k] {
				if !vclock.ObjectsEqual(a, p.a0[k]) || !vclock.ObjectsEqual(b, p.b0[k]) {
					t.Fatalf("key %q did not differ but changed", k)
				}
				continue
			}
			want := vclock.Join(p.a0[k], p.b0[k])
			if !vclock.ObjectsEqual(a, want) || !vclock.ObjectsEqual(b, want) {
				t.Fatalf("key %q: a %+v b %+v, want %+v", k, a, b, want)
			}
		}
		// Replicas that now store the same objects have equal trees, and a
		// second exchange costs them one root comparison. Others differ only
		// in expired objects: the second exchange may descend but transfers
		// nothing.
		same := true
		for _, nk := range p.keys {
			a, _ := p.a.get(nk[0], nk[1])
			b, _ := p.b.get(nk[0], nk[1])
			same = same && vclock.ObjectsEqual(a, b)
		}
		if same != (p.a.tree.Root() == p.b.tree.Root()) {
			t.Fatalf("replicas store equal objects: %v, roots equal: %v", same, !same)
		}
		st2, w2 := exchange(t, cfg, p.a, p.b, p.a.tree, p.b.tree, now)
		if st2.KeysTransferred != 0 || st2.KeysDiffering != 0 || (same && (st2.Requests != 1 || w2.msgs != 2)) {
			t.Fatalf("second exchange: %+v, %d messages", st2, w2.msgs)
		}
	})
}

// TestExchangePushOnly checks a push-only exchange against a naive
// comparison: the initiator is left exactly as it was; the peer gets
// Join of both versions of exactly the keys whose version it does not
// already absorb (merging the initiator's would change its digest), and
// keeps everything else, its own newer versions and keys included.
func TestExchangePushOnly(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := genConfig(t)
		cfg.PushOnly = true
		p := genPair(t, cfg.Shape)
		st, _ := exchange(t, cfg, p.a, p.b, p.a.tree, p.b.tree, now)

		pushed := 0
		for k, nk := range p.keys {
			if p.a.merged[k] > 0 {
				t.Fatalf("key %q was pulled by a push-only exchange", k)
			}
			a, _ := p.a.get(nk[0], nk[1])
			if !vclock.ObjectsEqual(a, p.a0[k]) {
				t.Fatalf("key %q changed on the initiator", k)
			}
			join := vclock.Join(p.a0[k], p.b0[k])
			want := p.b0[k]
			if antientropy.Digest(join, now) != antientropy.Digest(p.b0[k], now) {
				want = join
				pushed++
			}
			b, _ := p.b.get(nk[0], nk[1])
			if antientropy.Digest(b, now) != antientropy.Digest(want, now) {
				t.Fatalf("key %q: peer holds %+v, want %+v (a %+v, b %+v)", k, b, want, p.a0[k], p.b0[k])
			}
			if (p.b.merged[k] > 0) != (antientropy.Digest(want, now) != antientropy.Digest(p.b0[k], now)) {
				t.Fatalf("key %q: merged on the peer %d times, needed: %v", k, p.b.merged[k], !vclock.ObjectsEqual(want, p.b0[k]))
			}
		}
		if st.KeysTransferred != pushed || st.ObjectsPulled != 0 {
			t.Fatalf("transferred %d keys, pulled %d objects; naive comparison finds %d to push", st.KeysTransferred, st.ObjectsPulled, pushed)
		}
		// The peer now absorbs everything: a second push-only exchange
		// transfers nothing.
		st2, _ := exchange(t, cfg, p.a, p.b, p.a.tree, p.b.tree, now)
		if st2.KeysTransferred != 0 || st2.KeysDiffering != 0 {
			t.Fatalf("second push-only exchange: %+v", st2)
		}
	})
}

// TestNoFalseRepairs: identical replicas cost one root comparison and
// transfer nothing, whichever side starts.
func TestNoFalseRepairs(t *testing.T) {
	cfg := antientropy.DefaultConfig()
	a, b := newModel(t, cfg.Shape), newModel(t, cfg.Shape)
	for i := range 5000 {
		key := []byte(fmt.Sprintf("k%d", i))
		o := write(vclock.Object{}, nil, nodeX, live("v"))
		a.put([]byte("ns"), key, o)
		b.put([]byte("ns"), key, o.Clone())
	}
	for _, dir := range []struct{ x, y *model }{{a, b}, {b, a}} {
		st, w := exchange(t, cfg, dir.x, dir.y, dir.x.tree, dir.y.tree, now)
		if st.RootComparisons != 1 || st.Requests != 1 || st.NodeHashes != 0 || st.KeysTransferred != 0 || w.msgs != 2 {
			t.Fatalf("identical replicas: %+v, %d messages", st, w.msgs)
		}
		t.Logf("identical replicas: %d messages, %d bytes", w.msgs, w.bytes)
	}
}

// TestExpiredNeverRepaired: replicas that differ only in expired objects
// (one swept them, one did not, or they expired differently) transfer
// nothing, although their trees differ and the exchange descends.
func TestExpiredNeverRepaired(t *testing.T) {
	cfg := antientropy.DefaultConfig()
	a, b := newModel(t, cfg.Shape), newModel(t, cfg.Shape)
	for i := range 200 {
		ns, key := []byte("ns"), []byte(fmt.Sprintf("k%d", i))
		x := write(vclock.Object{}, nil, nodeX, expired("old"))
		a.put(ns, key, x)
		switch i % 3 {
		case 0: // b swept it
		case 1:
			b.put(ns, key, write(x, x.Clock, nodeY, expired("newer")))
		case 2:
			b.put(ns, key, x)
		}
	}
	for _, dir := range []struct{ x, y *model }{{a, b}, {b, a}} {
		st, _ := exchange(t, cfg, dir.x, dir.y, dir.x.tree, dir.y.tree, now)
		if st.LeavesCompared == 0 || st.KeysDiffering != 0 || st.KeysTransferred != 0 || len(a.merged)+len(b.merged) != 0 {
			t.Fatalf("expired objects: %+v", st)
		}
	}
}

// TestTombstonesPropagate: a delete on one replica reaches the other and
// the key stays deleted there.
func TestTombstonesPropagate(t *testing.T) {
	cfg := antientropy.DefaultConfig()
	a, b := newModel(t, cfg.Shape), newModel(t, cfg.Shape)
	ns, key := []byte("ns"), []byte("k")
	o := write(vclock.Object{}, nil, nodeX, live("v"))
	a.put(ns, key, o)
	b.put(ns, key, o)
	del := write(o, o.Clock, nodeY, vclock.Sibling{HLC: 20, Tombstone: true})
	b.put(ns, key, del)
	st, _ := exchange(t, cfg, a, b, a.tree, b.tree, now)
	got, _ := a.get(ns, key)
	if st.KeysTransferred != 1 || st.ObjectsPulled != 1 || st.ObjectsPushed != 0 || !vclock.ObjectsEqual(got, del) {
		t.Fatalf("tombstone did not propagate: %+v, a holds %+v", st, got)
	}
}

// TestWipedReplicaRefilled: an empty replica gets every key back.
func TestWipedReplicaRefilled(t *testing.T) {
	cfg := antientropy.DefaultConfig()
	cfg.ObjectsPerRequest = 100
	a, b := newModel(t, cfg.Shape), newModel(t, cfg.Shape)
	for i := range 3000 {
		a.put([]byte("ns"), []byte(fmt.Sprintf("k%d", i)), write(vclock.Object{}, nil, nodeX, live("v")))
	}
	st, _ := exchange(t, cfg, b, a, b.tree, a.tree, now)
	if st.KeysTransferred != 3000 || len(b.objs) != 3000 || !a.tree.Equal(b.tree) {
		t.Fatalf("refill: %+v, %d keys", st, len(b.objs))
	}
}

func startedPair(t *testing.T) (*antientropy.Exchange, *antientropy.Responder, []antientropy.Message, antientropy.Config) {
	cfg := antientropy.DefaultConfig()
	a, b := newModel(t, cfg.Shape), newModel(t, cfg.Shape)
	a.put([]byte("ns"), []byte("k"), write(vclock.Object{}, nil, nodeX, live("v")))
	ex, err := antientropy.NewExchange(cfg, 1, 3, a.tree, a)
	if err != nil {
		t.Fatal(err)
	}
	return ex, antientropy.NewResponder(3, b.tree, b), ex.Start(now), cfg
}

func TestExchangeRetriesThenTimesOut(t *testing.T) {
	ex, _, out, cfg := startedPair(t)
	to := int64(cfg.Timeout)
	if m := ex.Tick(now + to - 1); m != nil {
		t.Fatalf("resent before the timeout: %v", m)
	}
	at := now
	for i := range cfg.MaxRetries {
		at += to
		m := ex.Tick(at)
		if len(m) != 1 || !m[0].Equal(&out[0]) {
			t.Fatalf("retry %d: got %v, want the request again", i, m)
		}
	}
	at += to
	m := ex.Tick(at)
	if !ex.Done() || !errors.Is(ex.Err(), antientropy.ErrTimeout) || len(m) != 1 || m[0].Type != antientropy.MsgAbort {
		t.Fatalf("after retries: done %v err %v msgs %v", ex.Done(), ex.Err(), m)
	}
	if st := ex.Stats(); st.Retries != cfg.MaxRetries || st.Requests != cfg.MaxRetries+1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestExchangeRetryThenAnswer(t *testing.T) {
	ex, resp, out, cfg := startedPair(t)
	re := ex.Tick(now + int64(cfg.Timeout)) // the first request was lost
	r1, _ := resp.Step(re[0])
	next := ex.Step(now, r1[0])
	if len(next) != 1 || next[0].Type != antientropy.MsgNodesReq {
		t.Fatalf("after the root: %v", next)
	}
	// A late answer to the lost request, and a duplicate, are ignored.
	late, _ := resp.Step(out[0])
	if m := ex.Step(now, late[0]); m != nil {
		t.Fatalf("duplicate answer produced %v", m)
	}
	if ex.Done() {
		t.Fatal("duplicate ended the exchange")
	}
	// Messages of other sessions are ignored.
	other := r1[0]
	other.Session++
	if m := ex.Step(now, other); m != nil || ex.Done() {
		t.Fatal("message of another session was used")
	}
}

func TestExchangeAbortAndMismatch(t *testing.T) {
	cfg := antientropy.DefaultConfig()
	a := newModel(t, cfg.Shape)
	other := antientropy.Shape{Width: 16, Depth: 2}
	b := newModel(t, other)
	ex, _ := antientropy.NewExchange(cfg, 1, 3, a.tree, a)
	out := ex.Start(now)
	reply, err := antientropy.NewResponder(3, b.tree, b).Step(out[0])
	if !errors.Is(err, antientropy.ErrMalformed) || len(reply) != 1 || reply[0].Type != antientropy.MsgAbort {
		t.Fatalf("shape mismatch: %v %v", reply, err)
	}
	ex.Step(now, reply[0])
	if !ex.Done() || !errors.Is(ex.Err(), antientropy.ErrAborted) {
		t.Fatalf("after abort: %v", ex.Err())
	}

	// Wrong partition.
	ex, _ = antientropy.NewExchange(cfg, 1, 3, a.tree, a)
	out = ex.Start(now)
	if _, err := antientropy.NewResponder(4, a.tree, a).Step(out[0]); !errors.Is(err, antientropy.ErrMalformed) {
		t.Fatalf("wrong partition: %v", err)
	}

	// A response of the wrong type fails the exchange.
	ex, _ = antientropy.NewExchange(cfg, 1, 3, a.tree, a)
	out = ex.Start(now)
	bad := antientropy.Message{Type: antientropy.MsgKeysResp, Session: 1, Partition: 3, Seq: out[0].Seq}
	if m := ex.Step(now, bad); len(m) != 1 || m[0].Type != antientropy.MsgAbort || !errors.Is(ex.Err(), antientropy.ErrMalformed) {
		t.Fatalf("wrong response type: %v %v", m, ex.Err())
	}
	if _, err := antientropy.NewExchange(cfg, 1, 3, b.tree, b); !errors.Is(err, antientropy.ErrInvalidConfig) {
		t.Fatalf("tree of another shape: %v", err)
	}
}

// TestResponderRejectsBadRequests: node indexes out of range, unsorted or at
// the leaf level are refused.
func TestResponderRejectsBadRequests(t *testing.T) {
	cfg := antientropy.DefaultConfig()
	a := newModel(t, cfg.Shape)
	r := antientropy.NewResponder(0, a.tree, a)
	base := antientropy.Message{Shape: cfg.Shape}
	for _, m := range []antientropy.Message{
		{Type: antientropy.MsgNodesReq, Level: 2, Nodes: []uint32{0}},
		{Type: antientropy.MsgNodesReq, Level: 1, Nodes: []uint32{32}},
		{Type: antientropy.MsgNodesReq, Level: 1, Nodes: []uint32{3, 2}},
		{Type: antientropy.MsgKeysReq, Nodes: []uint32{1024}},
		{Type: antientropy.MsgKeysReq, Nodes: []uint32{5, 5}},
	} {
		m.Shape = base.Shape
		if _, err := r.Step(m); !errors.Is(err, antientropy.ErrMalformed) {
			t.Errorf("%v %d %v: err %v", m.Type, m.Level, m.Nodes, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := antientropy.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, mut := range []func(*antientropy.Config){
		func(c *antientropy.Config) { c.Shape.Width = 1 },
		func(c *antientropy.Config) { c.Shape.Depth = 0 },
		func(c *antientropy.Config) { c.Shape = antientropy.Shape{Width: 1024, Depth: 3} },
		func(c *antientropy.Config) { c.Timeout = 0 },
		func(c *antientropy.Config) { c.MaxRetries = -1 },
		func(c *antientropy.Config) { c.NodesPerRequest = 0 },
		func(c *antientropy.Config) { c.LeavesPerRequest = 0 },
		func(c *antientropy.Config) { c.ObjectsPerRequest = 0 },
	} {
		c := antientropy.DefaultConfig()
		mut(&c)
		if err := c.Validate(); !errors.Is(err, antientropy.ErrInvalidConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}
