package storage

import (
	"errors"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
)

// A persistent store answers a read that misses memory from Pebble, and a
// miss costs a Pebble lookup (~5 µs, two allocations) even when its own
// bloom filters say the key is absent. The Redis mapping makes such misses
// common: a key's type is the first of three namespaces in which it is
// live, so a GET of an absent key is three lookups. keyFilter answers most
// of those misses in memory.
//
// keyFilter is a Bloom filter of every data key the store may hold: the
// keys found in Pebble when it opened (a background scan, during which the
// filter answers "maybe" to everything) and every key written since
// (Update adds the key before the write becomes visible). A "no" is
// therefore certain; a "maybe" goes on to Pebble as before. Keys are never
// removed (a deleted key is a false positive until restart). The filter
// grows as layers of doubling capacity, so its false-positive rate stays
// bounded whatever the key count; a lookup checks every layer, one cache
// line each.
type keyFilter struct {
	// ready is set once the scan of Pebble's keys is complete.
	ready atomic.Bool
	// layers is the current []*filterLayer; replaced (copy on write)
	// under growMu.
	layers atomic.Pointer[[]*filterLayer]
	growMu sync.Mutex
	// first is the first layer's capacity in keys.
	first int64
}

const (
	// filterFirstKeys is the first layer's capacity; each next layer
	// doubles it.
	filterFirstKeys = 1 << 18
	// filterBitsPerKey at capacity, with filterProbes bits set per key in
	// one 512-bit block, gives about a 1% false-positive rate per layer.
	filterBitsPerKey = 12
	filterProbes     = 7
)

// filterLayer is a blocked Bloom filter: a key's probes all fall in one
// 64-byte block, so a lookup touches one cache line.
type filterLayer struct {
	words  []atomic.Uint64
	blocks uint64 // a power of two
	// room counts the keys that may still be added before the next layer.
	room atomic.Int64
}

func newFilterLayer(keys int64) *filterLayer {
	blocks := uint64(1) << bits.Len64(uint64(keys*filterBitsPerKey/512)) // > keys*bits/512
	return &filterLayer{words: make([]atomic.Uint64, blocks*8), blocks: blocks}
}

func newKeyFilter(first int64) *keyFilter {
	f := &keyFilter{first: first}
	l := newFilterLayer(first)
	l.room.Store(first)
	f.layers.Store(&[]*filterLayer{l})
	return f
}

func filterHash(kb []byte) uint64 { return xxhash.Sum64(kb) }

// probe returns the word index and bit mask of a key's i-th probe in its
// block: the block comes from h's low bits, the bit positions from 9-bit
// slices of a remix of h (so they do not repeat the block's bits).
func (l *filterLayer) probe(h uint64, i int) (int, uint64) {
	block := h & (l.blocks - 1)
	pos := (((h ^ h>>29) * 0xbf58476d1ce4e5b9) >> (9 * i)) & 511
	return int(block*8 + pos/64), 1 << (pos % 64)
}

func (l *filterLayer) set(h uint64) {
	for i := range filterProbes {
		w, m := l.probe(h, i)
		if l.words[w].Load()&m == 0 {
			l.words[w].Or(m)
		}
	}
}

func (l *filterLayer) has(h uint64) bool {
	for i := range filterProbes {
		w, m := l.probe(h, i)
		if l.words[w].Load()&m == 0 {
			return false
		}
	}
	return true
}

// add records that kb may exist. It must happen before kb's record is
// visible to readers.
func (f *keyFilter) add(kb []byte) {
	h := filterHash(kb)
	ls := *f.layers.Load()
	last := ls[len(ls)-1]
	if last.room.Add(-1) < 0 {
		last = f.grow(last)
	}
	last.set(h)
}

// grow appends a layer twice the size of full, unless another adder did.
func (f *keyFilter) grow(full *filterLayer) *filterLayer {
	f.growMu.Lock()
	defer f.growMu.Unlock()
	ls := *f.layers.Load()
	if last := ls[len(ls)-1]; last != full {
		return last
	}
	keys := f.first << len(ls)
	l := newFilterLayer(keys)
	l.room.Store(keys - 1) // the caller's key
	next := append(ls[:len(ls):len(ls)], l)
	f.layers.Store(&next)
	return l
}

// mayExist reports false only when kb was certainly never written since
// the store opened nor found on disk then.
func (f *keyFilter) mayExist(kb []byte) bool {
	if !f.ready.Load() {
		return true
	}
	h := filterHash(kb)
	for _, l := range *f.layers.Load() {
		if l.has(h) {
			return true
		}
	}
	return false
}

// bytes returns the filter's memory.
func (f *keyFilter) bytes() int64 {
	var n int64
	for _, l := range *f.layers.Load() {
		n += int64(len(l.words)) * 8
	}
	return n
}

// loadKeyFilter adds every data key in Pebble to f (s.keys) and then makes
// the filter answer. It runs in the background from Open; Close stops it, and
// the filter then stays "maybe" for everything. Keys written meanwhile
// are added by Update, so nothing is missed.
func (s *Store) loadKeyFilter(f *keyFilter) {
	defer s.wg.Done()
	n := 0
	err := guard(func() error {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tagData}, UpperBound: []byte{tagData + 1}})
		if err != nil {
			return err
		}
		defer it.Close()
		for ok := it.First(); ok; ok = it.Next() {
			if n++; n%4096 == 0 {
				select {
				case <-s.stop:
					return errStopped
				default:
				}
			}
			f.add(it.Key())
		}
		return it.Error()
	})
	if err != nil {
		if !errors.Is(err, errStopped) {
			s.log.Warn("storage: scanning keys for the miss filter failed; every memory miss reads Pebble", "err", err)
		}
		return
	}
	f.ready.Store(true)
	s.log.Debug("storage: miss filter ready", "keys", n, "bytes", f.bytes())
}

// errStopped ends the key scan when the store closes.
var errStopped = errors.New("storage: closing")
