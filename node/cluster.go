package node

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecachedb/ecache/client"
	"github.com/ecachedb/ecache/gossip"
	"github.com/ecachedb/ecache/gossip/ring"
	"github.com/ecachedb/ecache/merge"
	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/storage"
	"github.com/ecachedb/ecache/vclock"
)

// ClusterConfig makes a node a member of a cluster.
//
// What works: gossip membership and the partition ring, forwarding of
// single-key requests from a node that is not a replica to one that is,
// coordination (one dot, at the coordinator) and replication of the whole
// resulting object to the other replicas, waiting for W-1 of them and
// queueing the rest; R>1 GETs (merge of R replicas' objects, read repair);
// hinted handoff (a replication that fails or cannot be queued becomes a
// hint in the store, delivered when the replica is alive again). Not yet:
// rebalancing when owners change, and MGET/MPUT routing (they act on the
// addressed node's store only).
type ClusterConfig struct {
	// Gossip configures membership. NodeID is set from the store's node ID,
	// Meta.ClientAddr and Meta.PeerAddr from the node's listen address,
	// Replicas from Replicas, and ClusterKey (memberlist encryption) from
	// ClusterKey when empty. A zero Partitions means the default.
	Gossip gossip.Config
	// Replicas is N, the number of replicas of each partition; 0 means 3.
	Replicas int
	// ClusterKey is the cluster's shared secret. Peers authenticate with a
	// secret derived from it (see PeerSecret). Required.
	ClusterKey string
	// PeerTimeout bounds one call to a peer (forwarding, replication); 0
	// means 2s.
	PeerTimeout time.Duration
	// ReplicationQueue bounds the replications queued for each peer; when
	// a queue is full further ones become hints. 0 means 4096.
	ReplicationQueue int
	// MaxHints bounds the hints (replications kept for replicas that are
	// down) the node holds; 0 means storage.DefaultMaxHints. A memory-only
	// node drops its oldest hint when full, a persistent one the new hint;
	// both are counted.
	MaxHints int
	// HintInterval is how often hints are offered to replicas that are
	// alive (they are also offered on every membership change); 0 means 1s.
	HintInterval time.Duration
	// JoinTimeout bounds joining the cluster in Open; 0 means 10s.
	JoinTimeout time.Duration
}

func (c *ClusterConfig) validate(listen string) error {
	switch {
	case listen == "":
		return fmt.Errorf("%w: Cluster: Listen is required (peers talk to the binary protocol)", ErrInvalidConfig)
	case c.ClusterKey == "":
		return fmt.Errorf("%w: Cluster: ClusterKey is required (peers authenticate with it)", ErrInvalidConfig)
	case c.Replicas < 0:
		return fmt.Errorf("%w: Cluster: Replicas %d must not be negative", ErrInvalidConfig, c.Replicas)
	case c.PeerTimeout < 0, c.JoinTimeout < 0:
		return fmt.Errorf("%w: Cluster: timeouts must not be negative", ErrInvalidConfig)
	case c.MaxHints < 0, c.HintInterval < 0:
		return fmt.Errorf("%w: Cluster: MaxHints and HintInterval must not be negative", ErrInvalidConfig)
	case c.ReplicationQueue < 0:
		return fmt.Errorf("%w: Cluster: ReplicationQueue %d must not be negative", ErrInvalidConfig, c.ReplicationQueue)
	}
	return nil
}

// PeerSecret is the password peers send in HELLO to authenticate as members
// of the cluster whose key is clusterKey.
func PeerSecret(clusterKey string) string {
	sum := sha256.Sum256([]byte("ecache-peer\x00" + clusterKey))
	return hex.EncodeToString(sum[:])
}

// cluster is a node's membership and its peer transport.
type cluster struct {
	n          *Node
	cfg        ClusterConfig
	secret     string
	replicas   int
	partitions int
	timeout    time.Duration
	queueLen   int

	gossip  atomic.Pointer[gossip.Membership]
	nominal atomic.Pointer[nominalRing] // see downOwners

	ctx    context.Context // cancelled by close: stops the queue workers
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	peers  map[vclock.NodeID]*peer
	closed bool

	dropped    atomic.Uint64 // replications dropped (no hint could be kept)
	replicated atomic.Uint64 // replications acknowledged
	forwarded  atomic.Uint64 // requests forwarded
	hinted     atomic.Uint64 // replications kept as hints
	delivered  atomic.Uint64 // hints delivered (and deleted)
	repaired   atomic.Uint64 // read repairs sent or applied
}

// peer is the transport to one other node.
type peer struct {
	id    vclock.NodeID
	queue chan replication

	mu   sync.Mutex // guards cl, addr and dead; held while dialling
	cl   *client.Client
	addr string // the client address cl is connected to
	dead bool
}

// replication is one object to merge into a replica. Its slices are owned.
type replication struct {
	ns, key, obj []byte
}

func newCluster(n *Node, cfg ClusterConfig) *cluster {
	c := &cluster{
		n:          n,
		cfg:        cfg,
		secret:     PeerSecret(cfg.ClusterKey),
		replicas:   cmpOr(cfg.Replicas, gossip.DefaultReplicas),
		partitions: cmpOr(cfg.Gossip.Partitions, gossip.DefaultPartitions),
		timeout:    cmpOr(cfg.PeerTimeout, 2*time.Second),
		queueLen:   cmpOr(cfg.ReplicationQueue, 4096),
		peers:      map[vclock.NodeID]*peer{},
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	n.store.SetMaxHints(cfg.MaxHints)
	return c
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// open joins the cluster; the node serves already, so peers can reach it.
func (c *cluster) open() error {
	g := c.cfg.Gossip
	g.NodeID = c.n.ID()
	g.Partitions = c.partitions
	g.Replicas = c.replicas
	if g.ClusterKey == "" {
		g.ClusterKey = c.cfg.ClusterKey
	}
	g.Meta.ClientAddr = c.n.Addr()
	g.Meta.PeerAddr = c.n.Addr()
	g.Meta.ProtocolVersion = netproto.Version
	if g.Logger == nil {
		g.Logger = c.n.log
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmpOr(c.cfg.JoinTimeout, 10*time.Second))
	defer cancel()
	m, err := gossip.Open(ctx, g)
	if err != nil {
		return err
	}
	c.gossip.Store(m)
	changes, unsubscribe := m.Subscribe()
	c.wg.Add(1)
	go c.handoff(changes, unsubscribe)
	return nil
}

// leave announces the node's departure and stops gossiping.
func (c *cluster) leave(ctx context.Context) error {
	m := c.gossip.Load()
	if m == nil {
		return nil
	}
	if err := m.Leave(ctx); err != nil && !errors.Is(err, gossip.ErrClosed) {
		return err
	}
	return nil
}

// close stops the replication workers (dropping what they still hold) and
// closes the peer connections. The server must have stopped first.
func (c *cluster) close() {
	c.cancel()
	c.wg.Wait()
	c.mu.Lock()
	c.closed = true
	peers := make([]*peer, 0, len(c.peers))
	for _, p := range c.peers {
		peers = append(peers, p)
	}
	c.mu.Unlock()
	for _, p := range peers {
		// What is still queued is kept as hints (the store is open yet).
		for len(p.queue) > 0 {
			c.hint(p.id, <-p.queue)
		}
		p.mu.Lock()
		p.dead = true
		if p.cl != nil {
			_ = p.cl.Close()
			p.cl = nil
		}
		p.mu.Unlock()
	}
}

// owners returns the replicas of (ns, key), nil before the node has joined.
func (c *cluster) owners(ns, key []byte) []vclock.NodeID {
	m := c.gossip.Load()
	if m == nil {
		return nil
	}
	return m.Ring().Owners(storage.PartitionOf(nsName(ns), key, c.partitions))
}

// nominalRing is the ring of every member this node knows, alive or not
// (dead or left within the gossip's retention), computed for one live ring.
type nominalRing struct {
	live  *ring.Ring
	full  *ring.Ring // nil when every known member is alive
	alive map[vclock.NodeID]bool
}

// downOwners returns the replicas (ns, key) would have if every known
// member were alive, less those that are: the replicas that miss writes
// while they are down, which the coordinator keeps hints for.
func (c *cluster) downOwners(ns, key []byte) []vclock.NodeID {
	m := c.gossip.Load()
	if m == nil {
		return nil
	}
	live := m.Ring()
	nr := c.nominal.Load()
	if nr == nil || nr.live != live {
		members := m.Members()
		all := make([]vclock.NodeID, 0, len(members))
		nr = &nominalRing{live: live, alive: make(map[vclock.NodeID]bool, len(members))}
		for _, mem := range members {
			all = append(all, mem.ID)
			if mem.State == gossip.StateAlive {
				nr.alive[mem.ID] = true
			}
		}
		if len(nr.alive) < len(all) {
			nr.full = ring.MustNew(c.partitions, c.replicas, all)
		}
		c.nominal.Store(nr)
	}
	if nr.full == nil {
		return nil
	}
	var down []vclock.NodeID
	for _, id := range nr.full.Owners(storage.PartitionOf(nsName(ns), key, c.partitions)) {
		if !nr.alive[id] {
			down = append(down, id)
		}
	}
	return down
}

// isPeer reports whether password is the peer secret.
func (c *cluster) isPeer(password string) bool {
	return password != "" && subtle.ConstantTimeCompare([]byte(password), []byte(c.secret)) == 1
}

// peer returns the transport to id, creating it (and its queue worker) on
// first use; nil once closed.
func (c *cluster) peer(id vclock.NodeID) *peer {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	p := c.peers[id]
	if p == nil {
		p = &peer{id: id, queue: make(chan replication, c.queueLen)}
		c.peers[id] = p
		c.wg.Add(1)
		go c.drain(p)
	}
	return p
}

var errNoPeer = errors.New("node: peer unknown or closed")

// client returns the connection pool to id, dialling it on first use at
// the client address the member advertises.
func (c *cluster) client(ctx context.Context, id vclock.NodeID) (*client.Client, error) {
	p := c.peer(id)
	if p == nil {
		return nil, errNoPeer
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead {
		return nil, errNoPeer
	}
	m := c.gossip.Load()
	if m == nil {
		return nil, errNoPeer
	}
	addr := c.liveAddr(id)
	if p.cl != nil && (addr == "" || addr == p.addr) {
		return p.cl, nil
	}
	if addr == "" {
		return nil, fmt.Errorf("%w: node %v has no live client address", errNoPeer, id)
	}
	if p.cl != nil {
		// The node came back at another address.
		_ = p.cl.Close()
		p.cl = nil
	}
	cfg := client.DefaultConfig()
	cfg.Addrs = []string{addr}
	cfg.Password = c.secret
	cfg.ClientName = "ecache-peer/" + c.n.ID().String()
	cfg.Limits = c.n.cfg.Limits
	cfg.RequestTimeout = c.timeout
	cfg.DialTimeout = c.timeout
	cfg.Logger = c.n.log
	cl, err := client.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("node: connecting to peer %v at %s: %w", id, addr, err)
	}
	p.cl, p.addr = cl, addr
	return cl, nil
}

// liveAddr returns the client address of id when it is alive, else "".
func (c *cluster) liveAddr(id vclock.NodeID) string {
	m := c.gossip.Load()
	if m == nil {
		return ""
	}
	addr := ""
	for _, mem := range m.Members() {
		if mem.ID == id && mem.State == gossip.StateAlive {
			addr = mem.Meta.ClientAddr
		}
	}
	return addr
}

// send merges r into replica id and waits for its acknowledgement.
func (c *cluster) send(ctx context.Context, id vclock.NodeID, r replication) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cl, err := c.client(ctx, id)
	if err != nil {
		return err
	}
	var resp netproto.StatusResponse
	if err := cl.Do(ctx, netproto.OpReplicate, &netproto.ReplicateRequest{Namespace: r.ns, Key: r.key, Object: r.obj}, &resp); err != nil {
		return err
	}
	if resp.Status != netproto.CodeOK {
		return fmt.Errorf("node: replica %v answered %v", id, resp.Status)
	}
	c.replicated.Add(1)
	return nil
}

// enqueue hands r to id's queue; when the queue is full (or the node is
// closing) r becomes a hint.
func (c *cluster) enqueue(id vclock.NodeID, r replication) {
	p := c.peer(id)
	if p == nil {
		c.hint(id, r)
		return
	}
	select {
	case p.queue <- r:
	default:
		c.hint(id, r)
	}
}

// hint keeps r in the store for delivery to id when it is alive again.
func (c *cluster) hint(id vclock.NodeID, r replication) {
	if err := c.n.store.PutHint(id, r.ns, r.key, r.obj); err != nil {
		c.dropped.Add(1)
		c.n.log.Warn("replication dropped: no hint kept", "peer", id, "err", err, "dropped_total", c.dropped.Load())
		return
	}
	c.hinted.Add(1)
}

// handoff delivers hints to the replicas that are alive, on every
// membership change and every HintInterval, until close.
func (c *cluster) handoff(changes <-chan struct{}, unsubscribe func()) {
	defer c.wg.Done()
	defer unsubscribe()
	t := time.NewTicker(cmpOr(c.cfg.HintInterval, time.Second))
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case _, ok := <-changes:
			if !ok {
				changes = nil
			}
		case <-t.C:
		}
		c.deliverHints()
	}
}

// errStop ends a hint scan early.
var errStop = errors.New("stop")

// deliverHints sends every hint held for a live replica, deleting each one
// the replica acknowledged. A replica that fails is tried again later.
func (c *cluster) deliverHints() {
	targets, err := c.n.store.HintTargets()
	if err != nil {
		return
	}
	self := c.n.ID()
	for _, id := range targets {
		if id == self || c.liveAddr(id) == "" || c.ctx.Err() != nil {
			continue
		}
		err := c.n.store.ScanHints(id, func(ns, key, obj []byte) error {
			r := replication{ns: slices.Clone(ns), key: slices.Clone(key), obj: slices.Clone(obj)}
			if err := c.send(c.ctx, id, r); err != nil {
				return fmt.Errorf("%w: %w", errStop, err)
			}
			if ok, err := c.n.store.DeleteHint(id, ns, key, obj); err != nil {
				return err
			} else if ok {
				c.delivered.Add(1)
			}
			return nil
		})
		if err != nil && c.ctx.Err() == nil {
			c.n.log.Warn("hint delivery stopped", "peer", id, "err", err)
		}
	}
}

// drain delivers p's queued replications until close.
func (c *cluster) drain(p *peer) {
	defer c.wg.Done()
	for {
		select {
		case <-c.ctx.Done():
			return
		case r := <-p.queue:
			if err := c.send(c.ctx, p.id, r); err != nil {
				c.hint(p.id, r)
			}
		}
	}
}

// errWNotReached reports a write applied at its coordinator that fewer
// than W replicas acknowledged in time.
var errWNotReached = errors.New("node: write not acknowledged by w replicas")

// replicate sends obj, the coordinator's new object of (ns, key), to the
// owners other than this node: it waits until need of them acknowledged
// (trying further ones when one fails) and queues the rest.
func (c *cluster) replicate(ctx context.Context, ns, key []byte, obj vclock.Object, owners []vclock.NodeID, need int) error {
	self := c.n.ID()
	others := make([]vclock.NodeID, 0, len(owners))
	for _, id := range owners {
		if id != self {
			others = append(others, id)
		}
	}
	var r replication
	made := false
	mk := func() replication {
		if !made {
			r, made = replication{ns: slices.Clone(nsName(ns)), key: slices.Clone(key), obj: obj.AppendMsgpack(nil)}, true
		}
		return r
	}
	// The replicas that are down (dead or left, still remembered) get
	// hints, delivered when they are back.
	for _, id := range c.downOwners(ns, key) {
		if id != self {
			c.hint(id, mk())
		}
	}
	if len(others) == 0 {
		if need > 0 {
			return fmt.Errorf("%w: %d more wanted, no other replica is alive", errWNotReached, need)
		}
		return nil
	}
	r = mk()
	type result struct {
		id  vclock.NodeID
		err error
	}
	results := make(chan result, len(others))
	next, inflight, acks := 0, 0, 0
	var failed []vclock.NodeID
	launch := func() {
		id := others[next]
		next++
		inflight++
		go func() { results <- result{id, c.send(ctx, id, r)} }()
	}
	for inflight < need && next < len(others) {
		launch()
	}
	var lastErr error
	for inflight > 0 {
		res := <-results
		inflight--
		if res.err == nil {
			acks++
		} else {
			lastErr = res.err
			failed = append(failed, res.id)
			c.n.log.Warn("synchronous replication failed", "peer", res.id, "err", res.err)
			if acks+inflight < need && next < len(others) {
				launch()
			}
		}
	}
	// The rest, and the replicas that failed (one more try), in the
	// background.
	for _, id := range append(failed, others[next:]...) {
		c.enqueue(id, r)
	}
	if acks < need {
		return fmt.Errorf("%w: %d of %d acknowledged: %v", errWNotReached, acks+1, need+1, lastErr)
	}
	return nil
}

// route is what dispatch needs to know about a data request in a cluster.
type route struct {
	owners []vclock.NodeID
	need   int // replica acknowledgements a write waits for, besides this node's
	r      int // replicas a GET reads, this node's included (0: a plain read)
}

// errWTooLarge rejects a W or R over N.
var errWTooLarge = errors.New("node: w exceeds replicas")

// errRTooLarge rejects an R over N.
var errRTooLarge = errors.New("node: r exceeds replicas")

// errRNotReached reports a read that fewer than R replicas answered.
var errRNotReached = errors.New("node: read not answered by r replicas")

// getOptions returns R and whether the GET is local, for a GET body.
func getOptions(op netproto.Opcode, body []byte) (r uint32, local bool) {
	if op != netproto.OpGet {
		return 0, false
	}
	var req netproto.GetRequest
	if req.DecodeBody(body) != nil {
		return 0, false
	}
	return req.R, req.Flags&netproto.GetFlagLocal != 0
}

// keyOf decodes the namespace, key and W of a routed data request; ok is
// false for an operation that is not routed or a body that does not
// decode (dispatch answers that as usual).
func keyOf(op netproto.Opcode, body []byte) (ns, key []byte, w uint32, ok bool) {
	switch op {
	case netproto.OpGet, netproto.OpPut, netproto.OpDel, netproto.OpIncr, netproto.OpDecr,
		netproto.OpSAdd, netproto.OpSRem, netproto.OpSMembers, netproto.OpExpire, netproto.OpTTL:
	default:
		return nil, nil, 0, false
	}
	req := netproto.NewRequest(op)
	if req.DecodeBody(body) != nil {
		return nil, nil, 0, false
	}
	switch r := req.(type) {
	case *netproto.GetRequest:
		return r.Namespace, r.Key, 0, true
	case *netproto.PutRequest:
		return r.Namespace, r.Key, r.W, true
	case *netproto.DelRequest:
		return r.Namespace, r.Key, r.W, true
	case *netproto.CounterRequest:
		return r.Namespace, r.Key, r.W, true
	case *netproto.SetRequest:
		return r.Namespace, r.Key, r.W, true
	case *netproto.KeyRequest:
		return r.Namespace, r.Key, 0, true
	case *netproto.ExpireRequest:
		return r.Namespace, r.Key, r.W, true
	}
	return nil, nil, 0, false
}

// forward sends f to the first owner that answers and appends its answer,
// with f's request ID, to dst.
func (c *cluster) forward(ctx context.Context, f netproto.Frame, owners []vclock.NodeID, dst []byte) ([]byte, netproto.Code) {
	op, id := f.Opcode, f.RequestID
	req := netproto.NewRequest(op)
	if err := req.DecodeBody(f.Body); err != nil {
		return netproto.AppendError(dst, op, id, netproto.CodeMalformed, err.Error()), netproto.CodeMalformed
	}
	var lastErr error
	for _, owner := range owners {
		if owner == c.n.ID() {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, c.timeout)
		resp := netproto.NewResponse(op)
		cl, err := c.client(cctx, owner)
		if err == nil {
			err = cl.Do(cctx, op, req, resp)
		}
		cancel()
		var se *client.ServerError
		switch {
		case err == nil:
			c.forwarded.Add(1)
			return netproto.AppendResponse(dst, op, id, resp), netproto.CodeOK
		case errors.As(err, &se):
			c.forwarded.Add(1)
			return netproto.AppendError(dst, op, id, se.Code, se.Message), se.Code
		}
		lastErr = err
		c.n.log.Warn("forwarding failed", "op", op.String(), "peer", owner, "err", err)
		if ctx.Err() != nil {
			break
		}
	}
	msg := fmt.Sprintf("no replica of the key answered: %v", lastErr)
	return netproto.AppendError(dst, op, id, netproto.CodeBusy, msg), netproto.CodeBusy
}

// fetch returns replica id's object of (ns, key), the zero Object when it
// holds none.
func (c *cluster) fetch(ctx context.Context, id vclock.NodeID, ns, key []byte) (vclock.Object, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cl, err := c.client(ctx, id)
	if err != nil {
		return vclock.Object{}, err
	}
	var resp netproto.FetchResponse
	if err := cl.Do(ctx, netproto.OpFetch, &netproto.KeyRequest{Namespace: ns, Key: key}, &resp); err != nil {
		return vclock.Object{}, err
	}
	switch resp.Status {
	case netproto.CodeNotFound:
		return vclock.Object{}, nil
	case netproto.CodeOK:
	default:
		return vclock.Object{}, fmt.Errorf("node: replica %v answered FETCH with %v", id, resp.Status)
	}
	var o vclock.Object
	if err := vclock.DecodeObject(resp.Object, &o); err != nil {
		return vclock.Object{}, err
	}
	if err := o.Validate(); err != nil {
		return vclock.Object{}, err
	}
	return o.Clone(), nil
}

// readR reads (ns, key) from r replicas, this node's store first, merges
// their objects with s and repairs, in the background, every replica that
// answered with something other than the merge.
func (c *cluster) readR(ctx context.Context, s merge.Strategy, ns, key []byte, owners []vclock.NodeID, r int) (vclock.Object, error) {
	var local vclock.Object
	found, err := c.n.store.Get(nsName(ns), key, &local)
	if err != nil {
		return vclock.Object{}, err
	}
	if !found {
		local = vclock.Object{}
	} else {
		local = local.Clone()
	}
	self := c.n.ID()
	others := make([]vclock.NodeID, 0, len(owners))
	for _, id := range owners {
		if id != self {
			others = append(others, id)
		}
	}
	need := r - 1
	type answer struct {
		id  vclock.NodeID
		obj vclock.Object
		err error
	}
	results := make(chan answer, len(others))
	next, inflight := 0, 0
	launch := func() {
		id := others[next]
		next++
		inflight++
		go func() {
			o, err := c.fetch(ctx, id, ns, key)
			results <- answer{id, o, err}
		}()
	}
	for inflight < need && next < len(others) {
		launch()
	}
	var answers []answer
	var lastErr error
	for inflight > 0 {
		a := <-results
		inflight--
		if a.err != nil {
			lastErr = a.err
			c.n.log.Warn("read from replica failed", "peer", a.id, "err", a.err)
			if len(answers)+inflight < need && next < len(others) {
				launch()
			}
			continue
		}
		answers = append(answers, a)
	}
	if len(answers) < need {
		return vclock.Object{}, fmt.Errorf("%w: %d of %d answered: %v", errRNotReached, len(answers)+1, r, lastErr)
	}
	merged := local
	for _, a := range answers {
		merged = s.Merge(merged, a.obj)
	}
	if merged.IsZero() {
		return merged, nil
	}
	var enc []byte
	for _, a := range answers {
		if !vclock.ObjectsEqual(a.obj, merged) {
			if enc == nil {
				enc = merged.AppendMsgpack(nil)
			}
			c.repaired.Add(1)
			c.enqueue(a.id, replication{ns: slices.Clone(nsName(ns)), key: slices.Clone(key), obj: enc})
		}
	}
	if !vclock.ObjectsEqual(local, merged) {
		c.repaired.Add(1)
		m := merged
		if _, err := c.n.store.Update(nsName(ns), key, func(cur vclock.Object, _ bool) (vclock.Object, error) {
			return s.Merge(cur, m), nil
		}); err != nil {
			c.n.log.Warn("read repair of the local replica failed", "err", err)
		}
	}
	return merged, nil
}

// replicateHandler merges a peer's object into this replica.
func (n *Node) replicateHandler(body []byte) (netproto.Body, error) {
	var req netproto.ReplicateRequest
	if err := req.DecodeBody(body); err != nil {
		return nil, err
	}
	if err := n.checkKey(req.Key); err != nil {
		return nil, err
	}
	s, err := n.strategy(req.Namespace)
	if err != nil {
		return nil, err
	}
	var obj vclock.Object
	if err := vclock.DecodeObject(req.Object, &obj); err != nil {
		return nil, err
	}
	if err := obj.Validate(); err != nil {
		return nil, err
	}
	obj = obj.Clone() // the frame body is reused after the call
	if m := obj.MaxHLC(); m != 0 {
		_, _ = n.hlc.Observe(m) // best effort: a skewed peer does not block replication
	}
	if _, err := n.store.Update(nsName(req.Namespace), req.Key, func(cur vclock.Object, _ bool) (vclock.Object, error) {
		return s.Merge(cur, obj), nil
	}); err != nil {
		return nil, err
	}
	return &netproto.StatusResponse{Status: netproto.CodeOK}, nil
}

// fetchHandler returns this replica's whole object.
func (n *Node) fetchHandler(sc *scratch, body []byte) (netproto.Body, error) {
	req := &sc.key
	if err := req.DecodeBody(body); err != nil {
		return nil, err
	}
	if err := n.checkKey(req.Key); err != nil {
		return nil, err
	}
	if _, err := n.strategy(req.Namespace); err != nil {
		return nil, err
	}
	found, err := n.store.Get(nsName(req.Namespace), req.Key, &sc.obj)
	if err != nil {
		return nil, err
	}
	if !found {
		return &netproto.FetchResponse{Status: netproto.CodeNotFound, Object: []byte{}}, nil
	}
	return &netproto.FetchResponse{Status: netproto.CodeOK, Object: sc.obj.AppendMsgpack(nil)}, nil
}

// Membership returns the node's cluster membership, nil for a single node
// (or before it has joined).
func (n *Node) Membership() *gossip.Membership {
	if n.cluster == nil {
		return nil
	}
	return n.cluster.gossip.Load()
}

// ClusterStats are the counters of the peer transport.
type ClusterStats struct {
	Forwarded  uint64 // requests forwarded to a replica
	Replicated uint64 // replications acknowledged by a replica
	Dropped    uint64 // replications dropped: no hint could be kept for them
	// HintsStored counts replications kept as hints (a replica failed or
	// its queue was full); HintsPending is how many hints are held now;
	// HintsDelivered counts hints a returning replica acknowledged;
	// HintsDropped counts hints the bounded hint store dropped or refused.
	HintsStored    uint64
	HintsPending   int
	HintsDelivered uint64
	HintsDropped   uint64
	// ReadRepairs counts stale replicas repaired by R>1 reads.
	ReadRepairs uint64
}

// ClusterStats returns the peer transport's counters (zero for a single
// node).
func (n *Node) ClusterStats() ClusterStats {
	if n.cluster == nil {
		return ClusterStats{}
	}
	c := n.cluster
	hs := n.store.HintStats()
	return ClusterStats{
		Forwarded: c.forwarded.Load(), Replicated: c.replicated.Load(), Dropped: c.dropped.Load(),
		HintsStored: c.hinted.Load(), HintsPending: hs.Stored, HintsDelivered: c.delivered.Load(), HintsDropped: hs.Dropped,
		ReadRepairs: c.repaired.Load(),
	}
}
