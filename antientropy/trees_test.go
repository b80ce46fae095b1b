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
