// Package connsched is the request scheduling that ecache's two gnet
// servers share: the binary protocol (netproto/server) and RESP
// (netproto/resp). A server supplies a Protocol, which splits requests off
// a connection's input and serves them; connsched owns the listener, the
// event loops, the worker pool, flow control, idle and flushing closes,
// shutdown and the counters.
//
// Ordering. Replies of one connection leave in request order because the
// connection is served by exactly one party at a time:
//
//   - While the connection is idle (no slow work), its event loop splits
//     requests and serves them with Handler.ServeFast, writing their replies
//     with one Write per OnTraffic.
//   - The first request ServeFast declines, and every request after it, are
//     copied into the connection's backlog and the connection is put on the
//     worker queue; it is now "running". While it runs, every later request
//     goes to the backlog too, never to ServeFast.
//   - A worker takes the whole backlog, serves it with Handler.Serve into
//     one buffer and hands that to one AsyncWrite. The connection stops
//     running only in that write's callback, which runs on the event loop
//     after the bytes are in the socket (or gnet's outbound buffer); if more
//     backlog arrived meanwhile the callback queues the connection again.
//
// So the event loop never writes while a worker's reply is unwritten, and at
// most one worker holds a connection, which also keeps the Handler calls of
// one connection from overlapping.
//
// Flow control. A connection is in the worker queue at most once, so the
// queue is bounded by the connection count. Config.QueueDepth, when set,
// bounds the batches (one per OnTraffic and connection) that are queued,
// executing or unwritten, server-wide. A batch that does not fit is answered
// busy (Rejecter): on an idle connection each declined request is answered
// inline and later requests still try the fast path; on a running
// connection the batch is kept as stubs and the worker answers each request
// busy, in order. Config.MaxRejected bounds those stubs and
// Config.MaxBacklog the bytes a connection may have waiting: gnet cannot
// stop reading a socket, so a client that pipelines past either gets the
// Protocol's overflow reply after what is queued, and is closed.
//
// Closing. Requests that cannot be split and Handler.CloseRequested close
// the connection after the replies before them have been written: directly
// from OnTraffic when nothing is queued, otherwise from the worker write's
// callback. gnet's close drops outbound bytes the socket does not take at
// once, so when gnet still buffers output the close waits for it (checked
// every tick; given up after closeFlushTimeout without progress).
//
// Shutdown refuses new connections, stops reading, waits until every batch
// handed to the workers has been served and written (or its ctx ends, which
// cancels the ctx of Handler.Serve), then stops the event loops and joins
// the workers.
package connsched
