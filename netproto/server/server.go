package server

// This file is the TCP server: gnet v2 event loops split the byte stream
// into frames and serve what they can on the loop (Handler.ServeFast); the
// rest goes to a bounded worker pool (Handler.Serve). The scheduling
// (ordering, flow control, closing, shutdown) is netproto/internal/connsched,
// shared with the RESP server; see its package comment. What is the binary
// protocol's own:
//
//   - QueueDepth bounds the batches queued, executing or unwritten,
//     server-wide. A batch that does not fit is answered `busy`: on an idle
//     connection each declined frame inline, on a running one by the worker
//     from the frames' headers (the stubs). gnet cannot stop reading a
//     socket, so `busy` is the backpressure; a connection that piles up more
//     than maxRejectBacklog bytes of rejected headers gets one more busy
//     error (request ID 0) and is closed.
//   - A framing error is answered with an error frame that echoes the
//     request ID only when the header was sound (appendFrameError).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/netproto/internal/connsched"
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
	// maxRejectBacklog bounds the frame headers a running connection may
	// accumulate while its batches are rejected busy; past it the client
	// is ignoring backpressure and the connection is closed.
	maxRejectBacklog = 1 << 20

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
	if err := c.sched().Validate(); err != nil {
		return err
	}
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("%w: netproto.Limits: %w", ErrInvalidConfig, err)
	}
	return nil
}

// sched is the scheduling part of c, with its defaults resolved.
func (c Config) sched() connsched.Config {
	sc := connsched.Config{
		Name:        "netproto",
		Addr:        c.Addr,
		Multicore:   c.Multicore,
		EventLoops:  c.EventLoops,
		Workers:     c.Workers,
		MinRequest:  netproto.HeaderSize,
		QueueDepth:  c.QueueDepth,
		MaxRejected: maxRejectBacklog,
		MaxConns:    c.MaxConns,
		IdleTimeout: c.IdleTimeout,
		Logger:      c.Logger,
		ErrInvalid:  ErrInvalidConfig,
		ErrStarted:  ErrServerStarted,
		ErrClosed:   ErrServerClosed,
	}
	if sc.QueueDepth == 0 {
		sc.QueueDepth = 1024
	}
	return sc
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
	sched *connsched.Server
}

// New returns a Server for cfg that serves through h. It does not
// listen until Start.
func New(cfg Config, h netproto.Handler) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("%w: nil netproto.Handler", ErrInvalidConfig)
	}
	sched, err := connsched.New(cfg.sched(), &protocol{h: h, dec: netproto.NewDecoder(cfg.Limits)})
	if err != nil {
		return nil, err
	}
	return &Server{sched: sched}, nil
}

// Start listens and starts the event loops and workers. It returns once the
// listener is bound, or with the error that prevented it.
func (s *Server) Start() error { return s.sched.Start() }

// Addr returns the address the server listens on, or "" before Start.
func (s *Server) Addr() string { return s.sched.Addr() }

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	st := s.sched.Stats()
	return Stats{
		Conns:    st.Conns,
		Accepted: st.Accepted,
		Rejected: st.Rejected,
		Frames:   st.Requests,
		// Every refused connection was sent a busy error.
		Errors:   st.Rejected + st.ProtocolErrors + st.Busy,
		BytesIn:  st.BytesIn,
		BytesOut: st.BytesOut,
	}
}

// Shutdown stops accepting connections (new ones get a busy error), stops
// reading requests, waits until every batch already handed to the workers
// has been served and its responses written, then closes all connections
// and stops the event loops and workers. If ctx ends first, the ctx of
// running Serve calls is cancelled, the rest is not waited for, and
// Shutdown returns ctx's error once everything has stopped (Serve must
// return when its ctx ends). Later calls return the first call's result.
func (s *Server) Shutdown(ctx context.Context) error { return s.sched.Shutdown(ctx) }

// protocol is the binary protocol as connsched drives it.
type protocol struct {
	h   netproto.Handler
	dec *netproto.Decoder
}

func (p *protocol) Open(id uint64, remoteAddr string) connsched.Handler {
	c := &serverConn{p: p}
	c.sess.ID, c.sess.RemoteAddr = id, remoteAddr
	return c
}

func (p *protocol) RefusalReply(shuttingDown bool) []byte {
	msg := msgTooManyConns
	if shuttingDown {
		msg = msgShuttingDown
	}
	return netproto.AppendError(nil, 0, 0, netproto.CodeBusy, msg)
}

func (p *protocol) ErrorReply(err error, rest []byte) []byte { return appendFrameError(nil, err, rest) }

func (p *protocol) OverflowReply() []byte {
	return netproto.AppendError(nil, 0, 0, netproto.CodeBusy, msgBusy)
}

func (p *protocol) AppendBusy(dst, req []byte) []byte {
	h, _ := netproto.ParseHeader(req) // Next checked it
	return netproto.AppendError(dst, h.Opcode, h.RequestID, netproto.CodeBusy, msgBusy)
}

// AppendStubs keeps the headers of frames, with no body, as stubs.
func (p *protocol) AppendStubs(dst, frames []byte) []byte {
	for b := frames; len(b) > 0; {
		f, n, err := p.dec.Next(b)
		if err != nil || n == 0 {
			break // cannot happen: the event loop split these frames
		}
		b = b[n:]
		h := f.Header
		h.BodyLen = 0
		dst = netproto.AppendHeader(dst, h)
	}
	return dst
}

func (p *protocol) AppendBusyStubs(dst, stubs []byte) ([]byte, int) {
	n := 0
	for b := stubs; len(b) > 0; {
		f, m, err := p.dec.Next(b)
		if err != nil || m == 0 {
			break // cannot happen: AppendStubs wrote them
		}
		b = b[m:]
		dst = netproto.AppendError(dst, f.Opcode, f.RequestID, netproto.CodeBusy, msgBusy)
		n++
	}
	return dst, n
}

// serverConn is the protocol's state for one connection.
type serverConn struct {
	p    *protocol
	sess netproto.Session
	f    netproto.Frame // split by Next for ServeFast; event loop only
}

func (c *serverConn) Next(buf []byte) (n, need int, req bool, err error) {
	f, n, err := c.p.dec.Next(buf)
	switch {
	case err != nil:
		return 0, 0, false, err
	case n == 0:
		need = netproto.HeaderSize
		if len(buf) >= netproto.HeaderSize {
			// The header was checked by Next: wait for the whole frame.
			h, _ := netproto.ParseHeader(buf)
			need += int(h.BodyLen)
		}
		return 0, need, false, nil
	}
	c.f = f
	return n, 0, true, nil
}

func (c *serverConn) ServeFast(dst []byte) ([]byte, bool) { return c.p.h.ServeFast(&c.sess, c.f, dst) }

func (c *serverConn) Serve(ctx context.Context, frames, dst []byte) ([]byte, int) {
	f, n, err := c.p.dec.Next(frames)
	if err != nil || n == 0 {
		return dst, 0 // cannot happen: the event loop split these frames
	}
	return c.p.h.Serve(ctx, &c.sess, f, dst), n
}

func (c *serverConn) CloseRequested() bool { return c.sess.CloseRequested() }

func (c *serverConn) Release() { c.f = netproto.Frame{} }

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
