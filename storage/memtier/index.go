package memtier

import "math/bits"

// table is a shard's index from key to slab index: an open-addressing hash
// table with linear probing and Robin Hood placement, 8 bytes per slot.
//
// A slot holds a 32-bit fragment of the key's xxhash (its top 32 bits; the
// shard is chosen by the low bits) and the slab index plus one, so that the
// zero slot is empty and a fresh table needs no initialization. The key
// itself is not stored: a slot whose fragment matches is confirmed by
// comparing the key with the record's key bytes.
//
// The home position of a fragment is fastrange(frag, len(slots)), the
// fragment scaled to the table's length, so the length need not be a power of
// two and the table grows by half rather than doubling. Because the home is
// computed from the fragment alone, growing never touches the records.
//
// Robin Hood placement keeps each run of occupied slots ordered by home
// position: an insert takes the slot of any resident closer to its own home
// than the newcomer is to its, and moves that resident on. A lookup can then
// stop at the first resident closer to its home than the probe is to the
// key's, so misses are about as short as hits, even at a load near maxLoad.
// Deletion shifts the rest of the run back by one (stopping at an empty slot
// or one at its home), so there are no tombstones and the ordering holds.
//
// A lookup first compares the fragments of the window of 8 slots starting at
// the key's home all at once, without a branch per slot, and decides from the
// window's last slot whether the key could lie beyond it; only then does it
// probe on slot by slot. The number of probes varies from key to key, and on
// a slot-by-slot loop that costs about one mispredicted branch per lookup.
//
// Guarded by the owning shard's lock; lookups only read and may run under the
// shared lock.
type table struct {
	slots []slot
	count int // occupied slots
	limit int // count at which the next insert grows the table
}

type slot struct {
	frag uint32 // top 32 bits of the key's xxhash
	ref  uint32 // slab index + 1; 0 marks an empty slot
}

const (
	// Grow when an insert would take the load above maxLoadNum/maxLoadDen.
	// With linear probing, Robin Hood early exit and a load between 0.57
	// and 0.85, hits average 1.7 to 3.8 probes and misses stop about as
	// early, almost always within find's window.
	maxLoadNum = 85
	maxLoadDen = 100
	// Growth factor growNum/growDen. Growing by half rather than doubling
	// keeps the load between 0.57 and 0.85 instead of 0.43 and 0.85: 9.4 to
	// 14.1 bytes per key rather than 9.4 to 18.8. Rehashing reads only the
	// old slots, in order, so the extra rehashes cost little.
	growNum = 3
	growDen = 2
	// Smallest non-empty table.
	minTableLen = 8
)

// fragment is the part of a key's hash that the index keeps.
func fragment(h uint64) uint32 { return uint32(h >> 32) }

// home is the slot a fragment would occupy if it had no collisions.
func (t *table) home(frag uint32) int {
	return int(uint64(frag) * uint64(len(t.slots)) >> 32)
}

// dist is how far pos is past frag's home, wrapping at the table's end.
func (t *table) dist(frag uint32, pos int) int {
	d := pos - t.home(frag)
	if d < 0 {
		d += len(t.slots)
	}
	return d
}

// find returns the position of key's slot, or -1. slab resolves slab
// indices to records for the key comparison.
func (t *table) find(slab []entry, key []byte, frag uint32) int {
	n := len(t.slots)
	if n == 0 {
		return -1
	}
	pos, d := t.home(frag), 0
	if pos+window <= n {
		// Fast path: compare the fragments of the window's slots without
		// branching on each, so that the number of probes, which varies
		// from key to key, costs no mispredicted branches. Most keys sit
		// within a window of their home.
		w := (*[window]slot)(t.slots[pos : pos+window])
		m := b2u(w[0].frag == frag) | b2u(w[1].frag == frag)<<1 |
			b2u(w[2].frag == frag)<<2 | b2u(w[3].frag == frag)<<3 |
			b2u(w[4].frag == frag)<<4 | b2u(w[5].frag == frag)<<5 |
			b2u(w[6].frag == frag)<<6 | b2u(w[7].frag == frag)<<7
		for ; m != 0; m &= m - 1 {
			i := bits.TrailingZeros(m)
			ref := w[i].ref
			if ref == 0 {
				continue
			}
			// keyIs, written out: Go keeps no register across a call,
			// so a call on this path costs spills.
			p := slab[ref-1].data
			off := uint32(2)
			klen, _, ok := headerFast(p)
			if !ok {
				off, klen, _ = headerSlow(p)
			}
			if int(klen) == len(key) && string(keyAt(p, off, klen)) == string(key) {
				return pos + i
			}
		}
		// Key is not in the window. It can only be further on if the
		// window's last slot is occupied by a key whose home is not past
		// key's (see the Robin Hood order below).
		last := w[window-1]
		if last.ref == 0 || t.dist(last.frag, pos+window-1) < window-1 {
			return -1
		}
		pos, d = pos+window, window
		if pos == n {
			pos = 0
		}
	}
	for ; ; d++ {
		sl := t.slots[pos]
		if sl.ref == 0 {
			return -1
		}
		if sl.frag == frag && keyIs(slab[sl.ref-1].data, key) {
			return pos
		}
		// Robin Hood order: if this slot's home is past key's, key would
		// have displaced it.
		if t.dist(sl.frag, pos) < d {
			return -1
		}
		if pos++; pos == n {
			pos = 0
		}
	}
}

// window is how many slots find compares at once: one cache line's worth.
const window = 8

// b2u converts a bool to 0 or 1; the compiler makes it a SETcc, not a branch.
func b2u(b bool) uint {
	if b {
		return 1
	}
	return 0
}

// lookup returns key's slab index, or nilIdx.
func (t *table) lookup(slab []entry, key []byte, frag uint32) uint32 {
	if pos := t.find(slab, key, frag); pos >= 0 {
		return t.slots[pos].ref - 1
	}
	return nilIdx
}

// insert adds a key known to be absent, growing the table first if needed.
func (t *table) insert(frag uint32, idx uint32) {
	if t.count >= t.limit {
		t.grow()
	}
	t.place(slot{frag: frag, ref: idx + 1})
	t.count++
}

// place puts sl in its Robin Hood position. There is always an empty slot.
func (t *table) place(sl slot) {
	n := len(t.slots)
	pos := t.home(sl.frag)
	for d := 0; ; d++ {
		cur := &t.slots[pos]
		if cur.ref == 0 {
			*cur = sl
			return
		}
		if cd := t.dist(cur.frag, pos); cd < d {
			sl, *cur = *cur, sl
			d = cd
		}
		if pos++; pos == n {
			pos = 0
		}
	}
}

// removeAt empties the slot at pos and shifts the rest of its run back.
func (t *table) removeAt(pos int) {
	n := len(t.slots)
	for {
		next := pos + 1
		if next == n {
			next = 0
		}
		sl := t.slots[next]
		if sl.ref == 0 || t.dist(sl.frag, next) == 0 {
			break
		}
		t.slots[pos] = sl
		pos = next
	}
	t.slots[pos] = slot{}
	t.count--
}

// removeRef removes the slot for slab index idx, whose key hashes to frag.
// It compares slab indices rather than keys. The slot must exist.
func (t *table) removeRef(frag uint32, idx uint32) {
	n := len(t.slots)
	pos := t.home(frag)
	for range n {
		sl := t.slots[pos]
		if sl.ref == idx+1 {
			t.removeAt(pos)
			return
		}
		if sl.ref == 0 {
			break
		}
		if pos++; pos == n {
			pos = 0
		}
	}
	panic("memtier: index lost a slab slot")
}

// grow rehashes into a table growNum/growDen times as long, all at once.
func (t *table) grow() {
	old := t.slots
	n := max(len(old)*growNum/growDen, minTableLen)
	t.slots = make([]slot, n)
	// Below the load limit, and always leaving an empty slot so probes end.
	t.limit = min(n*maxLoadNum/maxLoadDen, n-1)
	// Start at a slot at its home (or empty), so that runs are re-placed in
	// home order and each place() appends to the end of its new run.
	start := 0
	for i, sl := range old {
		if sl.ref == 0 || int(uint64(sl.frag)*uint64(len(old))>>32) == i {
			start = i
			break
		}
	}
	for _, part := range [2][]slot{old[start:], old[:start]} {
		for _, sl := range part {
			if sl.ref != 0 {
				t.place(sl)
			}
		}
	}
}
