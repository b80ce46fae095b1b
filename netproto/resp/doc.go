// Package resp serves the Redis serialization protocol (RESP2 and RESP3)
// over TCP with gnet, so that redis-cli, redis-benchmark and Redis client
// libraries can talk to an ecache node.
//
// The package frames, limits and schedules; a Handler (package node)
// decides what a command means. The server follows the design of
// netproto/server: commands are served on the event loop while the Handler
// can answer without blocking (ServeFast), the rest of a connection's input
// goes, in order, to a bounded worker pool (Serve), and each batch of
// replies leaves in one write. Replies of one connection are always in
// command order.
//
// Invariants: a request that cannot be parsed, or exceeds Limits, is
// answered with one "-ERR Protocol error: ..." reply after the replies to
// the commands before it, and then that connection, and only that one, is
// closed.
package resp
