package antientropy_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ecachedb/ecache/antientropy"
	"github.com/ecachedb/ecache/vclock"
)

// benchKeys is the number of keys per replica in BenchmarkExchange.
const benchKeys = 1_000_000

var benchSetup struct {
	once    sync.Once
	cfg     antientropy.Config
	a, b    *model
	keys    [][]byte
	listing int // bytes of a full key-and-clock listing of every key
	build   time.Duration
}

func benchReplicas(b *testing.B) {
	s := &benchSetup
	s.once.Do(func() {
		start := time.Now()
		s.cfg = antientropy.DefaultConfig()
		s.cfg.Shape = antientropy.ShapeFor(benchKeys)
		s.a, s.b = newModel(b, s.cfg.Shape), newModel(b, s.cfg.Shape)
		ns := []byte("default")
		list := antientropy.Message{Type: antientropy.MsgKeysResp, Session: 1, Seq: 1,
			Entries: make([]antientropy.KeyClock, 0, benchKeys)}
		for i := range benchKeys {
			key := []byte(fmt.Sprintf("key-%08d", i))
			o := write(vclock.Object{}, nil, nodeX, vclock.Sibling{HLC: vclock.Timestamp(i + 1), Value: []byte("0123456789abcdef")})
			s.a.put(ns, key, o)
			s.b.put(ns, key, o)
			s.keys = append(s.keys, key)
			list.Entries = append(list.Entries, antientropy.KeyClock{NS: ns, Key: key, Digest: antientropy.Digest(o, now), Clock: o.Clock})
		}
		s.listing = list.Size()
		s.build = time.Since(start)
	})
}

// diverge makes k random keys differ: a third deleted on b, a third written
// again on a (b stale), a third written concurrently on both (siblings).
func diverge(rng *rand.Rand, k int) {
	s := &benchSetup
	ns := []byte("default")
	for i, idx := range rng.Perm(benchKeys)[:k] {
		key := s.keys[idx]
		cur, _ := s.a.get(ns, key)
		switch i % 3 {
		case 0:
			s.b.forget(ns, key)
		case 1:
			s.a.put(ns, key, write(cur, cur.Clock, nodeY, live("newer")))
		case 2:
			s.a.put(ns, key, write(cur, cur.Clock, nodeY, live("on a")))
			s.b.put(ns, key, write(cur, cur.Clock, nodeZ, live("on b")))
		}
	}
}

// BenchmarkExchange repairs k divergent keys between two replicas of
// benchKeys keys each, messages encoded and decoded as on the wire. It
// reports bytes and messages exchanged per convergence, and the bytes as a
// percentage of a full key-and-clock listing of every key.
func BenchmarkExchange(b *testing.B) {
	for _, k := range []int{0, 1, 100, 10_000} {
		b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
			benchReplicas(b)
			s := &benchSetup
			rng := rand.New(rand.NewPCG(uint64(k), 1))
			var st antientropy.Stats
			var w wire
			var total time.Duration
			for b.Loop() {
				b.StopTimer()
				diverge(rng, k)
				b.StartTimer()
				t0 := time.Now()
				st, w = exchange(b, s.cfg, s.a, s.b, s.a.tree, s.b.tree, now)
				total += time.Since(t0)
				if st.KeysTransferred != k || s.a.tree.Root() != s.b.tree.Root() {
					b.Fatalf("repaired %d of %d keys; roots equal: %v", st.KeysTransferred, k, s.a.tree.Root() == s.b.tree.Root())
				}
			}
			b.ReportMetric(float64(w.bytes), "bytes/exchange")
			b.ReportMetric(float64(w.msgs), "msgs/exchange")
			b.ReportMetric(float64(st.RootComparisons), "roots/exchange")
			b.ReportMetric(100*float64(w.bytes)/float64(s.listing), "%listing")
			b.ReportMetric(total.Seconds()*1000/float64(b.N), "ms/converge")
			b.Logf("k=%d: %+v; full listing %d bytes; setup %v", k, st, s.listing, s.build)
		})
	}
}

// BenchmarkTreeUpdate is the cost a write adds: one O(depth) tree update.
func BenchmarkTreeUpdate(b *testing.B) {
	tr := mustTree(b, antientropy.ShapeFor(benchKeys))
	key := []byte("key-00000042")
	b.ReportAllocs()
	var d uint64 = 1
	for b.Loop() {
		tr.Update([]byte("default"), key, d, d+1)
		d++
	}
}

// BenchmarkDigest hashes a one-sibling object with a 100-byte value.
func BenchmarkDigest(b *testing.B) {
	o := write(vclock.Object{}, nil, nodeX, vclock.Sibling{HLC: 1, Value: make([]byte, 100)})
	b.ReportAllocs()
	for b.Loop() {
		antientropy.Digest(o, now)
	}
}
