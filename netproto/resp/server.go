package resp

// This file is the TCP server. It is the RESP twin of netproto/server and
// keeps its scheduling design; only the framing differs (RESP commands
// instead of binary frames), and flow control is simpler (see below).
//
// Ordering. One party at a time serves a connection:
//
//   - While the connection is idle, its event loop parses commands and
//     serves them with Handler.ServeFast, writing all their replies with one
//     Write per OnTraffic.
//   - The first command ServeFast declines, and every command after it, are
//     copied into the connection's backlog and the connection is put on the
//     worker queue; it is now "running", and later input goes to the
//     backlog too.
//   - A worker takes the whole backlog, serves it with Handler.Serve into
//     one buffer and hands that to one AsyncWrite. The connection stops
//     running only in that write's callback, on the event loop; if more
//     backlog arrived meanwhile the callback queues it again instead.
//
// Flow control. A connection is in the worker queue at most once, so the
// queue is bounded by the connection count. A connection's backlog is
// bounded by Config.MaxBacklog bytes: a client that pipelines past it while
// its earlier commands wait for disk gets an error and is closed. gnet
// cannot stop reading a socket, so this is the backpressure.
//
// Closing. Protocol errors and QUIT close the connection after the replies
// before them have been written. gnet's close drops outbound bytes the
// socket has not taken, so when output is still buffered the close waits
// for it (checked every tick; given up after closeFlushTimeout without
// progress).

import (
	"context"
	"fmt"
	"github.com/ecachedb/ecache/netproto/internal/gnetx"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
)

const (
	// maxRetainedBuf bounds the per-connection buffers kept between
	// batches.
	maxRetainedBuf = 256 << 10
	// closeFlushTimeout bounds how long a closing connection waits for
	// gnet's outbound buffer to shrink.
	closeFlushTimeout = 2 * time.Second
	// defaultTick is the housekeeping period when IdleTimeout is 0.
	defaultTick = 250 * time.Millisecond

	msgTooManyConns = "ERR max number of clients reached"
	msgShuttingDown = "ERR server is shutting down"
	msgBacklog      = "ERR client pipelines past the server's backlog limit while commands wait; closing"
)

// Handler executes commands; package node implements it. args alias
// buffers the server reuses after the call returns: a Handler must not
// keep them.
type Handler interface {
	// ServeFast handles one command on the event loop when it can do so
	// without blocking. It appends exactly one reply to dst and returns
	// ok=true, or returns ok=false (whatever it appended is dropped) to
	// have Serve handle the command on the worker pool.
	ServeFast(s *Session, args [][]byte, dst []byte) (out []byte, ok bool)
	// Serve handles one command and appends exactly one reply to dst. It
	// may block on disk. ctx ends when the server shuts down.
	Serve(ctx context.Context, s *Session, args [][]byte, dst []byte) []byte
}

// Config configures a Server.
type Config struct {
	// Addr is the TCP address to listen on; port 0 picks a free port.
	Addr string
	// Limits bound one command.
	Limits Limits
	// EventLoops is the number of event loops; 0 means GOMAXPROCS.
	EventLoops int
	// Workers is the number of goroutines running Handler.Serve; 0 means
	// 4*GOMAXPROCS.
	Workers int
	// MaxConns bounds open connections; 0 means no limit.
	MaxConns int
	// MaxBacklog bounds the bytes of commands one connection may have
	// waiting for the workers; 0 means 4*Limits.MaxRequest.
	MaxBacklog int
	// IdleTimeout closes connections that sent no complete command for
	// that long; 0 means never.
	IdleTimeout time.Duration
	// Logger receives the server's and gnet's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration used unless told otherwise.
func DefaultConfig() Config {
	return Config{Addr: "127.0.0.1:6380", Limits: DefaultLimits(), MaxConns: 10000}
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
	case c.MaxConns < 0:
		return bad("MaxConns", c.MaxConns, "must not be negative")
	case c.MaxBacklog < 0:
		return bad("MaxBacklog", c.MaxBacklog, "must not be negative")
	case c.IdleTimeout < 0:
		return bad("IdleTimeout", c.IdleTimeout, "must not be negative")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return bad("Addr", c.Addr, err.Error())
	}
	return c.Limits.Validate()
}

// Stats are a Server's counters.
type Stats struct {
	Conns          int64  // open connections
	Accepted       uint64 // connections accepted
	Rejected       uint64 // connections refused for MaxConns or shutdown
	Commands       uint64 // commands received
	ProtocolErrors uint64 // connections closed for a protocol error or backlog overflow
}

// Server serves RESP over TCP with gnet through a Handler. Create one with
// New, Start it and Shutdown it; it is not restartable.
type Server struct {
	cfg        Config
	h          Handler
	log        *slog.Logger
	eventLoops int
	workers    int
	maxBacklog int
	tick       time.Duration

	serveCtx    context.Context
	cancelServe context.CancelFunc

	queue   *gnetx.Queue[*conn]
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
	// busy counts running connections (queued, served or unwritten).
	busy    atomic.Int64
	drained chan struct{}
	now     atomic.Int64 // coarse clock, unix nanoseconds, set by the ticker
	nextID  atomic.Uint64

	conns     atomic.Int64
	accepted  atomic.Uint64
	rejected  atomic.Uint64
	commands  atomic.Uint64
	protoErrs atomic.Uint64

	// mu guards the connection registry.
	mu  sync.Mutex
	reg map[uint64]*conn
}

// New returns a Server for cfg that serves through h. It does not listen
// until Start.
func New(cfg Config, h Handler) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("%w: nil Handler", ErrInvalidConfig)
	}
	procs := runtime.GOMAXPROCS(0)
	s := &Server{
		cfg: cfg, h: h, log: cfg.Logger,
		eventLoops: cfg.EventLoops, workers: cfg.Workers, maxBacklog: cfg.MaxBacklog,
		tick:    defaultTick,
		booted:  make(chan struct{}),
		runDone: make(chan struct{}),
		drained: make(chan struct{}, 1),
		reg:     make(map[uint64]*conn),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.eventLoops == 0 {
		s.eventLoops = procs
	}
	if s.workers == 0 {
		s.workers = 4 * procs
	}
	if s.maxBacklog == 0 {
		s.maxBacklog = 4 * cfg.Limits.MaxRequest
	}
	if cfg.IdleTimeout > 0 {
		s.tick = min(max(cfg.IdleTimeout/4, 5*time.Millisecond), time.Second)
	}
	s.serveCtx, s.cancelServe = context.WithCancel(context.Background())
	s.queue = gnetx.NewQueue[*conn]()
	s.now.Store(time.Now().UnixNano())
	return s, nil
}

// Start listens and starts the event loops and workers. It returns once
// the listener is bound, or with the error that prevented it.
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
		gnet.WithMulticore(s.eventLoops > 1),
		gnet.WithNumEventLoop(s.eventLoops),
		gnet.WithTicker(true),
		gnet.WithReuseAddr(true),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithLogger(gnetx.Logger{L: s.log}),
	}
	go func() {
		s.runErr = gnet.Run((*events)(s), "tcp://"+s.cfg.Addr, opts...)
		close(s.runDone)
	}()
	select {
	case <-s.booted:
		s.log.Info("resp: listening", "addr", s.Addr(), "event_loops", s.eventLoops, "workers", s.workers)
		return nil
	case <-s.runDone:
		s.stopped = true
		s.queue.Close()
		s.workerG.Wait()
		s.cancelServe()
		return fmt.Errorf("resp: listen on %s: %w", s.cfg.Addr, s.runErr)
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
	return Stats{
		Conns: s.conns.Load(), Accepted: s.accepted.Load(), Rejected: s.rejected.Load(),
		Commands: s.commands.Load(), ProtocolErrors: s.protoErrs.Load(),
	}
}

// Shutdown stops accepting connections and reading commands, waits until
// the commands already handed to the workers are served and their replies
// written (or ctx ends, which cancels Serve's ctx), then closes every
// connection and stops. Later calls return the first call's result.
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
	for s.busy.Load() > 0 {
		select {
		case <-s.drained:
		case <-s.runDone:
			break drain
		case <-ctx.Done():
			err = ctx.Err()
			break drain
		}
	}
	s.cancelServe()
	stopCtx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = s.eng.Stop(stopCtx)
	<-s.runDone
	if s.runErr != nil {
		s.log.Error("resp: event loops stopped with an error", "err", s.runErr)
	}
	s.queue.Close()
	s.workerG.Wait()
	s.log.Info("resp: stopped", "addr", s.Addr())
	return err
}

// conn is one connection's state.
type conn struct {
	s    *Server
	c    gnet.Conn
	sess Session

	// Event loop only.
	args      [][]byte
	out       []byte
	need      int  // input length worth parsing again
	kept      int  // bytes left in gnet's buffer by the last OnTraffic
	closing   bool // no more input is served
	closed    bool // OnClose ran
	flushLeft int

	running    atomic.Bool // a worker or its write holds the connection
	inFlight   atomic.Bool // counted in Server.busy
	lastActive atomic.Int64
	closeAt    atomic.Int64
	idleClosed atomic.Bool

	// mu guards the backlog, which the event loop appends to and a worker
	// takes whole.
	mu         sync.Mutex
	backlog    []byte
	closeReply []byte // sent after the backlog, then the connection closes
	closeAfter bool
	dead       bool

	// Owned by the worker holding the connection, then by the write
	// callback.
	work      []byte
	wargs     [][]byte
	resp      []byte
	taskClose bool
	onWritten gnet.AsyncCallback
}

// finish ends the connection's running episode in Server.busy.
func (sc *conn) finish() {
	if sc.inFlight.CompareAndSwap(true, false) {
		if sc.s.busy.Add(-1) == 0 && sc.s.draining.Load() {
			select {
			case sc.s.drained <- struct{}{}:
			default:
			}
		}
	}
}

// events is the Server as gnet sees it.
type events Server

func (e *events) server() *Server { return (*Server)(e) }

func (e *events) OnBoot(eng gnet.Engine) gnet.Action {
	s := e.server()
	s.eng = eng
	addr := s.cfg.Addr
	if a, err := gnetx.ListenAddr(eng); err == nil {
		addr = a
	} else {
		s.log.Warn("resp: cannot read the listen address", "err", err)
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
		return AppendError(nil, msgShuttingDown), gnet.Close
	}
	if n := s.conns.Add(1); s.cfg.MaxConns > 0 && n > int64(s.cfg.MaxConns) {
		s.conns.Add(-1)
		s.rejected.Add(1)
		return AppendError(nil, msgTooManyConns), gnet.Close
	}
	s.accepted.Add(1)
	sc := &conn{s: s, c: c, need: 1}
	sc.sess.ID = s.nextID.Add(1)
	sc.sess.Proto = 2
	if ra := c.RemoteAddr(); ra != nil {
		sc.sess.RemoteAddr = ra.String()
	}
	sc.onWritten = sc.written
	sc.lastActive.Store(s.now.Load())
	c.SetContext(sc)
	s.mu.Lock()
	s.reg[sc.sess.ID] = sc
	s.mu.Unlock()
	return nil, gnet.None
}

func (e *events) OnClose(c gnet.Conn, err error) gnet.Action {
	s := e.server()
	sc, _ := c.Context().(*conn)
	if sc == nil {
		return gnet.None
	}
	sc.closed, sc.closing = true, true
	sc.mu.Lock()
	sc.dead = true
	sc.backlog = nil
	sc.mu.Unlock()
	sc.finish()
	s.conns.Add(-1)
	s.mu.Lock()
	delete(s.reg, sc.sess.ID)
	s.mu.Unlock()
	if err != nil {
		s.log.Debug("resp: connection closed", "id", sc.sess.ID, "remote", sc.sess.RemoteAddr, "err", err)
	}
	return gnet.None
}

// OnTraffic parses every complete command gnet has buffered for c and
// serves them in order: on the loop while ServeFast accepts them, the rest
// as one batch for the workers.
func (e *events) OnTraffic(c gnet.Conn) gnet.Action {
	s := e.server()
	sc, _ := c.Context().(*conn)
	if sc == nil {
		return gnet.Close
	}
	avail := c.InboundBuffered()
	switch {
	case sc.closing:
		_, _ = c.Discard(avail)
		sc.kept = 0
		return gnet.None
	case avail < sc.need || s.draining.Load():
		sc.kept = avail
		return gnet.None
	}
	buf, err := c.Peek(-1)
	if err != nil {
		return gnet.Close
	}
	running := sc.running.Load()
	out := sc.out[:0]
	pos, slowStart, cmds, need := 0, -1, 0, 1
	if running {
		slowStart = 0
	}
	closeAfter := false
	var perr error
	for pos < len(buf) {
		args, n, nd, err := Parse(buf[pos:], sc.args, s.cfg.Limits)
		sc.args = args[:0]
		if err != nil {
			perr = err
			break
		}
		if n == 0 {
			need = nd
			break
		}
		if len(args) == 0 {
			pos += n
			continue
		}
		cmds++
		if slowStart >= 0 {
			pos += n
			continue
		}
		before := len(out)
		var ok bool
		if out, ok = s.h.ServeFast(&sc.sess, args, out); ok {
			pos += n
			if sc.sess.CloseRequested() {
				closeAfter = true
				break
			}
			continue
		}
		out = out[:before]
		slowStart = pos
		pos += n
	}
	clear(sc.args[:cap(sc.args)]) // do not pin gnet's buffer
	if cmds > 0 {
		s.commands.Add(uint64(cmds))
		sc.lastActive.Store(s.now.Load())
	}
	var closeReply []byte
	if perr != nil {
		closeAfter = true
		closeReply = AppendError(nil, "ERR Protocol error: "+protoMessage(perr))
		s.protoErrs.Add(1)
		s.log.Debug("resp: protocol error, closing", "id", sc.sess.ID, "remote", sc.sess.RemoteAddr, "err", perr)
	}
	if len(out) > 0 {
		if _, err := c.Write(out); err != nil {
			sc.keepOut(out)
			return gnet.None
		}
	}
	sc.keepOut(out)
	queued := running
	if slowStart >= 0 && pos > slowStart {
		if !sc.enqueue(buf[slowStart:pos], running) {
			closeAfter = true // backlog overflow: enqueue queued the error
		}
		queued = true
	}
	if closeAfter {
		sc.closing = true
		_, _ = c.Discard(avail)
		sc.kept = 0
		if queued {
			sc.appendClose(closeReply)
			return gnet.None
		}
		if len(closeReply) > 0 {
			if _, err := c.Write(closeReply); err != nil {
				return gnet.None
			}
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

// protoMessage is an error's text without the package's sentinel
// prefixes.
func protoMessage(err error) string {
	msg := err.Error()
	for _, p := range []string{ErrProtocol.Error() + ": ", ErrTooLarge.Error() + ": "} {
		if len(msg) >= len(p) && msg[:len(p)] == p {
			msg = msg[len(p):]
		}
	}
	return msg
}

// OnTick advances the coarse clock, closes idle connections and those
// whose close waits for output to drain.
func (e *events) OnTick() (time.Duration, gnet.Action) {
	s := e.server()
	now := time.Now().UnixNano()
	s.now.Store(now)
	idle := int64(s.cfg.IdleTimeout)
	idleLimit := idle + int64(s.tick)
	s.mu.Lock()
	for _, sc := range s.reg {
		if sc.closeAt.Load() != 0 {
			sc.checkFlushed()
			continue
		}
		if idle > 0 && !sc.running.Load() && now-sc.lastActive.Load() >= idleLimit &&
			sc.idleClosed.CompareAndSwap(false, true) {
			_ = sc.c.Close()
		}
	}
	s.mu.Unlock()
	return s.tick, gnet.None
}

func (sc *conn) keepOut(out []byte) {
	if cap(out) > maxRetainedBuf {
		out = nil
	}
	sc.out = out[:0]
}

// enqueue copies commands into the backlog and puts the connection on the
// worker queue unless it is already running. It returns false when the
// backlog limit is exceeded; the connection then closes after what is
// queued. Event loop only.
func (sc *conn) enqueue(cmds []byte, running bool) bool {
	s := sc.s
	sc.mu.Lock()
	if sc.dead {
		sc.mu.Unlock()
		return true
	}
	ok := len(sc.backlog)+len(cmds) <= s.maxBacklog
	if ok {
		sc.backlog = append(sc.backlog, cmds...)
	}
	sc.mu.Unlock()
	if !ok {
		s.protoErrs.Add(1)
		s.log.Warn("resp: client pipelines past the backlog limit, closing", "id", sc.sess.ID, "remote", sc.sess.RemoteAddr)
		sc.appendClose(AppendError(nil, msgBacklog))
	}
	if !running {
		sc.running.Store(true)
		sc.inFlight.Store(true)
		s.busy.Add(1)
		s.queue.Push(sc)
	}
	return ok
}

// appendClose sets the final reply (possibly empty) after which the
// running connection closes. Event loop only.
func (sc *conn) appendClose(reply []byte) {
	sc.mu.Lock()
	if !sc.dead && !sc.closeAfter {
		sc.closeAfter = true
		sc.closeReply = reply
	}
	sc.mu.Unlock()
}

// serve runs the connection's backlog on a worker and hands the replies
// to one AsyncWrite.
func (sc *conn) serve() {
	s := sc.s
	sc.mu.Lock()
	sc.work, sc.backlog = sc.backlog, sc.work[:0]
	closeAfter, closeReply, dead := sc.closeAfter, sc.closeReply, sc.dead
	sc.closeAfter, sc.closeReply = false, nil
	sc.mu.Unlock()
	if dead {
		sc.finish()
		return
	}
	out := sc.resp[:0]
	quit := false
	for b := sc.work; len(b) > 0 && !quit; {
		args, n, _, err := Parse(b, sc.wargs, s.cfg.Limits)
		sc.wargs = args[:0]
		if err != nil || n == 0 {
			break // cannot happen: the event loop parsed these bytes
		}
		b = b[n:]
		if len(args) == 0 {
			continue
		}
		out = s.h.Serve(s.serveCtx, &sc.sess, args, out)
		quit = sc.sess.CloseRequested()
	}
	clear(sc.wargs[:cap(sc.wargs)])
	if closeAfter && !quit {
		out = append(out, closeReply...)
	}
	if cap(sc.work) > maxRetainedBuf {
		sc.work = nil
	}
	sc.resp, sc.taskClose = out, closeAfter || quit
	if err := sc.c.AsyncWrite(out, sc.onWritten); err != nil {
		sc.finish() // the event loop is gone: nobody runs the callback
	}
}

// written is the AsyncWrite callback, on the event loop.
func (sc *conn) written(_ gnet.Conn, err error) error {
	s := sc.s
	if cap(sc.resp) > maxRetainedBuf {
		sc.resp = nil
	}
	if err != nil || sc.taskClose || sc.closed {
		sc.closing = true
		sc.mu.Lock()
		sc.dead = true
		sc.backlog = nil
		sc.mu.Unlock()
		sc.finish()
		if !sc.closed && sc.closeWhenFlushed() == gnet.Close {
			_ = sc.c.Close()
		}
		return nil
	}
	sc.lastActive.Store(s.now.Load())
	sc.mu.Lock()
	more := len(sc.backlog) > 0 || sc.closeAfter
	sc.mu.Unlock()
	if more {
		s.queue.Push(sc)
	} else {
		sc.running.Store(false)
		sc.finish()
	}
	return nil
}

// closeWhenFlushed returns gnet.Close when gnet holds no unsent output for
// the connection; otherwise the ticker closes it once the output drains.
// Event loop only.
func (sc *conn) closeWhenFlushed() gnet.Action {
	left := sc.c.OutboundBuffered()
	if left == 0 {
		return gnet.Close
	}
	sc.flushLeft = left
	sc.closeAt.Store(sc.s.now.Load())
	return gnet.None
}

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
