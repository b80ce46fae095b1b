package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecachedb/ecache/netproto"
)

// Buffer sizes. Buffers that grew past the cap for one large frame are
// dropped once it is done, so one big value does not pin memory forever.
const (
	readBufSize = 64 << 10
	bufKeepCap  = 1 << 20
)

// call is one request in flight. Calls are pooled: a call goes back to the
// pool only when no connection can still complete it (it was completed, or
// removed from its connection's pending map before a response arrived).
type call struct {
	op netproto.Opcode
	id uint32

	// done receives one value when a connection completes the call, after
	// it has set err, isErr and resp. A call in a group signals the group
	// instead.
	done chan struct{}
	// grp, when set, is the pipeline batch the call belongs to.
	grp *callGroup
	// timer enforces Config.RequestTimeout; stopped when idle.
	timer *time.Timer

	err   error  // the call failed before or without a response
	isErr bool   // resp is an ErrorBody
	resp  []byte // the response body, owned by the call

	// The request and response bodies, reused so that encoding and
	// decoding through the netproto.Body interface does not allocate.
	req requestBodies
	res responseBodies
}

type requestBodies struct {
	hello   netproto.HelloRequest
	ping    netproto.PingBody
	get     netproto.GetRequest
	put     netproto.PutRequest
	del     netproto.DelRequest
	mget    netproto.MGetRequest
	mput    netproto.MPutRequest
	counter netproto.CounterRequest
	set     netproto.SetRequest
	key     netproto.KeyRequest
	expire  netproto.ExpireRequest
	stats   netproto.StatsRequest
}

type responseBodies struct {
	hello    netproto.HelloResponse
	ping     netproto.PingBody
	get      netproto.GetResponse
	write    netproto.WriteResponse
	mget     netproto.MGetResponse
	mput     netproto.MPutResponse
	counter  netproto.CounterResponse
	status   netproto.StatusResponse
	smembers netproto.SMembersResponse
	ttl      netproto.TTLResponse
	stats    netproto.StatsResponse
}

var callPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &call{done: make(chan struct{}, 1), timer: t}
}}

func getCall() *call { return callPool.Get().(*call) }

func putCall(cl *call) {
	cl.err, cl.isErr, cl.grp = nil, false, nil
	// Drop references to the caller's keys and values, keeping the storage
	// of the lists the bodies build.
	keys, entries := cl.req.mget.Keys, cl.req.mput.Entries
	clear(keys[:cap(keys)])
	clear(entries[:cap(entries)])
	cl.req = requestBodies{}
	cl.req.mget.Keys, cl.req.mput.Entries = keys[:0], entries[:0]
	if cap(cl.resp) > bufKeepCap {
		cl.resp = nil
		cl.res = responseBodies{}
	}
	callPool.Put(cl)
}

// callGroup completes a batch of calls sent together (a Pipeline) with
// one wake-up instead of one per call: whoever completes or abandons the
// last call of the group signals done.
type callGroup struct {
	// left counts the calls neither completed nor abandoned.
	left atomic.Int32
	// done receives one value when left reaches zero through a completion.
	done chan struct{}
}

// complete hands a finished call to its waiter: the call's own channel, or
// its group's once the group's last call is finished.
func complete(cl *call) {
	if g := cl.grp; g != nil {
		if g.left.Add(-1) == 0 {
			g.done <- struct{}{}
		}
		return
	}
	cl.done <- struct{}{}
}

// conn is one connection to a node. Callers append request frames to wbuf;
// the writer goroutine writes whatever has accumulated in one write, so
// concurrent requests coalesce. The reader goroutine decodes responses and
// completes the pending calls by request ID. Either goroutine, or Close,
// breaks the connection with fail, which fails every pending call.
type conn struct {
	addr   string
	nc     net.Conn
	log    *slog.Logger
	limits netproto.Limits

	// wake has room for one token: wbuf has bytes for the writer.
	wake chan struct{}
	// closing is closed by fail.
	closing chan struct{}
	// broken is set by fail; read without mu on the pool's fast path.
	broken atomic.Bool

	// Set by HELLO before the connection is published, then read-only.
	nodeID uint64
	server string

	// mu guards the fields below.
	mu sync.Mutex
	// nextID is the last request ID issued; 0 is never used.
	nextID uint32
	// pending holds the calls sent and not yet answered or abandoned.
	pending map[uint32]*call
	// wbuf holds frames not yet taken by the writer.
	wbuf []byte
	// err is why the connection broke; nil while it is usable.
	err error
}

func newConn(addr string, nc net.Conn, log *slog.Logger, limits netproto.Limits) *conn {
	return &conn{
		addr:    addr,
		nc:      nc,
		log:     log,
		limits:  limits,
		wake:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		pending: make(map[uint32]*call),
	}
}

// errNotSent wraps the error send returns when the connection broke before
// the request was queued: nothing was sent, so another connection may
// safely be tried.
var errNotSent = errors.New("client: request not sent")

// send queues cl's request frame and registers cl to receive the response.
func (c *conn) send(cl *call, op netproto.Opcode, body netproto.Body) error {
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return fmt.Errorf("%w: %w", errNotSent, err)
	}
	err := c.queueLocked(cl, op, body)
	c.mu.Unlock()
	if err == nil {
		c.signalWriter()
	}
	return err
}

// queueLocked appends cl's request frame to wbuf and registers cl as
// pending. c.mu is held and the connection is not broken.
func (c *conn) queueLocked(cl *call, op netproto.Opcode, body netproto.Body) error {
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	start := len(c.wbuf)
	c.wbuf = netproto.AppendRequest(c.wbuf, op, c.nextID, body)
	if n := len(c.wbuf) - start; n > c.limits.MaxFrameSize {
		c.wbuf = c.wbuf[:start]
		return fmt.Errorf("%w: %s request of %d bytes, limit %d", ErrFrameTooLarge, op, n, c.limits.MaxFrameSize)
	}
	// A call may be sent again after failing (a routed read retried on
	// another node): it starts clean, or its old error would be its result.
	cl.op, cl.id, cl.err, cl.isErr = op, c.nextID, nil, false
	c.pending[cl.id] = cl
	return nil
}

func (c *conn) signalWriter() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// sendGroup queues the request frames of cls, whose bodies are reqs, under
// one lock and with one writer wake-up, so they leave in one write. Every
// call joins g. A call whose frame is too large is not sent: its err is set
// and it is counted as finished. The error is errNotSent-wrapped when the
// connection was broken and nothing was queued.
func (c *conn) sendGroup(g *callGroup, cls []*call, reqs []netproto.Body) error {
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return fmt.Errorf("%w: %w", errNotSent, err)
	}
	g.left.Store(int32(len(cls)))
	sent := 0
	for i, cl := range cls {
		cl.grp = g
		if err := c.queueLocked(cl, cl.op, reqs[i]); err != nil {
			cl.err = err
			g.left.Add(-1)
			continue
		}
		sent++
	}
	c.mu.Unlock()
	if sent > 0 {
		c.signalWriter()
	} else {
		// Nothing in flight: complete the group here.
		g.done <- struct{}{}
	}
	return nil
}

// waitGroup waits until every call of g is finished, or gives up on the
// ones still pending when ctx ends or timeout fires, failing them with the
// reason. cls are the group's calls.
func (c *conn) waitGroup(ctx context.Context, timeout <-chan time.Time, g *callGroup, cls []*call) {
	var why error
	select {
	case <-g.done:
		return
	case <-ctx.Done():
		why = ctx.Err()
	case <-timeout:
		why = errRequestTimeout
	}
	last := false
	for _, cl := range cls {
		if c.abandon(cl) {
			cl.err = why
			if g.left.Add(-1) == 0 {
				last = true
			}
		}
	}
	if !last {
		// The calls not abandoned are being completed right now; the
		// last of them signals done.
		<-g.done
	}
}

// roundTrip sends cl's request, waits for the response and decodes it into
// res. res aliases cl.resp: the caller copies what it keeps before putting
// cl back. When ctx ends or timeout fires first, the call is abandoned and
// its response, if it ever comes, discarded.
func (c *conn) roundTrip(ctx context.Context, timeout <-chan time.Time, cl *call, op netproto.Opcode, req, res netproto.Body) error {
	if err := c.send(cl, op, req); err != nil {
		return err
	}
	select {
	case <-cl.done:
	case <-ctx.Done():
		return c.giveUp(cl, ctx.Err())
	case <-timeout:
		return c.giveUp(cl, errRequestTimeout)
	}
	return cl.result(res)
}

// result decodes a finished call's response into res, or returns why the
// call failed.
func (cl *call) result(res netproto.Body) error {
	if cl.err != nil {
		return cl.err
	}
	if cl.isErr {
		var eb netproto.ErrorBody
		if err := eb.DecodeBody(cl.resp); err != nil {
			return fmt.Errorf("%w: %s error response: %w", ErrMalformed, cl.op, err)
		}
		return &ServerError{Code: eb.Code, Message: eb.Message}
	}
	if err := res.DecodeBody(cl.resp); err != nil {
		return fmt.Errorf("%w: %s response: %w", ErrMalformed, cl.op, err)
	}
	return nil
}

// giveUp abandons cl and returns err. If the response is being delivered
// right now it waits for that (it does not block), so cl can be reused.
func (c *conn) giveUp(cl *call, err error) error {
	if !c.abandon(cl) {
		<-cl.done
	}
	return err
}

// abandon removes cl from the pending calls, so that its response is
// discarded when it arrives. It reports false if the call has already been
// taken for completion: cl.done is about to receive.
func (c *conn) abandon(cl *call) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending[cl.id] == cl {
		delete(c.pending, cl.id)
		return true
	}
	return false
}

// fail breaks the connection: it closes the socket, stops the writer and
// fails every pending call with err. Only the first call (of fail or shut)
// has an effect.
func (c *conn) fail(err error) { c.breakWith(err, false) }

// shut is fail without the log line, for closing on purpose.
func (c *conn) shut(err error) { c.breakWith(err, true) }

func (c *conn) breakWith(err error, quiet bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	c.broken.Store(true)
	pending := c.pending
	c.pending = nil
	c.wbuf = nil
	c.mu.Unlock()

	close(c.closing)
	c.nc.Close()
	if !quiet {
		c.log.Warn("ecache connection lost", "addr", c.addr, "pending", len(pending), "err", err)
	}
	for _, cl := range pending {
		cl.err = err
		complete(cl)
	}
}

// lost returns the error pending calls fail with when the connection breaks
// because of cause.
func (c *conn) lost(cause error) error {
	return fmt.Errorf("%w: %s: %w", ErrConnLost, c.addr, cause)
}

// writeLoop writes what callers queue, one write per batch.
func (c *conn) writeLoop() {
	var out []byte
	for {
		select {
		case <-c.wake:
		case <-c.closing:
			return
		}
		// When other calls are in flight on this connection, let the callers
		// that are runnable now (typically the ones the reader just
		// completed, about to send their next request) queue their frames
		// first, so that they go out in this write rather than one write
		// (and one server read) each. A lone call is written at once.
		c.mu.Lock()
		busy := len(c.pending) > 1
		c.mu.Unlock()
		if busy {
			runtime.Gosched()
		}
		c.mu.Lock()
		out, c.wbuf = c.wbuf, out[:0]
		c.mu.Unlock()
		if len(out) == 0 {
			continue
		}
		if _, err := c.nc.Write(out); err != nil {
			c.fail(c.lost(err))
			return
		}
		if cap(out) > bufKeepCap {
			out = nil
		}
	}
}

// readLoop decodes response frames and completes their calls until the
// connection breaks.
func (c *conn) readLoop() {
	dec := netproto.NewDecoder(c.limits)
	buf := make([]byte, readBufSize)
	r, w := 0, 0 // buf[r:w] is read and not yet decoded
	for {
		for {
			f, n, err := dec.Next(buf[r:w])
			if err != nil {
				c.fail(c.lost(frameError(err)))
				return
			}
			if n == 0 {
				break
			}
			r += n
			if !c.deliver(f) {
				return
			}
		}
		// Keep the partial frame at the start of buf, with room for all of
		// it once its header is in.
		if r > 0 {
			w = copy(buf, buf[r:w])
			r = 0
		}
		if w == 0 && len(buf) > bufKeepCap {
			buf = make([]byte, readBufSize)
		}
		if w >= netproto.HeaderSize {
			h, _ := netproto.ParseHeader(buf) // checked by Next
			if need := netproto.HeaderSize + int(h.BodyLen); need > len(buf) {
				nb := make([]byte, need)
				copy(nb, buf[:w])
				buf = nb
			}
		}
		n, err := c.nc.Read(buf[w:])
		w += n
		if err != nil {
			if n > 0 {
				continue // deliver what arrived; the next Read repeats err
			}
			c.fail(c.lost(err))
			return
		}
	}
}

// frameError maps a netproto framing error to this package's sentinels.
func frameError(err error) error {
	switch {
	case errors.Is(err, netproto.ErrFrameTooLarge):
		return fmt.Errorf("%w: %w", ErrFrameTooLarge, err)
	case errors.Is(err, netproto.ErrVersion):
		return fmt.Errorf("%w: %w", ErrUnsupportedVersion, err)
	}
	return fmt.Errorf("%w: %w", ErrMalformed, err)
}

// deliver completes the call f answers. It reports false after breaking
// the connection on a protocol violation.
func (c *conn) deliver(f netproto.Frame) bool {
	if !f.IsResponse() {
		c.fail(c.lost(fmt.Errorf("%w: server sent a %s request frame", ErrMalformed, f.Opcode)))
		return false
	}
	if f.RequestID == 0 {
		// The server could not trust the header of something we sent and is
		// closing the connection.
		var eb netproto.ErrorBody
		if !f.IsError() || eb.DecodeBody(f.Body) != nil {
			c.fail(c.lost(fmt.Errorf("%w: response to request ID 0", ErrMalformed)))
		} else {
			c.fail(c.lost(&ServerError{Code: eb.Code, Message: eb.Message}))
		}
		return false
	}
	c.mu.Lock()
	cl := c.pending[f.RequestID]
	delete(c.pending, f.RequestID)
	c.mu.Unlock()
	if cl == nil {
		// The caller gave up (context done) before the response came.
		c.log.Debug("ecache late response discarded", "addr", c.addr, "id", f.RequestID, "op", f.Opcode)
		return true
	}
	if f.Opcode != cl.op {
		err := c.lost(fmt.Errorf("%w: %s response to %s request %d", ErrMalformed, f.Opcode, cl.op, cl.id))
		cl.err = err
		complete(cl)
		c.fail(err)
		return false
	}
	cl.isErr = f.IsError()
	cl.resp = append(cl.resp[:0], f.Body...)
	complete(cl)
	return true
}
