package storage

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/ecachedb/ecache/vclock"
)

// TestGetViewMatchesGet: for objects of one and several siblings,
// tombstones and expiries, GetView answers what Get answers, with the
// context vclock.EncodeContext gives, in both the cached and full modes.
func TestGetViewMatchesGet(t *testing.T) {
	for _, p := range modes {
		t.Run(p.String(), func(t *testing.T) {
			cfg := testConfig(t, p)
			clk := newFakeClock()
			cfg.Now = clk.Now
			s := openTest(t, t.TempDir(), cfg)
			now := clk.Now().UnixNano()
			rng := rand.New(rand.NewPCG(1, 2))
			ns := []byte("ns")
			keys := make([][]byte, 200)
			for i := range keys {
				keys[i] = []byte{'k', byte(i)}
				nsib := 1 + rng.IntN(3)
				if _, err := s.Update(ns, keys[i], func(cur vclock.Object, _ bool) (vclock.Object, error) {
					o := cur
					for j := range nsib {
						sib := vclock.Sibling{HLC: vclock.Timestamp(rng.Uint64N(1 << 40)), Value: []byte{byte(i), byte(j)}}
						switch rng.IntN(4) {
						case 0:
							sib.Tombstone, sib.Value = true, nil
						case 1:
							sib.Expiry = now - 1 // expired
						case 2:
							sib.Expiry = now + 1e9
						}
						// A nil context keeps the earlier siblings: concurrent.
						o, _ = o.Update(nil, vclock.NodeID(1+j), sib)
					}
					return o, nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			var want, dst vclock.Object
			for _, cachedOnly := range []bool{false, true} {
				for i, k := range append(keys, []byte("absent")) {
					wantFound, err := s.Get(ns, k, &want)
					if err != nil {
						t.Fatal(err)
					}
					dst = vclock.Object{}
					v, found, ok, err := s.GetView(ns, k, cachedOnly, &dst)
					if absent := i == len(keys); absent && cachedOnly && p != PersistenceNone {
						if ok || err != nil {
							t.Fatalf("absent key, cached: ok=%v err=%v, want a miss that needs the disk", ok, err)
						}
						continue
					}
					if err != nil || !ok {
						t.Fatalf("key %d: GetView ok=%v err=%v", i, ok, err)
					}
					if found != wantFound {
						t.Fatalf("key %d: found %v, Get says %v", i, found, wantFound)
					}
					if i == len(keys) {
						continue
					}
					if !bytes.Equal(v.Context, vclock.EncodeContext(want.Clock)) {
						t.Fatalf("key %d: context %x, want %x", i, v.Context, vclock.EncodeContext(want.Clock))
					}
					if v.Single != (len(want.Siblings) == 1) {
						t.Fatalf("key %d: Single=%v with %d siblings", i, v.Single, len(want.Siblings))
					}
					if v.Single {
						if got := (vclock.Object{Clock: want.Clock, Siblings: []vclock.Sibling{v.Sibling}}); !vclock.ObjectsEqual(got, want) {
							t.Fatalf("key %d: sibling %+v, want %+v", i, v.Sibling, want.Siblings[0])
						}
					} else if !vclock.ObjectsEqual(dst, want) {
						t.Fatalf("key %d: decoded %v, want %v", i, dst, want)
					}
				}
			}
		})
	}
}

func TestGetViewCachedMiss(t *testing.T) {
	s := openTest(t, t.TempDir(), testConfig(t, PersistenceAsync))
	put(t, s, "ns", "k", "v", 0)
	s.mem.Clear()
	var o vclock.Object
	before := s.diskReads.Load()
	if _, _, ok, _ := s.GetView([]byte("ns"), []byte("k"), true, &o); ok {
		t.Fatal("cached GetView answered a memory miss in a persistent store")
	}
	if s.diskReads.Load() != before {
		t.Fatal("cached GetView read the disk")
	}
	if v, found, ok, err := s.GetView([]byte("ns"), []byte("k"), false, &o); !found || !ok || err != nil || string(v.Sibling.Value) != "v" {
		t.Fatalf("GetView = %+v %v %v %v", v, found, ok, err)
	}
}

// FuzzViewRecord: the quick parse accepts only records that decode in
// full to one sibling, and then agrees with the full decode.
func FuzzViewRecord(f *testing.F) {
	one, _ := vclock.Object{}.Update(nil, 7, vclock.Sibling{HLC: 3, Value: []byte("v"), Expiry: 9})
	two, _ := one.Update(nil, 9, vclock.Sibling{Tombstone: true, Expiry: 5})
	tomb, _ := vclock.Object{}.Update(nil, 3, vclock.Sibling{Tombstone: true})
	for _, o := range []vclock.Object{one, two, tomb} {
		f.Add(encodeRecord(nil, &o))
	}
	f.Add([]byte{recordFormat, 0x92, 0x92, 0x07, 0x01, 0x91, 0x96, 0x08, 0x01, 0x00, 0x00, 0xc2, 0xc4, 0x00}) // dot not covered
	f.Add([]byte{recordFormat})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, rec []byte) {
		var v View
		ok := viewRecord(rec, &v)
		var o vclock.Object
		err := decodeRecord(rec, &o)
		if !ok {
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("viewRecord accepted a record that does not decode: %v", err)
		}
		if len(o.Siblings) != 1 || !bytes.Equal(v.Context, vclock.EncodeContext(o.Clock)) ||
			!vclock.ObjectsEqual(vclock.Object{Clock: o.Clock, Siblings: []vclock.Sibling{v.Sibling}}, o) {
			t.Fatalf("view %+v disagrees with decoded %v", v, o)
		}
	})
}

// BenchmarkGetViewMemoryHit: BenchmarkGetMemoryHit through GetView (the
// node's GET path). Goal: 0 allocations.
func BenchmarkGetViewMemoryHit(b *testing.B) {
	for _, p := range []Persistence{PersistenceNone, PersistenceAsync} {
		b.Run(p.String(), func(b *testing.B) {
			s := openTest(b, b.TempDir(), benchConfig(b, p))
			keys := benchKeys(10000)
			fill(b, s, keys)
			var o vclock.Object
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if v, ok, _, err := s.GetView([]byte("default"), keys[i%len(keys)], p != PersistenceNone, &o); !ok || err != nil || !v.Single {
					b.Fatal(ok, err)
				}
			}
		})
	}
}
