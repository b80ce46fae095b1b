// Package memtier is the memory tier of a cache node: a sharded, byte-bounded
// map from key bytes to immutable record bytes, evicting with S3-FIFO
// (Yang et al., "FIFO queues are all you need for cache eviction", SOSP'23).
//
// # Invariants
//
//   - Records are immutable. Set copies key and value into one fresh
//     allocation (a short length header, then the key bytes, then the value
//     bytes) and never writes to it again; replacing a key allocates anew. A slice returned by Get or passed
//     to Range or OnEvict therefore stays valid and unchanged for as long as
//     the caller holds it, with no copy on the read path. Callers must not
//     modify those slices either.
//   - Every shard keeps Bytes() <= its capacity after each operation, where an
//     entry is accounted as len(key)+len(val)+EntryOverhead. A Set whose entry
//     alone exceeds its shard's capacity is refused (and, so that a reader can
//     never see a value older than the latest write, removes any previous
//     value for the key).
//   - OnEvict runs only for capacity evictions, after the shard lock is
//     released, so it may call back into the Cache.
//
// # Layout
//
// Keys are spread over power-of-two shards by the low bits of their xxhash;
// each shard has its own lock. Per-entry overhead is what bounds how many
// small records a node can hold, so a shard avoids per-entry heap objects
// other than the record itself and keeps its per-entry structures small
// (EntryOverhead says what they add up to):
//
//   - A record (record.go) starts with the key and value lengths as two
//     uvarints, 2 bytes for keys and values under 128 bytes, so that the
//     slab entry need not hold them.
//   - slab []entry holds 16-byte entries: pointer to the record and the
//     prev/next slab indices of an intrusive doubly linked list, 30 bits
//     each, sharing their words with a 2-bit queue tag and a 2-bit S3-FIFO
//     frequency. Free slots are chained through the same next field.
//   - index (index.go) is an open-addressing hash table of 8-byte slots, each
//     the top 32 bits of a key's xxhash and a slab index, with linear probing,
//     Robin Hood placement and deletion by backward shift (no tombstones). It
//     is kept between 57% and 85% full by growing by half, all at once under
//     the shard lock. It stores no keys and no pointers: a slot whose hash
//     bits match is confirmed against the record's key bytes, and the garbage
//     collector has nothing to scan in it.
//   - The small and main S3-FIFO queues are those intrusive lists, so Delete
//     and replacement unlink in O(1) without tombstones.
//   - The ghost queue, which remembers keys recently evicted from the small
//     queue, is two generations of blocked Bloom filters covering between
//     half and all of main's length in evictions, about 1.25 bytes per main
//     entry (ghost.go says why not an exact FIFO). A false positive only
//     sends a new key to main instead of small.
//
// # S3-FIFO as implemented
//
// New keys go to the small queue (about 10% of the shard's bytes) unless the
// ghost remembers them, in which case they go to main. A hit bumps the
// entry's frequency, saturating at 3. When space is needed and the small
// queue holds at least its share, its oldest entry is promoted to main if it
// was read since insertion (frequency > 0) and otherwise evicted into the
// ghost. Otherwise the oldest entry of main is evicted if its frequency is 0,
// or has its frequency decremented and is reinserted. See promoteFreq for why
// the promotion threshold is one read. Replacing a key keeps its queue and
// frequency (its history is the key's, not the value's) and makes it the
// newest entry of that queue.
//
// Get takes the shard lock shared: the only state a hit changes is the
// frequency, which it bumps with a compare-and-swap, and only while it is
// below the cap, so hot keys do not keep dirtying their cache line.
package memtier
