package memtier

import (
	"fmt"
	"math/bits"
	"runtime"
)

// EntryOverhead is the fixed number of bytes charged per entry on top of
// len(key)+len(val). It estimates what this package's structures really cost
// per entry, so that Capacity roughly bounds heap use: a 16-byte slab entry
// (plus up to 25% append slack), an 8-byte index slot at a load that swings
// between 0.57 and 0.85 as the table grows by half (9.4 to 14.1 bytes), the
// record's length header (2 bytes while key and value are under 128 bytes, 3
// for values under 16 KiB) and about 1.25 bytes of ghost per main entry.
// Measured with 16 shards at 0.3M to 1.5M resident keys of 16 bytes with
// 100-byte values, slab and index came to 29-33 bytes (29 at 1M keys); with
// header and ghost that is 32-36, and 34 is the middle. Not included: the
// allocator's size-class rounding of the record itself (e.g. a 118-byte
// record occupies 128 bytes). BenchmarkOverhead measures the total.
const EntryOverhead = 34

const (
	maxShards = 1 << 16
	// Large enough that per-shard locking is not the bottleneck on one
	// socket, small enough that tiny caches still give each shard room.
	minDefaultShards = 16
	maxDefaultShards = 256
)

// Config configures a Cache.
type Config struct {
	// Capacity is the number of bytes the cache may account for, split evenly
	// over the shards. An entry costs len(key)+len(val)+EntryOverhead.
	Capacity int64
	// Shards is the number of independently locked shards; a power of two.
	Shards int
	// OnEvict, if set, is called for each entry evicted to make room. It is
	// not called for Delete, Clear, replacement or a refused Set. It runs
	// after the shard lock is released, on the goroutine whose Set caused the
	// eviction, so it may call back into the Cache but should be quick.
	// Because the lock is released first, a concurrent Set may already have
	// stored the key again by the time OnEvict sees the old entry.
	OnEvict func(key, val []byte)
}

// DefaultConfig returns a 256 MiB cache with four shards per available CPU,
// rounded up to a power of two and kept within [16, 256].
func DefaultConfig() Config {
	n := 4 * runtime.GOMAXPROCS(0)
	shards := 1 << bits.Len(uint(n-1))
	shards = min(max(shards, minDefaultShards), maxDefaultShards)
	return Config{
		Capacity: 256 << 20,
		Shards:   shards,
	}
}

// Validate reports the first invalid field, wrapped in ErrInvalidConfig.
func (c Config) Validate() error {
	if c.Shards <= 0 || c.Shards > maxShards || c.Shards&(c.Shards-1) != 0 {
		return fmt.Errorf("%w: Shards must be a power of two in [1, %d], got %d", ErrInvalidConfig, maxShards, c.Shards)
	}
	if c.Capacity <= 0 {
		return fmt.Errorf("%w: Capacity must be positive, got %d", ErrInvalidConfig, c.Capacity)
	}
	perShard := c.Capacity / int64(c.Shards)
	if perShard <= EntryOverhead {
		return fmt.Errorf("%w: Capacity %d leaves %d bytes per shard over %d Shards, not enough for one entry (EntryOverhead is %d)",
			ErrInvalidConfig, c.Capacity, perShard, c.Shards, EntryOverhead)
	}
	// Slab slots are numbered with 30 bits and nilIdx means "none"; every
	// entry costs at least EntryOverhead, which bounds the slot count.
	if perShard/EntryOverhead >= nilIdx {
		return fmt.Errorf("%w: Capacity %d is too large for %d Shards; use more Shards", ErrInvalidConfig, c.Capacity, c.Shards)
	}
	return nil
}
