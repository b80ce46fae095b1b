// Package storage is ecache's hybrid store: a byte-bounded memory tier (see
// package memtier) in front of a Pebble LSM on disk, holding one
// vclock.Object per (namespace, key).
//
// Writes are read-modify-write under a per-key lock stripe (Update), go to
// memory at once and to Pebble according to the persistence mode:
//
//   - PersistenceNone: memory only; a pure cache. Evicted keys are gone.
//   - PersistenceAsync (default): write-behind. Records queue in memory and a
//     flusher commits them to Pebble in fsynced batches every FlushInterval
//     (or sooner when the queue is large). A crash loses at most the writes
//     of the last flush interval plus the batch being committed; a clean Close
//     loses nothing. Reads see queued records at once.
//   - PersistenceSync: each write is applied to Pebble and fsynced before
//     Update returns. Concurrent writers share fsyncs (Pebble's commit
//     pipeline groups them), so throughput grows with concurrency.
//
// Reads check memory, then the write-behind queue, then Pebble, and promote
// what they find into memory. Concurrent misses for one key are coalesced so
// a hot cold key reads Pebble once. A promotion never overwrites a newer write.
//
// Pebble keys are 'd' | partition (2 bytes, big-endian) | len(ns) | ns | key,
// so one partition is one contiguous range that can be scanned, streamed or
// dropped. Records are a format byte followed by the object's deterministic
// MessagePack encoding (vclock.Object.AppendMsgpack): the same object always
// has the same bytes on every replica.
//
// Expired versions read as absent without any message (lazy expiry); a
// background sweep removes objects whose every sibling expired more than
// ExpiryGrace ago. Tombstones are kept until a collector that knows they are
// causally stable removes them (CollectTombstones); storage alone never
// decides that.
//
// The node's identity (vclock.NodeID) is created with the data directory and
// kept in its NODE_ID file; a store without persistence has a fresh identity
// every time it opens.
//
// Disk errors are never swallowed: a failed read returns an error wrapping
// ErrDisk, and a failed write (or write-behind flush) makes the store refuse
// every later write with ErrDisk, because Pebble cannot continue after a WAL
// failure. Reads keep working from what the store still holds.
package storage
