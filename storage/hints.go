package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/ecachedb/ecache/vclock"
)

// Hinted handoff: objects a coordinator could not deliver to a replica,
// kept until the replica returns. One hint per (target, namespace, key)
// holds the latest object (a newer hint is joined with the older one), so
// delivery sends one object and the receiver merges it. Hints live under
// their own key tag in Pebble (persisted like data: fsynced in sync mode,
// through Pebble's WAL in async mode) or, without persistence, in a bounded
// map that drops the oldest hint when full.

// DefaultMaxHints bounds the hints a store keeps when SetMaxHints was not
// called.
const DefaultMaxHints = 100_000

// ErrHintsFull rejects a new hint on a persistent store that holds the
// maximum already (a memory-only store drops its oldest hint instead).
var ErrHintsFull = errors.New("storage: hint store full")

// HintStats counts the hint store's contents.
type HintStats struct {
	Stored  int    // hints held now
	Dropped uint64 // hints dropped or refused because the store was full
}

// hintState is the Store's hint bookkeeping.
type hintState struct {
	once    sync.Once
	mu      sync.Mutex
	max     int
	loaded  bool // counts initialised from disk
	counts  map[vclock.NodeID]int
	total   int
	dropped uint64
	// Memory-only stores: the hints, and their insertion order (entries
	// whose seq no longer matches are stale and skipped).
	mem   map[string]*memHint
	order []hintOrder
	seq   uint64
}

type memHint struct {
	obj []byte
	seq uint64
}

type hintOrder struct {
	key string
	seq uint64
}

// hintState returns the store's hint bookkeeping, initialised on first use.
func (s *Store) hintState() *hintState {
	h := &s.hints
	h.once.Do(func() {
		h.max = DefaultMaxHints
		h.counts = map[vclock.NodeID]int{}
		h.mem = map[string]*memHint{}
	})
	return h
}

// SetMaxHints bounds the hints the store keeps; n <= 0 means
// DefaultMaxHints. A lower bound does not drop hints held already.
func (s *Store) SetMaxHints(n int) {
	h := s.hintState()
	h.mu.Lock()
	defer h.mu.Unlock()
	if n <= 0 {
		n = DefaultMaxHints
	}
	h.max = n
}

func appendHintKey(b []byte, target vclock.NodeID, ns, key []byte) []byte {
	b = append(b, tagHint)
	b = binary.BigEndian.AppendUint64(b, uint64(target))
	b = append(b, byte(len(ns)))
	b = append(b, ns...)
	return append(b, key...)
}

func splitHintKey(k []byte) (target vclock.NodeID, ns, key []byte, err error) {
	if len(k) < 10 || k[0] != tagHint || len(k) < 10+int(k[9]) {
		return 0, nil, nil, fmt.Errorf("%w: bad hint key %x", ErrCorrupt, k)
	}
	n := int(k[9])
	return vclock.NodeID(binary.BigEndian.Uint64(k[1:9])), k[10 : 10+n], k[10+n:], nil
}

// hintBounds returns the key range of target's hints, or of every hint
// when all.
func hintBounds(target vclock.NodeID, all bool) (lo, hi []byte) {
	if all {
		return []byte{tagHint}, []byte{tagHint + 1}
	}
	lo = binary.BigEndian.AppendUint64([]byte{tagHint}, uint64(target))
	if target == ^vclock.NodeID(0) {
		return lo, []byte{tagHint + 1}
	}
	return lo, binary.BigEndian.AppendUint64([]byte{tagHint}, uint64(target)+1)
}

func (s *Store) hintWriteOpts() *pebble.WriteOptions {
	if s.cfg.Persistence == PersistenceSync {
		return pebble.Sync
	}
	return pebble.NoSync
}

// loadHintsLocked counts the hints on disk once. h.mu is held.
func (s *Store) loadHintsLocked(h *hintState) error {
	if h.loaded || s.db == nil {
		h.loaded = true
		return nil
	}
	lo, hi := hintBounds(0, true)
	err := guard(func() error {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			return err
		}
		for ok := it.First(); ok; ok = it.Next() {
			target, _, _, err := splitHintKey(it.Key())
			if err != nil {
				_ = it.Close()
				return err
			}
			h.counts[target]++
			h.total++
		}
		if err := it.Error(); err != nil {
			_ = it.Close()
			return err
		}
		return it.Close()
	})
	if err != nil {
		return fmt.Errorf("%w: loading hints: %w", ErrDisk, err)
	}
	h.loaded = true
	return nil
}

// PutHint keeps object, an encoded vclock.Object for (ns, key), for
// delivery to target. An existing hint for the same key is joined with it.
func (s *Store) PutHint(target vclock.NodeID, ns, key, object []byte) error {
	if err := s.writable(); err != nil {
		return err
	}
	if err := s.checkKey(ns, key); err != nil {
		return err
	}
	var obj vclock.Object
	if err := vclock.DecodeObject(object, &obj); err != nil {
		return err
	}
	h := s.hintState()
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := s.loadHintsLocked(h); err != nil {
		return err
	}
	kb := appendHintKey(nil, target, ns, key)
	var old []byte
	if s.db == nil {
		if m := h.mem[string(kb)]; m != nil {
			old = m.obj
		}
	} else {
		rec, err := s.diskGet(kb)
		if err != nil {
			return err
		}
		if len(rec) > 1 && rec[0] == recordFormat {
			old = rec[1:]
		}
	}
	if old != nil {
		var prev vclock.Object
		if vclock.DecodeObject(old, &prev) == nil {
			obj = vclock.Join(prev, obj)
		}
	}
	enc := obj.AppendMsgpack(nil)
	if s.db == nil {
		if old == nil {
			for h.total >= h.max && h.evictOldestLocked() {
			}
			h.counts[target]++
			h.total++
		}
		h.seq++
		h.mem[string(kb)] = &memHint{obj: enc, seq: h.seq}
		h.order = append(h.order, hintOrder{key: string(kb), seq: h.seq})
		if len(h.order) > 2*len(h.mem)+1024 {
			h.compactOrderLocked()
		}
		return nil
	}
	if old == nil && h.total >= h.max {
		h.dropped++
		return fmt.Errorf("%w: %d hints", ErrHintsFull, h.total)
	}
	rec := append([]byte{recordFormat}, enc...)
	if err := guard(func() error { return s.db.Set(kb, rec, s.hintWriteOpts()) }); err != nil {
		return s.fail(err)
	}
	if old == nil {
		h.counts[target]++
		h.total++
	}
	return nil
}

// evictOldestLocked drops the oldest memory hint; false when none is left.
func (h *hintState) evictOldestLocked() bool {
	for len(h.order) > 0 {
		o := h.order[0]
		h.order = h.order[1:]
		m := h.mem[o.key]
		if m == nil || m.seq != o.seq {
			continue
		}
		delete(h.mem, o.key)
		target, _, _, _ := splitHintKey([]byte(o.key))
		h.decLocked(target)
		h.dropped++
		return true
	}
	return false
}

func (h *hintState) compactOrderLocked() {
	out := h.order[:0]
	for _, o := range h.order {
		if m := h.mem[o.key]; m != nil && m.seq == o.seq {
			out = append(out, o)
		}
	}
	h.order = slicesClip(out)
}

func slicesClip(o []hintOrder) []hintOrder { return append([]hintOrder(nil), o...) }

func (h *hintState) decLocked(target vclock.NodeID) {
	h.total--
	if h.counts[target]--; h.counts[target] <= 0 {
		delete(h.counts, target)
	}
}

// ScanHints calls fn with every hint held for target. The slices are valid
// only during the call; fn may call DeleteHint and PutHint. Returning an
// error stops the scan with it.
func (s *Store) ScanHints(target vclock.NodeID, fn func(ns, key, object []byte) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	h := s.hintState()
	type kv struct{ k, v []byte }
	var found []kv
	h.mu.Lock()
	if err := s.loadHintsLocked(h); err != nil {
		h.mu.Unlock()
		return err
	}
	if s.db == nil {
		for k, m := range h.mem {
			if t, _, _, err := splitHintKey([]byte(k)); err == nil && t == target {
				found = append(found, kv{[]byte(k), m.obj})
			}
		}
		h.mu.Unlock()
	} else {
		h.mu.Unlock()
		lo, hi := hintBounds(target, false)
		err := guard(func() error {
			it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
			if err != nil {
				return err
			}
			for ok := it.First(); ok; ok = it.Next() {
				v, err := it.ValueAndErr()
				if err != nil {
					_ = it.Close()
					return err
				}
				if len(v) < 1 || v[0] != recordFormat {
					continue
				}
				found = append(found, kv{bytes.Clone(it.Key()), bytes.Clone(v[1:])})
			}
			if err := it.Error(); err != nil {
				_ = it.Close()
				return err
			}
			return it.Close()
		})
		if err != nil {
			return fmt.Errorf("%w: scanning hints: %w", ErrDisk, err)
		}
	}
	for _, f := range found {
		_, ns, key, err := splitHintKey(f.k)
		if err != nil {
			return err
		}
		if err := fn(ns, key, f.v); err != nil {
			return err
		}
	}
	return nil
}

// DeleteHint removes target's hint for (ns, key) if it still holds
// delivered (the object a delivery sent); a hint that changed since is
// kept, so a write hinted during delivery is not lost. It reports whether
// the hint was removed.
func (s *Store) DeleteHint(target vclock.NodeID, ns, key, delivered []byte) (bool, error) {
	if err := s.writable(); err != nil {
		return false, err
	}
	h := s.hintState()
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := s.loadHintsLocked(h); err != nil {
		return false, err
	}
	kb := appendHintKey(nil, target, ns, key)
	if s.db == nil {
		m := h.mem[string(kb)]
		if m == nil || !bytes.Equal(m.obj, delivered) {
			return false, nil
		}
		delete(h.mem, string(kb))
		h.decLocked(target)
		return true, nil
	}
	rec, err := s.diskGet(kb)
	if err != nil {
		return false, err
	}
	if rec == nil || len(rec) < 1 || !bytes.Equal(rec[1:], delivered) {
		return false, nil
	}
	if err := guard(func() error { return s.db.Delete(kb, s.hintWriteOpts()) }); err != nil {
		return false, s.fail(err)
	}
	h.decLocked(target)
	return true, nil
}

// HintTargets returns the nodes the store holds hints for.
func (s *Store) HintTargets() ([]vclock.NodeID, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	h := s.hintState()
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := s.loadHintsLocked(h); err != nil {
		return nil, err
	}
	out := make([]vclock.NodeID, 0, len(h.counts))
	for t := range h.counts {
		out = append(out, t)
	}
	return out, nil
}

// HintStats returns the hint store's counters.
func (s *Store) HintStats() HintStats {
	h := s.hintState()
	h.mu.Lock()
	defer h.mu.Unlock()
	if !s.closed.Load() {
		_ = s.loadHintsLocked(h)
	}
	return HintStats{Stored: h.total, Dropped: h.dropped}
}
