package storage

import (
	"encoding/binary"
	"fmt"

	"github.com/cespare/xxhash/v2"
)

// Key-space tags: the first byte of every Pebble key. New tags may be added
// (hinted handoff, metadata); existing ones never change meaning.
const (
	tagData byte = 'd'
	// tagHint keys hinted-handoff entries: 'h' | target node (8 bytes, big
	// endian) | len(ns) | ns | key (hints.go).
	tagHint byte = 'h'
)

// keyHeader is the tag, the partition and the namespace length.
const keyHeader = 1 + 2 + 1

// PartitionOf returns the partition of key among n partitions: xxhash64 of
// the key, modulo n. The namespace does not take part — ns is accepted so
// call sites read as the (ns, key) address they route — so one key lives in
// the same partition, on the same replicas, in every namespace: the Redis
// mapping (node/redis.go) keeps a key's string, counter and set versions in
// three namespaces and serves a command on one replica set. Smart clients
// compute the same function (docs/protocol.md, "Partitions").
func PartitionOf(_, key []byte, n int) uint32 {
	return uint32(xxhash.Sum64(key) % uint64(n))
}

// appendDataKey appends the Pebble key of (ns, key) in partition p.
func appendDataKey(b []byte, p uint32, ns, key []byte) []byte {
	b = append(b, tagData, byte(p>>8), byte(p), byte(len(ns)))
	b = append(b, ns...)
	return append(b, key...)
}

// partitionBounds returns the Pebble key range [lo, hi) of partition p.
func partitionBounds(p uint32) (lo, hi []byte) {
	lo = []byte{tagData, byte(p >> 8), byte(p)}
	if p == 0xffff {
		return lo, []byte{tagData + 1}
	}
	return lo, []byte{tagData, byte((p + 1) >> 8), byte(p + 1)}
}

// splitDataKey returns the partition, namespace and key of a Pebble data key.
func splitDataKey(k []byte) (p uint32, ns, key []byte, err error) {
	if len(k) < keyHeader || k[0] != tagData {
		return 0, nil, nil, fmt.Errorf("%w: bad key %x", ErrCorrupt, k)
	}
	n := int(k[3])
	if len(k) < keyHeader+n {
		return 0, nil, nil, fmt.Errorf("%w: bad key %x", ErrCorrupt, k)
	}
	return uint32(binary.BigEndian.Uint16(k[1:3])), k[keyHeader : keyHeader+n], k[keyHeader+n:], nil
}
