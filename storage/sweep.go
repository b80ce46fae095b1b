package storage

import (
	"errors"
	"sync"
	"time"

	"github.com/ecachedb/ecache/vclock"
)

// sweepCycle is how many ExpiryIntervals one pass over every partition takes.
const sweepCycle = 60

// sweeper is the round-robin position of the expiry sweep.
type sweeper struct {
	mu sync.Mutex
	// Guarded by mu.
	cursor uint32
	ticks  int
}

func (s *Store) sweepLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.ExpiryInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if _, err := s.sweepTick(); err != nil && !errors.Is(err, ErrClosed) {
			s.log.Warn("storage: expiry sweep failed", "err", err)
		}
	}
}

// sweepTick does one tick's share of the sweep: 1/sweepCycle of the
// partitions on disk, or, without persistence, a whole walk of the memory
// tier once every sweepCycle ticks.
func (s *Store) sweepTick() (int, error) {
	s.pruneIndex(pruneParts) // partindex.go
	s.reportEvictions()      // evict.go: those no write reported
	if s.db != nil {
		return s.SweepExpired(max(1, (s.cfg.Partitions+sweepCycle-1)/sweepCycle))
	}
	s.sweep.mu.Lock()
	s.sweep.ticks++
	due := s.sweep.ticks%sweepCycle == 0
	s.sweep.mu.Unlock()
	if !due {
		return 0, nil
	}
	return s.SweepExpired(s.cfg.Partitions)
}

// SweepExpired visits the next n partitions (round robin) and removes the
// objects whose every sibling expired more than ExpiryGrace ago, returning
// how many it removed. Without persistence it walks the whole memory tier
// whatever n is. The background sweep calls it; tests may call it directly.
func (s *Store) SweepExpired(n int) (int, error) {
	if err := s.writable(); err != nil {
		return 0, err
	}
	cutoff := s.now().Add(-s.cfg.ExpiryGrace).UnixNano()
	dead := func(o *vclock.Object) bool { return allExpired(o, cutoff) }
	var cands [][]byte
	collect := func(e *Entry) error {
		if dead(&e.Object) {
			cands = append(cands, appendDataKey(nil, e.Partition, e.NS, e.Key))
		}
		return nil
	}
	if s.db == nil {
		if err := s.scanMemory(func([]byte) bool { return true }, collect); err != nil {
			return 0, err
		}
	} else {
		for i := 0; i < n; i++ {
			s.sweep.mu.Lock()
			p := s.sweep.cursor
			s.sweep.cursor = (p + 1) % uint32(s.cfg.Partitions)
			s.sweep.mu.Unlock()
			if err := s.Scan(p, collect); err != nil {
				return 0, err
			}
		}
	}
	removed, err := s.forgetAll(cands, dead)
	s.expired.Add(uint64(removed))
	return removed, err
}
