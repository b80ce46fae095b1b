package storage

import (
	"sync"

	"github.com/ecachedb/ecache/vclock"
)

// Evictions of a memory-only store (Config.OnEvict). The memory tier
// evicts while storing another key — under that key's stripe lock — so an
// eviction is queued there and reported after the write that caused it
// releases its lock, under the evicted key's own stripe lock, with whether
// the key has been written again since (which the store then counted as a
// new key: OnChange's prev was nil).

// evictions are the evictions not reported yet.
type evictions struct {
	mu      sync.Mutex
	pending []evicted
}

type evicted struct{ kb, rec []byte }

// onMemEvict is the memory tier's OnEvict: it queues the eviction. The
// slices are the tier's, immutable.
func (s *Store) onMemEvict(key, val []byte) {
	s.evicts.mu.Lock()
	s.evicts.pending = append(s.evicts.pending, evicted{key, val})
	s.evicts.mu.Unlock()
}

// reportEvictions reports the queued evictions to Config.OnEvict. The
// caller holds no stripe lock.
func (s *Store) reportEvictions() {
	if s.cfg.OnEvict == nil || s.db != nil {
		return // nothing is queued: the tier reports evictions of memory-only stores only
	}
	s.evicts.mu.Lock()
	batch := s.evicts.pending
	s.evicts.pending = nil
	s.evicts.mu.Unlock()
	for _, e := range batch {
		if len(e.kb) == 0 || e.kb[0] != tagData {
			continue
		}
		p, ns, key, err := splitDataKey(e.kb)
		if err != nil {
			continue
		}
		var o vclock.Object
		if decodeRecord(e.rec, &o) != nil {
			continue
		}
		st := s.stripeFor(e.kb)
		st.mu.Lock()
		_, present := s.mem.Get(e.kb)
		s.cfg.OnEvict(p, ns, key, &o, present)
		st.mu.Unlock()
	}
}
