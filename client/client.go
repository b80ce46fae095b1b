package client

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unsafe"

	"github.com/ecachedb/ecache/netproto"
)

// Client is a connection pool to one or more ecache nodes. It is safe for
// concurrent use; each connection pipelines any number of requests.
type Client struct {
	cfg  Config
	pool *pool
	// router, with Config.Routing.Enabled, sends single-key requests to
	// the key's replicas (routing.go); nil otherwise.
	router *router
}

// New connects to the nodes in cfg.Addrs. It returns once one connection
// has completed HELLO (the others are dialled in the background), or fails
// with an error wrapping ErrNoNodes that names every address tried and why
// it failed — wrapping also ErrUnauthenticated for a wrong password.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &Client{cfg: cfg, pool: newPool(cfg)}
	for _, s := range c.pool.slots {
		c.pool.redial(s)
	}
	if _, err := c.pool.wait(ctx, nil); err != nil {
		c.Close()
		if ctx.Err() != nil {
			err = fmt.Errorf("client: connecting to %s: %w", strings.Join(cfg.Addrs, ", "), err)
		}
		return nil, err
	}
	if cfg.Routing.Enabled {
		c.router = newRouter(c)
		c.router.start(ctx)
	}
	return c, nil
}

// Close closes every connection, fails the pending calls with ErrClosed and
// waits for the client's goroutines to exit. It is idempotent.
func (c *Client) Close() error {
	if c.router != nil {
		c.router.close()
	}
	c.pool.close()
	return nil
}

// do runs one request on a pooled connection. Only a request that could not
// be queued (its connection broke first) is retried, on another connection.
func (c *Client) do(ctx context.Context, cl *call, op netproto.Opcode, req, res netproto.Body) error {
	return c.doPool(ctx, cl, c.pool, op, req, res)
}

// doPool is do on pool p (Config.Addrs' or, with routing, a replica's).
func (c *Client) doPool(ctx context.Context, cl *call, p *pool, op netproto.Opcode, req, res netproto.Body) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var timeout <-chan time.Time
	if c.cfg.RequestTimeout > 0 {
		if _, ok := ctx.Deadline(); !ok {
			cl.timer.Reset(c.cfg.RequestTimeout)
			defer cl.timer.Stop()
			timeout = cl.timer.C
		}
	}
	for tries := 0; ; tries++ {
		cn, err := p.get(ctx, timeout)
		if err != nil {
			return err
		}
		err = cn.roundTrip(ctx, timeout, cl, op, req, res)
		if errIsNotSent(err) && tries < len(p.slots) {
			continue
		}
		return err
	}
}

// bytesOf returns s's bytes without copying. Requests only read them, while
// being encoded.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func (c *Client) checkKey(key string) error {
	if len(key) > c.cfg.Limits.MaxKeySize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrKeyTooLarge, len(key), c.cfg.Limits.MaxKeySize)
	}
	return nil
}

func (c *Client) checkValue(v []byte) error {
	if len(v) > c.cfg.Limits.MaxValueSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrValueTooLarge, len(v), c.cfg.Limits.MaxValueSize)
	}
	return nil
}

// Get reads key. A key with concurrent siblings (in a siblings namespace)
// succeeds with several Values: resolve them and Put the result
// WithCausalContext(item.Context). An absent key returns ErrNotFound
// together with an Item whose Context, if not empty, is a deletion's; a
// write with it supersedes the deletion.
func (c *Client) Get(ctx context.Context, key string, o ...Option) (*Item, error) {
	op, err := applyOpts(o)
	if err != nil {
		return nil, err
	}
	if err := c.checkKey(key); err != nil {
		return nil, err
	}
	cl := getCall()
	defer putCall(cl)
	cl.req.get = netproto.GetRequest{Namespace: bytesOf(op.ns), Key: bytesOf(key), R: op.r}
	if op.local {
		// The addressed node's own store: never routed.
		cl.req.get.Flags |= netproto.GetFlagLocal
		err = c.do(ctx, cl, netproto.OpGet, &cl.req.get, &cl.res.get)
	} else {
		err = c.doKey(ctx, cl, op.ns, key, netproto.OpGet, &cl.req.get, &cl.res.get)
	}
	if err != nil {
		return nil, err
	}
	return itemOf(&cl.res.get)
}

// itemOf copies a GET result out of the response buffer, into one
// allocation for all its bytes.
func itemOf(r *netproto.GetResponse) (*Item, error) {
	switch r.Status {
	case netproto.CodeOK, netproto.CodeSiblings, netproto.CodeNotFound:
	default:
		return nil, statusError(r.Status)
	}
	n := len(r.Context)
	for _, v := range r.Values {
		n += len(v)
	}
	buf := make([]byte, 0, n)
	var it *Item
	switch len(r.Values) {
	case 0:
		it = new(Item)
	case 1:
		// The common case: one allocation for the Item and its Values.
		one := new(struct {
			item Item
			vals [1][]byte
		})
		it = &one.item
		it.Values = one.vals[:]
	default:
		it = &Item{Values: make([][]byte, len(r.Values))}
	}
	it.TTL = duration(r.TTL)
	if len(r.Values) > 0 {
		for i, v := range r.Values {
			buf = append(buf, v...)
			it.Values[i] = buf[len(buf)-len(v) : len(buf) : len(buf)]
		}
	}
	if len(r.Context) > 0 {
		buf = append(buf, r.Context...)
		it.Context = buf[len(buf)-len(r.Context):]
	}
	if r.Status == netproto.CodeNotFound {
		return it, ErrNotFound
	}
	return it, nil
}

// Put writes value to key in a value namespace (lww or siblings) and
// returns the context of the write: pass it to the next write of the key to
// replace this value without reading it first. Use WithCausalContext to
// replace what a Get returned, WithTTL to expire it.
func (c *Client) Put(ctx context.Context, key string, value []byte, o ...Option) ([]byte, error) {
	op, err := applyOpts(o)
	if err != nil {
		return nil, err
	}
	if err := c.checkKey(key); err != nil {
		return nil, err
	}
	if err := c.checkValue(value); err != nil {
		return nil, err
	}
	ttl, _ := millis(op.ttl) // checked by applyOpts
	cl := getCall()
	defer putCall(cl)
	cl.req.put = netproto.PutRequest{
		Namespace: bytesOf(op.ns), Key: bytesOf(key), Value: value,
		Context: op.cc, TTL: ttl, W: op.w,
	}
	if err := c.doKey(ctx, cl, op.ns, key, netproto.OpPut, &cl.req.put, &cl.res.write); err != nil {
		return nil, err
	}
	return writeResult(&cl.res.write)
}

func writeResult(r *netproto.WriteResponse) ([]byte, error) {
	if r.Status != netproto.CodeOK {
		return nil, statusError(r.Status)
	}
	return clone(r.Context), nil
}

// clone copies b, returning nil for an empty b.
func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// Del deletes key by writing a tombstone covering WithCausalContext (or,
// without one, whatever the coordinating node holds), and returns the
// tombstone's context.
func (c *Client) Del(ctx context.Context, key string, o ...Option) ([]byte, error) {
	op, err := applyOpts(o)
	if err != nil {
		return nil, err
	}
	if err := c.checkKey(key); err != nil {
		return nil, err
	}
	cl := getCall()
	defer putCall(cl)
	cl.req.del = netproto.DelRequest{Namespace: bytesOf(op.ns), Key: bytesOf(key), Context: op.cc, W: op.w}
	if err := c.doKey(ctx, cl, op.ns, key, netproto.OpDel, &cl.req.del, &cl.res.write); err != nil {
		return nil, err
	}
	return writeResult(&cl.res.write)
}

// MGet reads several keys of one namespace in one round trip. items[i] and
// errs[i] are keys[i]'s result, as Get would return them (ErrNotFound with
// an Item, or a per-key error with a nil Item). Keys over the size limit
// fail alone, without being sent. The final error is for the call as a
// whole.
func (c *Client) MGet(ctx context.Context, keys []string, o ...Option) ([]*Item, []error, error) {
	op, err := applyOpts(o)
	if err != nil {
		return nil, nil, err
	}
	if len(keys) > netproto.MaxArrayLen {
		return nil, nil, fmt.Errorf("%w: MGET of %d keys, limit %d per call", ErrInvalidArgument, len(keys), netproto.MaxArrayLen)
	}
	items := make([]*Item, len(keys))
	errs := make([]error, len(keys))
	cl := getCall()
	defer putCall(cl)
	req := &cl.req.mget
	*req = netproto.MGetRequest{Namespace: bytesOf(op.ns), Keys: req.Keys[:0]}
	sent := make([]int, 0, len(keys)) // sent[j] is the index in keys of the j-th key sent
	for i, k := range keys {
		if errs[i] = c.checkKey(k); errs[i] == nil {
			req.Keys = append(req.Keys, bytesOf(k))
			sent = append(sent, i)
		}
	}
	if len(sent) == 0 {
		return items, errs, nil
	}
	if groups := c.groupKeys(op.ns, req.Keys); len(groups) > 0 {
		// Routed: one MGET per replica.
		err := c.mgetRouted(ctx, req, groups, func(j int, r *netproto.GetResponse) {
			items[sent[j]], errs[sent[j]] = itemOf(r)
		})
		if err != nil {
			return nil, nil, err
		}
		return items, errs, nil
	}
	if err := c.do(ctx, cl, netproto.OpMGet, req, &cl.res.mget); err != nil {
		return nil, nil, err
	}
	res := cl.res.mget.Results
	if len(res) != len(sent) {
		return nil, nil, fmt.Errorf("%w: MGET of %d keys answered with %d results", ErrMalformed, len(sent), len(res))
	}
	for j := range res {
		i := sent[j]
		items[i], errs[i] = itemOf(&res[j])
	}
	return items, errs, nil
}

// MPut writes several keys of one namespace in one round trip, each entry
// independently (no atomicity). ctxs[i] and errs[i] are entries[i]'s
// result, as Put would return them. Entries over the size limits fail
// alone, without being sent. WithCausalContext does not apply: contexts
// are per Entry. The final error is for the call as a whole.
func (c *Client) MPut(ctx context.Context, entries []Entry, o ...Option) ([][]byte, []error, error) {
	op, err := applyOpts(o)
	if err != nil {
		return nil, nil, err
	}
	if len(entries) > netproto.MaxArrayLen {
		return nil, nil, fmt.Errorf("%w: MPUT of %d entries, limit %d per call", ErrInvalidArgument, len(entries), netproto.MaxArrayLen)
	}
	ctxs := make([][]byte, len(entries))
	errs := make([]error, len(entries))
	cl := getCall()
	defer putCall(cl)
	req := &cl.req.mput
	*req = netproto.MPutRequest{Namespace: bytesOf(op.ns), Entries: req.Entries[:0], W: op.w}
	sent := make([]int, 0, len(entries))
	size := 0 // a lower bound of the frame's size, to refuse a huge one before encoding it
	for i, e := range entries {
		ttl := e.TTL
		if ttl == 0 {
			ttl = op.ttl
		}
		ms, err := millis(ttl)
		if err == nil {
			err = c.checkKey(e.Key)
		}
		if err == nil {
			err = c.checkValue(e.Value)
		}
		if err != nil {
			errs[i] = err
			continue
		}
		req.Entries = append(req.Entries, netproto.MPutEntry{Key: bytesOf(e.Key), Value: e.Value, Context: e.Context, TTL: ms})
		sent = append(sent, i)
		size += len(e.Key) + len(e.Value) + len(e.Context)
	}
	if size > c.cfg.Limits.MaxFrameSize {
		return nil, nil, fmt.Errorf("%w: MPUT of at least %d bytes, limit %d", ErrFrameTooLarge, size, c.cfg.Limits.MaxFrameSize)
	}
	if len(sent) == 0 {
		return ctxs, errs, nil
	}
	if groups := c.groupEntries(op.ns, req.Entries); len(groups) > 0 {
		// Routed: one MPUT per replica.
		err := c.mputRouted(ctx, req, groups, func(j int, r *netproto.WriteResponse) {
			ctxs[sent[j]], errs[sent[j]] = writeResult(r)
		})
		if err != nil {
			return nil, nil, err
		}
		return ctxs, errs, nil
	}
	if err := c.do(ctx, cl, netproto.OpMPut, req, &cl.res.mput); err != nil {
		return nil, nil, err
	}
	res := cl.res.mput.Results
	if len(res) != len(sent) {
		return nil, nil, fmt.Errorf("%w: MPUT of %d entries answered with %d results", ErrMalformed, len(sent), len(res))
	}
	for j := range res {
		i := sent[j]
		ctxs[i], errs[i] = writeResult(&res[j])
	}
	return ctxs, errs, nil
}

// Incr adds delta to the counter at key (in a counter namespace) and
// returns its value as the coordinating node sees it after the write. A
// delta of 0 reads the counter.
func (c *Client) Incr(ctx context.Context, key string, delta int64, o ...Option) (int64, error) {
	return c.counter(ctx, netproto.OpIncr, key, delta, o)
}

// Decr subtracts delta from the counter at key and returns its new value.
func (c *Client) Decr(ctx context.Context, key string, delta int64, o ...Option) (int64, error) {
	return c.counter(ctx, netproto.OpDecr, key, delta, o)
}

func (c *Client) counter(ctx context.Context, opc netproto.Opcode, key string, delta int64, o []Option) (int64, error) {
	op, err := applyOpts(o)
	if err != nil {
		return 0, err
	}
	if err := c.checkKey(key); err != nil {
		return 0, err
	}
	cl := getCall()
	defer putCall(cl)
	cl.req.counter = netproto.CounterRequest{Namespace: bytesOf(op.ns), Key: bytesOf(key), Delta: delta, W: op.w}
	if err := c.doKey(ctx, cl, op.ns, key, opc, &cl.req.counter, &cl.res.counter); err != nil {
		return 0, err
	}
	if s := cl.res.counter.Status; s != netproto.CodeOK {
		return 0, statusError(s)
	}
	return cl.res.counter.Value, nil
}

// SAdd adds members to the set at key (in a set namespace).
func (c *Client) SAdd(ctx context.Context, key string, members [][]byte, o ...Option) error {
	return c.setOp(ctx, netproto.OpSAdd, key, members, o)
}

// SRem removes members from the set at key.
func (c *Client) SRem(ctx context.Context, key string, members [][]byte, o ...Option) error {
	return c.setOp(ctx, netproto.OpSRem, key, members, o)
}

func (c *Client) setOp(ctx context.Context, opc netproto.Opcode, key string, members [][]byte, o []Option) error {
	op, err := applyOpts(o)
	if err != nil {
		return err
	}
	if err := c.checkKey(key); err != nil {
		return err
	}
	size := 0
	for i, m := range members {
		if err := c.checkValue(m); err != nil {
			return fmt.Errorf("member %d: %w", i, err)
		}
		size += len(m)
	}
	if size > c.cfg.Limits.MaxFrameSize {
		return fmt.Errorf("%w: %s of at least %d bytes, limit %d", ErrFrameTooLarge, opc, size, c.cfg.Limits.MaxFrameSize)
	}
	cl := getCall()
	defer putCall(cl)
	cl.req.set = netproto.SetRequest{Namespace: bytesOf(op.ns), Key: bytesOf(key), Members: members, W: op.w}
	if err := c.doKey(ctx, cl, op.ns, key, opc, &cl.req.set, &cl.res.status); err != nil {
		return err
	}
	if s := cl.res.status.Status; s != netproto.CodeOK {
		return statusError(s)
	}
	return nil
}

// SMembers returns the members of the set at key, sorted bytewise. An
// absent set and an empty one are the same: no members and a nil error.
func (c *Client) SMembers(ctx context.Context, key string, o ...Option) ([][]byte, error) {
	op, err := applyOpts(o)
	if err != nil {
		return nil, err
	}
	if err := c.checkKey(key); err != nil {
		return nil, err
	}
	cl := getCall()
	defer putCall(cl)
	cl.req.key = netproto.KeyRequest{Namespace: bytesOf(op.ns), Key: bytesOf(key)}
	if err := c.doKey(ctx, cl, op.ns, key, netproto.OpSMembers, &cl.req.key, &cl.res.smembers); err != nil {
		return nil, err
	}
	r := &cl.res.smembers
	switch r.Status {
	case netproto.CodeOK:
	case netproto.CodeNotFound:
		return nil, nil
	default:
		return nil, statusError(r.Status)
	}
	n := 0
	for _, m := range r.Members {
		n += len(m)
	}
	buf := make([]byte, 0, n)
	out := make([][]byte, len(r.Members))
	for i, m := range r.Members {
		buf = append(buf, m...)
		out[i] = buf[len(buf)-len(m) : len(buf) : len(buf)]
	}
	return out, nil
}

// Expire sets the time to live of a live key (0 removes its expiry). It
// returns ErrNotFound for an absent key.
func (c *Client) Expire(ctx context.Context, key string, ttl time.Duration, o ...Option) error {
	op, err := applyOpts(o)
	if err != nil {
		return err
	}
	ms, err := millis(ttl)
	if err != nil {
		return err
	}
	if err := c.checkKey(key); err != nil {
		return err
	}
	cl := getCall()
	defer putCall(cl)
	cl.req.expire = netproto.ExpireRequest{Namespace: bytesOf(op.ns), Key: bytesOf(key), TTL: ms, W: op.w}
	if err := c.doKey(ctx, cl, op.ns, key, netproto.OpExpire, &cl.req.expire, &cl.res.status); err != nil {
		return err
	}
	if s := cl.res.status.Status; s != netproto.CodeOK {
		return statusError(s)
	}
	return nil
}

// TTL returns the remaining time to live of key, 0 when it has no expiry,
// and ErrNotFound when it is absent.
func (c *Client) TTL(ctx context.Context, key string, o ...Option) (time.Duration, error) {
	op, err := applyOpts(o)
	if err != nil {
		return 0, err
	}
	if err := c.checkKey(key); err != nil {
		return 0, err
	}
	cl := getCall()
	defer putCall(cl)
	cl.req.key = netproto.KeyRequest{Namespace: bytesOf(op.ns), Key: bytesOf(key)}
	if err := c.doKey(ctx, cl, op.ns, key, netproto.OpTTL, &cl.req.key, &cl.res.ttl); err != nil {
		return 0, err
	}
	if s := cl.res.ttl.Status; s != netproto.CodeOK {
		return 0, statusError(s)
	}
	return duration(cl.res.ttl.TTL), nil
}

// pingPayload is what Ping sends and expects back. Read-only.
var pingPayload = []byte("ecache")

// Ping checks that a node answers, on the next pooled connection.
func (c *Client) Ping(ctx context.Context) error {
	cl := getCall()
	defer putCall(cl)
	cl.req.ping.Payload = pingPayload
	if err := c.do(ctx, cl, netproto.OpPing, &cl.req.ping, &cl.res.ping); err != nil {
		return err
	}
	if string(cl.res.ping.Payload) != string(pingPayload) {
		return fmt.Errorf("%w: PING echoed %q", ErrMalformed, cl.res.ping.Payload)
	}
	return nil
}

// Stats returns the counters of the node the next pooled connection leads
// to. Names vary by server version.
func (c *Client) Stats(ctx context.Context) (map[string]int64, error) {
	cl := getCall()
	defer putCall(cl)
	if err := c.do(ctx, cl, netproto.OpStats, &cl.req.stats, &cl.res.stats); err != nil {
		return nil, err
	}
	m := make(map[string]int64, len(cl.res.stats.Stats))
	for _, s := range cl.res.stats.Stats {
		m[string(s.Name)] = s.Value
	}
	return m, nil
}

// Do sends one raw request with opcode op and decodes the response into
// resp. It is the building block of the other methods, exported for
// operations the typed methods do not cover (the peer operations that nodes
// of a cluster send each other). An error response comes back as a
// *ServerError (matching the sentinels with errors.Is); a non-success status
// inside a successful body is left in resp for the caller to read. resp's
// byte slices alias a buffer that belongs to resp alone after Do returns.
func (c *Client) Do(ctx context.Context, op netproto.Opcode, req, resp netproto.Body) error {
	if req == nil || resp == nil {
		return fmt.Errorf("%w: Do needs a request and a response body", ErrInvalidArgument)
	}
	cl := getCall()
	if err := c.do(ctx, cl, op, req, resp); err != nil {
		putCall(cl)
		return err
	}
	// resp aliases cl.resp: the call is not returned to the pool, so the
	// buffer is never reused under the caller.
	return nil
}
