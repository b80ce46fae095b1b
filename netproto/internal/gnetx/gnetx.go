// Package gnetx holds the small gnet helpers of ecache's two gnet servers
// (the binary protocol in netproto/server and the Redis protocol in
// netproto/resp), below their shared scheduling (netproto/internal/connsched):
// the worker queue of connections with backlog, gnet's logger adapter and
// the bound-address lookup.
package gnetx

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"

	"github.com/panjf2000/gnet/v2"
)

// Queue is an unbounded FIFO that workers block on. A server puts each
// connection in it at most once, so its length is bounded by the number of
// connections and Push never blocks an event loop.
type Queue[T any] struct {
	mu     sync.Mutex
	cond   sync.Cond
	ring   []T  // guarded by mu
	head   int  // guarded by mu
	n      int  // guarded by mu
	closed bool // guarded by mu
}

// NewQueue returns an empty queue.
func NewQueue[T any]() *Queue[T] {
	q := &Queue[T]{ring: make([]T, 64)}
	q.cond.L = &q.mu
	return q
}

// Push appends v and wakes one waiting worker.
func (q *Queue[T]) Push(v T) {
	q.mu.Lock()
	if q.n == len(q.ring) {
		ring := make([]T, 2*len(q.ring))
		for i := range q.n {
			ring[i] = q.ring[(q.head+i)%len(q.ring)]
		}
		q.ring, q.head = ring, 0
	}
	q.ring[(q.head+q.n)%len(q.ring)] = v
	q.n++
	q.mu.Unlock()
	q.cond.Signal()
}

// Pop removes the oldest element, waiting for one; ok is false once the
// queue is closed and empty.
func (q *Queue[T]) Pop() (v T, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.n == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.n == 0 {
		return v, false
	}
	v = q.ring[q.head]
	var zero T
	q.ring[q.head] = zero
	q.head = (q.head + 1) % len(q.ring)
	q.n--
	return v, true
}

// Close wakes every worker; Pop drains what is left, then reports !ok.
func (q *Queue[T]) Close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

// Logger routes gnet's logs to slog (gnet's Info chatter at debug level).
type Logger struct{ L *slog.Logger }

func (g Logger) logf(level slog.Level, format string, args []any) {
	if g.L.Enabled(context.Background(), level) {
		g.L.Log(context.Background(), level, fmt.Sprintf(format, args...), "component", "gnet")
	}
}

// Debugf logs at debug level.
func (g Logger) Debugf(format string, args ...any) { g.logf(slog.LevelDebug, format, args) }

// Infof logs at debug level: gnet's info messages are start-up chatter.
func (g Logger) Infof(format string, args ...any) { g.logf(slog.LevelDebug, format, args) }

// Warnf logs at warn level.
func (g Logger) Warnf(format string, args ...any) { g.logf(slog.LevelWarn, format, args) }

// Errorf logs at error level.
func (g Logger) Errorf(format string, args ...any) { g.logf(slog.LevelError, format, args) }

// Fatalf logs at error level; gnet decides what happens next.
func (g Logger) Fatalf(format string, args ...any) { g.logf(slog.LevelError, format, args) }

// ListenAddr returns the bound address of eng's listener, which differs
// from the configured one when its port is 0. gnet has no accessor for it,
// so it is read from a duplicate of the listening socket.
func ListenAddr(eng gnet.Engine) (string, error) {
	fd, err := eng.Dup()
	if err != nil {
		return "", err
	}
	f := os.NewFile(uintptr(fd), "gnet-listener")
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
