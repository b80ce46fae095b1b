package antientropy_test

import (
	"fmt"
	"testing"

	"github.com/ecachedb/ecache/antientropy"
	"github.com/ecachedb/ecache/storage"
	"github.com/ecachedb/ecache/vclock"
	"pgregory.net/rapid"
)

func genShape(t *rapid.T) antientropy.Shape {
	return antientropy.Shape{Width: rapid.IntRange(2, 9).Draw(t, "width"), Depth: rapid.IntRange(1, 4).Draw(t, "depth")}
}

func mustTree(t tester, s antientropy.Shape) *antientropy.Tree {
	tr, err := antientropy.NewTree(s)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestTreeIncremental: a tree updated incrementally, in any order of
// updates, equals one built from scratch from the final contents, and every
// inner node is the XOR of its children.
func TestTreeIncremental(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genShape(t)
		inc := mustTree(t, s)
		state := map[int]uint64{} // key index → digest (absent: 0)
		nkeys := rapid.IntRange(1, 50).Draw(t, "keys")
		ops := rapid.IntRange(0, 300).Draw(t, "ops")
		key := func(i int) []byte { return []byte(fmt.Sprintf("k%d", i)) }
		for range ops {
			i := rapid.IntRange(0, nkeys-1).Draw(t, "key")
			// Digest 0 removes; small digests make re-inserting the same
			// version likely.
			d := rapid.Uint64Range(0, 4).Draw(t, "digest")
			inc.Update([]byte("ns"), key(i), state[i], d)
			state[i] = d
		}
		// Rebuild in a random order.
		order := rapid.Permutation(keysOf(state)).Draw(t, "order")
		fresh := mustTree(t, s)
		for _, i := range order {
			fresh.Insert([]byte("ns"), key(i), state[i])
		}
		if !inc.Equal(fresh) {
			t.Fatal("incremental tree differs from a rebuilt one")
		}
		var root uint64
		for i, d := range state {
			root ^= antientropy.EntryHash([]byte("ns"), key(i), d)
		}
		if inc.Root() != root {
			t.Fatalf("root %x, XOR of entries %x", inc.Root(), root)
		}
		checkStructure(t, inc)
		// Removing everything empties the tree.
		for i, d := range state {
			inc.Remove([]byte("ns"), key(i), d)
		}
		if !inc.Equal(mustTree(t, s)) {
			t.Fatal("tree not empty after removing every key")
		}
	})
}

func keysOf(m map[int]uint64) []int {
	var ks []int
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func checkStructure(t tester, tr *antientropy.Tree) {
	s := tr.Shape()
	n := 1
	for level := 0; level < s.Depth; level++ {
		for i := range n {
			var x uint64
			for _, h := range tr.Children(level, uint32(i), nil) {
				x ^= h
			}
			if x != tr.Node(level, uint32(i)) {
				t.Fatalf("node %d at level %d is not the XOR of its children", i, level)
			}
		}
		n *= s.Width
	}
}

func TestDigest(t *testing.T) {
	o := write(vclock.Object{}, nil, nodeX, live("v"))
	if d := antientropy.Digest(o, now); d == 0 || d != antientropy.Digest(o.Clone(), now) {
		t.Fatal("equal objects must have equal non-zero digests")
	}
	if antientropy.Digest(vclock.Object{}, now) != 0 {
		t.Fatal("absent object has a digest")
	}
	e := write(vclock.Object{}, nil, nodeX, vclock.Sibling{Value: []byte("v"), Expiry: now})
	if antientropy.Digest(e, now-1) == 0 || antientropy.Digest(e, now) != 0 {
		t.Fatal("expiry not honoured")
	}
	ts := write(o, o.Clock, nodeX, vclock.Sibling{Tombstone: true})
	if antientropy.Digest(ts, now) == 0 || antientropy.Digest(ts, now) == antientropy.Digest(o, now) {
		t.Fatal("tombstone must be present and differ")
	}
	// Every field counts.
	base := antientropy.Digest(o, now)
	for name, mut := range map[string]func(*vclock.Sibling){
		"value":  func(s *vclock.Sibling) { s.Value = []byte("w") },
		"hlc":    func(s *vclock.Sibling) { s.HLC++ },
		"expiry": func(s *vclock.Sibling) { s.Expiry = now + 5 },
	} {
		c := o.Clone()
		mut(&c.Siblings[0])
		if antientropy.Digest(c, now) == base {
			t.Errorf("changing %s leaves the digest", name)
		}
	}
	if antientropy.VersionDigest(e) != antientropy.Digest(e, now-1) || antientropy.VersionDigest(vclock.Object{}) != 0 {
		t.Fatal("VersionDigest is Digest without expiry")
	}
	// A partly expired object is present.
	p := write(e, nil, nodeY, live("x"))
	if antientropy.Digest(p, now) == 0 {
		t.Fatal("partly expired object is absent")
	}
}

// TestLeavesIndependentOfPartition: the keys of one partition spread over
// every leaf (the leaf hash is not the partition hash).
func TestLeavesIndependentOfPartition(t *testing.T) {
	s := antientropy.Shape{Width: 8, Depth: 2}
	used := map[uint32]int{}
	for i := 0; len(used) < s.Leaves() && i < 1_000_000; i++ {
		k := []byte(fmt.Sprintf("key-%d", i))
		if storage.PartitionOf([]byte("ns"), k, 1024) != 5 {
			continue
		}
		used[s.LeafOf([]byte("ns"), k)]++
	}
	if len(used) != s.Leaves() {
		t.Fatalf("partition 5 uses %d of %d leaves", len(used), s.Leaves())
	}
}

func TestShapeFor(t *testing.T) {
	for _, c := range []struct {
		keys int
		want antientropy.Shape
	}{
		{0, antientropy.Shape{Width: 2, Depth: 2}},
		{4000, antientropy.Shape{Width: 32, Depth: 2}},
		{1_000_000, antientropy.Shape{Width: 64, Depth: 3}},
	} {
		got := antientropy.ShapeFor(c.keys)
		if got != c.want || got.Validate() != nil {
			t.Errorf("ShapeFor(%d) = %v, want %v", c.keys, got, c.want)
		}
	}
}

// TestBuildFromStore: a tree built from a memory-only store's scan equals
// one maintained write by write, expired objects included.
func TestBuildFromStore(t *testing.T) {
	cfg := storage.DefaultConfig()
	cfg.Persistence = storage.PersistenceNone
	cfg.Partitions = 4
	cfg.ExpiryInterval = 0
	st, err := storage.Open("", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := antientropy.Shape{Width: 4, Depth: 2}
	want := make([]*antientropy.Tree, cfg.Partitions)
	for p := range want {
		want[p] = mustTree(t, s)
	}
	for i := range 400 {
		ns, key := []byte("ns"), []byte(fmt.Sprintf("k%d", i))
		sib := live("v")
		if i%7 == 0 {
			sib.Expiry = now - 1
		}
		o, err := st.Update(ns, key, func(cur vclock.Object, _ bool) (vclock.Object, error) {
			return write(cur, cur.Clock, st.NodeID(), sib), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want[storage.PartitionOf(ns, key, cfg.Partitions)].Insert(ns, key, antientropy.VersionDigest(o))
	}
	for p := range want {
		got, err := antientropy.BuildFromStore(s, st, uint32(p))
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(want[p]) || got.Root() == 0 {
			t.Fatalf("partition %d: built tree differs", p)
		}
	}
	if _, err := antientropy.BuildFromStore(s, st, 9); err == nil {
		t.Fatal("partition out of range accepted")
	}
}
