package storage

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecachedb/ecache/merge"
	"github.com/ecachedb/ecache/storage/memtier"
	"github.com/ecachedb/ecache/vclock"
)

// This file holds the write path of large sets. A set is one object (an
// ORSWOT whose clock is the object's clock), stored as one encoded record
// like every other object, so that replication, anti-entropy and merge see
// one version per key. Updating that record per SADD costs O(members): a
// set grown one member at a time costs O(members²) in all. So a set whose
// record passes hotSetMinValue bytes is kept decoded (a merge.SetObject) by
// UpdateSet, which applies adds and removes to it in O(members in the op);
// the record in memory and on disk goes stale ("dirty") and is rewritten —
// "settled" — when anyone else needs it:
//
//   - a read of the key (Get, GetCached, GetView: settleKey), a write of it
//     through Update, or a Forget (dropHotLocked, which also discards the
//     decoded set, since the generic write path changes the object);
//   - a Scan of its partition (settlePartition), a Flush or Close, and each
//     write-behind flush tick (settleAll): with async persistence a set
//     write is durable within about two flush intervals, as every other
//     write is within one;
//   - eviction from the bounded table of hot sets (hotSetMaxSets, and an
//     estimate of their memory against a share of MemoryLimit).
//
// Settling calls OnChange with the previously settled object as prev, so a
// Merkle tree sees one change covering all the ops since. With sync
// persistence there is no deferral: every write must reach the disk before
// it is acknowledged, so UpdateSet takes Update's path.

const (
	// hotSetMinValue is the encoded set size from which UpdateSet keeps a
	// set decoded; smaller sets are rewritten in full on each write, which
	// costs less than a decoded set's upkeep.
	hotSetMinValue = 4 << 10
	// hotSetMaxSets bounds how many sets are kept decoded.
	hotSetMaxSets = 32
	// hotSetMemShare is the share of MemoryLimit (1/hotSetMemShare) that
	// decoded sets may hold, by merge.SetObject.MemSize's estimate.
	hotSetMemShare = 8
	// recordSlack bounds what a set record holds beyond the state itself:
	// the format byte, the clock (a few dozen nodes) and the sibling header.
	recordSlack = 1 << 10
)

// hotSet is one decoded set. Its fields other than kb and part are guarded
// by the stripe lock of kb.
type hotSet struct {
	kb   []byte
	part uint32
	set  *merge.SetObject
	// prev is the object memory and disk hold, nil when they hold none.
	prev  *vclock.Object
	dirty bool
	mem   int // set.MemSize() as last counted in hotSets.mem
	used  atomic.Uint64
}

// hotSets is the table of decoded sets.
type hotSets struct {
	// mu guards m. It is taken after a stripe lock, never before one.
	mu sync.RWMutex
	m  map[string]*hotSet
	// n is len(m), so the generic write path skips the table when empty.
	n atomic.Int64
	// dirty counts the dirty entries, so reads skip the table when none is.
	dirty atomic.Int64
	mem   atomic.Int64 // estimated bytes held
	tick  atomic.Uint64
}

func (t *hotSets) get(kb []byte) *hotSet {
	t.mu.RLock()
	h := t.m[string(kb)]
	t.mu.RUnlock()
	return h
}

// UpdateSet applies fn to the set object of (ns, key), under the key's lock
// like Update. fn reports whether it changed the set; a change is in memory
// when UpdateSet returns and reaches the record (and the disk) as the
// comment above describes. ns must name a namespace of the set strategy: a
// record that is not a set fails with merge.ErrMalformedState. An add that
// would grow the set beyond the value or record limits (or, in a memory-only
// store, beyond what a memory shard holds) fails with ErrValueTooLarge and
// changes nothing.
func (s *Store) UpdateSet(ns, key []byte, fn func(set *merge.SetObject) (bool, error)) error {
	if err := s.checkKey(ns, key); err != nil {
		return err
	}
	if err := s.writable(); err != nil {
		return err
	}
	part := PartitionOf(ns, key, s.cfg.Partitions)
	kb := appendDataKey(make([]byte, 0, keyHeader+len(ns)+len(key)), part, ns, key)
	limit := s.setLimit(kb)
	if s.db == nil || s.wb != nil {
		done, err := s.updateHotSet(kb, part, limit, fn)
		if done || err != nil {
			return setErr(err)
		}
	}
	_, err := s.Update(ns, key, func(cur vclock.Object, _ bool) (vclock.Object, error) {
		set, err := merge.NewSetObject(cur, limit)
		if err != nil {
			return vclock.Object{}, err
		}
		changed, err := fn(set)
		if err != nil || !changed {
			return cur, err
		}
		return set.Object(), nil
	})
	return setErr(err)
}

func setErr(err error) error {
	if errors.Is(err, merge.ErrStateTooLarge) {
		return fmt.Errorf("%w: %w", ErrValueTooLarge, err)
	}
	return err
}

// setLimit is the largest encoded set state a record of kb may hold.
func (s *Store) setLimit(kb []byte) int {
	limit := min(s.cfg.MaxValueSize, s.cfg.MaxRecordSize-recordSlack)
	if s.db == nil {
		// Memory is the only copy: a record a shard cannot hold is lost.
		shard := s.mem.Capacity() / int64(s.cfg.MemoryShards)
		limit = int(min(int64(limit), shard-memtier.EntryOverhead-int64(len(kb))-recordSlack))
	}
	return max(limit, 1)
}

// updateHotSet applies fn to kb's decoded set, decoding it first if its
// record is large enough. It reports false, having done nothing, when the
// set is not (and should not become) hot.
func (s *Store) updateHotSet(kb []byte, part uint32, limit int, fn func(*merge.SetObject) (bool, error)) (bool, error) {
	st := s.stripeFor(kb)
	st.mu.Lock()
	// Close may have settled every set since writable was checked.
	if err := s.writable(); err != nil {
		st.mu.Unlock()
		return true, err
	}
	h, err := s.hotLocked(kb, part, limit)
	if err != nil || h == nil {
		st.mu.Unlock()
		return false, err
	}
	h.used.Store(s.hot.tick.Add(1))
	changed, err := fn(h.set)
	if err == nil && changed && !h.dirty {
		h.dirty = true
		s.hot.dirty.Add(1)
	}
	m := h.set.MemSize()
	s.hot.mem.Add(int64(m - h.mem))
	h.mem = m
	st.mu.Unlock()
	s.evictHotSets()
	return true, err
}

// hotLocked returns kb's hot set, decoding the record into a new one when
// it is large enough; nil when it is not. kb's stripe lock is held.
func (s *Store) hotLocked(kb []byte, part uint32, limit int) (*hotSet, error) {
	if h := s.hot.get(kb); h != nil {
		return h, nil
	}
	rec, found, err := s.loadLocked(kb)
	if err != nil || !found || len(rec) < hotSetMinValue {
		return nil, err
	}
	prev := new(vclock.Object)
	if err := decodeRecord(rec, prev); err != nil {
		return nil, err
	}
	set, err := merge.NewSetObject(*prev, limit)
	if err != nil {
		return nil, err
	}
	h := &hotSet{kb: kb, part: part, set: set, prev: prev, mem: set.MemSize()}
	s.hot.mem.Add(int64(h.mem))
	s.hot.mu.Lock()
	if s.hot.m == nil {
		s.hot.m = make(map[string]*hotSet)
	}
	s.hot.m[string(kb)] = h
	s.hot.n.Add(1)
	s.hot.mu.Unlock()
	return h, nil
}

// settleLocked writes h's set to memory and to the write-behind queue if it
// changed since it was last written. kb's stripe lock is held.
func (s *Store) settleLocked(h *hotSet) error {
	if !h.dirty {
		return nil
	}
	obj := h.set.Object()
	rec := encodeRecord(make([]byte, 0, 1+obj.EncodedSize()), &obj)
	if s.wb != nil {
		if err := s.wb.put(h.kb, rec, false); err != nil {
			return s.fail(err)
		}
	}
	if !s.mem.Set(h.kb, rec) {
		s.mem.Delete(h.kb)
		if s.db == nil {
			// setLimit keeps records within a shard; this is a bug.
			s.log.Error("storage: a set record does not fit the memory tier and is lost", "bytes", len(rec))
		}
	}
	st := s.stripeFor(h.kb)
	st.version.Add(1)
	if s.cfg.OnChange != nil {
		_, ns, key, _ := splitDataKey(h.kb)
		s.cfg.OnChange(h.part, ns, key, h.prev, &obj)
	}
	h.prev = &obj
	h.dirty = false
	s.hot.dirty.Add(-1)
	return nil
}

// removeHotLocked removes h from the table. kb's stripe lock is held.
func (s *Store) removeHotLocked(h *hotSet) {
	s.hot.mu.Lock()
	if s.hot.m[string(h.kb)] == h {
		delete(s.hot.m, string(h.kb))
		s.hot.n.Add(-1)
		s.hot.mem.Add(-int64(h.mem))
		if h.dirty {
			s.hot.dirty.Add(-1)
			h.dirty = false
		}
	}
	s.hot.mu.Unlock()
}

// dropHotLocked settles kb's hot set, if any, and forgets it: the caller
// is about to read and rewrite the record the generic way. kb's stripe
// lock is held.
func (s *Store) dropHotLocked(kb []byte) error {
	if s.hot.n.Load() == 0 {
		return nil // a set of kb becomes hot only under kb's stripe lock
	}
	h := s.hot.get(kb)
	if h == nil {
		return nil
	}
	if err := s.settleLocked(h); err != nil {
		return err
	}
	s.removeHotLocked(h)
	return nil
}

// settleKey settles kb's hot set, if it is dirty, before a read of kb.
func (s *Store) settleKey(kb []byte) error {
	if s.hot.dirty.Load() == 0 {
		return nil
	}
	h := s.hot.get(kb)
	if h == nil {
		return nil
	}
	st := s.stripeFor(kb)
	st.mu.Lock()
	defer st.mu.Unlock()
	return s.settleLocked(h)
}

// hotSnapshot returns the hot sets for which keep is true.
func (s *Store) hotSnapshot(keep func(h *hotSet) bool) []*hotSet {
	s.hot.mu.RLock()
	defer s.hot.mu.RUnlock()
	var hs []*hotSet
	for _, h := range s.hot.m {
		if keep(h) {
			hs = append(hs, h)
		}
	}
	return hs
}

// settleAll settles every dirty hot set.
func (s *Store) settleAll() error {
	return s.settleWhere(func(*hotSet) bool { return true })
}

// settlePartition settles the dirty hot sets of partition p, before a scan
// of it.
func (s *Store) settlePartition(p uint32) error {
	return s.settleWhere(func(h *hotSet) bool { return h.part == p })
}

func (s *Store) settleWhere(keep func(h *hotSet) bool) error {
	if s.hot.dirty.Load() == 0 {
		return nil
	}
	var errs []error
	for _, h := range s.hotSnapshot(keep) {
		st := s.stripeFor(h.kb)
		st.mu.Lock()
		errs = append(errs, s.settleLocked(h))
		st.mu.Unlock()
	}
	return errors.Join(errs...)
}

// flushQueue is Flush without settling every hot set: a Scan settles only
// those of its partition.
func (s *Store) flushQueue() error {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return s.wb.flushAndWait(s.commit)
}

// settleLoop settles the dirty sets of an async store every flush interval,
// so that they join the write-behind queue about as soon as other writes.
// It runs on its own goroutine, not the flush loop's, because settling may
// wait for queue space that only a flush frees.
func (s *Store) settleLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if err := s.settleAll(); err != nil {
			s.log.Warn("storage: settling sets", "err", err)
		}
	}
}

// settleForClose settles every hot set once the background goroutines have
// stopped, flushing the write-behind queue before each so that no settle
// waits for queue space no one will free (Close flushes after the last).
func (s *Store) settleForClose() error {
	var errs []error
	for _, h := range s.hotSnapshot(func(*hotSet) bool { return true }) {
		if s.wb != nil {
			if s.failed.Load() != nil {
				break // the queue is no longer committed: a settle could wait forever
			}
			errs = append(errs, s.wb.flush(s.commit))
		}
		st := s.stripeFor(h.kb)
		st.mu.Lock()
		errs = append(errs, s.settleLocked(h))
		st.mu.Unlock()
	}
	return errors.Join(errs...)
}

// dropHotPartition forgets, unsettled, the hot sets of partition p, which
// is being dropped.
func (s *Store) dropHotPartition(p uint32) {
	for _, h := range s.hotSnapshot(func(h *hotSet) bool { return h.part == p }) {
		st := s.stripeFor(h.kb)
		st.mu.Lock()
		s.removeHotLocked(h)
		st.mu.Unlock()
	}
}

// evictHotSets settles and forgets the least recently written hot sets
// while there are too many or they hold too much memory. It is called with
// no lock held.
func (s *Store) evictHotSets() {
	budget := s.cfg.MemoryLimit / hotSetMemShare
	for range hotSetMaxSets + 1 { // bounded: each round removes one set
		s.hot.mu.RLock()
		n := len(s.hot.m)
		var victim *hotSet
		if n > hotSetMaxSets || (s.hot.mem.Load() > budget && n > 0) {
			for _, h := range s.hot.m {
				if victim == nil || h.used.Load() < victim.used.Load() {
					victim = h
				}
			}
		}
		s.hot.mu.RUnlock()
		if victim == nil {
			return
		}
		st := s.stripeFor(victim.kb)
		st.mu.Lock()
		if err := s.settleLocked(victim); err != nil {
			st.mu.Unlock()
			return // writes now fail with err; keep the set decoded
		}
		s.removeHotLocked(victim)
		st.mu.Unlock()
	}
}

// HotSets reports how many sets are kept decoded and how many of them have
// changes not yet written to their records.
func (s *Store) HotSets() (sets, dirty int) {
	s.hot.mu.RLock()
	defer s.hot.mu.RUnlock()
	return len(s.hot.m), int(s.hot.dirty.Load())
}
