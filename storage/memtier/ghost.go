package memtier

// ghost is S3-FIFO's ghost queue: which keys were recently evicted from the
// small queue without being read, so that if they come back soon they skip
// small and go straight to main.
//
// The paper keeps a FIFO of fingerprints as long as the main queue. An exact
// FIFO here (a ring of 32-bit fingerprints plus a Go map for membership)
// measured about 25 bytes per remembered key, which at steady state, with
// main holding ~90% of the entries, added ~22 bytes to every resident key and
// took the store past its 100 bytes/key budget. So the FIFO is approximated
// by two generations of Bloom filters: keys go into the current generation
// until it holds its designed count, then the older generation is cleared and
// becomes current. Membership is "in either generation", which covers the
// last g to 2g evictions, with g set to half of main's length at each
// rotation: between half and all of main's length, as the paper's bound
// asks. Cost is about 1.25 bytes per main entry. Two things differ from an
// exact FIFO: about 2% of keys never evicted test positive and start in main,
// and a key readmitted from the ghost is not removed from it (the paper's
// Algorithm 1 does not remove it either). On the seeded zipf workload of
// hitratio_test.go (16 shards) the exact ghost and this one measured hit
// ratios of 0.6095 vs 0.6058 at 1% cache size, 0.7885 vs 0.7890 at 10% and
// 0.8544 vs 0.8547 at 25%.
//
// Guarded by the owning shard's lock.
type ghost struct {
	cur, prev bloom
}

const (
	// 10 bits per key with 7 probes in a 512-bit block gives a false
	// positive rate near 1% per generation.
	ghostBitsPerKey = 10
	bloomProbes     = 7
	bloomProbeBits  = 9 // log2 of the bits in a block
	// Floor on a generation's size so a nearly empty main does not rotate
	// the filters on every eviction.
	ghostMinGeneration = 64
)

func (g *ghost) reset() {
	*g = ghost{}
}

// addLocked remembers a key hash. limit is main's current length.
func (g *ghost) addLocked(h uint64, limit int) {
	if limit <= 0 {
		return
	}
	if g.cur.n >= g.cur.capacity {
		g.prev, g.cur = g.cur, g.prev
		g.cur.resetFor(max(limit/2, ghostMinGeneration))
	}
	g.cur.add(h)
}

func (g *ghost) containsLocked(h uint64) bool {
	return g.cur.has(h) || g.prev.has(h)
}

// bloom is a blocked Bloom filter: each key sets bloomProbes bits within one
// 64-byte block, so an add or lookup touches one cache line.
type bloom struct {
	blocks   [][8]uint64
	n        int // keys added since reset
	capacity int // keys it was sized for
}

func (f *bloom) resetFor(capacity int) {
	nb := (capacity*ghostBitsPerKey + 511) / 512
	if cap(f.blocks) >= nb && cap(f.blocks) <= 2*nb {
		// Reuse the old generation's memory when the size still fits,
		// so steady-state rotation does not allocate.
		f.blocks = f.blocks[:nb]
		clear(f.blocks)
	} else {
		f.blocks = make([][8]uint64, nb)
	}
	f.n, f.capacity = 0, capacity
}

// locate picks the block from the hash's top 32 bits (the shard used the low
// bits) and returns probe bits drawn from a multiplicative remix, whose top
// bits depend on every bit of h.
func (f *bloom) locate(h uint64) (*[8]uint64, uint64) {
	b := &f.blocks[uint64(uint32(h>>32))*uint64(len(f.blocks))>>32]
	return b, h * 0x9e3779b97f4a7c15
}

func (f *bloom) add(h uint64) {
	b, x := f.locate(h)
	for range bloomProbes {
		bit := x >> (64 - bloomProbeBits)
		b[bit>>6] |= 1 << (bit & 63)
		x <<= bloomProbeBits
	}
	f.n++
}

func (f *bloom) has(h uint64) bool {
	if len(f.blocks) == 0 {
		return false
	}
	b, x := f.locate(h)
	for range bloomProbes {
		bit := x >> (64 - bloomProbeBits)
		if b[bit>>6]&(1<<(bit&63)) == 0 {
			return false
		}
		x <<= bloomProbeBits
	}
	return true
}
