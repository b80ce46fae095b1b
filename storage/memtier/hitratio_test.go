package memtier

import (
	"container/list"
	"fmt"
	"math/rand/v2"
	"testing"
)

// lru is the baseline for hit-ratio comparisons: a textbook LRU with the same
// byte accounting as Cache. It only tracks sizes; the comparison does not
// need values.
type lru struct {
	capacity, bytes int64
	order           *list.List // of *lruItem, most recent at the front
	items           map[string]*list.Element
}

type lruItem struct {
	key  string
	size int64
}

func newLRU(capacity int64) *lru {
	return &lru{capacity: capacity, order: list.New(), items: map[string]*list.Element{}}
}

func (l *lru) get(key []byte) bool {
	el, ok := l.items[string(key)]
	if ok {
		l.order.MoveToFront(el)
	}
	return ok
}

func (l *lru) set(key []byte, size int64) {
	if el, ok := l.items[string(key)]; ok {
		l.bytes -= el.Value.(*lruItem).size
		l.order.Remove(el)
		delete(l.items, string(key))
	}
	for l.bytes+size > l.capacity && l.order.Len() > 0 {
		it := l.order.Remove(l.order.Back()).(*lruItem)
		delete(l.items, it.key)
		l.bytes -= it.size
	}
	l.items[string(key)] = l.order.PushFront(&lruItem{key: string(key), size: size})
	l.bytes += size
}

// Zipf workload shared by the test and the benchmark. math/rand/v2's Zipf
// needs s > 1, so s = 1.01 stands in for the 0.99 common in cache papers.
const (
	zipfS      = 1.01
	zipfKeys   = 100_000
	zipfValLen = 100
)

// zipfKey formats key i as 14 bytes.
func zipfKey(buf []byte, i uint64) []byte {
	return fmt.Appendf(buf[:0], "key:%010d", i)
}

// hitRatios replays the same seeded zipf trace of requests reads (and on a
// miss, an insert) against Cache and the LRU, each sized to frac of the
// workload's total accounted bytes, and returns their hit ratios.
func hitRatios(tb testing.TB, requests int, frac float64, shards int) (s3fifo, lruRatio float64) {
	tb.Helper()
	entry := int64(len(zipfKey(nil, 0))) + zipfValLen + EntryOverhead
	capacity := int64(frac * float64(entry*zipfKeys))
	c := mustNew(tb, Config{Capacity: capacity, Shards: shards})
	l := newLRU(capacity)
	z := rand.NewZipf(rand.New(rand.NewPCG(42, 99)), zipfS, 1, zipfKeys-1)
	val := make([]byte, zipfValLen)
	key := make([]byte, 0, 16)
	var cHits, lHits int
	for range requests {
		key = zipfKey(key, z.Uint64())
		if _, ok := c.Get(key); ok {
			cHits++
		} else {
			c.Set(key, val)
		}
		if l.get(key) {
			lHits++
		} else {
			l.set(key, entry)
		}
	}
	return float64(cHits) / float64(requests), float64(lHits) / float64(requests)
}

func TestHitRatioBeatsLRU(t *testing.T) {
	// Deterministic: a seeded trace replayed in one goroutine. Shorter than
	// the benchmark's so that it stays quick under -race.
	s3, l := hitRatios(t, 300_000, 0.10, 16)
	t.Logf("cache = 10%% of key bytes, 16 shards: S3-FIFO %.4f, LRU %.4f", s3, l)
	if s3 <= l {
		t.Fatalf("S3-FIFO hit ratio %.4f not above LRU %.4f", s3, l)
	}
}

func BenchmarkHitRatio(b *testing.B) {
	for _, frac := range []float64{0.01, 0.10, 0.25} {
		for _, shards := range []int{1, 16} {
			b.Run(fmt.Sprintf("size=%g%%/shards=%d", frac*100, shards), func(b *testing.B) {
				var s3, l float64
				for b.Loop() {
					s3, l = hitRatios(b, 1_000_000, frac, shards)
				}
				b.ReportMetric(s3, "s3fifo-hit-ratio")
				b.ReportMetric(l, "lru-hit-ratio")
				b.ReportMetric(0, "ns/op") // one op is a whole replay; its time is not the point
			})
		}
	}
}
