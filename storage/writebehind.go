package storage

import (
	"errors"
	"sync"
)

var errWriteBehindClosed = errors.New("storage: write-behind queue closed")

type wbEntry struct {
	rec []byte
	del bool
}

// writeBehind is the PersistenceAsync queue: the latest record of each key
// written since the last flush. A flush takes the whole queue as one batch.
// While a batch is being committed its entries stay readable (flushing), so
// a reader never falls between the queue and the disk.
type writeBehind struct {
	kick chan struct{}

	mu sync.Mutex
	// Guarded by mu.
	pending      map[string]wbEntry
	pendingBytes int
	flushing     map[string]wbEntry
	inFlight     bool   // a flush is committing `flushing`
	gen          uint64 // number of completed flushes
	err          error  // first commit error; sticky
	closed       bool
	maxBytes     int
	space        *sync.Cond // signalled when pending shrinks
	done         *sync.Cond // signalled when a flush completes
}

func newWriteBehind(maxBytes int) *writeBehind {
	w := &writeBehind{kick: make(chan struct{}, 1), pending: make(map[string]wbEntry), maxBytes: maxBytes}
	w.space = sync.NewCond(&w.mu)
	w.done = sync.NewCond(&w.mu)
	return w
}

// put queues the latest record of key k (a delete when del). It blocks while
// the queue is over its byte bound, so a slow disk slows writers down rather
// than growing memory without limit.
func (w *writeBehind) put(k, rec []byte, del bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.pendingBytes >= w.maxBytes && w.err == nil && !w.closed {
		w.kickLocked()
		w.space.Wait()
	}
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errWriteBehindClosed
	}
	if old, ok := w.pending[string(k)]; ok {
		w.pendingBytes -= len(k) + len(old.rec)
	}
	w.pending[string(k)] = wbEntry{rec: rec, del: del}
	w.pendingBytes += len(k) + len(rec)
	if w.pendingBytes >= w.maxBytes/2 {
		w.kickLocked()
	}
	return nil
}

func (w *writeBehind) kickLocked() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// get returns the queued record of k, if any.
func (w *writeBehind) get(k []byte) (rec []byte, del, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.pending[string(k)]
	if !ok {
		e, ok = w.flushing[string(k)]
	}
	return e.rec, e.del, ok
}

// flush commits everything queued now as one batch. Only one flush runs at
// a time; a caller arriving during one waits for it and then flushes what
// has queued since.
func (w *writeBehind) flush(commit func(map[string]wbEntry) error) error {
	w.mu.Lock()
	for w.inFlight {
		w.done.Wait()
	}
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	if len(w.pending) == 0 {
		w.gen++
		w.done.Broadcast()
		w.mu.Unlock()
		return nil
	}
	w.flushing, w.pending = w.pending, make(map[string]wbEntry, len(w.pending))
	w.pendingBytes = 0
	w.inFlight = true
	w.space.Broadcast()
	batch := w.flushing
	w.mu.Unlock()

	err := commit(batch)

	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil && w.err == nil {
		w.err = err
	}
	w.flushing = nil
	w.inFlight = false
	w.gen++
	w.done.Broadcast()
	w.space.Broadcast()
	return err
}

// flushAndWait returns once everything queued before the call is durable.
func (w *writeBehind) flushAndWait(commit func(map[string]wbEntry) error) error {
	return w.flush(commit)
}

func (w *writeBehind) stats() (pendingBytes int64, flushes uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return int64(w.pendingBytes), w.gen
}

// close wakes and fails any writer still waiting for space.
func (w *writeBehind) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	w.space.Broadcast()
	w.done.Broadcast()
}
