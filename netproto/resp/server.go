package resp

// This file is the TCP server. The scheduling it shares with
// netproto/server (ordering, closing, shutdown) is
// netproto/internal/connsched; see its package comment. What is RESP's own:
//
//   - Commands are split by Parse; a request holding no command (an empty
//     line, "*0") is skipped.
//   - Flow control. The worker queue is not bounded server-wide (a
//     connection is in it at most once); each connection's backlog is
//     bounded by Config.MaxBacklog bytes: a client that pipelines past it
//     while its earlier commands wait for disk gets an error and is closed.
//     gnet cannot stop reading a socket, so this is the backpressure.
//   - A protocol error is answered "-ERR Protocol error: ..." before the
//     connection closes.

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ecachedb/ecache/netproto/internal/connsched"
)

const (
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
	if err := c.sched().Validate(); err != nil {
		return err
	}
	return c.Limits.Validate()
}

// sched is the scheduling part of c, with its defaults resolved.
func (c Config) sched() connsched.Config {
	sc := connsched.Config{
		Name:        "resp",
		Addr:        c.Addr,
		Multicore:   true, // EventLoops 0 means GOMAXPROCS
		EventLoops:  c.EventLoops,
		Workers:     c.Workers,
		MinRequest:  1,
		MaxBacklog:  c.MaxBacklog,
		MaxConns:    c.MaxConns,
		IdleTimeout: c.IdleTimeout,
		Logger:      c.Logger,
		ErrInvalid:  ErrInvalidConfig,
		ErrStarted:  ErrServerStarted,
		ErrClosed:   ErrServerClosed,
	}
	if sc.MaxBacklog == 0 {
		sc.MaxBacklog = 4 * c.Limits.MaxRequest
	}
	return sc
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
	sched *connsched.Server
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
	sched, err := connsched.New(cfg.sched(), &protocol{h: h, limits: cfg.Limits})
	if err != nil {
		return nil, err
	}
	return &Server{sched: sched}, nil
}

// Start listens and starts the event loops and workers. It returns once
// the listener is bound, or with the error that prevented it.
func (s *Server) Start() error { return s.sched.Start() }

// Addr returns the address the server listens on, or "" before Start.
func (s *Server) Addr() string { return s.sched.Addr() }

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	st := s.sched.Stats()
	return Stats{
		Conns: st.Conns, Accepted: st.Accepted, Rejected: st.Rejected,
		Commands: st.Requests, ProtocolErrors: st.ProtocolErrors + st.Overflows,
	}
}

// Shutdown stops accepting connections and reading commands, waits until
// the commands already handed to the workers are served and their replies
// written (or ctx ends, which cancels Serve's ctx), then closes every
// connection and stops. Later calls return the first call's result.
func (s *Server) Shutdown(ctx context.Context) error { return s.sched.Shutdown(ctx) }

// protocol is RESP as connsched drives it.
type protocol struct {
	h      Handler
	limits Limits
}

func (p *protocol) Open(id uint64, remoteAddr string) connsched.Handler {
	c := &conn{p: p}
	c.sess.ID, c.sess.RemoteAddr, c.sess.Proto = id, remoteAddr, 2
	return c
}

func (p *protocol) RefusalReply(shuttingDown bool) []byte {
	if shuttingDown {
		return AppendError(nil, msgShuttingDown)
	}
	return AppendError(nil, msgTooManyConns)
}

func (p *protocol) ErrorReply(err error, _ []byte) []byte {
	return AppendError(nil, "ERR Protocol error: "+protoMessage(err))
}

func (p *protocol) OverflowReply() []byte { return AppendError(nil, msgBacklog) }

// conn is the protocol's state for one connection.
type conn struct {
	p     *protocol
	sess  Session
	args  [][]byte // split by Next for ServeFast; event loop only
	wargs [][]byte // worker only
}

func (c *conn) Next(buf []byte) (n, need int, req bool, err error) {
	c.args, n, need, err = Parse(buf, c.args, c.p.limits)
	return n, need, n > 0 && len(c.args) > 0, err
}

func (c *conn) ServeFast(dst []byte) ([]byte, bool) { return c.p.h.ServeFast(&c.sess, c.args, dst) }

func (c *conn) Serve(ctx context.Context, cmds, dst []byte) ([]byte, int) {
	args, n, _, err := Parse(cmds, c.wargs, c.p.limits)
	c.wargs = args[:0]
	if err != nil || n == 0 {
		return dst, 0 // cannot happen: the event loop parsed these bytes
	}
	if len(args) > 0 {
		dst = c.p.h.Serve(ctx, &c.sess, args, dst)
		clear(args) // do not pin the backlog
	}
	return dst, n
}

func (c *conn) CloseRequested() bool { return c.sess.CloseRequested() }

// Release clears the arguments so they do not pin gnet's buffer.
func (c *conn) Release() {
	clear(c.args[:cap(c.args)])
	c.args = c.args[:0]
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
