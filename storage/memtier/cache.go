package memtier

import (
	"github.com/cespare/xxhash/v2"
)

// Cache is a sharded, byte-bounded S3-FIFO cache of immutable records. All
// methods are safe for concurrent use.
type Cache struct {
	shards   []shard
	mask     uint64
	capacity int64
	onEvict  func(key, val []byte)
}

// Stats are cumulative counters since New; Clear does not reset them.
type Stats struct {
	Hits      uint64
	Misses    uint64
	Evictions uint64 // entries evicted for capacity
	Sets      uint64 // Sets that stored their entry
	Deletes   uint64 // Deletes that removed an entry
	Rejects   uint64 // Sets refused because the entry could never fit
}

// New returns an empty cache, or an error wrapping ErrInvalidConfig.
func New(cfg Config) (*Cache, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Cache{
		shards:   make([]shard, cfg.Shards),
		mask:     uint64(cfg.Shards - 1),
		capacity: cfg.Capacity,
		onEvict:  cfg.OnEvict,
	}
	// Spread the remainder so that the shards' capacities sum to Capacity.
	per, rem := cfg.Capacity/int64(cfg.Shards), cfg.Capacity%int64(cfg.Shards)
	for i := range c.shards {
		capacity := per
		if int64(i) < rem {
			capacity++
		}
		c.shards[i].init(capacity)
	}
	return c, nil
}

func (c *Cache) shardFor(h uint64) *shard {
	return &c.shards[h&c.mask]
}

// Get returns the value stored for key. The slice aliases the cache's copy:
// it stays valid and unchanged after the key is replaced, deleted or evicted,
// and must not be modified. It does not allocate.
func (c *Cache) Get(key []byte) (val []byte, ok bool) {
	h := xxhash.Sum64(key)
	return c.shardFor(h).get(key, h)
}

// Set stores a copy of key and val, replacing any previous value. Key and
// value are copied into a single allocation. It returns false, storing
// nothing and removing any previous value for key so that readers never see
// a value older than the latest write, if len(key)+len(val)+EntryOverhead
// exceeds the capacity of the key's shard, if the key is longer than 2^28-1
// bytes or if the value is longer than 2^32-1 bytes.
//
// Making room may evict other entries; OnEvict is called for them after the
// shard lock is released, before Set returns.
func (c *Cache) Set(key, val []byte) bool {
	h := xxhash.Sum64(key)
	s := c.shardFor(h)
	if len(key) > maxKeyLen || uint64(len(val)) > maxValLen ||
		int64(len(key))+int64(len(val))+EntryOverhead > s.capacity {
		s.mu.Lock()
		if pos := s.index.find(s.slab, key, fragment(h)); pos >= 0 {
			s.removeAtLocked(pos)
		}
		s.mu.Unlock()
		s.rejects.Add(1)
		return false
	}

	// Build the record before locking: the copy is the only per-Set
	// allocation and need not be serialized.
	data := newRecord(key, val)

	// Victims are collected only when someone wants them; a small array
	// on the stack covers the usual one or two per Set.
	var local [4]entry
	collect := c.onEvict != nil
	s.mu.Lock()
	victims, n := s.setLocked(h, data, local[:0], collect)
	s.mu.Unlock()
	s.sets.Add(1)
	if n > 0 {
		s.evictions.Add(n)
	}
	for i := range victims {
		c.onEvict(record(victims[i].data))
	}
	return true
}

// Delete removes key and reports whether it was present. OnEvict is not
// called.
func (c *Cache) Delete(key []byte) bool {
	h := xxhash.Sum64(key)
	s := c.shardFor(h)
	s.mu.Lock()
	pos := s.index.find(s.slab, key, fragment(h))
	ok := pos >= 0
	if ok {
		s.removeAtLocked(pos)
	}
	s.mu.Unlock()
	if ok {
		s.deletes.Add(1)
	}
	return ok
}

// Len returns the number of entries. Under concurrent writes it is a sum of
// per-shard snapshots, not an atomic snapshot of the whole cache.
func (c *Cache) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += s.index.count
		s.mu.RUnlock()
	}
	return n
}

// Bytes returns the accounted size of the entries held, never more than
// Capacity. Like Len it sums per-shard snapshots.
func (c *Cache) Bytes() int64 {
	var n int64
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += s.bytes
		s.mu.RUnlock()
	}
	return n
}

// Capacity returns the configured capacity in bytes.
func (c *Cache) Capacity() int64 { return c.capacity }

// Stats returns the cumulative counters. Each counter is read atomically, but
// the set of them is not one snapshot.
func (c *Cache) Stats() Stats {
	var st Stats
	for i := range c.shards {
		s := &c.shards[i]
		st.Hits += s.hits.Load()
		st.Misses += s.misses.Load()
		st.Evictions += s.evictions.Load()
		st.Sets += s.sets.Load()
		st.Deletes += s.deletes.Load()
		st.Rejects += s.rejects.Load()
	}
	return st
}

// Range calls fn for every entry until fn returns false. It visits the
// shards one at a time: it copies a shard's entry headers while holding that
// shard's lock exclusively (briefly blocking its readers and writers), then
// releases the lock before calling fn. fn therefore sees a consistent
// snapshot of each shard, but not of the whole cache, and may itself call any
// Cache method. Entries do not count as read for eviction purposes. The
// slices follow the same rules as Get's result.
func (c *Cache) Range(fn func(key, val []byte) bool) {
	var snap []entry
	for i := range c.shards {
		s := &c.shards[i]
		snap = snap[:0]
		// Exclusive, not shared: Get writes frequency bits under the shared
		// lock, and copying whole entries would race with it.
		s.mu.Lock()
		for j := range s.slab {
			if s.slab[j].queue() != qFree {
				snap = append(snap, s.slab[j])
			}
		}
		s.mu.Unlock()
		for j := range snap {
			if !fn(record(snap[j].data)) {
				return
			}
		}
	}
}

// Clear removes every entry without calling OnEvict. Counters are kept.
func (c *Cache) Clear() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.resetLocked()
		s.mu.Unlock()
	}
}
