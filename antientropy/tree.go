package antientropy

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/ecachedb/ecache/storage"
	"github.com/ecachedb/ecache/vclock"
)

// Shape is the fixed geometry of a tree: Depth levels below the root, each
// node with Width children, so Width^Depth leaves. Two replicas compare trees
// only when their shapes are equal.
type Shape struct {
	Width int
	Depth int
}

// Shape limits: a leaf index fits a uint32 and a node's children fit one
// message comfortably.
const (
	maxWidth  = 1024
	maxDepth  = 8
	maxLeaves = 1 << 24
)

// DefaultShape is 32 branches of 32 leaves (1,024 leaves, 8.4 KiB of
// hashes), sized for partitions of up to a few thousand keys, which is what
// 1,024 partitions give a node holding a few million keys.
func DefaultShape() Shape { return Shape{Width: 32, Depth: 2} }

// ShapeFor returns a shape with about four keys per leaf for a partition
// expected to hold keys keys: the smallest depth (at least 2) whose
// power-of-two width of at most 64 gives keys/4 leaves. Fewer keys per leaf
// make the key-and-clock lists of an exchange shorter; more leaves make the
// tree bigger (8 bytes each) and the descent longer.
func ShapeFor(keys int) Shape {
	target := max(keys/4, 1)
	for depth := 2; depth <= maxDepth; depth++ {
		for w := 2; w <= 64; w *= 2 {
			if leaves(w, depth) >= target {
				return Shape{Width: w, Depth: depth}
			}
		}
	}
	return Shape{Width: 64, Depth: 4}
}

func leaves(w, d int) int {
	n := 1
	for range d {
		n *= w
	}
	return n
}

// Leaves returns the number of leaves, Width^Depth.
func (s Shape) Leaves() int { return leaves(s.Width, s.Depth) }

// Validate checks that the shape is usable and names the bad field.
func (s Shape) Validate() error {
	if s.Width < 2 || s.Width > maxWidth {
		return fmt.Errorf("%w: Shape.Width %d outside [2,%d]", ErrInvalidConfig, s.Width, maxWidth)
	}
	if s.Depth < 1 || s.Depth > maxDepth {
		return fmt.Errorf("%w: Shape.Depth %d outside [1,%d]", ErrInvalidConfig, s.Depth, maxDepth)
	}
	n := 1
	for range s.Depth {
		n *= s.Width
		if n > maxLeaves {
			return fmt.Errorf("%w: Shape %dx%d has more than %d leaves", ErrInvalidConfig, s.Width, s.Depth, maxLeaves)
		}
	}
	return nil
}

// keySeed starts the key hash so that it is independent of
// storage.PartitionOf (which hashes the key alone): every key of a
// partition shares its partition hash modulo the partition count, and must
// still spread over all leaves.
const keySeed = 0xae

// keyHash hashes (ns, key) for leaf placement and entry hashes.
func keyHash(ns, key []byte) uint64 {
	var d xxhash.Digest
	d.Reset()
	_, _ = d.Write([]byte{keySeed, byte(len(ns))})
	_, _ = d.Write(ns)
	_, _ = d.Write(key)
	return d.Sum64()
}

func (s Shape) leafOfHash(kh uint64) uint32 {
	hi, _ := bits.Mul64(kh, uint64(s.Leaves()))
	return uint32(hi)
}

// LeafOf returns the leaf (in [0, Leaves())) that (ns, key) belongs to.
func (s Shape) LeafOf(ns, key []byte) uint32 { return s.leafOfHash(keyHash(ns, key)) }

// EntryHash is what a key holding a version with the given digest XORs into
// its leaf: xxhash64 of the key hash and the digest. A zero digest (absent)
// contributes nothing.
func EntryHash(ns, key []byte, digest uint64) uint64 {
	return entryHash(keyHash(ns, key), digest)
}

func entryHash(kh, digest uint64) uint64 {
	if digest == 0 {
		return 0
	}
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], kh)
	binary.LittleEndian.PutUint64(b[8:], digest)
	return xxhash.Sum64(b[:])
}

// VersionDigest returns the digest of obj's stored version, whatever the
// time: a non-zero xxhash64 of the whole object — its clock, and for every
// sibling its dot, HLC, expiry, tombstone flag and value — or 0 for an object
// without siblings (absent). Trees hold version digests.
//
// Hashing the whole object rather than only the clock and dots costs a pass
// over the value bytes (at xxhash speed) but also finds replicas whose bytes
// differ under the same dot (corruption), which Join then settles
// deterministically. Equal objects hash equal because the stream is
// canonical: the clock's deterministic encoding, then fixed-width fields and
// length-prefixed values in dot order.
func VersionDigest(obj vclock.Object) uint64 {
	if len(obj.Siblings) == 0 {
		return 0
	}
	var d xxhash.Digest
	d.Reset()
	var buf [64]byte
	_, _ = d.Write(obj.Clock.AppendMsgpack(buf[:0]))
	for i := range obj.Siblings {
		s := &obj.Siblings[i]
		b := buf[:0]
		b = binary.LittleEndian.AppendUint64(b, uint64(s.Dot.Node))
		b = binary.LittleEndian.AppendUint64(b, s.Dot.Counter)
		b = binary.LittleEndian.AppendUint64(b, uint64(s.HLC))
		b = binary.LittleEndian.AppendUint64(b, uint64(s.Expiry))
		if s.Tombstone {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
		b = binary.LittleEndian.AppendUint64(b, uint64(len(s.Value)))
		_, _ = d.Write(b)
		_, _ = d.Write(s.Value)
	}
	if h := d.Sum64(); h != 0 {
		return h
	}
	return 1
}

// Digest returns obj's digest as the exchange compares it at now (Unix
// nanoseconds): VersionDigest(obj), or 0 — absent — when no sibling is
// unexpired at now. A replica that swept an expired object and one that
// still holds it thus agree that the key is absent, and an expired version
// never causes a transfer. A tombstone without expiry stays present, so
// deletes propagate.
func Digest(obj vclock.Object, now int64) uint64 {
	for i := range obj.Siblings {
		if !obj.Siblings[i].Expired(now) {
			return VersionDigest(obj)
		}
	}
	return 0
}

// Tree is the Merkle tree of one partition's replica on one node. Node
// hashes are XORs of entry hashes, so updates are O(Depth) and commute. It is
// safe for concurrent use.
type Tree struct {
	shape Shape

	mu sync.Mutex
	// levels[d] holds the Width^d node hashes at depth d: levels[0] is the
	// root, levels[Depth] the leaves. Guarded by mu.
	levels [][]uint64
}

// NewTree returns an empty tree (every hash zero) of shape s.
func NewTree(s Shape) (*Tree, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	t := &Tree{shape: s, levels: make([][]uint64, s.Depth+1)}
	n := 1
	for d := range t.levels {
		t.levels[d] = make([]uint64, n)
		n *= s.Width
	}
	return t, nil
}

// Shape returns the tree's shape.
func (t *Tree) Shape() Shape { return t.shape }

// Update records that (ns, key) changed from a version with digest old to one
// with digest new (VersionDigest of the stored objects); 0 means absent, so
// Update(ns, key, 0, d) inserts and Update(ns, key, d, 0) removes. old must
// be the digest the tree last saw for the key, which the write path knows
// because version digests do not depend on time.
func (t *Tree) Update(ns, key []byte, old, new uint64) {
	if old == new {
		return
	}
	kh := keyHash(ns, key)
	t.xor(t.shape.leafOfHash(kh), entryHash(kh, old)^entryHash(kh, new))
}

// Insert adds (ns, key) with a version of the given digest.
func (t *Tree) Insert(ns, key []byte, digest uint64) { t.Update(ns, key, 0, digest) }

// Remove takes (ns, key), last seen with the given digest, out of the tree.
func (t *Tree) Remove(ns, key []byte, digest uint64) { t.Update(ns, key, digest, 0) }

func (t *Tree) xor(leaf uint32, h uint64) {
	if h == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	idx := int(leaf)
	for d := t.shape.Depth; d >= 0; d-- {
		t.levels[d][idx] ^= h
		idx /= t.shape.Width
	}
}

// Root returns the root hash: zero for an empty tree.
func (t *Tree) Root() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.levels[0][0]
}

// Node returns the hash of node idx at depth level (0 is the root, Depth the
// leaves). It panics on an index outside the shape.
func (t *Tree) Node(level int, idx uint32) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.levels[level][idx]
}

// Children appends to dst the Width hashes of the children of node idx at
// depth level (< Depth) and returns it. It panics on an index outside the
// shape.
func (t *Tree) Children(level int, idx uint32, dst []uint64) []uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	lo := int(idx) * t.shape.Width
	return append(dst, t.levels[level+1][lo:lo+t.shape.Width]...)
}

// validNode reports whether idx names a node at depth level.
func (s Shape) validNode(level int, idx uint32) bool {
	return level >= 0 && level <= s.Depth && int64(idx) < int64(leaves(s.Width, level))
}

// Equal reports whether t and o have the same shape and every node hash
// equal.
func (t *Tree) Equal(o *Tree) bool {
	if t.shape != o.shape {
		return false
	}
	if t == o {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	for d := range t.levels {
		for i := range t.levels[d] {
			if t.levels[d][i] != o.levels[d][i] {
				return false
			}
		}
	}
	return true
}

// Build returns a tree of shape s holding the VersionDigest of every object
// each yields. each calls its argument for every object of the partition
// and returns its first error.
func Build(s Shape, each func(fn func(ns, key []byte, obj *vclock.Object) error) error) (*Tree, error) {
	t, err := NewTree(s)
	if err != nil {
		return nil, err
	}
	err = each(func(ns, key []byte, obj *vclock.Object) error {
		t.Insert(ns, key, VersionDigest(*obj))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// BuildFromStore builds the tree of partition p from a scan of st.
// Writes that race the scan may be missed; the caller applies writes to the
// tree only once the build is done, or rebuilds.
func BuildFromStore(s Shape, st *storage.Store, p uint32) (*Tree, error) {
	return Build(s, func(fn func(ns, key []byte, obj *vclock.Object) error) error {
		return st.Scan(p, func(e *storage.Entry) error { return fn(e.NS, e.Key, &e.Object) })
	})
}
