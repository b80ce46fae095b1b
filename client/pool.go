package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecachedb/ecache/netproto"
)

// Redial backoff after failed dials to a slot's node: doubling from
// backoffMin up to backoffMax, with jitter. A connection that breaks after
// it was established is redialled at once; only failed dials back off.
const (
	backoffMin = 50 * time.Millisecond
	backoffMax = 5 * time.Second
)

// errRequestTimeout is returned when Config.RequestTimeout expires.
var errRequestTimeout = fmt.Errorf("client: no response within Config.RequestTimeout: %w", context.DeadlineExceeded)

// slot holds one of the pool's connections to a node, and what it takes to
// replace it when it breaks.
type slot struct {
	addr string
	// conn is the current connection: nil before the first dial, possibly
	// broken. Read without mu on the fast path; written with mu held.
	conn atomic.Pointer[conn]

	// mu guards the fields below.
	mu sync.Mutex
	// dialing is set while a dial goroutine runs for this slot.
	dialing bool
	// failures counts consecutive failed dials.
	failures int
	// retryAt is when the next dial may start after a failure.
	retryAt time.Time
	// lastErr is why the last dial failed.
	lastErr error
}

// pool keeps Config.ConnsPerNode connections to each node and hands out
// healthy ones round-robin. Broken connections are redialled lazily, in the
// background, when a call passes over them; calls use the healthy ones
// meanwhile, and wait for a dial only when none is left.
type pool struct {
	cfg   Config
	log   *slog.Logger
	slots []*slot
	rr    atomic.Uint32

	// life ends when the pool closes; dials and HELLOs use it.
	life   context.Context
	cancel context.CancelFunc
	// done is closed when the pool closes.
	done      chan struct{}
	closed    atomic.Bool
	closeOnce sync.Once
	// wg counts dial goroutines and every connection's reader and writer.
	wg sync.WaitGroup

	// mu guards changed.
	mu sync.Mutex
	// changed is closed, and replaced, whenever a dial finishes.
	changed chan struct{}
}

func newPool(cfg Config) *pool {
	life, cancel := context.WithCancel(context.Background())
	p := &pool{
		cfg:     cfg,
		log:     cfg.Logger,
		life:    life,
		cancel:  cancel,
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	// Interleave nodes so round-robin spreads load across them.
	for range cfg.ConnsPerNode {
		for _, a := range cfg.Addrs {
			p.slots = append(p.slots, &slot{addr: a})
		}
	}
	return p
}

// healthy returns s's connection if it is usable.
func (s *slot) healthy() *conn {
	if cn := s.conn.Load(); cn != nil && !cn.broken.Load() {
		return cn
	}
	return nil
}

// get returns a healthy connection, the next in round-robin order. It
// starts redialling the broken ones it passes over, and waits for a dial
// when no connection is healthy.
func (p *pool) get(ctx context.Context, timeout <-chan time.Time) (*conn, error) {
	if p.closed.Load() {
		return nil, ErrClosed
	}
	n := uint32(len(p.slots))
	start := p.rr.Add(1)
	for i := range n {
		s := p.slots[(start+i)%n]
		if cn := s.healthy(); cn != nil {
			return cn, nil
		}
		p.redial(s)
	}
	return p.wait(ctx, timeout)
}

// wait waits until a connection is healthy, or every slot's dial has failed
// and is backing off.
func (p *pool) wait(ctx context.Context, timeout <-chan time.Time) (*conn, error) {
	for {
		p.mu.Lock()
		changed := p.changed
		p.mu.Unlock()
		dialing := false
		for _, s := range p.slots {
			if cn := s.healthy(); cn != nil {
				return cn, nil
			}
			if p.redial(s) {
				dialing = true
			}
		}
		if !dialing {
			if p.closed.Load() {
				return nil, ErrClosed
			}
			return nil, p.unreachable()
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timeout:
			return nil, errRequestTimeout
		case <-p.done:
			return nil, ErrClosed
		}
	}
}

// unreachable returns ErrNoNodes wrapped with every address and the reason
// its last dial failed.
func (p *pool) unreachable() error {
	var addrs []string
	var errs []any
	seen := make(map[string]bool)
	for _, s := range p.slots {
		s.mu.Lock()
		err := s.lastErr
		s.mu.Unlock()
		if seen[s.addr] || err == nil {
			continue
		}
		seen[s.addr] = true
		addrs = append(addrs, s.addr)
		errs = append(errs, err)
	}
	format := "%w (tried " + strings.Join(addrs, ", ") + "): " + strings.TrimSuffix(strings.Repeat("%w; ", len(errs)), "; ")
	return fmt.Errorf(format, append([]any{ErrNoNodes}, errs...)...)
}

// redial starts a dial for s unless it is healthy, closed or backing off.
// It reports whether a dial for s is running.
func (p *pool) redial(s *slot) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.dialing:
		return true
	case s.healthy() != nil, p.closed.Load(), time.Now().Before(s.retryAt):
		return false
	}
	s.dialing = true
	p.wg.Add(1)
	go p.dial(s)
	return true
}

// dial connects s to its node and performs HELLO.
func (p *pool) dial(s *slot) {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(p.life, p.cfg.DialTimeout)
	cn, err := p.connect(ctx, s.addr)
	cancel()

	s.mu.Lock()
	s.dialing = false
	if err == nil && p.closed.Load() {
		cn.shut(ErrClosed)
		err = ErrClosed
	}
	if err != nil {
		s.failures++
		s.lastErr = err
		wait := backoff(s.failures)
		s.retryAt = time.Now().Add(wait)
		if !p.closed.Load() {
			p.log.Warn("ecache dial failed", "addr", s.addr, "failures", s.failures, "retry_in", wait, "err", err)
		}
	} else {
		s.failures, s.lastErr, s.retryAt = 0, nil, time.Time{}
		s.conn.Store(cn)
		p.log.Debug("ecache connected", "addr", s.addr, "server", cn.server, "node_id", cn.nodeID)
	}
	s.mu.Unlock()

	p.mu.Lock()
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

func backoff(failures int) time.Duration {
	d := backoffMax
	if failures <= 10 {
		d = min(backoffMin<<(failures-1), backoffMax)
	}
	return d/2 + rand.N(d/2+1)
}

// connect dials addr, starts the connection's goroutines and performs
// HELLO.
func (p *pool) connect(ctx context.Context, addr string) (*conn, error) {
	var d net.Dialer
	dial := d.DialContext
	if p.cfg.Dialer != nil {
		dial = p.cfg.Dialer
	}
	nc, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	cn := newConn(addr, nc, p.log, p.cfg.Limits)
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		cn.readLoop()
	}()
	go func() {
		defer p.wg.Done()
		cn.writeLoop()
	}()

	cl := getCall()
	defer putCall(cl)
	cl.req.hello = netproto.HelloRequest{
		Version:  netproto.Version,
		Client:   p.cfg.ClientName,
		Password: p.cfg.Password,
	}
	err = cn.roundTrip(ctx, nil, cl, netproto.OpHello, &cl.req.hello, &cl.res.hello)
	if err == nil {
		h := &cl.res.hello
		if h.Version == 0 || h.Version > netproto.Version {
			err = fmt.Errorf("%w: server chose version %d", ErrUnsupportedVersion, h.Version)
		} else {
			cn.nodeID, cn.server = h.NodeID, h.Server
		}
	}
	if err != nil {
		cn.shut(ErrClosed)
		return nil, fmt.Errorf("%s: HELLO: %w", addr, err)
	}
	return cn, nil
}

// close breaks every connection with ErrClosed and waits for all the
// pool's goroutines.
func (p *pool) close() {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		p.cancel()
		close(p.done)
		for _, s := range p.slots {
			s.mu.Lock()
			cn := s.conn.Load()
			s.mu.Unlock()
			if cn != nil {
				cn.shut(ErrClosed)
			}
		}
		p.wg.Wait()
	})
}

// errIsNotSent reports whether a call failed before its request was queued.
func errIsNotSent(err error) bool { return err != nil && errors.Is(err, errNotSent) }
