package storage

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/ecachedb/ecache/vclock"
)

func benchConfig(b *testing.B, p Persistence) Config {
	cfg := testConfig(b, p)
	cfg.MemoryLimit = 256 << 20
	cfg.PebbleCacheSize = 64 << 20
	return cfg
}

func benchKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("key:%012d", i))
	}
	return keys
}

var benchValue = []byte("0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789")

func fill(b *testing.B, s *Store, keys [][]byte) {
	b.Helper()
	node := s.NodeID()
	for _, k := range keys {
		if _, err := s.Update([]byte("default"), k, func(cur vclock.Object, _ bool) (vclock.Object, error) {
			next, _ := cur.Update(cur.Clock, node, vclock.Sibling{HLC: benchHLC, Value: benchValue})
			return next, nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetMemoryHit: a read served by the memory tier, decoded into a
// reused Object. Goal: at most one allocation.
func BenchmarkGetMemoryHit(b *testing.B) {
	for _, p := range []Persistence{PersistenceNone, PersistenceAsync} {
		b.Run(p.String(), func(b *testing.B) {
			s := openTest(b, b.TempDir(), benchConfig(b, p))
			keys := benchKeys(10000)
			fill(b, s, keys)
			var o vclock.Object
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if ok, err := s.Get([]byte("default"), keys[i%len(keys)], &o); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}

func BenchmarkGetMemoryHitParallel(b *testing.B) {
	s := openTest(b, b.TempDir(), benchConfig(b, PersistenceNone))
	keys := benchKeys(10000)
	fill(b, s, keys)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var o vclock.Object
		i := rand.IntN(len(keys))
		for pb.Next() {
			i++
			if ok, err := s.Get([]byte("default"), keys[i%len(keys)], &o); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
}

// BenchmarkGetDisk: every read misses memory and is served by Pebble (the
// memory tier is cleared before each read, so promotion cannot help).
func BenchmarkGetDisk(b *testing.B) {
	s := openTest(b, b.TempDir(), benchConfig(b, PersistenceSync))
	keys := benchKeys(10000)
	fill(b, s, keys)
	if err := s.db.Flush(); err != nil {
		b.Fatal(err)
	}
	var o vclock.Object
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s.mem.Clear()
		b.StartTimer()
		if ok, err := s.Get([]byte("default"), keys[i%len(keys)], &o); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkGetMiss: an absent key in a persistent store (memory miss, then
// Pebble's bloom filters and memtable).
func BenchmarkGetMiss(b *testing.B) {
	s := openTest(b, b.TempDir(), benchConfig(b, PersistenceAsync))
	fill(b, s, benchKeys(10000))
	if err := s.Flush(); err != nil {
		b.Fatal(err)
	}
	missing := benchKeys(20000)[10000:]
	var o vclock.Object
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if ok, err := s.Get([]byte("default"), missing[i%len(missing)], &o); ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkUpdate: a blind overwrite of an existing key, per persistence
// mode; the parallel variant shows sync mode's group commit.
func BenchmarkUpdate(b *testing.B) {
	for _, p := range modes {
		for _, par := range []bool{false, true} {
			name := p.String()
			if par {
				name += "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				s := openTest(b, b.TempDir(), benchConfig(b, p))
				keys := benchKeys(10000)
				node := s.NodeID()
				fn := func(cur vclock.Object, _ bool) (vclock.Object, error) {
					next, _ := cur.Update(cur.Clock, node, vclock.Sibling{HLC: benchHLC, Value: benchValue})
					return next, nil
				}
				b.ReportAllocs()
				b.ResetTimer()
				if !par {
					for i := 0; i < b.N; i++ {
						if _, err := s.Update([]byte("default"), keys[i%len(keys)], fn); err != nil {
							b.Fatal(err)
						}
					}
					return
				}
				b.SetParallelism(16)
				b.RunParallel(func(pb *testing.PB) {
					i := rand.IntN(len(keys))
					for pb.Next() {
						i++
						if _, err := s.Update([]byte("default"), keys[i%len(keys)], fn); err != nil {
							b.Fatal(err)
						}
					}
				})
			})
		}
	}
}

// BenchmarkMemoryPerKey stores 1M keys of 100-byte values in a memory-only
// store and reports heap bytes per key, and the overhead beyond the key, the
// value and the clock bytes (goal: under 100).
func BenchmarkMemoryPerKey(b *testing.B) {
	const n = 1_000_000
	for i := 0; i < b.N; i++ {
		cfg := benchConfig(b, PersistenceNone)
		cfg.MemoryLimit = 4 << 30
		keys := benchKeys(n)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s, err := Open("", cfg)
		if err != nil {
			b.Fatal(err)
		}
		fill(b, s, keys)
		runtime.GC()
		runtime.ReadMemStats(&after)
		if s.mem.Len() != n {
			b.Fatalf("only %d of %d keys resident", s.mem.Len(), n)
		}
		var o vclock.Object
		if _, err := s.Get([]byte("default"), keys[0], &o); err != nil {
			b.Fatal(err)
		}
		clockBytes := len(o.Clock.AppendMsgpack(nil))
		keyBytes := keyHeader + len("default") + len(keys[0])
		perKey := float64(after.HeapAlloc-before.HeapAlloc) / n
		b.ReportMetric(perKey, "B/key")
		b.ReportMetric(perKey-float64(keyBytes+len(benchValue)+clockBytes), "overhead-B/key")
		b.ReportMetric(float64(s.mem.Bytes())/n, "accounted-B/key")
		runtime.KeepAlive(keys)
		s.Close()
	}
}

// BenchmarkPartitionOf is on every request's path.
func BenchmarkPartitionOf(b *testing.B) {
	ns, key := []byte("default"), []byte("user:"+strconv.Itoa(12345))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = PartitionOf(ns, key, 1024)
	}
}

// benchHLC is a realistic timestamp (its encoding is as long as a real one).
var benchHLC = vclock.MakeTimestamp(time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), 0)
