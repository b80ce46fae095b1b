package connsched

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecachedb/ecache/netproto/internal/gnetx"
	"github.com/panjf2000/gnet/v2"
)

// entryKind says what a stretch of a connection's backlog holds.
type entryKind uint8

const (
	entryServe  entryKind = iota // requests for Handler.Serve
	entryReject                  // Rejecter stubs to answer busy
	entryClose                   // an encoded reply to send, then close
)

type backlogEntry struct {
	end  int // end offset of the entry's bytes in the backlog
	kind entryKind
}

// conn is the scheduler's state for one connection.
type conn struct {
	s  *Server
	c  gnet.Conn
	h  Handler
	id uint64
	// remote is the client's address, for logs.
	remote string

	// Event-loop only.
	out     []byte // fast-path replies of one OnTraffic
	need    int    // buffered bytes needed before the next request can be complete
	kept    int    // bytes left in gnet's inbound buffer after the last OnTraffic
	closing bool   // no more input is processed; the connection is closing
	closed  bool   // OnClose ran
	// flushLeft is the unsent output when a close waiting for it last
	// saw progress.
	flushLeft int

	// running is set while the connection has slow work queued, executing
	// or unwritten; only the event loop changes it. The ticker reads it.
	running atomic.Bool
	// lastActive is s.now when the last complete request arrived.
	lastActive atomic.Int64
	// closeAt is s.now when a close waiting for the outbound buffer to
	// drain started or last saw progress; 0 if none is waiting.
	closeAt atomic.Int64
	// idleClosed is set once the ticker closed the connection as idle.
	idleClosed atomic.Bool

	counters connCounters

	// mu guards the backlog, which the event loop appends to and a worker
	// takes whole.
	mu          sync.Mutex
	backlog     []byte
	entries     []backlogEntry
	counted     int  // reserved batches in the backlog
	rejected    int  // bytes of entryReject stubs in the backlog
	closeQueued bool // an entryClose was queued: nothing may follow it
	dead        bool // the connection closed: drop the backlog

	// Owned by the worker holding the connection, then by the write
	// callback.
	work        []byte
	workEntries []backlogEntry
	resp        []byte
	taskCounted int
	taskClose   bool
	onWritten   gnet.AsyncCallback
}

// events is the Server as gnet sees it; a separate type keeps the gnet
// callbacks out of Server's method set.
type events Server

func (e *events) server() *Server { return (*Server)(e) }

func (e *events) OnBoot(eng gnet.Engine) gnet.Action {
	s := e.server()
	s.eng = eng
	addr := s.cfg.Addr
	if a, err := gnetx.ListenAddr(eng); err == nil {
		addr = a
	} else {
		s.log.Warn(s.cfg.Name+": cannot read the listen address", "err", err)
	}
	s.addr.Store(&addr)
	close(s.booted)
	return gnet.None
}

func (e *events) OnShutdown(gnet.Engine) {}

func (e *events) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	s := e.server()
	if s.draining.Load() {
		s.rejected.Add(1)
		return s.proto.RefusalReply(true), gnet.Close
	}
	if n := s.conns.Add(1); s.cfg.MaxConns > 0 && n > int64(s.cfg.MaxConns) {
		s.conns.Add(-1)
		s.rejected.Add(1)
		return s.proto.RefusalReply(false), gnet.Close
	}
	s.accepted.Add(1)
	sc := &conn{s: s, c: c, id: s.nextID.Add(1), need: s.cfg.MinRequest}
	if ra := c.RemoteAddr(); ra != nil {
		sc.remote = ra.String()
	}
	sc.h = s.proto.Open(sc.id, sc.remote)
	sc.onWritten = sc.written
	sc.lastActive.Store(time.Now().UnixNano())
	c.SetContext(sc)
	s.mu.Lock()
	s.reg[sc.id] = sc
	s.mu.Unlock()
	return nil, gnet.None
}

func (e *events) OnClose(c gnet.Conn, err error) gnet.Action {
	s := e.server()
	sc, _ := c.Context().(*conn)
	if sc == nil {
		return gnet.None // refused in OnOpen
	}
	sc.closed = true
	sc.kill()
	s.conns.Add(-1)
	s.mu.Lock()
	delete(s.reg, sc.id)
	s.retired.add(&sc.counters)
	s.mu.Unlock()
	if err != nil {
		s.log.Debug(s.cfg.Name+": connection closed", "id", sc.id, "remote", sc.remote, "err", err)
	}
	return gnet.None
}

// OnTraffic splits every complete request gnet has buffered for c and
// serves them in order: on the loop while ServeFast accepts them, the rest
// as one batch for the workers.
func (e *events) OnTraffic(c gnet.Conn) gnet.Action {
	s := e.server()
	sc, _ := c.Context().(*conn)
	if sc == nil {
		return gnet.Close
	}
	avail := c.InboundBuffered()
	sc.counters.bytesIn.Add(uint64(avail - sc.kept))
	switch {
	case sc.closing:
		_, _ = c.Discard(avail)
		sc.kept = 0
		return gnet.None
	case avail < sc.need || s.draining.Load():
		// Still no complete request (do not make gnet copy a growing
		// partial request into one slice on every read), or shutting
		// down: leave the bytes in gnet's buffer.
		sc.kept = avail
		return gnet.None
	}
	buf, err := c.Peek(-1)
	if err != nil {
		return gnet.Close
	}

	h := sc.h
	running := sc.running.Load()
	out := sc.out[:0]
	pos := 0        // end of the requests processed
	slowStart := -1 // start of the requests for the workers
	need := s.cfg.MinRequest
	reserved := false // the batch holds a QueueDepth slot
	closeAfter := false
	var nextErr error
	reqs := 0
	if running {
		slowStart = 0
	}
	for pos < len(buf) {
		n, nd, req, err := h.Next(buf[pos:])
		if err != nil {
			nextErr = err
			break
		}
		if n == 0 {
			need = nd
			break
		}
		if !req {
			pos += n
			continue
		}
		reqs++
		if slowStart >= 0 {
			pos += n
			continue
		}
		var ok bool
		before := len(out)
		if out, ok = h.ServeFast(out); ok {
			pos += n
			if h.CloseRequested() {
				closeAfter = true
				break
			}
			continue
		}
		out = out[:before] // in case the Handler appended before declining
		if s.reserve() {
			slowStart, reserved = pos, true
		} else {
			out = s.rej.AppendBusy(out, buf[pos:pos+n])
			sc.counters.busy.Add(1)
		}
		pos += n
	}
	h.Release()
	if reqs > 0 {
		sc.counters.requests.Add(uint64(reqs))
		sc.lastActive.Store(s.now.Load())
	}

	var closeReply []byte
	if nextErr != nil {
		closeAfter = true
		closeReply = s.proto.ErrorReply(nextErr, buf[pos:])
		s.protoErrs.Add(1)
		s.log.Debug(s.cfg.Name+": protocol error, closing", "id", sc.id, "remote", sc.remote, "err", nextErr)
	}
	batch := slowStart >= 0 && pos > slowStart
	if batch && running {
		// A running connection's batch needs its own slot; without one
		// its requests are answered busy, in order, by the worker.
		reserved = s.reserve()
	}
	if len(out) > 0 {
		if _, err := c.Write(out); err != nil {
			// gnet has closed the connection (OnClose ran).
			s.release(boolInt(reserved))
			sc.keepOut(out)
			return gnet.None
		}
		sc.counters.bytesOut.Add(uint64(len(out)))
	}
	sc.keepOut(out)

	queued := running
	if batch {
		q, overflow := sc.enqueue(buf[slowStart:pos], reserved, running)
		queued = q || queued
		closeAfter = closeAfter || overflow
	} else if reserved {
		s.release(1) // cannot happen: a reserved batch holds a request
	}
	if closeAfter {
		sc.closing = true
		_, _ = c.Discard(avail)
		sc.kept = 0
		if queued {
			// Close after the queued replies: the worker sends closeReply
			// (if any) last and the write callback closes.
			sc.appendClose(closeReply)
			return gnet.None
		}
		if len(closeReply) > 0 {
			if _, err := c.Write(closeReply); err != nil {
				return gnet.None
			}
			sc.counters.bytesOut.Add(uint64(len(closeReply)))
		}
		return sc.closeWhenFlushed()
	}
	if pos > 0 {
		_, _ = c.Discard(pos) // Discard(0) would drop everything
	}
	sc.kept = avail - pos
	sc.need = need
	return gnet.None
}

// OnTick advances the coarse clock, closes idle connections and those whose
// close waits for output to drain.
func (e *events) OnTick() (time.Duration, gnet.Action) {
	s := e.server()
	now := time.Now().UnixNano()
	s.now.Store(now)
	idle := int64(s.cfg.IdleTimeout)
	// lastActive lags the true time by up to a tick: allow for it so that
	// no connection closes before IdleTimeout.
	idleLimit := idle + int64(s.tick)
	s.mu.Lock()
	for _, sc := range s.reg {
		if sc.closeAt.Load() != 0 {
			sc.checkFlushed()
			continue
		}
		if idle > 0 && !sc.running.Load() && now-sc.lastActive.Load() >= idleLimit &&
			sc.idleClosed.CompareAndSwap(false, true) {
			s.log.Debug(s.cfg.Name+": closing idle connection", "id", sc.id, "remote", sc.remote)
			_ = sc.c.Close()
		}
	}
	s.mu.Unlock()
	return s.tick, gnet.None
}

// keepOut keeps the fast-path buffer for the next OnTraffic unless a burst
// made it large.
func (sc *conn) keepOut(out []byte) {
	if cap(out) > maxRetainedBuf {
		out = nil
	}
	sc.out = out[:0]
}

// enqueue copies reqs into the backlog, as a batch to serve when reserved
// and as stubs to answer busy otherwise, and puts the connection on the
// worker queue unless it is already running. It reports whether the
// connection is now running, and whether the client overflowed
// MaxBacklog or MaxRejected: it then closes after what is queued, with the
// overflow reply. Event loop only.
func (sc *conn) enqueue(reqs []byte, reserved, running bool) (queued, overflow bool) {
	s := sc.s
	sc.mu.Lock()
	if sc.dead {
		sc.mu.Unlock()
		s.release(boolInt(reserved))
		return false, false
	}
	what := ""
	switch {
	case reserved && s.cfg.MaxBacklog > 0 && len(sc.backlog)+len(reqs) > s.cfg.MaxBacklog:
		// The batch is dropped; its slot stays counted until the
		// overflow reply is written.
		sc.counted++
		overflow, what = true, "client pipelines past the backlog limit, closing"
	case reserved:
		sc.backlog = append(sc.backlog, reqs...)
		sc.entries = append(sc.entries, backlogEntry{end: len(sc.backlog), kind: entryServe})
		sc.counted++
	default:
		start := len(sc.backlog)
		sc.backlog = s.rej.AppendStubs(sc.backlog, reqs)
		sc.rejected += len(sc.backlog) - start
		sc.entries = append(sc.entries, backlogEntry{end: len(sc.backlog), kind: entryReject})
		if s.cfg.MaxRejected > 0 && sc.rejected > s.cfg.MaxRejected {
			overflow, what = true, "client ignores busy, closing"
		}
	}
	sc.mu.Unlock()
	if overflow {
		s.overflows.Add(1)
		s.log.Warn(s.cfg.Name+": "+what, "id", sc.id, "remote", sc.remote)
		sc.appendClose(s.proto.OverflowReply())
	}
	if !running {
		sc.running.Store(true)
		s.queue.Push(sc)
	}
	return true, overflow
}

// appendClose adds a final reply (possibly empty) after which the
// connection closes; only the first one counts. The connection is running.
// Event loop only.
func (sc *conn) appendClose(reply []byte) {
	sc.mu.Lock()
	if !sc.dead && !sc.closeQueued {
		sc.closeQueued = true
		sc.backlog = append(sc.backlog, reply...)
		sc.entries = append(sc.entries, backlogEntry{end: len(sc.backlog), kind: entryClose})
	}
	sc.mu.Unlock()
}

// kill marks the connection closing and drops its backlog, returning its
// slots. Event loop only.
func (sc *conn) kill() {
	sc.closing = true
	sc.mu.Lock()
	sc.dead = true
	n := sc.counted
	sc.counted = 0
	sc.backlog, sc.entries = nil, nil
	sc.mu.Unlock()
	sc.s.release(n)
}

// serve runs the connection's backlog on a worker and hands the replies to
// one AsyncWrite; the connection is released in the write's callback.
func (sc *conn) serve() {
	s := sc.s
	sc.mu.Lock()
	sc.work, sc.backlog = sc.backlog, sc.work[:0]
	sc.workEntries, sc.entries = sc.entries, sc.workEntries[:0]
	n, dead := sc.counted, sc.dead
	sc.counted, sc.rejected = 0, 0
	sc.mu.Unlock()
	if dead {
		s.release(n)
		return
	}

	out := sc.resp[:0]
	closeAfter := false
	start := 0
	for _, e := range sc.workEntries {
		b := sc.work[start:e.end]
		start = e.end
		switch e.kind {
		case entryServe:
			for len(b) > 0 && !closeAfter {
				var m int
				out, m = sc.h.Serve(s.serveCtx, b, out)
				if m <= 0 {
					break // cannot happen: the event loop split these requests
				}
				b = b[m:]
				closeAfter = sc.h.CloseRequested()
			}
		case entryReject:
			var m int
			out, m = s.rej.AppendBusyStubs(out, b)
			sc.counters.busy.Add(uint64(m))
		case entryClose:
			out = append(out, b...)
			closeAfter = true
		}
		if closeAfter {
			break
		}
	}
	if cap(sc.work) > maxRetainedBuf {
		sc.work = nil
	}
	sc.resp, sc.taskCounted, sc.taskClose = out, n, closeAfter
	if err := sc.c.AsyncWrite(out, sc.onWritten); err != nil {
		// The event loop is gone (shutdown): nobody will run the callback.
		s.release(n)
	}
}

// written is the AsyncWrite callback: it runs on the event loop once the
// worker's replies are in the socket or gnet's outbound buffer, and either
// queues the connection again for backlog that arrived meanwhile or returns
// it to the fast path.
func (sc *conn) written(_ gnet.Conn, err error) error {
	s := sc.s
	defer s.release(sc.taskCounted)
	if err == nil {
		sc.counters.bytesOut.Add(uint64(len(sc.resp)))
	}
	if cap(sc.resp) > maxRetainedBuf {
		sc.resp = nil
	}
	if err != nil || sc.taskClose || sc.closed {
		sc.kill()
		if !sc.closed && sc.closeWhenFlushed() == gnet.Close {
			_ = sc.c.Close()
		}
		return nil
	}
	sc.lastActive.Store(s.now.Load()) // the client was waiting, not idle
	sc.mu.Lock()
	more := len(sc.entries) > 0
	sc.mu.Unlock()
	if more {
		s.queue.Push(sc)
	} else {
		sc.running.Store(false)
	}
	return nil
}

// closeWhenFlushed returns gnet.Close when gnet holds no unsent output for
// the connection; otherwise it leaves the close to the ticker, which waits
// for the output to drain. Event loop only.
func (sc *conn) closeWhenFlushed() gnet.Action {
	left := sc.c.OutboundBuffered()
	if left == 0 {
		return gnet.Close
	}
	sc.flushLeft = left
	sc.closeAt.Store(sc.s.now.Load())
	return gnet.None
}

// checkFlushed closes the connection, on its event loop, once its output
// has drained, or made no progress for closeFlushTimeout. Called by the
// ticker.
func (sc *conn) checkFlushed() {
	_ = sc.c.EventLoop().Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		if sc.closed {
			return nil
		}
		now := sc.s.now.Load()
		left := sc.c.OutboundBuffered()
		switch {
		case left == 0 || now-sc.closeAt.Load() >= int64(closeFlushTimeout):
			return sc.c.EventLoop().Close(sc.c)
		case left < sc.flushLeft:
			sc.flushLeft = left
			sc.closeAt.Store(now)
		}
		return nil
	}))
}
