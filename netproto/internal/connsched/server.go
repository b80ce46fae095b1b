package connsched

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecachedb/ecache/netproto/internal/gnetx"
	"github.com/panjf2000/gnet/v2"
)

const (
	// maxRetainedBuf bounds the per-connection buffers kept between
	// batches; a larger one (a burst of big values) is dropped after use.
	maxRetainedBuf = 256 << 10
	// closeFlushTimeout bounds how long a closing connection waits for
	// gnet's outbound buffer to shrink (a client that stops reading).
	closeFlushTimeout = 2 * time.Second
	// defaultTick is the housekeeping period when IdleTimeout is 0.
	defaultTick = 250 * time.Millisecond
)

// Protocol is a wire protocol as the scheduler drives it. Its methods may
// be called from any event loop or worker at once.
type Protocol interface {
	// Open returns the Handler of a newly accepted connection.
	Open(id uint64, remoteAddr string) Handler
	// RefusalReply is sent to a connection refused because the server is
	// full or, with shuttingDown, because it is shutting down.
	RefusalReply(shuttingDown bool) []byte
	// ErrorReply is sent, last, to a connection whose input Handler.Next
	// rejected with err; rest is the input from the bad request on.
	ErrorReply(err error, rest []byte) []byte
	// OverflowReply is sent, last, to a connection closed for pipelining
	// past Config.MaxBacklog or Config.MaxRejected.
	OverflowReply() []byte
}

// Rejecter is the part of a Protocol that answers requests busy; New
// requires it when Config.QueueDepth bounds the queue.
type Rejecter interface {
	// AppendBusy appends the busy reply to req, one request Next split.
	// Event loop.
	AppendBusy(dst, req []byte) []byte
	// AppendStubs appends the compact form of reqs (requests Next split)
	// from which AppendBusyStubs answers them. Event loop.
	AppendStubs(dst, reqs []byte) []byte
	// AppendBusyStubs appends the busy replies of the requests stubs
	// stand for and returns their number. Worker.
	AppendBusyStubs(dst, stubs []byte) (out []byte, n int)
}

// Handler is a Protocol's state for one connection. Next, ServeFast and
// Release run on the connection's event loop, Serve on a worker, and the
// two sides may run at the same time (they must not share scratch state);
// the calls of one side never overlap, and the scheduler never has
// ServeFast and Serve run at once.
type Handler interface {
	// Next splits the request at the start of buf. It returns n > 0 for a
	// complete request of n bytes (req is false when those bytes hold no
	// request, such as an empty line), n == 0 and the length buf must
	// reach when the request is incomplete, or the error that makes the
	// rest of the input unusable.
	Next(buf []byte) (n, need int, req bool, err error)
	// ServeFast serves the request Next split last, appending its reply
	// to dst, when it can do so without blocking; ok=false declines it
	// (whatever was appended is dropped) to have Serve handle it.
	ServeFast(dst []byte) (out []byte, ok bool)
	// Serve serves the request at the start of reqs, which Next has split
	// before, appending its reply to dst, and returns the bytes it took
	// (bytes Next found to hold no request are taken with no reply). It
	// may block; ctx ends when the server shuts down.
	Serve(ctx context.Context, reqs, dst []byte) (out []byte, n int)
	// CloseRequested reports whether a request served asked to close the
	// connection after its reply.
	CloseRequested() bool
	// Release drops what the Handler kept from the buffer Next split (the
	// event loop reuses it).
	Release()
}

// Config configures a Server. The servers resolve their defaults before
// filling it.
type Config struct {
	// Name prefixes log messages and listen errors ("netproto", "resp").
	Name string
	// Addr is the TCP address to listen on; port 0 picks a free port.
	Addr string
	// Multicore makes EventLoops 0 mean GOMAXPROCS event loops.
	Multicore bool
	// EventLoops is the number of event loops; 0 means GOMAXPROCS with
	// Multicore and 1 without.
	EventLoops int
	// Workers is the number of goroutines running Handler.Serve; 0 means
	// 4*GOMAXPROCS.
	Workers int
	// MinRequest is the fewest bytes a request takes: input shorter than
	// that is not worth splitting.
	MinRequest int
	// QueueDepth bounds the batches queued, executing or unwritten,
	// server-wide; batches beyond it are answered busy. 0 means no bound.
	QueueDepth int
	// MaxRejected bounds the bytes of stubs a running connection may hold
	// for requests to answer busy. 0 means no bound.
	MaxRejected int
	// MaxBacklog bounds the bytes of requests a connection may have
	// waiting for the workers. 0 means no bound.
	MaxBacklog int
	// MaxConns bounds open connections; 0 means no limit.
	MaxConns int
	// IdleTimeout closes connections that sent no complete request for
	// that long; 0 means never.
	IdleTimeout time.Duration
	// Logger receives the server's and gnet's logs; nil discards them.
	Logger *slog.Logger
	// ErrInvalid is the sentinel Validate wraps, ErrStarted and ErrClosed
	// what Start returns when called again and after Shutdown: the
	// server's own. nil means this package's.
	ErrInvalid, ErrStarted, ErrClosed error
}

// Validate reports the first unusable field.
func (c Config) Validate() error {
	bad := func(field string, v any, why string) error {
		sentinel := c.ErrInvalid
		if sentinel == nil {
			sentinel = ErrInvalidConfig
		}
		return fmt.Errorf("%w: %s %v (%s)", sentinel, field, v, why)
	}
	switch {
	case c.Addr == "":
		return bad("Addr", `""`, "must be host:port")
	case c.EventLoops < 0:
		return bad("EventLoops", c.EventLoops, "must not be negative")
	case c.Workers < 0:
		return bad("Workers", c.Workers, "must not be negative")
	case c.MinRequest <= 0:
		return bad("MinRequest", c.MinRequest, "must be positive")
	case c.QueueDepth < 0:
		return bad("QueueDepth", c.QueueDepth, "must not be negative")
	case c.MaxRejected < 0:
		return bad("MaxRejected", c.MaxRejected, "must not be negative")
	case c.MaxBacklog < 0:
		return bad("MaxBacklog", c.MaxBacklog, "must not be negative")
	case c.MaxConns < 0:
		return bad("MaxConns", c.MaxConns, "must not be negative")
	case c.IdleTimeout < 0:
		return bad("IdleTimeout", c.IdleTimeout, "must not be negative")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return bad("Addr", c.Addr, err.Error())
	}
	return nil
}

// Stats are a Server's counters.
type Stats struct {
	Conns          int64  // open connections
	Accepted       uint64 // connections accepted (not counting refused ones)
	Rejected       uint64 // connections refused for MaxConns or shutdown
	Requests       uint64 // requests split off the input
	ProtocolErrors uint64 // connections closed for input Next rejected
	Busy           uint64 // requests answered busy
	Overflows      uint64 // connections closed for MaxBacklog or MaxRejected
	BytesIn        uint64 // bytes read from accepted connections
	BytesOut       uint64 // bytes of replies written
}

// Server runs a Protocol over TCP with gnet. Create one with New, Start
// it, and Shutdown it; a Server is not restartable.
type Server struct {
	cfg   Config
	proto Protocol
	rej   Rejecter // nil unless QueueDepth > 0
	log   *slog.Logger
	tick  time.Duration

	// serveCtx is the ctx of every Serve call; cancelled by Shutdown once
	// the drain is over or its deadline passed.
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
	// pending counts batches queued, executing or not yet written; see
	// Config.QueueDepth.
	pending atomic.Int64
	drained chan struct{} // signalled when pending drops to 0 while draining
	// now is a coarse clock (unix nanoseconds) the ticker advances, so the
	// request path does not read the time.
	now    atomic.Int64
	nextID atomic.Uint64

	conns     atomic.Int64
	accepted  atomic.Uint64
	rejected  atomic.Uint64
	protoErrs atomic.Uint64
	overflows atomic.Uint64

	// mu guards the connection registry and the counters of closed
	// connections.
	mu      sync.Mutex
	reg     map[uint64]*conn
	retired connCounters
}

// New returns a Server for cfg that serves p. It does not listen until
// Start.
func New(cfg Config, p Protocol) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		proto:   p,
		log:     cfg.Logger,
		tick:    defaultTick,
		booted:  make(chan struct{}),
		runDone: make(chan struct{}),
		drained: make(chan struct{}, 1),
		reg:     make(map[uint64]*conn),
	}
	if cfg.QueueDepth > 0 {
		rej, ok := p.(Rejecter)
		if !ok {
			return nil, fmt.Errorf("%w: QueueDepth needs a Protocol that is a Rejecter", ErrInvalidConfig)
		}
		s.rej = rej
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.cfg.EventLoops == 0 {
		s.cfg.EventLoops = 1
		if cfg.Multicore {
			s.cfg.EventLoops = runtime.GOMAXPROCS(0)
		}
	}
	if s.cfg.Workers == 0 {
		s.cfg.Workers = 4 * runtime.GOMAXPROCS(0)
	}
	if s.cfg.ErrStarted == nil {
		s.cfg.ErrStarted = ErrStarted
	}
	if s.cfg.ErrClosed == nil {
		s.cfg.ErrClosed = ErrClosed
	}
	if cfg.IdleTimeout > 0 {
		// Idle connections close between IdleTimeout and 1.5x IdleTimeout.
		s.tick = min(max(cfg.IdleTimeout/4, 5*time.Millisecond), time.Second)
	}
	s.serveCtx, s.cancelServe = context.WithCancel(context.Background())
	s.queue = gnetx.NewQueue[*conn]()
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
		return s.cfg.ErrClosed
	case s.started:
		return s.cfg.ErrStarted
	}
	s.started = true
	for range s.cfg.Workers {
		s.workerG.Add(1)
		go s.work()
	}
	opts := []gnet.Option{
		gnet.WithMulticore(s.cfg.Multicore || s.cfg.EventLoops > 1),
		gnet.WithNumEventLoop(s.cfg.EventLoops),
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
		s.log.Info(s.cfg.Name+": listening", "addr", s.Addr(), "event_loops", s.cfg.EventLoops, "workers", s.cfg.Workers)
		return nil
	case <-s.runDone:
		s.stopped = true
		s.queue.Close()
		s.workerG.Wait()
		s.cancelServe()
		return fmt.Errorf("%s: listen on %s: %w", s.cfg.Name, s.cfg.Addr, s.runErr)
	}
}

// Addr returns the address the server listens on, or "" before Start.
func (s *Server) Addr() string {
	if a := s.addr.Load(); a != nil {
		return *a
	}
	return ""
}

// Draining reports whether Shutdown has begun.
func (s *Server) Draining() bool { return s.draining.Load() }

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Conns:          s.conns.Load(),
		Accepted:       s.accepted.Load(),
		Rejected:       s.rejected.Load(),
		ProtocolErrors: s.protoErrs.Load(),
		Overflows:      s.overflows.Load(),
	}
	s.mu.Lock()
	s.retired.addTo(&st)
	for _, sc := range s.reg {
		sc.counters.addTo(&st)
	}
	s.mu.Unlock()
	return st
}

// Shutdown stops accepting connections (new ones get the refusal reply),
// stops reading requests, waits until every batch already handed to the
// workers has been served and its replies written, then closes all
// connections and stops the event loops and workers. If ctx ends first,
// the ctx of running Serve calls is cancelled, the rest is not waited for,
// and Shutdown returns ctx's error once everything has stopped (Serve must
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
		s.log.Error(s.cfg.Name+": event loops stopped with an error", "err", s.runErr)
	}
	s.queue.Close()
	s.workerG.Wait()
	s.log.Info(s.cfg.Name+": stopped", "addr", s.Addr())
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
	if s.pending.Add(1) > int64(s.cfg.QueueDepth) && s.cfg.QueueDepth > 0 {
		s.release(1)
		return false
	}
	return true
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

// connCounters are per-connection counters, summed by Stats. They are per
// connection so that event loops do not contend on shared cache lines.
type connCounters struct {
	requests, busy, bytesIn, bytesOut atomic.Uint64
}

func (c *connCounters) addTo(st *Stats) {
	st.Requests += c.requests.Load()
	st.Busy += c.busy.Load()
	st.BytesIn += c.bytesIn.Load()
	st.BytesOut += c.bytesOut.Load()
}

func (c *connCounters) add(o *connCounters) {
	c.requests.Add(o.requests.Load())
	c.busy.Add(o.busy.Load())
	c.bytesIn.Add(o.bytesIn.Load())
	c.bytesOut.Add(o.bytesOut.Load())
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
