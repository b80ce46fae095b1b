package antientropy

import (
	"fmt"
	"slices"
	"sync"

	"github.com/ecachedb/ecache/storage"
	"github.com/ecachedb/ecache/vclock"
)

// treeState is where a partition's tree is in its life.
type treeState uint8

const (
	// treeUnbuilt: not built yet; changes are ignored because the build's
	// scan will see them.
	treeUnbuilt treeState = iota
	// treeBuilding: a scan is building the tree; changes are recorded and
	// applied when it ends.
	treeBuilding
	// treeReady: the tree is current; changes update it directly.
	treeReady
)

// Trees keeps one tree per partition of a store current: Rebuild builds a
// partition's tree from a scan while writes go on, and OnChange (installed
// as storage.Config.OnChange) applies every later change in O(depth). A
// partition's tree is usable by exchanges only once Ready. It is safe for
// concurrent use.
type Trees struct {
	shape Shape
	parts []treeSlot
}

// treeSlot is one partition's tree and the state of its build.
type treeSlot struct {
	mu sync.Mutex
	// state, tree and dirty are guarded by mu. tree is nil until first
	// needed (an empty partition costs no hashes).
	state treeState
	tree  *Tree
	// dirty holds, during a build, the digest of the latest change of each
	// key changed since the build began.
	dirty map[string]dirtyKey
	// ghosts holds the digests of keys a memory-only store evicted (see
	// OnEvict): the tree still counts them, and a later write of the key,
	// which the store reports as new (prev nil), replaces them.
	ghosts map[string]uint64
}

// maxGhosts bounds the evicted keys a partition remembers; past it, an
// evicted key written again leaves its old hash in the tree (its leaf then
// differs from its peers' until a rebuild; exchanges still skip evicted
// keys, see Responder).
const maxGhosts = 1 << 16

type dirtyKey struct {
	ns, key []byte
	digest  uint64
}

// NewTrees returns the (unbuilt) trees of partitions partitions.
func NewTrees(s Shape, partitions int) (*Trees, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if partitions < 1 {
		return nil, fmt.Errorf("%w: partitions %d must be positive", ErrInvalidConfig, partitions)
	}
	return &Trees{shape: s, parts: make([]treeSlot, partitions)}, nil
}

// Shape returns the trees' shape.
func (t *Trees) Shape() Shape { return t.shape }

// Partitions returns the number of partitions.
func (t *Trees) Partitions() int { return len(t.parts) }

func (t *Trees) slot(p uint32) *treeSlot {
	if int64(p) >= int64(len(t.parts)) {
		return nil
	}
	return &t.parts[p]
}

func (s *treeSlot) treeLocked(shape Shape) *Tree {
	if s.tree == nil {
		s.tree, _ = NewTree(shape) // the shape was validated by NewTrees
	}
	return s.tree
}

// OnChange records that (ns, key) of partition p changed from prev to next
// (nil: absent). It has storage.Config.OnChange's signature and contract:
// calls for one key arrive in order.
func (t *Trees) OnChange(p uint32, ns, key []byte, prev, next *vclock.Object) {
	s := t.slot(p)
	if s == nil {
		return
	}
	var od, nd uint64
	if prev != nil {
		od = VersionDigest(*prev)
	}
	if next != nil {
		nd = VersionDigest(*next)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev == nil && s.ghosts != nil {
		// Written again after an eviction: the tree holds the evicted
		// version's hash, not nothing.
		if g, ok := s.ghosts[mapKey(ns, key)]; ok {
			delete(s.ghosts, mapKey(ns, key))
			od = g
		}
	}
	if od == nd {
		return
	}
	switch s.state {
	case treeReady:
		s.treeLocked(t.shape).Update(ns, key, od, nd)
	case treeBuilding:
		s.dirty[mapKey(ns, key)] = dirtyKey{ns: slices.Clone(ns), key: slices.Clone(key), digest: nd}
	}
}

// OnEvict records that a memory-only store evicted obj, the version of
// (ns, key) the tree counts, to make room (storage.Config.OnEvict). The
// tree keeps counting it — an eviction is not a change replicas should
// repair — and remembers its digest for when the key is written again.
// present means the key was written again before the eviction was
// reported: that write counted as new, so the evicted version's hash
// leaves the tree now.
func (t *Trees) OnEvict(p uint32, ns, key []byte, obj *vclock.Object, present bool) {
	s := t.slot(p)
	if s == nil {
		return
	}
	d := VersionDigest(*obj)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != treeReady {
		return
	}
	if present {
		s.treeLocked(t.shape).Update(ns, key, d, 0)
		return
	}
	if s.ghosts == nil {
		s.ghosts = map[string]uint64{}
	}
	if len(s.ghosts) < maxGhosts {
		s.ghosts[mapKey(ns, key)] = d
	}
}

// Rebuild builds partition p's tree from each, which calls its argument
// for every object of the partition (as BuildFromStore's scan), while
// changes keep arriving through OnChange: changes made during the scan are
// applied once it ends, replacing whatever version the scan saw. On error
// the partition is left unbuilt (not Ready).
func (t *Trees) Rebuild(p uint32, each func(fn func(ns, key []byte, obj *vclock.Object) error) error) error {
	s := t.slot(p)
	if s == nil {
		return fmt.Errorf("%w: partition %d out of range [0,%d)", ErrInvalidConfig, p, len(t.parts))
	}
	s.mu.Lock()
	s.state, s.dirty = treeBuilding, map[string]dirtyKey{}
	s.mu.Unlock()
	tree, _ := NewTree(t.shape)
	// seen is what the scan inserted per key: a change during the scan
	// replaces exactly that.
	seen := map[string]uint64{}
	err := each(func(ns, key []byte, obj *vclock.Object) error {
		d := VersionDigest(*obj)
		tree.Insert(ns, key, d)
		seen[mapKey(ns, key)] = d
		return nil
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.state, s.dirty = treeUnbuilt, nil
		return err
	}
	for k, d := range s.dirty {
		tree.Update(d.ns, d.key, seen[k], d.digest)
	}
	s.state, s.dirty, s.tree, s.ghosts = treeReady, nil, tree, nil
	return nil
}

// RebuildFromStore rebuilds partition p's tree from a scan of st.
func (t *Trees) RebuildFromStore(st *storage.Store, p uint32) error {
	return t.Rebuild(p, func(fn func(ns, key []byte, obj *vclock.Object) error) error {
		return st.Scan(p, func(e *storage.Entry) error { return fn(e.NS, e.Key, &e.Object) })
	})
}

// Reset makes partition p's tree empty and Ready: for a store that starts
// empty (persistence none), or after the partition's data was dropped.
func (t *Trees) Reset(p uint32) {
	s := t.slot(p)
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state, s.dirty, s.tree, s.ghosts = treeReady, nil, nil, nil
}

// Ready reports whether partition p's tree is built and current.
func (t *Trees) Ready(p uint32) bool {
	s := t.slot(p)
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == treeReady
}

// Tree returns partition p's tree and whether it is Ready. The tree stays
// the partition's until the next Rebuild or Reset.
func (t *Trees) Tree(p uint32) (*Tree, bool) {
	s := t.slot(p)
	if s == nil {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != treeReady {
		return nil, false
	}
	return s.treeLocked(t.shape), true
}
