package client

import (
	"context"
	"fmt"
	"time"

	"github.com/ecachedb/ecache/netproto"
)

// Pipeline batches GETs and PUTs that Exec sends together on one
// connection, in one write, and waits for with one wake-up: the cheapest
// way to have many requests in flight from one goroutine (a call per
// request costs a goroutine each, a channel handoff and a timer). Requests
// in a pipeline are independent: each succeeds or fails on its own, and the
// server may apply them in any order.
//
// A Pipeline is not safe for concurrent use. It is reusable: Reset (or
// Exec, which leaves the results readable until the next Reset) keeps its
// storage, so a loop of Get/Put, Exec, Result, Reset does not allocate on
// the client side beyond what the server's answers need.
type Pipeline struct {
	c *Client

	ops   []pipeOp
	cls   []*call
	reqs  []netproto.Body
	res   []PipelineResult
	err   error // the first invalid argument given to Get or Put
	grp   callGroup
	timer *time.Timer
	// buf holds the bytes of every result's Values and Context, vals the
	// Values lists.
	buf  []byte
	vals [][]byte
}

type pipeOp struct {
	put   bool
	key   string
	value []byte
	o     opts
}

// PipelineResult is one request's outcome. Its slices alias the
// pipeline's memory: they are valid until the next Reset; copy what you
// keep longer.
type PipelineResult struct {
	// Err is nil on success; ErrNotFound for a GET of an absent key;
	// otherwise as the single-request method would return.
	Err error
	// Values are a GET's values (several for siblings).
	Values [][]byte
	// Context is the causal context of the GET's object or of the PUT.
	Context []byte
	// TTL is a GET's time left before expiry; zero means none.
	TTL time.Duration
}

// Pipeline returns an empty pipeline for c.
func (c *Client) Pipeline() *Pipeline {
	t := time.NewTimer(time.Hour)
	t.Stop()
	p := &Pipeline{c: c, timer: t}
	p.grp.done = make(chan struct{}, 1)
	return p
}

// Get queues a GET of key; see Client.Get for the options.
func (p *Pipeline) Get(key string, o ...Option) {
	p.add(pipeOp{key: key}, o)
}

// Put queues a PUT of value to key; see Client.Put for the options.
func (p *Pipeline) Put(key string, value []byte, o ...Option) {
	p.add(pipeOp{put: true, key: key, value: value}, o)
}

func (p *Pipeline) add(op pipeOp, o []Option) {
	var err error
	if op.o, err = applyOpts(o); err == nil {
		if err = p.c.checkKey(op.key); err == nil && op.put {
			err = p.c.checkValue(op.value)
		}
	}
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("client: pipeline request %d: %w", len(p.ops), err)
	}
	p.ops = append(p.ops, op)
}

// Len returns the number of queued requests.
func (p *Pipeline) Len() int { return len(p.ops) }

// Reset empties the pipeline, keeping its storage. Results from the last
// Exec are no longer valid.
func (p *Pipeline) Reset() {
	clear(p.ops)
	p.ops = p.ops[:0]
	clear(p.res)
	p.res = p.res[:0]
	p.err = nil
}

// Exec sends every queued request and waits for all the answers. It fails
// as a whole, sending nothing, when a request is invalid (a key or value
// over the limits, a bad option) or no connection can be had; otherwise it
// returns nil and each request's outcome is in Results. A context that ends,
// or Config.RequestTimeout, fails the requests still unanswered.
func (p *Pipeline) Exec(ctx context.Context) error {
	if p.err != nil {
		return p.err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(p.ops) == 0 {
		return nil
	}
	var timeout <-chan time.Time
	if d := p.c.cfg.RequestTimeout; d > 0 {
		if _, ok := ctx.Deadline(); !ok {
			p.timer.Reset(d)
			defer p.timer.Stop()
			timeout = p.timer.C
		}
	}
	p.cls, p.reqs = p.cls[:0], p.reqs[:0]
	for i := range p.ops {
		op := &p.ops[i]
		cl := getCall()
		if op.put {
			ttl, _ := millis(op.o.ttl) // checked by applyOpts
			cl.req.put = netproto.PutRequest{
				Namespace: bytesOf(op.o.ns), Key: bytesOf(op.key), Value: op.value,
				Context: op.o.cc, TTL: ttl, W: uint32(op.o.w),
			}
			cl.op = netproto.OpPut
			p.reqs = append(p.reqs, &cl.req.put)
		} else {
			cl.req.get = netproto.GetRequest{Namespace: bytesOf(op.o.ns), Key: bytesOf(op.key), R: uint32(op.o.r)}
			if op.o.local {
				cl.req.get.Flags |= netproto.GetFlagLocal
			}
			cl.op = netproto.OpGet
			p.reqs = append(p.reqs, &cl.req.get)
		}
		p.cls = append(p.cls, cl)
	}
	defer func() {
		for i, cl := range p.cls {
			putCall(cl)
			p.cls[i], p.reqs[i] = nil, nil
		}
	}()
	for tries := 0; ; tries++ {
		cn, err := p.c.pool.get(ctx, timeout)
		if err != nil {
			return err
		}
		err = cn.sendGroup(&p.grp, p.cls, p.reqs)
		if errIsNotSent(err) && tries < len(p.c.pool.slots) {
			continue
		}
		if err != nil {
			return err
		}
		cn.waitGroup(ctx, timeout, &p.grp, p.cls)
		break
	}
	p.collect()
	return nil
}

// collect copies every call's outcome into p.res, the bytes into p.buf.
func (p *Pipeline) collect() {
	p.buf = p.buf[:0]
	clear(p.vals)
	p.vals = p.vals[:0]
	p.res = append(p.res[:0], make([]PipelineResult, len(p.cls))...)
	// Values and Context alias p.buf, so size it first: appending must not
	// move bytes already referenced.
	n := 0
	for _, cl := range p.cls {
		n += len(cl.resp)
	}
	if cap(p.buf) < n {
		p.buf = make([]byte, 0, n)
	}
	for i, cl := range p.cls {
		r := &p.res[i]
		if cl.op == netproto.OpPut {
			if r.Err = cl.result(&cl.res.write); r.Err == nil {
				if cl.res.write.Status != netproto.CodeOK {
					r.Err = statusError(cl.res.write.Status)
				} else {
					r.Context = p.keep(cl.res.write.Context)
				}
			}
			continue
		}
		if r.Err = cl.result(&cl.res.get); r.Err != nil {
			continue
		}
		g := &cl.res.get
		switch g.Status {
		case netproto.CodeOK, netproto.CodeSiblings:
		case netproto.CodeNotFound:
			r.Err = ErrNotFound
		default:
			r.Err = statusError(g.Status)
			continue
		}
		r.TTL = duration(g.TTL)
		r.Context = p.keep(g.Context)
		if len(g.Values) > 0 {
			// Earlier results keep the backing array they were given if
			// this append moves vals: nothing is ever written there again
			// before Reset.
			start := len(p.vals)
			for _, v := range g.Values {
				p.vals = append(p.vals, p.keep(v))
			}
			r.Values = p.vals[start:len(p.vals):len(p.vals)]
		}
	}
}

func (p *Pipeline) keep(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	p.buf = append(p.buf, b...)
	return p.buf[len(p.buf)-len(b) : len(p.buf) : len(p.buf)]
}

// Results returns the outcome of each request of the last Exec, in the
// order they were queued. It is valid until the next Exec or Reset.
func (p *Pipeline) Results() []PipelineResult { return p.res }
