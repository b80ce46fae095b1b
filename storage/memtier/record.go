package memtier

import (
	"encoding/binary"
	"unsafe"
)

// A record is the one allocation that holds an entry's bytes:
//
//	uvarint(len(key)) uvarint(len(val)) key val
//
// Keeping the lengths in the record rather than in the slab entry is what
// lets an entry be 16 bytes: for the common key and value sizes the header
// is 2 or 3 bytes, often absorbed by the allocator's size-class rounding, and
// the record is read anyway on a hit (to compare the key and return the
// value). A record is never written after newRecord returns.

// newRecord copies key and val into a fresh record and returns its address.
// The caller has checked len(key) <= maxKeyLen and len(val) <= maxValLen.
func newRecord(key, val []byte) *byte {
	hdr := uvarintLen(uint64(len(key))) + uvarintLen(uint64(len(val)))
	buf := make([]byte, hdr+len(key)+len(val))
	n := binary.PutUvarint(buf, uint64(len(key)))
	n += binary.PutUvarint(buf[n:], uint64(len(val)))
	n += copy(buf[n:], key)
	copy(buf[n:], val)
	return unsafe.SliceData(buf)
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// header decodes a record's header: the offset of the key bytes and the key
// and value lengths.
func header(p *byte) (off, klen, vlen uint32) {
	if klen, vlen, ok := headerFast(p); ok {
		return 2, klen, vlen
	}
	return headerSlow(p)
}

// headerFast decodes the header of a record whose key and value are both
// shorter than 128 bytes, the common case, cheaply enough to be inlined; ok
// is false for any other record. Every record is at least 2 bytes long.
func headerFast(p *byte) (klen, vlen uint32, ok bool) {
	k, v := *p, *(*byte)(unsafe.Add(unsafe.Pointer(p), 1))
	return uint32(k), uint32(v), k|v < 0x80
}

func headerSlow(p *byte) (off, klen, vlen uint32) {
	klen, off = uvarintAt(p, 0)
	vlen, off = uvarintAt(p, off)
	return off, klen, vlen
}

// uvarintAt decodes the uvarint at p+off and returns it with the offset just
// past it.
func uvarintAt(p *byte, off uint32) (uint32, uint32) {
	var v uint64
	for shift := 0; ; shift += 7 {
		b := *(*byte)(unsafe.Add(unsafe.Pointer(p), off))
		off++
		v |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return uint32(v), off
		}
	}
}

// record returns the key and value slices of a record, each capped at its own
// length so that appending to one can never write into the other. Both are
// cut from one slice of the whole record so that an empty value never points
// past the allocation.
func record(p *byte) (key, val []byte) {
	off, klen, vlen := header(p)
	b := unsafe.Slice(p, uint64(off)+uint64(klen)+uint64(vlen))
	end := off + klen
	return b[off:end:end], b[end:]
}

// recordSize is what an entry with this record is charged against capacity.
func recordSize(p *byte) int64 {
	_, klen, vlen := header(p)
	return int64(klen) + int64(vlen) + EntryOverhead
}

// keyIs reports whether the record's key equals key.
func keyIs(p *byte, key []byte) bool {
	off, klen, _ := header(p)
	return int(klen) == len(key) && string(keyAt(p, off, klen)) == string(key)
}

// keyAt returns the key bytes of the record at p, given its header. It
// slices rather than adding to p: an empty key may end the allocation, and
// b[off:] then keeps p instead of pointing past it.
func keyAt(p *byte, off, klen uint32) []byte {
	return unsafe.Slice(p, off+klen)[off:]
}
