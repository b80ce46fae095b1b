package storage

import "sync"

// flightGroup coalesces concurrent disk reads of one key: the first caller
// reads, later callers wait for and share its result. A flight is keyed by
// the key and its stripe's write version as the reader saw it, so a reader
// that starts after a write completed never joins a flight that may have
// read from before that write. (x/sync/singleflight has no such key; ours
// also counts waiters, which tests observe.)
type flightGroup struct {
	mu sync.Mutex
	// Guarded by mu.
	calls map[flightKey]*flight
}

type flightKey struct {
	key     string
	version uint64
}

type flight struct {
	wg   sync.WaitGroup
	dups int // guarded by flightGroup.mu
	rec  []byte
	err  error
}

// do runs fn once for all concurrent callers with the same key.
func (g *flightGroup) do(key []byte, version uint64, fn func() ([]byte, error)) ([]byte, error) {
	g.mu.Lock()
	if c, ok := g.calls[flightKey{string(key), version}]; ok {
		c.dups++
		g.mu.Unlock()
		c.wg.Wait()
		return c.rec, c.err
	}
	if g.calls == nil {
		g.calls = make(map[flightKey]*flight)
	}
	c := &flight{}
	c.wg.Add(1)
	k := flightKey{string(key), version}
	g.calls[k] = c
	g.mu.Unlock()

	c.rec, c.err = fn()

	g.mu.Lock()
	delete(g.calls, k)
	g.mu.Unlock()
	c.wg.Done()
	return c.rec, c.err
}

// waiters returns how many callers are waiting on flights for key.
func (g *flightGroup) waiters(key []byte) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for k, c := range g.calls {
		if k.key == string(key) {
			n += c.dups
		}
	}
	return n
}
