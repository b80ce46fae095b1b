package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/ecachedb/ecache/gossip/ring"
	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/vclock"
)

// Smart routing (issue #4): with Config.Routing.Enabled the client learns
// the cluster from any node (the CLUSTER request: members, their client
// addresses and states, the partition count and N), computes each key's
// replicas the way the nodes do (gossip/ring, pure and shared), and sends
// every single-key request to the first replica it can reach, on a pool of
// its own to that node. It falls back to Config.Addrs (any node; the node
// forwards) when it has no view yet, when the server is not in a cluster
// or too old to answer CLUSTER, and when no replica of the key can be
// reached. A stale view is never wrong, only slower: the node it reaches
// forwards what it does not own.
//
// Off by default: a client given one address is expected to talk to that
// node (operators' CLI, node-to-node connections, WithLocal), and routing
// needs every node's advertised client address to be reachable from the
// client (not so behind NAT or a proxy).

// RoutingConfig configures smart routing (Config.Routing).
type RoutingConfig struct {
	// Enabled turns smart routing on.
	Enabled bool
	// RefreshInterval is how often the client asks for the cluster view;
	// 0 means 10s. It also asks, at most every RefreshGap, after a request
	// could not reach the replica it chose.
	RefreshInterval time.Duration
	// RefreshGap is the least time between two refreshes; 0 means 100ms.
	RefreshGap time.Duration
}

const (
	defaultRefreshInterval = 10 * time.Second
	defaultRefreshGap      = 100 * time.Millisecond
)

func (r RoutingConfig) validate() error {
	switch {
	case r.RefreshInterval < 0:
		return fmt.Errorf("client: Config.Routing.RefreshInterval %v is negative", r.RefreshInterval)
	case r.RefreshGap < 0:
		return fmt.Errorf("client: Config.Routing.RefreshGap %v is negative", r.RefreshGap)
	}
	return nil
}

// RoutingStats counts where single-key requests went.
type RoutingStats struct {
	Direct    uint64 // sent to a replica of the key chosen from the view
	Fallback  uint64 // sent to Config.Addrs: no view, or no replica reachable
	Refreshes uint64 // views received
	Members   int    // alive members with a client address in the current view
}

// partitionOf is the partition of (ns, key) among n partitions, as the
// nodes compute it (storage.PartitionOf; docs/protocol.md): xxhash64 of the
// key, modulo n. The namespace takes no part, so a key has the same
// replicas in every namespace.
func partitionOf(_, key string, n int) uint32 {
	return uint32(xxhash.Sum64String(key) % uint64(n))
}

// routeView is one immutable view of the cluster.
type routeView struct {
	partitions int
	ring       *ring.Ring
	pools      map[vclock.NodeID]*pool // alive members' pools
}

// router keeps the view current and the pools to the members.
type router struct {
	c   *Client
	cfg RoutingConfig

	view atomic.Pointer[routeView]

	direct, fallback, refreshes atomic.Uint64

	// kick asks the refresher for an early refresh; room for one.
	kick chan struct{}
	// life ends at close; refreshes use it.
	life   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards pools and retired. Only the refresher and close use them.
	mu sync.Mutex
	// pools are the connection pools by client address, alive or not.
	pools map[string]*pool
	// retired are pools no view uses any more, closed at the next refresh
	// (so requests that picked them just before have finished).
	retired []*pool
	closed  bool
}

func newRouter(c *Client) *router {
	cfg := c.cfg.Routing
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = defaultRefreshInterval
	}
	if cfg.RefreshGap == 0 {
		cfg.RefreshGap = defaultRefreshGap
	}
	r := &router{c: c, cfg: cfg, kick: make(chan struct{}, 1), pools: map[string]*pool{}}
	r.life, r.cancel = context.WithCancel(context.Background())
	return r
}

// start fetches a first view (a failure leaves the client unrouted until
// a refresh succeeds) and starts the refresher.
func (r *router) start(ctx context.Context) {
	if err := r.refresh(ctx); err != nil {
		r.c.cfg.Logger.Warn("ecache routing: no cluster view yet; requests go to Config.Addrs", "err", err)
	}
	r.wg.Add(1)
	go r.loop()
}

// loop refreshes every RefreshInterval and when kicked, at most every
// RefreshGap, until close.
func (r *router) loop() {
	defer r.wg.Done()
	t := time.NewTicker(r.cfg.RefreshInterval)
	defer t.Stop()
	gap := time.NewTimer(0)
	defer gap.Stop()
	for {
		select {
		case <-r.life.Done():
			return
		case <-t.C:
		case <-r.kick:
		}
		if err := r.refresh(r.life); err != nil && r.life.Err() == nil {
			r.c.cfg.Logger.Warn("ecache routing: refresh failed; keeping the last view", "err", err)
		}
		gap.Reset(r.cfg.RefreshGap)
		select {
		case <-r.life.Done():
			return
		case <-gap.C:
		}
	}
}

// poke asks for an early refresh.
func (r *router) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// close stops the refresher and closes every pool the router opened.
func (r *router) close() {
	r.cancel()
	r.wg.Wait()
	r.mu.Lock()
	r.closed = true
	pools := r.retired
	for _, p := range r.pools {
		pools = append(pools, p)
	}
	r.pools, r.retired = nil, nil
	r.mu.Unlock()
	for _, p := range pools {
		p.close()
	}
}

// errNoCluster reports a server that is not in a cluster.
var errNoCluster = errors.New("client: the server is not in a cluster")

// refresh asks Config.Addrs, then the members of the current view, for
// the cluster, and installs the new view.
func (r *router) refresh(ctx context.Context) error {
	timeout := r.c.cfg.RequestTimeout
	if timeout == 0 {
		timeout = r.c.cfg.DialTimeout
	}
	var resp netproto.ClusterResponse
	ask := func(p *pool) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		// Decoding copies the addresses out of the call's buffer, so the
		// call goes back to the pool.
		cl := getCall()
		defer putCall(cl)
		return r.c.doPool(ctx, cl, p, netproto.OpCluster, &netproto.ClusterRequest{}, &resp)
	}
	err := ask(r.c.pool)
	if err != nil && !errors.Is(err, ErrUnknownOpcode) {
		if v := r.view.Load(); v != nil {
			for _, p := range v.pools {
				if ctx.Err() != nil {
					break
				}
				if err = ask(p); err == nil {
					break
				}
			}
		}
	}
	if errors.Is(err, ErrUnknownOpcode) {
		r.view.Store(nil) // an older server: no routing
		return fmt.Errorf("%w: %w", errNoCluster, err)
	}
	if err != nil {
		return err
	}
	r.refreshes.Add(1)
	if resp.Partitions == 0 {
		r.view.Store(nil)
		return nil
	}
	return r.install(&resp)
}

// install builds a view from a CLUSTER response, creating pools for new
// members and retiring those of members that are gone.
func (r *router) install(resp *netproto.ClusterResponse) error {
	addrs := map[vclock.NodeID]string{}
	ids := make([]vclock.NodeID, 0, len(resp.Members))
	for _, m := range resp.Members {
		if m.State == netproto.MemberAlive && m.ID != 0 && m.ClientAddr != "" {
			addrs[vclock.NodeID(m.ID)] = m.ClientAddr
			ids = append(ids, vclock.NodeID(m.ID))
		}
	}
	rg, err := ring.New(int(resp.Partitions), max(int(resp.Replicas), 1), ids)
	if err != nil {
		return fmt.Errorf("%w: CLUSTER answer: %w", ErrMalformed, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	for _, p := range r.retired {
		p.close() // retired one refresh ago: nothing picks them now
	}
	r.retired = r.retired[:0]
	v := &routeView{partitions: int(resp.Partitions), ring: rg, pools: make(map[vclock.NodeID]*pool, len(addrs))}
	used := map[string]bool{}
	for id, addr := range addrs {
		p := r.pools[addr]
		if p == nil {
			cfg := r.c.cfg
			cfg.Addrs = []string{addr}
			p = newPool(cfg)
			r.pools[addr] = p
		}
		v.pools[id] = p
		used[addr] = true
	}
	for addr, p := range r.pools {
		if !used[addr] {
			delete(r.pools, addr)
			r.retired = append(r.retired, p)
		}
	}
	r.view.Store(v)
	return nil
}

// pick returns the pool of the first replica of (ns, key) that is
// reachable or worth a try, nil when the client has no view or every
// replica's dials are failing (send to Config.Addrs).
func (r *router) pick(ns, key string) *pool {
	v := r.view.Load()
	if v == nil {
		return nil
	}
	for _, id := range v.ring.Owners(partitionOf(ns, key, v.partitions)) {
		if p := v.pools[id]; p != nil && usable(p) {
			return p
		}
	}
	return nil
}

// usable reports whether p has a healthy connection or may dial one now
// (its last dial did not fail, or its backoff has passed).
func usable(p *pool) bool {
	now := time.Now()
	for _, s := range p.slots {
		if s.healthy() != nil {
			return true
		}
		s.mu.Lock()
		ok := s.dialing || !now.Before(s.retryAt)
		s.mu.Unlock()
		if ok {
			return true
		}
	}
	return false
}

// unreached reports whether err means the request never reached the
// replica (it may be sent elsewhere without running twice).
func unreached(err error) bool {
	return errors.Is(err, ErrNoNodes) || errIsNotSent(err)
}

// retriable reports whether op, having failed with err on a replica, may
// be sent to Config.Addrs: it never reached the replica, or it is a read,
// which may run twice (a replica that just went away drops the reads in
// flight on its connection).
func retriable(op netproto.Opcode, err error) bool {
	switch op {
	case netproto.OpGet, netproto.OpMGet, netproto.OpSMembers, netproto.OpTTL:
		return unreached(err) || errors.Is(err, ErrConnLost)
	}
	return unreached(err)
}

// doKey runs a single-key request: on a replica of (ns, key) when routing
// knows one, else (or when it cannot be reached) on Config.Addrs.
func (c *Client) doKey(ctx context.Context, cl *call, ns, key string, op netproto.Opcode, req, res netproto.Body) error {
	r := c.router
	if r == nil {
		return c.do(ctx, cl, op, req, res)
	}
	p := r.pick(ns, key)
	if p == nil {
		r.fallback.Add(1)
		return c.do(ctx, cl, op, req, res)
	}
	err := c.doPool(ctx, cl, p, op, req, res)
	switch {
	case err == nil:
		r.direct.Add(1)
	case retriable(op, err) && ctx.Err() == nil:
		r.poke()
		r.fallback.Add(1)
		return c.do(ctx, cl, op, req, res)
	case errors.Is(err, ErrConnLost):
		r.poke() // the replica may be gone; the request may have run
	}
	return err
}

// groupKeys splits the indices of keys by the pool of each key's first
// reachable replica; nil (send everything to Config.Addrs) without
// routing or a view. Keys without a reachable replica are grouped under
// the nil pool (Config.Addrs).
func (c *Client) groupKeys(ns string, keys [][]byte) map[*pool][]int {
	return c.groupBy(ns, len(keys), func(i int) []byte { return keys[i] })
}

// groupEntries is groupKeys for MPUT entries.
func (c *Client) groupEntries(ns string, es []netproto.MPutEntry) map[*pool][]int {
	return c.groupBy(ns, len(es), func(i int) []byte { return es[i].Key })
}

func (c *Client) groupBy(ns string, n int, key func(i int) []byte) map[*pool][]int {
	r := c.router
	if r == nil || r.view.Load() == nil {
		return nil
	}
	groups := map[*pool][]int{}
	for i := range n {
		p := r.pick(ns, string(key(i)))
		groups[p] = append(groups[p], i)
	}
	return groups
}

// doGroup runs one batch of a split MGET or MPUT on p (nil: Config.Addrs),
// falling back to Config.Addrs when p cannot be reached.
func (c *Client) doGroup(ctx context.Context, cl *call, p *pool, op netproto.Opcode, req, res netproto.Body) error {
	r := c.router
	if p == nil {
		r.fallback.Add(1)
		return c.do(ctx, cl, op, req, res)
	}
	err := c.doPool(ctx, cl, p, op, req, res)
	if err != nil && retriable(op, err) && ctx.Err() == nil {
		r.poke()
		r.fallback.Add(1)
		return c.do(ctx, cl, op, req, res)
	}
	if err == nil {
		r.direct.Add(1)
	}
	return err
}

// splitRouted runs one sub-request per replica group, concurrently: send
// builds the group's request in cl, sends it and returns how many results
// came back; fill then takes result k of cl's response for index j (under
// a lock). The first error wins.
func (c *Client) splitRouted(what string, groups map[*pool][]int, send func(cl *call, p *pool, idx []int) (int, error), fill func(cl *call, k, j int)) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for p, idx := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := getCall()
			defer putCall(cl)
			n, err := send(cl, p, idx)
			if err == nil && n != len(idx) {
				err = fmt.Errorf("%w: %s of %d keys answered with %d results", ErrMalformed, what, len(idx), n)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = err
				}
				return
			}
			for k, j := range idx {
				fill(cl, k, j)
			}
		}()
	}
	wg.Wait()
	return first
}

// mgetRouted is MGet's round trip with routing: one MGET per replica,
// concurrently. groups holds indices into req.Keys; fill receives each
// key's result by that index (under a lock).
func (c *Client) mgetRouted(ctx context.Context, req *netproto.MGetRequest, groups map[*pool][]int, fill func(j int, r *netproto.GetResponse)) error {
	return c.splitRouted("MGET", groups, func(cl *call, p *pool, idx []int) (int, error) {
		sub := &cl.req.mget
		*sub = netproto.MGetRequest{Namespace: req.Namespace, Keys: sub.Keys[:0], Flags: req.Flags}
		for _, j := range idx {
			sub.Keys = append(sub.Keys, req.Keys[j])
		}
		err := c.doGroup(ctx, cl, p, netproto.OpMGet, sub, &cl.res.mget)
		return len(cl.res.mget.Results), err
	}, func(cl *call, k, j int) { fill(j, &cl.res.mget.Results[k]) })
}

// mputRouted is MPut's round trip with routing: one MPUT per replica,
// concurrently.
func (c *Client) mputRouted(ctx context.Context, req *netproto.MPutRequest, groups map[*pool][]int, fill func(j int, r *netproto.WriteResponse)) error {
	return c.splitRouted("MPUT", groups, func(cl *call, p *pool, idx []int) (int, error) {
		sub := &cl.req.mput
		*sub = netproto.MPutRequest{Namespace: req.Namespace, Entries: sub.Entries[:0], W: req.W}
		for _, j := range idx {
			sub.Entries = append(sub.Entries, req.Entries[j])
		}
		err := c.doGroup(ctx, cl, p, netproto.OpMPut, sub, &cl.res.mput)
		return len(cl.res.mput.Results), err
	}, func(cl *call, k, j int) { fill(j, &cl.res.mput.Results[k]) })
}

// RoutingStats returns where single-key requests went (zero without
// routing).
func (c *Client) RoutingStats() RoutingStats {
	r := c.router
	if r == nil {
		return RoutingStats{}
	}
	st := RoutingStats{Direct: r.direct.Load(), Fallback: r.fallback.Load(), Refreshes: r.refreshes.Load()}
	if v := r.view.Load(); v != nil {
		st.Members = len(v.pools)
	}
	return st
}

// RefreshRouting asks for the cluster view now, installing it before it
// returns. Without routing it does nothing.
func (c *Client) RefreshRouting(ctx context.Context) error {
	if c.router == nil {
		return nil
	}
	return c.router.refresh(ctx)
}
