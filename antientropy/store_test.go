package antientropy_test

import (
	"fmt"
	"testing"

	"github.com/ecachedb/ecache/antientropy"
	"github.com/ecachedb/ecache/storage"
	"github.com/ecachedb/ecache/vclock"
)

// TestEvictedKeysNotRepaired: keys a replica evicted (its tree still holds
// them) are not transferred in either direction when their leaves differ
// for another reason; the real differences still are.
func TestEvictedKeysNotRepaired(t *testing.T) {
	s := antientropy.Shape{Width: 2, Depth: 1} // 2 leaves: every leaf mixes both kinds
	cfg := antientropy.DefaultConfig()
	cfg.Shape = s
	for _, initiatorEvicts := range []bool{true, false} {
		t.Run(fmt.Sprintf("initiator-evicts=%v", initiatorEvicts), func(t *testing.T) {
			a, b := newModel(t, s), newModel(t, s)
			for i := range 20 {
				k := []byte(fmt.Sprintf("k%d", i))
				o := write(vclock.Object{}, nil, nodeX, live("v"))
				a.put([]byte("ns"), k, o)
				b.put([]byte("ns"), k, o)
			}
			for i := range 5 {
				a.evict([]byte("ns"), []byte(fmt.Sprintf("k%d", i)))
			}
			// Real differences in both directions.
			b.put([]byte("ns"), []byte("new-b"), write(vclock.Object{}, nil, nodeY, live("b")))
			a.put([]byte("ns"), []byte("new-a"), write(vclock.Object{}, nil, nodeX, live("a")))
			init, resp := a, b
			if !initiatorEvicts {
				init, resp = b, a
			}
			// Only leaves that differ are listed: the evicted keys in them
			// are the ones the lists show missing.
			differing := map[uint32]bool{s.LeafOf([]byte("ns"), []byte("new-a")): true, s.LeafOf([]byte("ns"), []byte("new-b")): true}
			wantGhosts := 0
			for i := range 5 {
				if differing[s.LeafOf([]byte("ns"), []byte(fmt.Sprintf("k%d", i)))] {
					wantGhosts++
				}
			}
			st, _ := exchange(t, cfg, init, resp, init.tree, resp.tree, now)
			if st.KeysTransferred != 2 || st.Ghosts != wantGhosts || wantGhosts == 0 {
				t.Fatalf("transferred %d, ghosts %d; want 2 and %d", st.KeysTransferred, st.Ghosts, wantGhosts)
			}
			for i := range 5 {
				if _, ok := a.get([]byte("ns"), []byte(fmt.Sprintf("k%d", i))); ok {
					t.Fatalf("evicted k%d came back", i)
				}
			}
			for _, k := range []string{"new-a", "new-b"} {
				_, okA := a.get([]byte("ns"), []byte(k))
				_, okB := b.get([]byte("ns"), []byte(k))
				if !okA || !okB {
					t.Fatalf("%s not on both replicas", k)
				}
			}
			if !a.tree.Equal(b.tree) {
				t.Fatal("trees differ after the exchange")
			}
		})
	}
}

// TestExplainPartialGhost: a leaf whose ghost is only partly explained by
// the missing keys (an evicted key the other side changed since) repairs
// every missing key rather than guess.
func TestExplainPartialGhost(t *testing.T) {
	s := antientropy.Shape{Width: 2, Depth: 1}
	cfg := antientropy.DefaultConfig()
	cfg.Shape = s
	a, b := newModel(t, s), newModel(t, s)
	o := write(vclock.Object{}, nil, nodeX, live("v"))
	a.put(nil, []byte("k"), o)
	b.put(nil, []byte("k"), o)
	a.evict(nil, []byte("k"))
	b.put(nil, []byte("k"), write(o, o.Clock, nodeY, live("w"))) // newer on b
	st, _ := exchange(t, cfg, a, b, a.tree, b.tree, now)
	if st.KeysTransferred != 1 || st.Ghosts != 0 {
		t.Fatalf("transferred %d, ghosts %d; want 1 and 0", st.KeysTransferred, st.Ghosts)
	}
}

// storePair opens two memory-only stores whose trees OnChange keeps.
func storePair(t *testing.T, s antientropy.Shape, memA, memB int64) (sa, sb *storage.Store, ta, tb *antientropy.Trees) {
	t.Helper()
	open := func(mem int64) (*storage.Store, *antientropy.Trees) {
		trees, err := antientropy.NewTrees(s, 2)
		if err != nil {
			t.Fatal(err)
		}
		cfg := storage.DefaultConfig()
		cfg.Persistence = storage.PersistenceNone
		cfg.Partitions = 2
		cfg.ExpiryInterval = 0
		cfg.MemoryLimit = mem
		cfg.MemoryShards = 1
		cfg.OnChange = trees.OnChange
		st, err := storage.Open("", cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		for p := range uint32(2) {
			trees.Reset(p) // a memory-only store starts empty
		}
		return st, trees
	}
	sa, ta = open(memA)
	sb, tb = open(memB)
	return sa, sb, ta, tb
}

func storeWrite(t *testing.T, st *storage.Store, key string, sib vclock.Sibling) {
	t.Helper()
	if _, err := st.Update([]byte("ns"), []byte(key), func(cur vclock.Object, _ bool) (vclock.Object, error) {
		return write(cur, cur.Clock, st.NodeID(), sib), nil
	}); err != nil {
		t.Fatal(err)
	}
}

func storeMerge(t *testing.T, dst, src *storage.Store, key string) {
	t.Helper()
	var o vclock.Object
	if found, err := src.Get([]byte("ns"), []byte(key), &o); err != nil || !found {
		t.Fatalf("%s: found %v err %v", key, found, err)
	}
	if err := antientropy.NewStoreReplica(dst, 0, antientropy.DefaultShape(), nil).Merge([]byte("ns"), []byte(key), o.Clone()); err != nil {
		t.Fatal(err)
	}
}

// exchangeAll runs an exchange of every partition of a (initiator) with b
// and sums the stats.
func exchangeAll(t *testing.T, cfg antientropy.Config, sa, sb *storage.Store, ta, tb *antientropy.Trees) antientropy.Stats {
	t.Helper()
	var sum antientropy.Stats
	for p := range uint32(ta.Partitions()) {
		treeA, okA := ta.Tree(p)
		treeB, okB := tb.Tree(p)
		if !okA || !okB {
			t.Fatalf("partition %d: trees not ready", p)
		}
		ra := antientropy.NewStoreReplica(sa, p, cfg.Shape, nil)
		rb := antientropy.NewStoreReplica(sb, p, cfg.Shape, nil)
		ex, err := antientropy.NewExchange(cfg, 1, p, treeA, ra)
		if err != nil {
			t.Fatal(err)
		}
		resp := antientropy.NewResponder(p, treeB, rb)
		out := ex.Start(now)
		for rounds := 0; len(out) > 0; rounds++ {
			if rounds > 10000 {
				t.Fatal("exchange does not end")
			}
			var next []antientropy.Message
			for _, m := range out {
				replies, err := resp.Step(m)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range replies {
					next = append(next, ex.Step(now, r)...)
				}
			}
			out = next
		}
		if !ex.Done() || ex.Err() != nil {
			t.Fatalf("exchange: done %v err %v", ex.Done(), ex.Err())
		}
		st := ex.Stats()
		sum.KeysDiffering += st.KeysDiffering
		sum.KeysTransferred += st.KeysTransferred
		sum.Ghosts += st.Ghosts
		sum.RootComparisons += st.RootComparisons
	}
	return sum
}

// TestStoreReplicas: exchanges between two real stores whose trees the
// stores' OnChange keeps: k missing keys are k repairs, expired objects
// are never repaired, identical stores cost one root comparison per
// partition, and keys a memory-only store evicted are not pulled back.
func TestStoreReplicas(t *testing.T) {
	cfg := antientropy.DefaultConfig()
	cfg.Shape = antientropy.Shape{Width: 16, Depth: 2}
	// a's memory tier holds a fraction of the keys; b's holds all.
	sa, sb, ta, tb := storePair(t, cfg.Shape, 24<<10, 64<<20)
	const n = 600
	for i := range n {
		k := fmt.Sprintf("key-%04d", i)
		storeWrite(t, sa, k, live(k))
		storeMerge(t, sb, sa, k)
	}
	if sa.Stats().Memory.Evictions == 0 {
		t.Fatal("the small memory tier evicted nothing")
	}
	held := 0
	for i := range n {
		var o vclock.Object
		if found, _ := sa.Get([]byte("ns"), []byte(fmt.Sprintf("key-%04d", i)), &o); found {
			held++
		}
	}
	// Identical versions everywhere (the evicted ones too, as far as the
	// trees know): nothing to do.
	if st := exchangeAll(t, cfg, sa, sb, ta, tb); st.KeysTransferred != 0 || st.RootComparisons != 2 {
		t.Fatalf("identical replicas: %+v", st)
	}
	// Expired on b only: never repaired. Missing on a: pulled.
	storeWrite(t, sb, "expired", expired("x"))
	const k = 3
	for i := range k {
		storeWrite(t, sb, fmt.Sprintf("missing-%d", i), live("m"))
	}
	st := exchangeAll(t, cfg, sa, sb, ta, tb)
	if st.KeysTransferred != k {
		t.Fatalf("transferred %d keys (ghosts %d), want %d", st.KeysTransferred, st.Ghosts, k)
	}
	var o vclock.Object
	if found, _ := sa.Get([]byte("ns"), []byte("expired"), &o); found || len(o.Siblings) != 0 {
		t.Fatal("an expired object was repaired")
	}
	for i := range k {
		if found, _ := sa.Get([]byte("ns"), []byte(fmt.Sprintf("missing-%d", i)), &o); !found {
			t.Fatalf("missing-%d not repaired", i)
		}
	}
	t.Logf("a held %d of %d keys; %d evicted keys left alone", held, n, st.Ghosts)
}
