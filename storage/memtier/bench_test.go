package memtier

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"unsafe"
)

const (
	benchKeys   = 1 << 16
	benchValLen = 100
)

// benchSizes are the working sets read benchmarks run over: 1Ki keys fit in
// CPU caches and show the code path's cost; 64Ki keys (about 10 MiB of
// records, slab and index) mostly miss them and show the memory latency a
// real node sees.
var benchSizes = []int{1 << 10, 1 << 16}

func benchKeySet(prefix string, n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "%s-%011d", prefix, i) // 16 bytes with a 4-byte prefix
	}
	return keys
}

// benchCache returns a 16-shard cache holding n entries (a power of two)
// with room to spare, so nothing is evicted.
func benchCache(b *testing.B, n int) (*Cache, [][]byte) {
	b.Helper()
	keys := benchKeySet("have", n)
	c := mustNew(b, Config{Capacity: int64(2 * max(n, benchKeys) * (16 + benchValLen + EntryOverhead)), Shards: 16})
	val := make([]byte, benchValLen)
	for _, k := range keys {
		c.Set(k, val)
	}
	return c, keys
}

func BenchmarkGetHit(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint("keys=", n), func(b *testing.B) {
			c, keys := benchCache(b, n)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok := c.Get(keys[i&(n-1)]); !ok {
					b.Fatal("miss")
				}
				i++
			}
		})
	}
}

func BenchmarkGetMiss(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint("keys=", n), func(b *testing.B) {
			c, _ := benchCache(b, n)
			absent := benchKeySet("miss", n)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok := c.Get(absent[i&(n-1)]); ok {
					b.Fatal("hit")
				}
				i++
			}
		})
	}
}

func BenchmarkSet(b *testing.B) {
	val := make([]byte, benchValLen)
	b.Run("replace", func(b *testing.B) {
		c, keys := benchCache(b, benchKeys)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			c.Set(keys[i&(benchKeys-1)], val)
			i++
		}
	})
	// Steady state of a full cache: every Set inserts a new key and evicts.
	for _, withOnEvict := range []bool{false, true} {
		b.Run(fmt.Sprintf("insert/onevict=%v", withOnEvict), func(b *testing.B) {
			keys := benchKeySet("many", 1<<20)
			cfg := Config{Capacity: benchKeys * (16 + benchValLen + EntryOverhead), Shards: 16}
			if withOnEvict {
				cfg.OnEvict = func(key, val []byte) {}
			}
			c := mustNew(b, cfg)
			for _, k := range keys[:2*benchKeys] {
				c.Set(k, val)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c.Set(keys[i&(len(keys)-1)], val)
				i++
			}
			if c.Stats().Evictions == 0 {
				b.Fatal("no evictions")
			}
		})
	}
}

func BenchmarkDelete(b *testing.B) {
	c, keys := benchCache(b, benchKeys)
	val := make([]byte, benchValLen)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := keys[i&(benchKeys-1)]
		c.Delete(k)
		c.Set(k, val)
		i++
	}
}

// parallelIndex hands each RunParallel goroutine a different starting point
// so they do not walk the keys in lockstep.
func parallelIndex(next *atomic.Uint64) int {
	return int(next.Add(1) * 7919)
}

func BenchmarkGetHitParallel(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint("keys=", n), func(b *testing.B) {
			c, keys := benchCache(b, n)
			var start atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := parallelIndex(&start)
				for pb.Next() {
					if _, ok := c.Get(keys[i&(n-1)]); !ok {
						b.Error("miss")
						return
					}
					i++
				}
			})
		})
	}
}

func BenchmarkGetMissParallel(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint("keys=", n), func(b *testing.B) {
			c, _ := benchCache(b, n)
			absent := benchKeySet("miss", n)
			var start atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := parallelIndex(&start)
				for pb.Next() {
					c.Get(absent[i&(n-1)])
					i++
				}
			})
		})
	}
}

func BenchmarkSetParallel(b *testing.B) {
	c, keys := benchCache(b, benchKeys)
	val := make([]byte, benchValLen)
	var start atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := parallelIndex(&start)
		for pb.Next() {
			c.Set(keys[i&(benchKeys-1)], val)
			i++
		}
	})
}

// BenchmarkMixedParallel is 90% Get hits, 10% replacing Sets.
func BenchmarkMixedParallel(b *testing.B) {
	c, keys := benchCache(b, benchKeys)
	val := make([]byte, benchValLen)
	var start atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := parallelIndex(&start)
		for pb.Next() {
			k := keys[i&(benchKeys-1)]
			if i%10 == 0 {
				c.Set(k, val)
			} else {
				c.Get(k)
			}
			i++
		}
	})
}

// Memory overhead workload: 1M keys of 16 bytes with 100-byte values.
const (
	overheadKeys   = 1 << 20
	overheadKeyLen = 16
	overheadValLen = 100
)

type overheadCase struct {
	name     string
	inserted int     // distinct keys Set, in order
	slack    float64 // capacity as a multiple of overheadKeys entries
	readHalf bool    // Get every other key once right after its Set
}

var overheadCases = []overheadCase{
	// All 1M keys fit: no eviction, no ghost.
	{name: "resident", inserted: overheadKeys, slack: 1.1},
	// 3M keys through a cache sized for 1M, every other key read once so
	// that half are promoted to main and the ghost is in use: the steady
	// state of a full node.
	{name: "evicting", inserted: 3 * overheadKeys, slack: 1.0, readHalf: true},
}

type overheadResult struct {
	perKey      float64 // heap bytes per resident key beyond key and value
	live        int
	slabPerKey  float64 // slab capacity share
	indexPerKey float64 // index table share
	ghostPerKey float64 // ghost filters' share
}

// measureOverhead runs tc against a 16-shard cache and reports the live heap
// it added per resident key, minus the key and value bytes themselves.
// Everything the cache owns counts: records (with their length header and
// size-class rounding), slab, index, ghost. The record is 118 bytes (a 2-byte
// header, key and value) in a 128-byte size class, so 12 of the bytes are the
// header and allocator rounding.
func measureOverhead(tb testing.TB, tc overheadCase) overheadResult {
	tb.Helper()
	capacity := int64(float64(overheadKeys*(overheadKeyLen+overheadValLen+EntryOverhead)) * tc.slack)
	key := make([]byte, 0, overheadKeyLen)
	val := make([]byte, overheadValLen)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := mustNew(tb, Config{Capacity: capacity, Shards: 16})
	for i := range tc.inserted {
		key = fmt.Appendf(key[:0], "key-%012d", i)
		c.Set(key, val)
		if tc.readHalf && i%2 == 0 {
			c.Get(key)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)

	var r overheadResult
	r.live = c.Len()
	heap := float64(after.HeapAlloc) - float64(before.HeapAlloc)
	r.perKey = heap/float64(r.live) - overheadKeyLen - overheadValLen
	var slab, index, ghost int
	for i := range c.shards {
		s := &c.shards[i]
		slab += cap(s.slab) * int(unsafe.Sizeof(entry{}))
		index += cap(s.index.slots) * int(unsafe.Sizeof(slot{}))
		ghost += (cap(s.ghost.cur.blocks) + cap(s.ghost.prev.blocks)) * int(unsafe.Sizeof([8]uint64{}))
	}
	r.slabPerKey = float64(slab) / float64(r.live)
	r.indexPerKey = float64(index) / float64(r.live)
	r.ghostPerKey = float64(ghost) / float64(r.live)
	runtime.KeepAlive(c)
	return r
}

// BenchmarkOverhead reports heap bytes per resident key beyond key and value
// for 1M keys of 16 bytes with 100-byte values.
func BenchmarkOverhead(b *testing.B) {
	for _, tc := range overheadCases {
		b.Run(tc.name, func(b *testing.B) {
			var r overheadResult
			for b.Loop() {
				r = measureOverhead(b, tc)
			}
			b.ReportMetric(r.perKey, "overhead-B/key")
			b.ReportMetric(float64(r.live), "keys")
			b.ReportMetric(r.slabPerKey, "slab-B/key")
			b.ReportMetric(r.indexPerKey, "index-B/key")
			b.ReportMetric(r.ghostPerKey, "ghost-B/key")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// overheadBudget is TestOverhead's bound on heap bytes per key beyond key and
// value, all structures, record header and allocator rounding included. The
// store's budget is 100 bytes per key for everything beyond key, value and
// clock bytes, and its own records add more on top of this package's.
const overheadBudget = 50

// TestOverhead guards the per-key memory budget.
func TestOverhead(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("inserts millions of keys; heap figures mean little under -race")
	}
	for _, tc := range overheadCases {
		t.Run(tc.name, func(t *testing.T) {
			r := measureOverhead(t, tc)
			t.Logf("%d keys: %.1f B/key overhead (slab %.1f, index %.1f, ghost %.1f, record header and rounding 12, rest %.1f)",
				r.live, r.perKey, r.slabPerKey, r.indexPerKey, r.ghostPerKey, r.perKey-r.slabPerKey-r.indexPerKey-r.ghostPerKey-12)
			if tc.name == "resident" && r.live != overheadKeys {
				t.Fatalf("%d keys resident, want %d", r.live, overheadKeys)
			}
			if r.perKey >= overheadBudget {
				t.Fatalf("overhead %.1f B/key, budget is %d", r.perKey, overheadBudget)
			}
		})
	}
}
