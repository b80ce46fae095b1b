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

// PartitionOf returns the partition of (ns, key) among n partitions:
// xxhash64 of len(ns) as one byte, ns, then key, modulo n. Smart clients
// compute the same function (docs/protocol.md).
func PartitionOf(ns, key []byte, n int) uint32 {
	var d xxhash.Digest
	d.Reset()
	_, _ = d.Write([]byte{byte(len(ns))})
	_, _ = d.Write(ns)
	_, _ = d.Write(key)
	return uint32(d.Sum64() % uint64(n))
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
