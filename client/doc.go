// Package client is the Go SDK for ecache: a pool of pipelined connections
// speaking the binary protocol of docs/protocol.md.
//
// A Client keeps Config.ConnsPerNode connections to each node of
// Config.Addrs and sends each call on the next healthy one, round-robin;
// any node serves any key. With Config.Routing.Enabled the client learns
// the cluster from a node and sends each single-key request straight to one
// of the key's replicas instead (routing.go). Every connection pipelines:
// callers queue request frames, one writer goroutine sends whatever has
// accumulated in one write, and one reader goroutine matches responses to
// calls by request ID.
//
// Causality: every read returns an opaque causal context (Item.Context) and
// every write returns the context of the write just made. Send the context
// back unchanged with the next write of the same key (WithCausalContext) to
// replace exactly the versions it covers; a write without one is blind. In
// a siblings namespace concurrent writes come back from Get as several
// Values: resolve them and write the result with the context to collapse
// them.
//
// Invariants:
//   - A call whose context ends returns ctx.Err() at once; its response, if
//     it comes later, is discarded and the connection stays usable.
//   - A broken connection fails its pending calls with an error wrapping
//     ErrConnLost (they may or may not have been executed) and is
//     redialled, with backoff after failed dials, when a later call passes
//     over it; calls use the other connections meanwhile. Only a request
//     that was never queued is retried automatically.
//   - Keys, values and frames over Config.Limits fail before sending.
//   - Server error codes map to sentinel errors: errors.Is(err,
//     ErrWrongType) holds for a *ServerError with that code.
//   - Results are copied out of the connection's buffers: callers own every
//     byte slice they get — except a Pipeline's results, which stay valid
//     until its next Exec or Reset (a Pipeline sends many GETs and PUTs in
//     one write and waits for them with one wake-up, without allocating).
//   - Close fails pending calls with ErrClosed and returns only after every
//     goroutine the client started has exited.
package client
