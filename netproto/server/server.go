package server

// This file is the TCP server: gnet v2 event loops split the byte stream
// into frames and serve what they can on the loop (Handler.ServeFast); the
// rest goes to a bounded worker pool (Handler.Serve).
//
// Ordering. Responses of one connection leave in request order because the
// connection is served by exactly one party at a time:
//
//   - While the connection is idle (no slow work), its event loop serves
//     frames with ServeFast and writes their responses with one Write per
//     OnTraffic.
//   - The first frame ServeFast declines, and every frame after it, are
//     copied into the connection's backlog and the connection is put on the
//     worker queue; it is now "running". While it runs, every later frame
//     goes to the backlog too, never to ServeFast.
//   - A worker takes the whole backlog, serves it with Serve into one buffer
//     and hands that to one AsyncWrite. The connection stops running only in
//     that write's callback, which runs on the event loop after the bytes
//     are in the socket (or gnet's outbound buffer); if more backlog arrived
//     meanwhile the callback queues the connection again instead.
//
// So the event loop never writes while a worker's response is unwritten, and
// at most one worker holds a connection, which also keeps Handler calls for
// one Session from overlapping.
//
// Flow control. QueueDepth bounds the batches (one per OnTraffic and
// connection) that are queued, executing or unwritten. A batch that does not
// fit is answered `busy`: on an idle connection each declined frame is
// answered inline and later frames still try the fast path; on a running
// connection the batch is kept as headers only and the worker answers each
// frame `busy` in order. gnet cannot stop reading a socket, so `busy` is the
// backpressure; a connection that piles up more than maxRejectBacklog bytes
// of rejected headers is closed.
//
// Closing. Framing errors and Session.CloseAfterReply close the connection
// after the responses before them have been written: directly from
// OnTraffic when nothing is queued, otherwise from the worker write's
// callback. gnet's close drops outbound bytes the socket does not take at
// once, so when gnet still buffers output the close waits for it (checked
// every tick; given up after closeFlushTimeout without progress).

import (
	"context"
	"errors"
	"fmt"
	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/netproto/internal/gnetx"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// Server errors. They belong with the package's other sentinels.
var (
	// ErrInvalidConfig reports a Config that fails Validate.
	ErrInvalidConfig = errors.New("netproto: invalid server config")
	// ErrServerStarted reports a second Start.
	ErrServerStarted = errors.New("netproto: server already started")
	// ErrServerClosed reports Start after Shutdown.
	ErrServerClosed = errors.New("netproto: server closed")
)

const (
	// maxRetainedBuf bounds the per-connection buffers kept between
	// batches; a larger one (a burst of big values) is dropped after use.
	maxRetainedBuf = 256 << 10
	// maxRejectBacklog bounds the frame headers a running connection may
	// accumulate while its batches are rejected busy; past it the client
	// is ignoring backpressure and the connection is closed.
	maxRejectBacklog = 1 << 20
	// closeFlushTimeout bounds how long a closing connection waits for
	// gnet's outbound buffer to shrink (a client that stops reading).
	closeFlushTimeout = 2 * time.Second
	// defaultTick is the housekeeping period when IdleTimeout is 0.
	defaultTick = 250 * time.Millisecond

	msgBusy         = "server busy: request queue full"
	msgTooManyConns = "server busy: too many connections"
	msgShuttingDown = "server busy: shutting down"
)

// Config configures a Server.
type Config struct {
	// Addr is the TCP address to listen on, host:port. Port 0 picks a
	// free port; Server.Addr reports it.
	Addr string
	// Limits bound what clients may send.
	Limits netproto.Limits
	// Multicore runs several event loops (EventLoops of them).
	Multicore bool
	// EventLoops is the number of event loops; 0 means GOMAXPROCS with
	// Multicore and 1 without.
	EventLoops int
	// Workers is the number of goroutines running Handler.Serve; 0 means
	// 4*GOMAXPROCS.
	Workers int
	// QueueDepth bounds the batches of requests waiting for or being
	// served by the workers, server-wide; requests beyond it are answered
	// busy. 0 means 1024.
	QueueDepth int
	// MaxConns bounds open connections; a connection beyond it gets one
	// busy error frame (request ID 0, opcode 0) and is closed. 0 means no
	// limit.
	MaxConns int
	// IdleTimeout closes connections that sent no complete frame for that
	// long; 0 means never.
	IdleTimeout time.Duration
	// Logger receives the server's and gnet's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration servers use unless told
// otherwise.
func DefaultConfig() Config {
	procs := runtime.GOMAXPROCS(0)
	return Config{
		Addr:       "127.0.0.1:7070",
		Limits:     netproto.DefaultLimits(),
		Multicore:  true,
		EventLoops: procs,
		Workers:    4 * procs,
		QueueDepth: 1024,
		MaxConns:   10000,
	}
}

// Validate reports the first unusable field.
func (c Config) Validate() error {
	bad := func(field string, v any, why string) error {
		return fmt.Errorf("%w: %s %v (%s)", ErrInvalidConfig, field, v, why)
	}
	switch {
	case c.Addr == "":
		return bad("Addr", `""`, "must be host:port")
	case c.EventLoops < 0:
		return bad("EventLoops", c.EventLoops, "must not be negative")
	case c.Workers < 0:
		return bad("Workers", c.Workers, "must not be negative")
	case c.QueueDepth < 0:
		return bad("QueueDepth", c.QueueDepth, "must not be negative")
	case c.MaxConns < 0:
		return bad("MaxConns", c.MaxConns, "must not be negative")
	case c.IdleTimeout < 0:
		return bad("IdleTimeout", c.IdleTimeout, "must not be negative")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return bad("Addr", c.Addr, err.Error())
	}
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("%w: netproto.Limits: %w", ErrInvalidConfig, err)
	}
	return nil
}

// Stats are a Server's counters.
type Stats struct {
	Conns    int64  // open connections
	Accepted uint64 // connections accepted (not counting rejected ones)
	Rejected uint64 // connections refused for MaxConns or shutdown
	Frames   uint64 // complete request frames received
	Errors   uint64 // error responses the server itself sent: framing errors and busy
	BytesIn  uint64 // bytes read from accepted connections
	BytesOut uint64 // bytes of responses written
}

// Server serves the binary protocol over TCP with gnet, through a Handler.
// Create one with New, Start it, and Shutdown it; a Server is not
// restartable.
type Server struct {
	cfg        Config
	h          netproto.Handler
	dec        *netproto.Decoder
	log        *slog.Logger
	eventLoops int
	workers    int
	queueDepth int64
	tick       time.Duration

	// serveCtx is the ctx of every Serve call; cancelled by Shutdown once
	// the drain is over or its deadline passed.
	serveCtx    context.Context
	cancelServe context.CancelFunc

	queue   *gnetx.Queue[*serverConn]
	workerG sync.WaitGroup

	// lifeMu serializes Start and Shutdown.
	lifeMu   sync.Mutex
	started  bool // guarded by lifeMu
	stopped  bool // guarded by lifeMu
	eng      gnet.Engine
	addr     atomic.Pointer[string]
	booted   chan struct{}
	runDone  chan struct{}
	runErr   error // written before runDone closes
	shutOnce sync.Once
	shutErr  error

	draining atomic.Bool
	// pending counts batches queued, executing or not yet written; see
	// QueueDepth.
	pending atomic.Int64
	drained chan struct{} // signalled when pending drops to 0 while draining
	// now is a coarse clock (unix nanoseconds) the ticker advances, so the
	// request path does not read the time.
	now    atomic.Int64
	nextID atomic.Uint64

	conns    atomic.Int64
	accepted atomic.Uint64
	rejected atomic.Uint64
	errs     atomic.Uint64

	// mu guards the connection registry and the counters of closed
	// connections.
	mu      sync.Mutex
	reg     map[uint64]*serverConn
	retired connCounters
}

// New returns a Server for cfg that serves through h. It does not
// listen until Start.
func New(cfg Config, h netproto.Handler) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if h == nil {
		return nil, fmt.Errorf("%w: nil netproto.Handler", ErrInvalidConfig)
	}
	procs := runtime.GOMAXPROCS(0)
	s := &Server{
		cfg:        cfg,
		h:          h,
		dec:        netproto.NewDecoder(cfg.Limits),
		log:        cfg.Logger,
		eventLoops: cfg.EventLoops,
		workers:    cfg.Workers,
		queueDepth: int64(cfg.QueueDepth),
		tick:       defaultTick,
		booted:     make(chan struct{}),
		runDone:    make(chan struct{}),
		drained:    make(chan struct{}, 1),
		reg:        make(map[uint64]*serverConn),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.eventLoops == 0 {
		s.eventLoops = 1
		if cfg.Multicore {
			s.eventLoops = procs
		}
	}
	if s.workers == 0 {
		s.workers = 4 * procs
	}
	if s.queueDepth == 0 {
		s.queueDepth = 1024
	}
	if cfg.IdleTimeout > 0 {
		// Idle connections close between IdleTimeout and 1.5x IdleTimeout.
		s.tick = min(max(cfg.IdleTimeout/4, 5*time.Millisecond), time.Second)
	}
	s.serveCtx, s.cancelServe = context.WithCancel(context.Background())
	s.queue = gnetx.NewQueue[*serverConn]()
	s.now.Store(time.Now().UnixNano())
	return s, nil
}

// Start listens and starts the event loops and workers. It returns once the
// listener is bound, or with the error that prevented it.
func (s *Server) Start() error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	switch {
	case s.stopped:
		return ErrServerClosed
	case s.started:
		return ErrServerStarted
	}
	s.started = true
	for range s.workers {
		s.workerG.Add(1)
		go s.work()
	}
	opts := []gnet.Option{
		gnet.WithMulticore(s.cfg.Multicore || s.eventLoops > 1),
		gnet.WithNumEventLoop(s.eventLoops),
		gnet.WithTicker(true),
		gnet.WithReuseAddr(true),
		// Not WithReusePort: gnet would then bind one listener per event
		// loop, each to its own port when Addr's port is 0.
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithLogger(gnetx.Logger{L: s.log}),
	}
	go func() {
		s.runErr = gnet.Run((*events)(s), "tcp://"+s.cfg.Addr, opts...)
		close(s.runDone)
	}()
	select {
	case <-s.booted:
		s.log.Info("netproto: listening", "addr", s.Addr(), "event_loops", s.eventLoops, "workers", s.workers)
		return nil
	case <-s.runDone:
		s.stopped = true
		s.queue.Close()
		s.workerG.Wait()
		s.cancelServe()
		return fmt.Errorf("netproto: listen on %s: %w", s.cfg.Addr, s.runErr)
	}
}

// Addr returns the address the server listens on, or "" before Start.
func (s *Server) Addr() string {
	if a := s.addr.Load(); a != nil {
		return *a
	}
	return ""
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Conns:    s.conns.Load(),
		Accepted: s.accepted.Load(),
		Rejected: s.rejected.Load(),
		Errors:   s.errs.Load(),
	}
	s.mu.Lock()
	s.retired.addTo(&st)
	for _, sc := range s.reg {
		sc.counters.addTo(&st)
	}
	s.mu.Unlock()
	return st
}

// Shutdown stops accepting connections (new ones get a busy error), stops
// reading requests, waits until every batch already handed to the workers
// has been served and its responses written, then closes all connections
// and stops the event loops and workers. If ctx ends first, the ctx of
// running Serve calls is cancelled, the rest is not waited for, and
// Shutdown returns ctx's error once everything has stopped (Serve must
// return when its ctx ends). Later calls return the first call's result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutOnce.Do(func() { s.shutErr = s.shutdown(ctx) })
	return s.shutErr
}

func (s *Server) shutdown(ctx context.Context) error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	wasRunning := s.started && !s.stopped
	s.stopped = true
	if !wasRunning {
		s.cancelServe()
		return nil
	}
	s.draining.Store(true)
	var err error
drain:
	for s.pending.Load() > 0 {
		select {
		case <-s.drained:
		case <-s.runDone:
			break drain // the event loops died: nothing more will be written
		case <-ctx.Done():
			err = ctx.Err()
			break drain
		}
	}
	s.cancelServe()

	// Engine.Stop polls for the engine's end every 500ms; with an ended
	// ctx it only signals, and runDone says when gnet.Run has returned,
	// which is after every event loop and the ticker have exited and every
	// connection was closed.
	stopCtx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = s.eng.Stop(stopCtx)
	<-s.runDone
	if s.runErr != nil {
		s.log.Error("netproto: event loops stopped with an error", "err", s.runErr)
	}
	s.queue.Close()
	s.workerG.Wait()
	s.log.Info("netproto: stopped", "addr", s.Addr())
	return err
}

// release returns n batches' worth of QueueDepth.
func (s *Server) release(n int) {
	if n == 0 {
		return
	}
	if s.pending.Add(int64(-n)) == 0 && s.draining.Load() {
		select {
		case s.drained <- struct{}{}:
		default:
		}
	}
}

// reserve takes one batch's worth of QueueDepth, or reports that it is
// exhausted.
func (s *Server) reserve() bool {
	if s.pending.Add(1) > s.queueDepth {
		s.release(1)
		return false
	}
	return true
}

// connCounters are per-connection counters, summed by Stats. They are per
// connection so that event loops do not contend on shared cache lines.
type connCounters struct {
	frames, bytesIn, bytesOut, errs atomic.Uint64
}

func (c *connCounters) addTo(st *Stats) {
	st.Frames += c.frames.Load()
	st.BytesIn += c.bytesIn.Load()
	st.BytesOut += c.bytesOut.Load()
	st.Errors += c.errs.Load()
}

func (c *connCounters) add(o *connCounters) {
	c.frames.Add(o.frames.Load())
	c.bytesIn.Add(o.bytesIn.Load())
	c.bytesOut.Add(o.bytesOut.Load())
	c.errs.Add(o.errs.Load())
}

// entryKind says what a stretch of a connection's backlog holds.
type entryKind uint8

const (
	entryServe  entryKind = iota // frames for netproto.Handler.Serve
	entryReject                  // frame headers to answer busy
	entryClose                   // an encoded response to send, then close
)

type backlogEntry struct {
	end  int // end offset of the entry's bytes in the backlog
	kind entryKind
}

// serverConn is the server's state for one connection.
type serverConn struct {
	s    *Server
	c    gnet.Conn
	sess netproto.Session

	// Event-loop only.
	out     []byte // fast-path responses of one OnTraffic
	need    int    // buffered bytes needed before the next frame can be complete
	kept    int    // bytes left in gnet's inbound buffer after the last OnTraffic
	closing bool   // no more input is processed; the connection is closing
	closed  bool   // OnClose ran
	// flushLeft is the unsent output when a close waiting for it last
	// saw progress.
	flushLeft int

	// running is set while the connection has slow work queued, executing
	// or unwritten; only the event loop changes it. The ticker reads it.
	running atomic.Bool
	// lastFrame is s.now when the last complete frame arrived.
	lastFrame atomic.Int64
	// closeAt is s.now when a close waiting for the outbound buffer to
	// drain started or last saw progress; 0 if none is waiting.
	closeAt atomic.Int64
	// idleClosed is set once the ticker closed the connection as idle.
	idleClosed atomic.Bool

	counters connCounters

	// mu guards the backlog, which the event loop appends to and a worker
	// takes whole.
	mu       sync.Mutex
	backlog  []byte
	entries  []backlogEntry
	counted  int  // reserved batches in the backlog
	rejected int  // bytes of entryReject headers in the backlog
	dead     bool // the connection closed: drop the backlog

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
		s.log.Warn("netproto: cannot read the listen address", "err", err)
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
		s.errs.Add(1)
		return netproto.AppendError(nil, 0, 0, netproto.CodeBusy, msgShuttingDown), gnet.Close
	}
	if n := s.conns.Add(1); s.cfg.MaxConns > 0 && n > int64(s.cfg.MaxConns) {
		s.conns.Add(-1)
		s.rejected.Add(1)
		s.errs.Add(1)
		return netproto.AppendError(nil, 0, 0, netproto.CodeBusy, msgTooManyConns), gnet.Close
	}
	s.accepted.Add(1)
	sc := &serverConn{s: s, c: c, need: netproto.HeaderSize}
	sc.sess.ID = s.nextID.Add(1)
	if ra := c.RemoteAddr(); ra != nil {
		sc.sess.RemoteAddr = ra.String()
	}
	sc.onWritten = sc.written
	sc.lastFrame.Store(time.Now().UnixNano())
	c.SetContext(sc)
	s.mu.Lock()
	s.reg[sc.sess.ID] = sc
	s.mu.Unlock()
	return nil, gnet.None
}

func (e *events) OnClose(c gnet.Conn, err error) gnet.Action {
	s := e.server()
	sc, _ := c.Context().(*serverConn)
	if sc == nil {
		return gnet.None // refused in OnOpen
	}
	sc.closed = true
	sc.closing = true
	sc.mu.Lock()
	sc.dead = true
	n := sc.counted
	sc.counted = 0
	sc.backlog, sc.entries = nil, nil
	sc.mu.Unlock()
	s.release(n)
	s.conns.Add(-1)
	s.mu.Lock()
	delete(s.reg, sc.sess.ID)
	s.retired.add(&sc.counters)
	s.mu.Unlock()
	if err != nil {
		s.log.Debug("netproto: connection closed", "id", sc.sess.ID, "remote", sc.sess.RemoteAddr, "err", err)
	}
	return gnet.None
}

// OnTraffic decodes every complete frame gnet has buffered for c and serves
// them in order: on the loop while ServeFast accepts them, the rest as one
// batch for the workers.
func (e *events) OnTraffic(c gnet.Conn) gnet.Action {
	s := e.server()
	sc, _ := c.Context().(*serverConn)
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
		// Still no complete frame (do not make gnet copy a growing
		// partial frame into one slice on every read), or shutting down:
		// leave the bytes in gnet's buffer.
		sc.kept = avail
		return gnet.None
	}
	buf, err := c.Peek(-1)
	if err != nil {
		return gnet.Close
	}

	running := sc.running.Load()
	out := sc.out[:0]
	pos := 0          // end of the frames processed
	slowStart := -1   // start of the frames for the workers
	reserved := false // the batch holds a QueueDepth slot
	closeAfter := false
	var frameErr error
	frames := 0
	if running {
		slowStart = 0
	}
	for pos < len(buf) {
		f, n, err := s.dec.Next(buf[pos:])
		if err != nil {
			frameErr = err
			break
		}
		if n == 0 {
			break
		}
		frames++
		if slowStart >= 0 {
			pos += n
			continue
		}
		var ok bool
		before := len(out)
		if out, ok = s.h.ServeFast(&sc.sess, f, out); ok {
			pos += n
			if sc.sess.CloseRequested() {
				closeAfter = true
				break
			}
			continue
		}
		out = out[:before] // in case the netproto.Handler appended before declining
		if s.reserve() {
			slowStart, reserved = pos, true
		} else {
			out = netproto.AppendError(out, f.Opcode, f.RequestID, netproto.CodeBusy, msgBusy)
			sc.counters.errs.Add(1)
		}
		pos += n
	}
	if frames > 0 {
		sc.counters.frames.Add(uint64(frames))
		sc.lastFrame.Store(s.now.Load())
	}

	var closeFrame []byte
	if frameErr != nil {
		closeAfter = true
		closeFrame = appendFrameError(nil, frameErr, buf[pos:])
		sc.counters.errs.Add(1)
		s.log.Debug("netproto: framing error, closing", "id", sc.sess.ID, "remote", sc.sess.RemoteAddr, "err", frameErr)
	}
	batch := slowStart >= 0 && pos > slowStart
	if batch && running {
		// A running connection's batch needs its own slot; without one
		// its frames are answered busy, in order, by the worker.
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
		queued = sc.enqueue(buf[slowStart:pos], reserved, running) || queued
	} else if reserved {
		s.release(1) // cannot happen: a reserved batch holds a frame
	}
	if closeAfter {
		sc.closing = true
		_, _ = c.Discard(avail)
		sc.kept = 0
		if queued {
			// Close after the queued responses: the worker sends
			// closeFrame (if any) last and the write callback closes.
			sc.appendClose(closeFrame)
			return gnet.None
		}
		if len(closeFrame) > 0 {
			if _, err := c.Write(closeFrame); err != nil {
				return gnet.None
			}
			sc.counters.bytesOut.Add(uint64(len(closeFrame)))
		}
		return sc.closeWhenFlushed()
	}
	if pos > 0 {
		_, _ = c.Discard(pos) // Discard(0) would drop everything
	}
	sc.kept = avail - pos
	sc.need = netproto.HeaderSize
	if rest := buf[pos:]; len(rest) >= netproto.HeaderSize {
		// The header was checked by Next: wait for the whole frame.
		h, _ := netproto.ParseHeader(rest)
		sc.need = netproto.HeaderSize + int(h.BodyLen)
	}
	return gnet.None
}

// OnTick advances the coarse clock, closes idle connections and those whose
// close waits for output to drain.
func (e *events) OnTick() (time.Duration, gnet.Action) {
	s := e.server()
	now := time.Now().UnixNano()
	s.now.Store(now)
	idle := int64(s.cfg.IdleTimeout)
	// lastFrame lags the true time by up to a tick: allow for it so that
	// no connection closes before IdleTimeout.
	idleLimit := idle + int64(s.tick)
	s.mu.Lock()
	for _, sc := range s.reg {
		if sc.closeAt.Load() != 0 {
			sc.checkFlushed()
			continue
		}
		if idle > 0 && !sc.running.Load() && now-sc.lastFrame.Load() >= idleLimit &&
			sc.idleClosed.CompareAndSwap(false, true) {
			s.log.Debug("netproto: closing idle connection", "id", sc.sess.ID, "remote", sc.sess.RemoteAddr)
			_ = sc.c.Close()
		}
	}
	s.mu.Unlock()
	return s.tick, gnet.None
}

// keepOut keeps the fast-path buffer for the next OnTraffic unless a burst
// made it large.
func (sc *serverConn) keepOut(out []byte) {
	if cap(out) > maxRetainedBuf {
		out = nil
	}
	sc.out = out[:0]
}

// enqueue copies frames into the backlog, as a batch to serve when reserved
// and as headers to answer busy otherwise, and puts the connection on the
// worker queue unless it is already running. It reports whether the
// connection is now running. Event loop only.
func (sc *serverConn) enqueue(frames []byte, reserved, running bool) bool {
	s := sc.s
	sc.mu.Lock()
	if sc.dead {
		sc.mu.Unlock()
		s.release(boolInt(reserved))
		return false
	}
	if reserved {
		sc.backlog = append(sc.backlog, frames...)
		sc.entries = append(sc.entries, backlogEntry{end: len(sc.backlog), kind: entryServe})
		sc.counted++
	} else {
		start := len(sc.backlog)
		for b := frames; len(b) > 0; {
			f, n, err := s.dec.Next(b)
			if err != nil || n == 0 {
				break
			}
			b = b[n:]
			h := f.Header
			h.BodyLen = 0
			sc.backlog = netproto.AppendHeader(sc.backlog, h)
		}
		sc.rejected += len(sc.backlog) - start
		sc.entries = append(sc.entries, backlogEntry{end: len(sc.backlog), kind: entryReject})
		if sc.rejected > maxRejectBacklog {
			// The client keeps pipelining past busy: close once what is
			// queued has been answered.
			sc.mu.Unlock()
			s.log.Warn("netproto: client ignores busy, closing", "id", sc.sess.ID, "remote", sc.sess.RemoteAddr)
			sc.closing = true
			sc.appendClose(netproto.AppendError(nil, 0, 0, netproto.CodeBusy, msgBusy))
			return true
		}
	}
	sc.mu.Unlock()
	if !running {
		sc.running.Store(true)
		s.queue.Push(sc)
	}
	return true
}

// appendClose adds a final response (possibly empty) after which the
// connection closes. The connection is running. Event loop only.
func (sc *serverConn) appendClose(frame []byte) {
	sc.mu.Lock()
	if !sc.dead {
		sc.backlog = append(sc.backlog, frame...)
		sc.entries = append(sc.entries, backlogEntry{end: len(sc.backlog), kind: entryClose})
	}
	sc.mu.Unlock()
}

// serve runs the connection's backlog on a worker and hands the responses
// to one AsyncWrite; the connection is released in the write's callback.
func (sc *serverConn) serve() {
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
				f, m, err := s.dec.Next(b)
				if err != nil || m == 0 {
					break // cannot happen: the loop checked these frames
				}
				b = b[m:]
				out = s.h.Serve(s.serveCtx, &sc.sess, f, out)
				closeAfter = sc.sess.CloseRequested()
			}
		case entryReject:
			for len(b) > 0 {
				f, m, err := s.dec.Next(b)
				if err != nil || m == 0 {
					break
				}
				b = b[m:]
				out = netproto.AppendError(out, f.Opcode, f.RequestID, netproto.CodeBusy, msgBusy)
				sc.counters.errs.Add(1)
			}
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
// worker's responses are in the socket or gnet's outbound buffer, and either
// queues the connection again for backlog that arrived meanwhile or returns
// it to the fast path.
func (sc *serverConn) written(_ gnet.Conn, err error) error {
	s := sc.s
	defer s.release(sc.taskCounted)
	if err == nil {
		sc.counters.bytesOut.Add(uint64(len(sc.resp)))
	}
	if cap(sc.resp) > maxRetainedBuf {
		sc.resp = nil
	}
	if err != nil || sc.taskClose || sc.closed {
		sc.closing = true
		sc.mu.Lock()
		sc.dead = true
		n := sc.counted
		sc.counted = 0
		sc.backlog, sc.entries = nil, nil
		sc.mu.Unlock()
		s.release(n)
		if !sc.closed {
			if sc.closeWhenFlushed() == gnet.Close {
				_ = sc.c.Close()
			}
		}
		return nil
	}
	sc.lastFrame.Store(s.now.Load()) // the client was waiting, not idle
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
func (sc *serverConn) closeWhenFlushed() gnet.Action {
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
func (sc *serverConn) checkFlushed() {
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

// appendFrameError appends the error response for a framing error found at
// the start of rest. The request ID and opcode are echoed only when the
// header itself was sound (the frame is just too large).
func appendFrameError(b []byte, err error, rest []byte) []byte {
	var id uint32
	var op netproto.Opcode
	if errors.Is(err, netproto.ErrFrameTooLarge) {
		if h, herr := netproto.ParseHeader(rest); herr == nil {
			id, op = h.RequestID, h.Opcode
		}
	}
	return netproto.AppendError(b, op, id, netproto.CodeOf(err), err.Error())
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// work is a worker goroutine.
func (s *Server) work() {
	defer s.workerG.Done()
	for {
		sc, ok := s.queue.Pop()
		if !ok {
			return
		}
		sc.serve()
	}
}
