package memtier

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"testing"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"pgregory.net/rapid"
)

// check verifies the table's structure against the slab, with fragments as
// the cache computes them.
func (t *table) check(slab []entry) error {
	return t.checkWith(slab, func(key []byte) uint32 { return fragment(xxhash.Sum64(key)) })
}

// checkWith verifies the table's structure: the count, the load limit, that
// every slot names a distinct live slab slot whose key has the slot's
// fragment, and the Robin Hood order (every run starts at its first slot's
// home and no slot is more than one further from its home than its
// predecessor), which is what lets lookups stop early.
func (t *table) checkWith(slab []entry, fragOf func([]byte) uint32) error {
	n := len(t.slots)
	if n == 0 {
		if t.count != 0 {
			return fmt.Errorf("empty table counts %d", t.count)
		}
		return nil
	}
	if t.limit >= n || t.limit > n*maxLoadNum/maxLoadDen || t.count > t.limit {
		return fmt.Errorf("table of %d slots: count %d, limit %d", n, t.count, t.limit)
	}
	seen := make(map[uint32]bool)
	count := 0
	for pos, sl := range t.slots {
		if sl.ref == 0 {
			continue
		}
		count++
		idx := sl.ref - 1
		if int(idx) >= len(slab) || slab[idx].data == nil {
			return fmt.Errorf("slot %d refers to slab slot %d, which is not live", pos, idx)
		}
		if seen[idx] {
			return fmt.Errorf("slab slot %d indexed twice", idx)
		}
		seen[idx] = true
		key, _ := record(slab[idx].data)
		if f := fragOf(key); f != sl.frag {
			return fmt.Errorf("slot %d: key %q has fragment %#x, slot says %#x", pos, key, f, sl.frag)
		}
		d := t.dist(sl.frag, pos)
		prev := t.slots[(pos+n-1)%n]
		switch {
		case d == 0:
		case prev.ref == 0:
			return fmt.Errorf("slot %d is %d past its home but follows an empty slot", pos, d)
		case d > t.dist(prev.frag, (pos+n-1)%n)+1:
			return fmt.Errorf("slot %d is %d past its home, its predecessor only %d", pos, d, t.dist(prev.frag, (pos+n-1)%n))
		}
	}
	if count != t.count {
		return fmt.Errorf("%d slots occupied, count says %d", count, t.count)
	}
	return nil
}

// tableHarness drives a table directly, with fragments chosen by the test, so
// that collisions, long runs and wrap-around can be forced.
type tableHarness struct {
	tb     fataler
	t      table
	slab   []entry
	free   []uint32
	fragOf func([]byte) uint32
	model  map[string]uint32 // key -> slab index
}

// fataler is what the harness needs of a *testing.T or *rapid.T.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

func newTableHarness(tb fataler, fragOf func([]byte) uint32) *tableHarness {
	return &tableHarness{tb: tb, fragOf: fragOf, model: map[string]uint32{}}
}

func (h *tableHarness) insert(key string) {
	h.tb.Helper()
	if _, ok := h.model[key]; ok {
		h.tb.Fatalf("harness: %q already present", key)
	}
	var idx uint32
	if n := len(h.free); n > 0 {
		idx, h.free = h.free[n-1], h.free[:n-1]
	} else {
		h.slab = append(h.slab, entry{})
		idx = uint32(len(h.slab) - 1)
	}
	h.slab[idx] = entry{data: newRecord([]byte(key), []byte("v:"+key))}
	h.t.insert(h.fragOf([]byte(key)), idx)
	h.model[key] = idx
}

// remove deletes key through removeAt(find) or, if byRef, through removeRef
// as eviction does.
func (h *tableHarness) remove(key string, byRef bool) {
	h.tb.Helper()
	idx, ok := h.model[key]
	if !ok {
		h.tb.Fatalf("harness: %q absent", key)
	}
	if byRef {
		h.t.removeRef(h.fragOf([]byte(key)), idx)
	} else {
		pos := h.t.find(h.slab, []byte(key), h.fragOf([]byte(key)))
		if pos < 0 {
			h.tb.Fatalf("find(%q) = -1 before removal", key)
		}
		h.t.removeAt(pos)
	}
	h.slab[idx] = entry{}
	h.free = append(h.free, idx)
	delete(h.model, key)
}

// verify checks the structure and that every model key is found at its slab
// index and each of absent is not found.
func (h *tableHarness) verify(absent ...string) {
	h.tb.Helper()
	if err := h.t.checkWith(h.slab, h.fragOf); err != nil {
		h.tb.Fatalf("table: %v", err)
	}
	for k, idx := range h.model {
		if got := h.t.lookup(h.slab, []byte(k), h.fragOf([]byte(k))); got != idx {
			h.tb.Fatalf("lookup(%q) = %d, want %d", k, got, idx)
		}
	}
	for _, k := range absent {
		if _, ok := h.model[k]; ok {
			continue
		}
		if got := h.t.lookup(h.slab, []byte(k), h.fragOf([]byte(k))); got != nilIdx {
			h.tb.Fatalf("lookup(%q) = %d for an absent key", k, got)
		}
	}
}

func TestTableAllKeysCollide(t *testing.T) {
	// Every key has the same fragment: one run, every lookup compares keys,
	// and deletions in any order must shift the run back intact.
	for _, frag := range []uint32{0, 1 << 31, math.MaxUint32} {
		t.Run(fmt.Sprintf("frag=%#x", frag), func(t *testing.T) {
			h := newTableHarness(t, func([]byte) uint32 { return frag })
			keys := make([]string, 100)
			for i := range keys {
				keys[i] = fmt.Sprint("k", i)
				h.insert(keys[i])
				h.verify("absent", "k", "k100")
			}
			// Delete from the middle, the front and the back of the run.
			order := []int{50, 0, 99, 1, 98, 49, 51}
			for i := range keys {
				if !slices.Contains(order, i) {
					order = append(order, i)
				}
			}
			for n, i := range order {
				h.remove(keys[i], n%2 == 0)
				h.verify(keys...)
			}
			if h.t.count != 0 {
				t.Fatalf("count %d after removing everything", h.t.count)
			}
		})
	}
}

func TestTableWrapAround(t *testing.T) {
	// Fragments at the very top of the range have homes in the last slot,
	// so their run wraps to the front of the table, where keys with small
	// fragments live. Lookups and backward shifts must cross the end.
	frags := map[string]uint32{}
	for i := range 6 {
		frags[fmt.Sprint("hi", i)] = math.MaxUint32 - uint32(i)
		frags[fmt.Sprint("lo", i)] = uint32(i)
	}
	h := newTableHarness(t, func(k []byte) uint32 { return frags[string(k)] })
	for i := range 6 { // interleaved so that the low keys get displaced
		h.insert(fmt.Sprint("hi", i))
		h.insert(fmt.Sprint("lo", i))
		h.verify()
	}
	if len(h.t.slots) < 12 {
		t.Fatalf("table has %d slots for 12 keys", len(h.t.slots))
	}
	if last := h.t.slots[len(h.t.slots)-1]; last.ref == 0 || h.t.dist(last.frag, len(h.t.slots)-1) != 0 {
		t.Fatal("test setup: last slot is not the home of a high fragment")
	}
	if first := h.t.slots[0]; first.ref == 0 || h.t.dist(first.frag, 0) == 0 {
		t.Fatal("test setup: run does not wrap into slot 0")
	}
	for i := range 6 {
		h.remove(fmt.Sprint("hi", i), i%2 == 1)
		h.verify("hi0", "hi1", "hi2", "hi3", "hi4", "hi5")
	}
}

func TestTableGrowth(t *testing.T) {
	// Real fragments. Every growth must keep all keys findable, and the
	// load must stay within [maxLoad/growth, maxLoad] once past the
	// smallest table.
	h := newTableHarness(t, func(k []byte) uint32 { return fragment(xxhash.Sum64(k)) })
	sizes := []int{0}
	const n = 20000
	for i := range n {
		h.insert(fmt.Sprint("key-", i))
		if l := len(h.t.slots); l != sizes[len(sizes)-1] {
			sizes = append(sizes, l)
			h.verify("missing")
			if l > minTableLen {
				load := float64(h.t.count) / float64(l)
				lo := float64(maxLoadNum) / maxLoadDen * growDen / growNum
				if load < lo-0.01 || load > float64(maxLoadNum)/maxLoadDen {
					t.Fatalf("load %.3f right after growing to %d slots", load, l)
				}
			}
		}
	}
	h.verify("missing")
	t.Logf("table lengths: %v", sizes)
	if len(sizes) < 10 {
		t.Fatalf("only %d growths for %d keys", len(sizes)-1, n)
	}
	if load := float64(h.t.count) / float64(len(h.t.slots)); load > float64(maxLoadNum)/maxLoadDen {
		t.Fatalf("final load %.3f", load)
	}
}

func TestTableDeleteKeepsOthers(t *testing.T) {
	// Few distinct fragments in a large table: long runs that interleave
	// several homes. After each deletion every remaining key must be found.
	h := newTableHarness(t, func(k []byte) uint32 { return uint32(xxhash.Sum64(k)%7) * (math.MaxUint32 / 7) })
	var keys []string
	for i := range 300 {
		keys = append(keys, fmt.Sprint("k", i))
		h.insert(keys[i])
	}
	h.verify()
	for i, k := range keys {
		if i%3 != 0 {
			h.remove(k, i%2 == 0)
			h.verify(k)
		}
	}
	for i, k := range keys { // reinsert into the shifted runs
		if i%3 != 0 {
			h.insert(k)
		}
	}
	h.verify()
}

// TestTableModel is a property test of the table against a map, with
// fragments drawn from a space small enough that collisions are common and
// slots near the table's end are used.
func TestTableModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		fragBits := rapid.IntRange(0, 4).Draw(t, "fragBits")
		fragOf := func(k []byte) uint32 {
			// Keep the top fragBits of the hash and force the rest to
			// ones, so that homes pile up at the top of the table too.
			f := fragment(xxhash.Sum64(k))
			return f>>(32-fragBits)<<(32-fragBits) | (1<<(32-fragBits) - 1)
		}
		if fragBits == 0 {
			fragOf = func([]byte) uint32 { return math.MaxUint32 }
		}
		h := newTableHarness(t, fragOf)
		keyGen := rapid.StringMatching(`k[0-9]{1,2}`)
		t.Repeat(map[string]func(*rapid.T){
			"insert": func(t *rapid.T) {
				k := keyGen.Draw(t, "key")
				if _, ok := h.model[k]; !ok {
					h.insert(k)
				}
			},
			"remove": func(t *rapid.T) {
				k := keyGen.Draw(t, "key")
				if _, ok := h.model[k]; ok {
					h.remove(k, rapid.Bool().Draw(t, "byRef"))
					return
				}
				if pos := h.t.find(h.slab, []byte(k), fragOf([]byte(k))); pos >= 0 {
					t.Fatalf("find(%q) = %d for an absent key", k, pos)
				}
			},
			"": func(t *rapid.T) {
				h.tb = t
				h.verify(keyGen.Draw(t, "probe"))
			},
		})
	})
}

// collidingKeys returns pairs of distinct keys whose hashes share their
// fragment (and, with one shard, their shard).
func collidingKeys(tb testing.TB, want int) [][2][]byte {
	tb.Helper()
	seen := map[uint32][]byte{}
	var pairs [][2][]byte
	for i := 0; len(pairs) < want; i++ {
		if i > 1<<24 {
			tb.Fatal("no fragment collisions found")
		}
		k := fmt.Appendf(nil, "c%d", i)
		f := fragment(xxhash.Sum64(k))
		if other, ok := seen[f]; ok {
			pairs = append(pairs, [2][]byte{other, k})
			continue
		}
		seen[f] = k
	}
	return pairs
}

func TestCacheFragmentCollisions(t *testing.T) {
	// Real keys whose 32-bit fragments collide, through the public API:
	// each must keep its own value, and deleting, replacing or evicting one
	// must not disturb the other.
	pairs := collidingKeys(t, 3)
	var evicted [][]byte
	c := mustNew(t, Config{Capacity: 1 << 20, Shards: 1, OnEvict: func(k, v []byte) { evicted = append(evicted, k) }})
	for _, p := range pairs {
		c.Set(p[0], []byte("first"))
		c.Set(p[1], []byte("second"))
	}
	checkInvariants(t, c)
	for _, p := range pairs {
		if v, ok := c.Get(p[0]); !ok || string(v) != "first" {
			t.Fatalf("Get(%q) = %q, %v", p[0], v, ok)
		}
		if v, ok := c.Get(p[1]); !ok || string(v) != "second" {
			t.Fatalf("Get(%q) = %q, %v", p[1], v, ok)
		}
	}
	p := pairs[0]
	c.Set(p[1], []byte("replaced"))
	if !c.Delete(p[0]) || c.Delete(p[0]) {
		t.Fatalf("Delete(%q) twice did not report true then false", p[0])
	}
	if v, ok := c.Get(p[1]); !ok || string(v) != "replaced" {
		t.Fatalf("after deleting its twin, Get(%q) = %q, %v", p[1], v, ok)
	}
	if _, ok := c.Get(p[0]); ok {
		t.Fatalf("deleted %q still found", p[0])
	}
	checkInvariants(t, c)

	// A cache with room for about one entry evicts the twin on each Set.
	small := mustNew(t, Config{Capacity: EntryOverhead + 20, Shards: 1, OnEvict: func(k, v []byte) { evicted = append(evicted, k) }})
	for _, p := range pairs {
		small.Set(p[0], []byte("a"))
		small.Set(p[1], []byte("b"))
		if _, ok := small.Get(p[0]); ok {
			t.Fatalf("%q not evicted", p[0])
		}
		if v, ok := small.Get(p[1]); !ok || string(v) != "b" {
			t.Fatalf("Get(%q) = %q, %v after evicting its twin", p[1], v, ok)
		}
		checkInvariants(t, small)
	}
	if len(evicted) < len(pairs) {
		t.Fatalf("%d evictions", len(evicted))
	}
}

func TestRecordEncoding(t *testing.T) {
	// Lengths on both sides of the uvarint byte boundaries.
	lens := []int{0, 1, 127, 128, 129, 16383, 16384, 1 << 21}
	for _, kl := range lens {
		for _, vl := range lens {
			key := bytes.Repeat([]byte{'k'}, kl)
			val := bytes.Repeat([]byte{'v'}, vl)
			p := newRecord(key, val)
			k, v := record(p)
			if !bytes.Equal(k, key) || !bytes.Equal(v, val) || cap(k) != kl || cap(v) != vl {
				t.Fatalf("klen %d vlen %d: decoded %d/%d bytes, caps %d/%d", kl, vl, len(k), len(v), cap(k), cap(v))
			}
			if v == nil || k == nil {
				t.Fatalf("klen %d vlen %d: nil slice", kl, vl)
			}
			if got, want := recordSize(p), int64(kl+vl)+EntryOverhead; got != want {
				t.Fatalf("recordSize = %d, want %d", got, want)
			}
			if !keyIs(p, key) || keyIs(p, append(key, 'x')) || (kl > 0 && keyIs(p, key[1:])) {
				t.Fatalf("klen %d vlen %d: keyIs wrong", kl, vl)
			}
			if kl > 0 {
				other := bytes.Clone(key)
				other[kl-1] = 'x'
				if keyIs(p, other) {
					t.Fatalf("klen %d: keyIs matched a different key", kl)
				}
			}
		}
	}
	// The largest lengths the header must carry.
	for _, v := range []uint32{maxKeyLen, math.MaxUint32} {
		var buf [10]byte
		n := putUvarint32(buf[:], v)
		if got, end := uvarintAt(&buf[0], 0); got != v || int(end) != n {
			t.Fatalf("uvarint %d decoded as %d (%d of %d bytes)", v, got, end, n)
		}
	}
}

func putUvarint32(buf []byte, v uint32) int {
	i := 0
	for v >= 0x80 {
		buf[i] = byte(v) | 0x80
		v >>= 7
		i++
	}
	buf[i] = byte(v)
	return i + 1
}

func TestEntryIs16Bytes(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) == 8 && unsafe.Sizeof(entry{}) != 16 {
		t.Fatalf("entry is %d bytes, want 16", unsafe.Sizeof(entry{}))
	}
	if unsafe.Sizeof(slot{}) != 8 {
		t.Fatalf("index slot is %d bytes, want 8", unsafe.Sizeof(slot{}))
	}
}
