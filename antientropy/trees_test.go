package antientropy_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ecachedb/ecache/antientropy"
	"github.com/ecachedb/ecache/vclock"
)

// TestTreesRebuildRacingChanges: changes that arrive while a partition's
// tree is being built from a scan — to keys the scan has passed, keys it
// has yet to reach and new keys, including removals — end in the tree
// exactly once, whichever version the scan saw.
func TestTreesRebuildRacingChanges(t *testing.T) {
	s := antientropy.Shape{Width: 4, Depth: 2}
	trees, err := antientropy.NewTrees(s, 2)
	if err != nil {
		t.Fatal(err)
	}
	// The "store": what the scan walks, changed mid-scan.
	objs := map[string]vclock.Object{}
	var order []string
	for i := range 50 {
		k := fmt.Sprintf("k%02d", i)
		objs[k] = write(vclock.Object{}, nil, nodeX, live(k))
		order = append(order, k)
	}
	change := func(k string, next *vclock.Object) {
		var prev *vclock.Object
		if o, ok := objs[k]; ok {
			prev = &o
		}
		if next == nil {
			delete(objs, k)
		} else {
			objs[k] = *next
		}
		trees.OnChange(1, []byte("ns"), []byte(k), prev, next)
	}
	// Changes before the build began are the scan's business.
	if trees.Ready(1) {
		t.Fatal("ready before being built")
	}
	err = trees.Rebuild(1, func(fn func(ns, key []byte, obj *vclock.Object) error) error {
		for i, k := range order {
			if i == 25 {
				upd := write(objs["k03"], objs["k03"].Clock, nodeY, live("new")) // passed
				change("k03", &upd)
				upd2 := write(objs["k40"], objs["k40"].Clock, nodeY, live("new")) // ahead
				change("k40", &upd2)
				change("k04", nil) // passed, removed
				change("k41", nil) // ahead, removed
				added := write(vclock.Object{}, nil, nodeY, live("added"))
				change("added", &added)
			}
			o, ok := objs[k]
			if !ok {
				continue
			}
			if err := fn([]byte("ns"), []byte(k), &o); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A change after the build goes straight in.
	later := write(objs["k10"], objs["k10"].Clock, nodeZ, live("later"))
	change("k10", &later)
	want := mustTree(t, s)
	for k, o := range objs {
		want.Insert([]byte("ns"), []byte(k), antientropy.VersionDigest(o))
	}
	got, ok := trees.Tree(1)
	if !ok || !got.Equal(want) {
		t.Fatalf("tree after a racing rebuild differs (ready %v)", ok)
	}
	// A failed build leaves the partition not ready; Reset makes it
	// empty and ready.
	boom := errors.New("boom")
	if err := trees.Rebuild(0, func(func(ns, key []byte, obj *vclock.Object) error) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("rebuild error %v", err)
	}
	if _, ok := trees.Tree(0); ok {
		t.Fatal("a failed build is ready")
	}
	trees.Reset(0)
	if tr, ok := trees.Tree(0); !ok || tr.Root() != 0 {
		t.Fatal("reset partition not empty and ready")
	}
	if err := trees.Rebuild(5, nil); err == nil {
		t.Fatal("partition out of range accepted")
	}
	if _, err := antientropy.NewTrees(s, 0); err == nil {
		t.Fatal("zero partitions accepted")
	}
}

// BenchmarkTreesOnChange is what the store's change hook adds to a write in
// a cluster: two version digests (100-byte values) and one tree update.
func BenchmarkTreesOnChange(b *testing.B) {
	trees, err := antientropy.NewTrees(antientropy.DefaultShape(), 1024)
	if err != nil {
		b.Fatal(err)
	}
	for p := range uint32(1024) {
		trees.Reset(p)
	}
	prev := write(vclock.Object{}, nil, nodeX, vclock.Sibling{HLC: 1, Value: make([]byte, 100)})
	next := write(prev, prev.Clock, nodeX, vclock.Sibling{HLC: 2, Value: make([]byte, 100)})
	ns, key := []byte("default"), []byte("key-00000042")
	b.ReportAllocs()
	for b.Loop() {
		trees.OnChange(42, ns, key, &prev, &next)
	}
}

// TestTreesEvictionChurn: a memory-only store evicts a key and the key is
// written again later (the store reports that write as new): the tree then
// counts only the new version, as a tree built from the stored data would,
// whether the eviction was reported before the write or after it.
func TestTreesEvictionChurn(t *testing.T) {
	obj := func(c uint64, v string) *vclock.Object {
		o, _ := vclock.Object{}.Update(nil, 1, vclock.Sibling{HLC: vclock.Timestamp(c), Value: []byte(v)})
		o.Clock = vclock.VV{}.With(vclock.Dot{Node: 1, Counter: c})
		o.Siblings[0].Dot = vclock.Dot{Node: 1, Counter: c}
		return &o
	}
	shape := antientropy.DefaultShape()
	want, err := antientropy.Build(shape, func(fn func(ns, key []byte, obj *vclock.Object) error) error {
		if err := fn([]byte("ns"), []byte("a"), obj(2, "a2")); err != nil {
			return err
		}
		return fn([]byte("ns"), []byte("b"), obj(2, "b2"))
	})
	if err != nil {
		t.Fatal(err)
	}
	trees, err := antientropy.NewTrees(shape, 1)
	if err != nil {
		t.Fatal(err)
	}
	trees.Reset(0)
	ns := []byte("ns")
	for _, k := range []string{"a", "b"} {
		trees.OnChange(0, ns, []byte(k), nil, obj(1, k+"1"))
	}
	// a: evicted, reported, then written again.
	trees.OnEvict(0, ns, []byte("a"), obj(1, "a1"), false)
	trees.OnChange(0, ns, []byte("a"), nil, obj(2, "a2"))
	// b: evicted, written again, and only then reported.
	trees.OnChange(0, ns, []byte("b"), nil, obj(2, "b2"))
	trees.OnEvict(0, ns, []byte("b"), obj(1, "b1"), true)
	got, ok := trees.Tree(0)
	if !ok || !got.Equal(want) {
		t.Fatalf("tree after eviction churn differs from one built from the stored data (root %x, want %x)", got.Root(), want.Root())
	}
	// An evicted key that stays away stays counted: no repair is due.
	trees.OnEvict(0, ns, []byte("b"), obj(2, "b2"), false)
	if got, _ := trees.Tree(0); !got.Equal(want) {
		t.Fatal("an eviction changed the tree")
	}
}
