package netproto

import (
	"context"
	"sync/atomic"
)

// Session is the per-connection state a Handler sees. The server creates
// one per connection; a Handler may set its fields (for example after a
// HELLO with the right password). Calls for one session never overlap.
type Session struct {
	// ID is unique among the server's connections.
	ID uint64
	// RemoteAddr is the client's address.
	RemoteAddr string
	// Authenticated is set by the Handler once HELLO supplied the password
	// (or when no password is configured).
	Authenticated bool
	// Peer is set by the Handler once HELLO supplied the cluster's peer
	// secret: the connection comes from another node of the cluster and may
	// send the peer operations (REPLICATE, FETCH).
	Peer bool
	// ClientName is what the client's HELLO called itself.
	ClientName string
	// Version is the protocol version agreed by HELLO (0 before HELLO).
	Version uint8

	closing atomic.Bool
}

// CloseAfterReply asks the server to close the connection once the current
// batch of responses has been written (used after errors that leave the
// stream unusable).
func (s *Session) CloseAfterReply() { s.closing.Store(true) }

// CloseRequested reports whether CloseAfterReply was called.
func (s *Session) CloseRequested() bool { return s.closing.Load() }

// Handler executes requests. netproto frames, limits and schedules; the
// Handler (package node) decides what a request means. Frame bodies alias
// buffers the server reuses after the call returns: a Handler must not keep
// them.
type Handler interface {
	// ServeFast handles f on the network event loop when it can do so
	// without blocking (for example a GET that hits the memory tier). It
	// appends exactly one response frame to dst and returns ok=true, or
	// returns dst unchanged and ok=false to have Serve handle f on the
	// worker pool.
	ServeFast(s *Session, f Frame, dst []byte) (out []byte, ok bool)
	// Serve handles f and appends exactly one response frame to dst. It may
	// block on disk (and, later, the network). ctx ends when the server
	// shuts down.
	Serve(ctx context.Context, s *Session, f Frame, dst []byte) []byte
}
