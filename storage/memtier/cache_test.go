package memtier

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
)

// entrySize is what the cache charges for one entry.
func entrySize(key, val []byte) int64 {
	return int64(len(key)) + int64(len(val)) + EntryOverhead
}

func mustNew(t testing.TB, cfg Config) *Cache {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return c
}

// checkInvariants walks every shard's internal structures under its lock.
func checkInvariants(t interface {
	Helper()
	Fatalf(string, ...any)
}, c *Cache) {
	t.Helper()
	for si := range c.shards {
		s := &c.shards[si]
		s.mu.Lock()
		err := s.checkLocked()
		s.mu.Unlock()
		if err != nil {
			t.Fatalf("shard %d: %v", si, err)
		}
	}
}

func (s *shard) checkLocked() error {
	if s.bytes > s.capacity {
		return fmt.Errorf("bytes %d > capacity %d", s.bytes, s.capacity)
	}
	live := 0
	for _, q := range []struct {
		tag uint32
		f   *fifo
	}{{qSmall, &s.small}, {qMain, &s.main}} {
		n, b, prev := 0, int64(0), uint32(nilIdx)
		for idx := q.f.oldest; idx != nilIdx; idx = s.slab[idx].next() {
			e := &s.slab[idx]
			if e.queue() != q.tag {
				return fmt.Errorf("slot %d in queue %d has tag %d", idx, q.tag, e.queue())
			}
			if e.prev() != prev {
				return fmt.Errorf("slot %d prev %d, want %d", idx, e.prev(), prev)
			}
			key, _ := record(e.data)
			if got := s.index.lookup(s.slab, key, fragment(xxhash.Sum64(key))); got != idx {
				return fmt.Errorf("slot %d key %q indexed at %d", idx, key, got)
			}
			prev = idx
			n++
			b += e.size()
			if n > len(s.slab) {
				return fmt.Errorf("queue %d has a cycle", q.tag)
			}
		}
		if prev != q.f.newest || n != q.f.len || b != q.f.bytes {
			return fmt.Errorf("queue %d: walked len %d bytes %d newest %d; recorded len %d bytes %d newest %d",
				q.tag, n, b, prev, q.f.len, q.f.bytes, q.f.newest)
		}
		live += n
	}
	if live != s.index.count {
		return fmt.Errorf("%d entries in queues, %d in index", live, s.index.count)
	}
	if err := s.index.check(s.slab); err != nil {
		return err
	}
	if s.small.bytes+s.main.bytes != s.bytes {
		return fmt.Errorf("queue bytes %d+%d != shard bytes %d", s.small.bytes, s.main.bytes, s.bytes)
	}
	free := 0
	for idx := s.free; idx != nilIdx; idx = s.slab[idx].next() {
		if s.slab[idx].queue() != qFree || s.slab[idx].data != nil {
			return fmt.Errorf("free slot %d is in use", idx)
		}
		if free++; free > len(s.slab) {
			return errors.New("free chain has a cycle")
		}
	}
	if free+live != len(s.slab) {
		return fmt.Errorf("free %d + live %d != slab %d", free, live, len(s.slab))
	}
	for _, f := range []*bloom{&s.ghost.cur, &s.ghost.prev} {
		if f.n > f.capacity {
			return fmt.Errorf("ghost generation holds %d keys, sized for %d", f.n, f.capacity)
		}
	}
	return nil
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		field string // "" if valid
	}{
		{"default", DefaultConfig(), ""},
		{"one shard", Config{Capacity: 1 << 20, Shards: 1}, ""},
		{"zero shards", Config{Capacity: 1 << 20, Shards: 0}, "Shards"},
		{"negative shards", Config{Capacity: 1 << 20, Shards: -4}, "Shards"},
		{"non power of two", Config{Capacity: 1 << 20, Shards: 12}, "Shards"},
		{"too many shards", Config{Capacity: 1 << 40, Shards: maxShards * 2}, "Shards"},
		{"zero capacity", Config{Capacity: 0, Shards: 16}, "Capacity"},
		{"negative capacity", Config{Capacity: -1, Shards: 16}, "Capacity"},
		{"no room per shard", Config{Capacity: 16 * EntryOverhead, Shards: 16}, "Capacity"},
		{"just enough per shard", Config{Capacity: 16 * (EntryOverhead + 1), Shards: 16}, ""},
		{"too large per shard", Config{Capacity: 1 << 62, Shards: 1}, "Capacity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.field) || !strings.HasPrefix(err.Error(), "memtier: ") {
				t.Fatalf("Validate() = %q, want it to name %s", err, tt.field)
			}
			if _, err := New(tt.cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New() = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestNewSplitsCapacityExactly(t *testing.T) {
	c := mustNew(t, Config{Capacity: 16*1000 + 7, Shards: 16})
	var sum int64
	for i := range c.shards {
		sum += c.shards[i].capacity
	}
	if sum != c.Capacity() || c.Capacity() != 16*1000+7 {
		t.Fatalf("shard capacities sum to %d, Capacity() = %d", sum, c.Capacity())
	}
}

func TestGetSetReplaceDelete(t *testing.T) {
	type step struct {
		op      string // set, get, del
		key     string
		val     string
		wantOK  bool
		wantVal string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"miss on empty", []step{
			{op: "get", key: "a"},
		}},
		{"set then get", []step{
			{op: "set", key: "a", val: "1", wantOK: true},
			{op: "get", key: "a", wantOK: true, wantVal: "1"},
			{op: "get", key: "b"},
		}},
		{"replace", []step{
			{op: "set", key: "a", val: "1", wantOK: true},
			{op: "set", key: "a", val: "longer value", wantOK: true},
			{op: "get", key: "a", wantOK: true, wantVal: "longer value"},
			{op: "set", key: "a", val: "", wantOK: true},
			{op: "get", key: "a", wantOK: true, wantVal: ""},
		}},
		{"delete", []step{
			{op: "set", key: "a", val: "1", wantOK: true},
			{op: "del", key: "a", wantOK: true},
			{op: "get", key: "a"},
			{op: "del", key: "a"},
			{op: "set", key: "a", val: "2", wantOK: true},
			{op: "get", key: "a", wantOK: true, wantVal: "2"},
		}},
		{"empty key", []step{
			{op: "set", key: "", val: "v", wantOK: true},
			{op: "get", key: "", wantOK: true, wantVal: "v"},
			{op: "del", key: "", wantOK: true},
			{op: "get", key: ""},
		}},
		{"keys that are prefixes of each other", []step{
			{op: "set", key: "ab", val: "c", wantOK: true},
			{op: "set", key: "a", val: "bc", wantOK: true},
			{op: "get", key: "ab", wantOK: true, wantVal: "c"},
			{op: "get", key: "a", wantOK: true, wantVal: "bc"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustNew(t, Config{Capacity: 1 << 20, Shards: 4})
			for i, st := range tt.steps {
				switch st.op {
				case "set":
					if ok := c.Set([]byte(st.key), []byte(st.val)); ok != st.wantOK {
						t.Fatalf("step %d: Set(%q) = %v", i, st.key, ok)
					}
				case "get":
					v, ok := c.Get([]byte(st.key))
					if ok != st.wantOK || string(v) != st.wantVal {
						t.Fatalf("step %d: Get(%q) = %q, %v; want %q, %v", i, st.key, v, ok, st.wantVal, st.wantOK)
					}
					if ok && v == nil {
						t.Fatalf("step %d: hit returned nil slice", i)
					}
				case "del":
					if ok := c.Delete([]byte(st.key)); ok != st.wantOK {
						t.Fatalf("step %d: Delete(%q) = %v", i, st.key, ok)
					}
				}
				checkInvariants(t, c)
			}
		})
	}
}

func TestLenBytesStats(t *testing.T) {
	c := mustNew(t, Config{Capacity: 1 << 20, Shards: 4})
	c.Set([]byte("a"), []byte("11"))
	c.Set([]byte("bb"), []byte("2"))
	c.Set([]byte("a"), []byte("1")) // replace shrinks the entry
	c.Get([]byte("a"))
	c.Get([]byte("zz"))
	c.Delete([]byte("bb"))
	c.Delete([]byte("bb"))
	if got, want := c.Len(), 1; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
	if got, want := c.Bytes(), entrySize([]byte("a"), []byte("1")); got != want {
		t.Errorf("Bytes() = %d, want %d", got, want)
	}
	want := Stats{Hits: 1, Misses: 1, Sets: 3, Deletes: 1}
	if got := c.Stats(); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestAccountingNeverExceedsCapacity(t *testing.T) {
	for _, shards := range []int{1, 4} {
		t.Run(fmt.Sprint("shards=", shards), func(t *testing.T) {
			c := mustNew(t, Config{Capacity: int64(shards) * 4000, Shards: shards})
			r := rand.New(rand.NewPCG(1, 2))
			key := make([]byte, 0, 16)
			for i := range 5000 {
				key = fmt.Appendf(key[:0], "k%d", r.IntN(300))
				val := make([]byte, r.IntN(400))
				c.Set(key, val)
				if b := c.Bytes(); b > c.Capacity() {
					t.Fatalf("after Set %d: Bytes() = %d > Capacity() = %d", i, b, c.Capacity())
				}
				if i%500 == 0 {
					var sum int64
					c.Range(func(k, v []byte) bool { sum += entrySize(k, v); return true })
					if sum != c.Bytes() {
						t.Fatalf("Range sums to %d, Bytes() = %d", sum, c.Bytes())
					}
					checkInvariants(t, c)
				}
			}
			if c.Stats().Evictions == 0 {
				t.Fatal("workload never evicted; the test is not exercising capacity")
			}
		})
	}
}

func TestOnEvict(t *testing.T) {
	val := make([]byte, 36)
	key := func(i int) []byte { return fmt.Appendf(nil, "key%05d", i) } // 8 bytes
	per := entrySize(key(0), val)
	const fit = 20
	var c *Cache
	var evicted []string
	c = mustNew(t, Config{Capacity: fit * per, Shards: 1, OnEvict: func(k, v []byte) {
		// The shard lock must not be held: taking it here would deadlock
		// if it were.
		if !c.shards[0].mu.TryLock() {
			t.Error("OnEvict called with the shard lock held")
		} else {
			c.shards[0].mu.Unlock()
		}
		if got, ok := c.Get(k); ok {
			t.Errorf("evicted key %q still readable as %q", k, got)
		}
		if !bytes.Equal(v, val) {
			t.Errorf("OnEvict(%q) value %q, want %q", k, v, val)
		}
		evicted = append(evicted, string(k))
	}})

	for i := range fit {
		c.Set(key(i), val)
	}
	c.Set(key(0), val)   // replacement
	c.Delete(key(1))     // delete
	c.Set(key(fit), val) // fills the slot Delete freed
	if len(evicted) != 0 {
		t.Fatalf("evictions before the cache was over capacity: %q", evicted)
	}
	for i := fit + 1; i < fit+6; i++ {
		c.Set(key(i), val)
	}
	if len(evicted) != 5 {
		t.Fatalf("OnEvict called %d times, want 5: %q", len(evicted), evicted)
	}
	if got := c.Stats().Evictions; got != 5 {
		t.Fatalf("Stats().Evictions = %d, want 5", got)
	}
	// Nothing was read, so S3-FIFO evicts the small queue in insertion
	// order: key0 was replaced (moving it to the newest end), key1 deleted.
	want := []string{"key00002", "key00003", "key00004", "key00005", "key00006"}
	if fmt.Sprint(evicted) != fmt.Sprint(want) {
		t.Fatalf("evicted %q, want %q", evicted, want)
	}
	evicted = nil
	c.Clear()
	if len(evicted) != 0 || c.Len() != 0 || c.Bytes() != 0 {
		t.Fatalf("after Clear: evicted %q, Len %d, Bytes %d", evicted, c.Len(), c.Bytes())
	}
}

func TestOnEvictMayCallBack(t *testing.T) {
	// OnEvict writing back into the cache (e.g. demoting to another tier
	// and leaving a marker) must not deadlock or corrupt state.
	var c *Cache
	c = mustNew(t, Config{Capacity: 10 * (EntryOverhead + 20), Shards: 1, OnEvict: func(k, v []byte) {
		c.Delete(k)
		c.Get(k)
	}})
	for i := range 100 {
		c.Set(fmt.Appendf(nil, "k%09d", i), make([]byte, 10))
		checkInvariants(t, c)
	}
}

func TestOversizeRejected(t *testing.T) {
	const shardCap = 1000
	c := mustNew(t, Config{Capacity: 4 * shardCap, Shards: 4})
	key := []byte("k")
	fits := make([]byte, shardCap-EntryOverhead-len(key))
	tooBig := make([]byte, len(fits)+1)

	if !c.Set(key, []byte("small")) {
		t.Fatal("small Set refused")
	}
	if c.Set(key, tooBig) {
		t.Fatal("Set of an entry larger than a shard was admitted")
	}
	if v, ok := c.Get(key); ok {
		t.Fatalf("refused Set left the previous value %q readable", v)
	}
	if got := c.Stats().Rejects; got != 1 {
		t.Fatalf("Rejects = %d, want 1", got)
	}
	if !c.Set(key, fits) {
		t.Fatal("entry exactly a shard's capacity refused")
	}
	if v, ok := c.Get(key); !ok || len(v) != len(fits) {
		t.Fatalf("Get after full-shard Set = %d bytes, %v", len(v), ok)
	}
	checkInvariants(t, c)
}

func TestFullShardEntryEvictsOthers(t *testing.T) {
	var evictions int
	c := mustNew(t, Config{Capacity: 1000, Shards: 1, OnEvict: func(k, v []byte) { evictions++ }})
	for i := range 5 {
		c.Set([]byte{byte(i)}, []byte("v"))
	}
	big := make([]byte, 1000-EntryOverhead-1)
	if !c.Set([]byte("b"), big) {
		t.Fatal("full-shard entry refused")
	}
	if c.Len() != 1 || evictions != 5 || c.Bytes() != 1000 {
		t.Fatalf("Len %d, evictions %d, Bytes %d", c.Len(), evictions, c.Bytes())
	}
	// Replacing the full-shard entry with another must not evict itself.
	if !c.Set([]byte("b"), big[1:]) {
		t.Fatal("replacement refused")
	}
	if _, ok := c.Get([]byte("b")); !ok || evictions != 5 {
		t.Fatalf("replacement lost the key or evicted (evictions %d)", evictions)
	}
	checkInvariants(t, c)
}

func TestReturnedSlicesStayValid(t *testing.T) {
	c := mustNew(t, Config{Capacity: 1 << 20, Shards: 1})
	c.Set([]byte("key"), []byte("first"))
	v1, _ := c.Get([]byte("key"))
	c.Set([]byte("key"), []byte("second"))
	c.Delete([]byte("key"))
	c.Set([]byte("key"), []byte("third!"))
	if string(v1) != "first" {
		t.Fatalf("earlier Get result changed to %q", v1)
	}
	// Appending to returned slices must not write into the cache's copy.
	_ = append(v1, "XXXX"...)
	c.Range(func(k, v []byte) bool {
		_ = append(k, "YYYY"...)
		return true
	})
	if v, _ := c.Get([]byte("key")); string(v) != "third!" {
		t.Fatalf("value became %q after appends to returned slices", v)
	}
}

func TestReplaceReleasesOldRecord(t *testing.T) {
	// The index's string key aliases the record; replacing a key must
	// re-point it at the new record, or every replaced value would stay
	// reachable until the key is deleted.
	c := mustNew(t, Config{Capacity: 1 << 20, Shards: 1})
	key := []byte("a 16 byte key...")
	c.Set(key, make([]byte, 48)) // 64-byte record: not tiny-allocated
	var released atomic.Bool
	c.Range(func(k, v []byte) bool {
		runtime.AddCleanup(&k[0], func(b *atomic.Bool) { b.Store(true) }, &released)
		return true
	})
	c.Set(key, make([]byte, 48))
	deadline := time.Now().Add(10 * time.Second)
	for !released.Load() {
		if time.Now().After(deadline) {
			t.Fatal("old record still reachable after replacement")
		}
		runtime.GC()
		runtime.Gosched()
	}
	if _, ok := c.Get(key); !ok {
		t.Fatal("key lost")
	}
}

func TestRangeStopsAndAllowsCallbacks(t *testing.T) {
	c := mustNew(t, Config{Capacity: 1 << 20, Shards: 8})
	for i := range 100 {
		c.Set(fmt.Appendf(nil, "k%d", i), fmt.Appendf(nil, "v%d", i))
	}
	seen := map[string]bool{}
	c.Range(func(k, v []byte) bool {
		if "v"+string(k[1:]) != string(v) {
			t.Fatalf("Range paired %q with %q", k, v)
		}
		seen[string(k)] = true
		c.Delete(k) // calling back into the cache must not deadlock
		return true
	})
	if len(seen) != 100 || c.Len() != 0 {
		t.Fatalf("Range saw %d keys, %d left after deleting each", len(seen), c.Len())
	}
	for i := range 100 {
		c.Set(fmt.Appendf(nil, "k%d", i), nil)
	}
	n := 0
	c.Range(func(k, v []byte) bool { n++; return n < 10 })
	if n != 10 {
		t.Fatalf("Range continued after false: %d calls", n)
	}
}

func TestGetDoesNotAllocate(t *testing.T) {
	c := mustNew(t, Config{Capacity: 1 << 20, Shards: 16})
	key := []byte("some-key")
	c.Set(key, []byte("some value"))
	miss := []byte("absent")
	if n := testing.AllocsPerRun(1000, func() { c.Get(key) }); n != 0 {
		t.Errorf("Get hit: %v allocs/op", n)
	}
	if n := testing.AllocsPerRun(1000, func() { c.Get(miss) }); n != 0 {
		t.Errorf("Get miss: %v allocs/op", n)
	}
}

func TestSetAllocatesOnlyTheRecord(t *testing.T) {
	var evicted int
	c := mustNew(t, Config{Capacity: 100 * (EntryOverhead + 32), Shards: 1, OnEvict: func(k, v []byte) { evicted++ }})
	keys := make([][]byte, 1000)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key-%012d", i)
	}
	val := make([]byte, 16)
	for _, k := range keys { // warm up: slab and maps at steady-state size
		c.Set(k, val)
	}
	i := 0
	n := testing.AllocsPerRun(1000, func() {
		c.Set(keys[i%len(keys)], val)
		i++
	})
	if n > 1 || evicted == 0 {
		t.Errorf("evicting Set with OnEvict: %v allocs/op (evictions %d), want 1", n, evicted)
	}
}

func TestConcurrentUse(t *testing.T) {
	// Run under -race. Values embed their key, so any hit can be checked
	// for a cross-wired or torn record.
	var evictions atomic.Int64
	c := mustNew(t, Config{Capacity: 16 * 3000, Shards: 16, OnEvict: func(k, v []byte) {
		if !bytes.HasPrefix(v, k) {
			t.Errorf("evicted %q with value %q", k, v)
		}
		evictions.Add(1)
	}})
	const workers = 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range 20000 {
				key := fmt.Appendf(nil, "key-%d", r.IntN(2000))
				switch op := r.IntN(100); {
				case op < 60:
					if v, ok := c.Get(key); ok && !bytes.HasPrefix(v, key) {
						t.Errorf("Get(%q) = %q", key, v)
					}
				case op < 90:
					val := fmt.Appendf(append([]byte(nil), key...), "#%d#%d", w, i)
					val = append(val, make([]byte, r.IntN(100))...)
					c.Set(key, val)
				case op < 98:
					c.Delete(key)
				case op < 99:
					c.Range(func(k, v []byte) bool {
						if !bytes.HasPrefix(v, k) {
							t.Errorf("Range(%q) = %q", k, v)
						}
						return r.IntN(50) != 0
					})
					_, _, _ = c.Len(), c.Bytes(), c.Stats()
				default:
					if i%7 == 0 {
						c.Clear()
					}
				}
			}
		})
	}
	wg.Wait()
	checkInvariants(t, c)
	if c.Bytes() > c.Capacity() {
		t.Fatalf("Bytes() %d > Capacity() %d", c.Bytes(), c.Capacity())
	}
	if st := c.Stats(); st.Evictions != uint64(evictions.Load()) || st.Evictions == 0 {
		t.Fatalf("Stats().Evictions = %d, OnEvict calls = %d", st.Evictions, evictions.Load())
	}
}

func TestShardSpread(t *testing.T) {
	// Fingerprints and shard choice use disjoint hash bits; check that the
	// shard bits spread ordinary keys.
	const shards, n = 16, 16000
	var counts [shards]int
	for i := range n {
		counts[xxhash.Sum64(fmt.Appendf(nil, "key-%d", i))&(shards-1)]++
	}
	for i, got := range counts {
		if got < n/shards*8/10 || got > n/shards*12/10 {
			t.Fatalf("shard %d got %d of %d keys", i, got, n)
		}
	}
}

func TestGhostFalsePositiveRate(t *testing.T) {
	// Hashes as one shard of 16 sees them: low 4 bits constant.
	r := rand.New(rand.NewPCG(3, 4))
	hash := func() uint64 { return r.Uint64()&^15 | 5 }
	var g ghost
	const limit = 20000
	for range 5 * limit {
		g.addLocked(hash(), limit)
	}
	// The most recent limit/2 keys are certainly remembered.
	recent := make([]uint64, limit/2)
	for i := range recent {
		recent[i] = hash()
		g.addLocked(recent[i], limit)
	}
	for _, h := range recent[len(recent)-g.cur.n:] {
		if !g.containsLocked(h) {
			t.Fatal("ghost forgot a key from the current generation")
		}
	}
	const probes = 200000
	fp := 0
	for range probes {
		if g.containsLocked(hash()) {
			fp++
		}
	}
	rate := float64(fp) / probes
	t.Logf("false positive rate with both generations full-ish: %.4f", rate)
	if rate > 0.03 {
		t.Fatalf("false positive rate %.4f, want under 3%%", rate)
	}
}
