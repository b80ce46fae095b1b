package storage

import (
	"slices"
	"sync"
	"unsafe"
)

// The partition index of a memory-only store (Config.PartitionIndex). Scan
// of a partition is what anti-entropy and rebalancing run on; on disk it
// is a range read, but the memory tier is a hash table, so without the
// index a scan of one partition walks every entry of the tier — with 1024
// partitions, a thousand walks per anti-entropy round. The index keeps the
// data keys of each partition: a key is added by the write that stores it
// and removed by the delete that removes it, both under the key's stripe
// lock. The memory tier evicts on its own, so the index may still name an
// evicted key: a scan checks each key against the tier and prunes the
// evicted ones under their stripe lock (so a write racing the prune is
// never unindexed), and the expiry sweep prunes a few partitions per tick,
// so evicted keys do not pile up in partitions nobody scans.

// pruneParts is how many partitions each expiry-sweep tick prunes.
const pruneParts = 16

// partIndex is the index; nil parts until the first write.
type partIndex struct {
	mu     sync.Mutex
	parts  map[uint32]map[string]struct{}
	cursor uint32 // next partition the sweep prunes
}

// indexed reports whether the store keeps the index.
func (s *Store) indexed() bool { return s.db == nil && s.cfg.PartitionIndex }

// partitionOfKey is the partition in a data key's prefix.
func partitionOfKey(kb []byte) uint32 { return uint32(kb[1])<<8 | uint32(kb[2]) }

// indexAdd records data key kb; the caller holds kb's stripe lock.
func (s *Store) indexAdd(kb []byte) {
	if !s.indexed() {
		return
	}
	x := &s.pidx
	p := partitionOfKey(kb)
	x.mu.Lock()
	m := x.parts[p]
	if m == nil {
		if x.parts == nil {
			x.parts = map[uint32]map[string]struct{}{}
		}
		m = map[string]struct{}{}
		x.parts[p] = m
	}
	if _, ok := m[string(kb)]; !ok {
		m[string(kb)] = struct{}{}
	}
	x.mu.Unlock()
}

// indexRemove forgets data key kb; the caller holds kb's stripe lock.
func (s *Store) indexRemove(kb []byte) {
	if !s.indexed() {
		return
	}
	x := &s.pidx
	x.mu.Lock()
	delete(x.parts[partitionOfKey(kb)], string(kb))
	x.mu.Unlock()
}

// indexKeys returns a copy of partition p's indexed keys, sorted.
func (s *Store) indexKeys(p uint32) []string {
	x := &s.pidx
	x.mu.Lock()
	keys := make([]string, 0, len(x.parts[p]))
	for k := range x.parts[p] {
		keys = append(keys, k)
	}
	x.mu.Unlock()
	slices.Sort(keys)
	return keys
}

// bytesOf views k's bytes without copying; the result must not be
// modified.
func bytesOf(k string) []byte { return unsafe.Slice(unsafe.StringData(k), len(k)) }

// scanIndexed is Scan of partition p on an indexed memory-only store, in
// key order.
func (s *Store) scanIndexed(p uint32, fn func(e *Entry) error) error {
	var e Entry
	for _, k := range s.indexKeys(p) {
		kb := bytesOf(k)
		v, ok := s.mem.Get(kb)
		if !ok {
			s.prune(kb)
			continue
		}
		var err error
		if e.Partition, e.NS, e.Key, err = splitDataKey(kb); err != nil {
			return err
		}
		if err := decodeRecord(v, &e.Object); err != nil {
			return err
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return nil
}

// prune unindexes kb if the memory tier no longer holds it.
func (s *Store) prune(kb []byte) {
	st := s.stripeFor(kb)
	st.mu.Lock()
	if _, ok := s.mem.Get(kb); !ok {
		s.indexRemove(kb)
	}
	st.mu.Unlock()
}

// pruneIndex prunes the evicted keys of the next n partitions.
func (s *Store) pruneIndex(n int) {
	if !s.indexed() {
		return
	}
	for range n {
		x := &s.pidx
		x.mu.Lock()
		p := x.cursor
		x.cursor = (p + 1) % uint32(s.cfg.Partitions)
		x.mu.Unlock()
		for _, k := range s.indexKeys(p) {
			if _, ok := s.mem.Get(bytesOf(k)); !ok {
				s.prune(bytesOf(k))
			}
		}
	}
}

// indexLen is how many keys the index holds (tests).
func (s *Store) indexLen() int {
	x := &s.pidx
	x.mu.Lock()
	defer x.mu.Unlock()
	n := 0
	for _, m := range x.parts {
		n += len(m)
	}
	return n
}
