// Package antientropy holds ecache's replica repair: one tictac-style Merkle
// tree per partition and the exchange state machine that compares two
// replicas' trees and repairs exactly the keys that differ.
//
// # Trees
//
// A Tree has a fixed shape (Config: Width children per node, Depth levels
// below the root, Width^Depth leaves). Every key lands in one leaf, chosen by
// a hash independent of the partition hash. A leaf is the XOR of
// EntryHash(ns, key, digest) over the keys in it, and every inner node is the
// XOR of its children, so inserting, updating or removing a key XORs one
// 64-bit value into Depth+1 slots: no rescan, and the order of updates does
// not matter (XOR is commutative and self-inverse).
//
// What enters the tree is VersionDigest(obj): a hash of the whole stored
// object (clock and every sibling's dot, HLC, expiry, tombstone flag and
// value), independent of time, so the write path and the expiry sweep can
// update the tree knowing only the old and the new object. What the
// exchange compares is Digest(obj, now): the same hash, or 0 — absent — for
// an object whose every sibling has expired at now. Expiry is thus invisible
// to repair: a replica that swept an expired object and one that still holds
// it have different trees, which costs a descent into the leaves concerned,
// but their key lists agree that the key is absent and nothing is
// transferred. Tombstones never expire on their own, so deletes propagate.
//
// # Exchange
//
// An Exchange (the initiator) and a Responder (the other replica) trade
// Messages: roots, then child hashes level by level for the differing nodes
// only, then key-and-clock lists of the differing leaves only, then the
// objects that differ, pushed and pulled in one round, merged on each side by
// the Replica's Merge. Both are pure state machines: no goroutines, no
// sockets, no clock. The caller passes messages and Tick(now) in and sends
// what comes out; the initiator's now at Start is carried in every request
// and is the single instant both sides judge expiry at, so clock skew between
// the replicas cannot make an expired version look like a difference.
//
// The cost of an exchange grows with the number of differing keys k, not
// with the number of keys n: k=0 is one root comparison (one request, one
// response), and every later round only touches subtrees that differ.
//
// Invariants:
//
//   - A Tree holds EntryHash(ns, key, VersionDigest(obj)) for every stored
//     object; the owner (the store's write path, merges, the expiry sweep,
//     evictions in memory-only mode) keeps it so with Update. A tree that is
//     wrong (a missed update) costs a descent, never a wrong transfer: the
//     lists compared are built from the objects themselves.
//   - Two trees are compared only when their shapes are equal.
//   - Messages have a deterministic MessagePack encoding (internal/msgp);
//     their type numbers are a wire enum and append-only.
package antientropy
