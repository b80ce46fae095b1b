package node

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
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
// hint in the store, delivered when the replica is alive again);
// rebalancing when owners change, with a handoff before a graceful leave
// (rebalance.go). Not yet: MGET/MPUT routing (they act on the addressed
// node's store only).
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
	// AntiEntropy configures the Merkle-tree repair of replicas
	// (antientropy.go).
	AntiEntropy AntiEntropyConfig
	// NoReadRepair turns read repair off: R>1 GETs still merge the
	// replicas' answers but repair none of them. NoHintedHandoff turns
	// hinted handoff off: a replication that fails, or is meant for a
	// replica that is down, is dropped (counted) instead of kept as a
	// hint, and hints already held are not delivered. Both exist so that
	// anti-entropy can be tested alone.
	NoReadRepair    bool
	NoHintedHandoff bool
	// LeaveTimeout bounds the handoff of a graceful leave (Close): the
	// node leaves every ring, streams its partitions to their owners and
	// waits for their acknowledgements for up to this long before it
	// leaves anyway. 0 means 30s; negative leaves at once (no handoff).
	LeaveTimeout time.Duration
	// RebalanceWorkers bounds the partitions transferred at once when
	// owners change; 0 means 2. RebalanceBatch is how many objects of a
	// partition are in flight to each new owner at once; 0 means 64.
	RebalanceWorkers int
	RebalanceBatch   int
	// FillWindow is how long after this node becomes an owner of a
	// partition (or joins) a GET that misses locally also reads another
	// owner, while the old owners stream the partition in; 0 means 1m.
	FillWindow time.Duration
	// PeerDialer, when set, opens the connections to peers (forwarding,
	// replication, fetches, hints) instead of a net.Dialer: a seam for
	// tests that inject network faults (internal/clustertest). Gossip has
	// its own, Gossip.WrapTransport.
	PeerDialer func(ctx context.Context, network, addr string) (net.Conn, error)
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
	case c.RebalanceWorkers < 0, c.RebalanceBatch < 0, c.FillWindow < 0:
		return fmt.Errorf("%w: Cluster: RebalanceWorkers, RebalanceBatch and FillWindow must not be negative", ErrInvalidConfig)
	case c.ReplicationQueue < 0:
		return fmt.Errorf("%w: Cluster: ReplicationQueue %d must not be negative", ErrInvalidConfig, c.ReplicationQueue)
	}
	if err := c.AntiEntropy.validate(); err != nil {
		return err
	}
	return nil
}

// clusterWorkers is the fewest workers a cluster node's servers run:
// their requests wait on the network (forwarding, synchronous replication,
// R>1 reads), so the CPU count that sizes a single node's pool would bound
// a node to a few requests in flight to its peers.
const clusterWorkers = 64

// workers is the worker count of a server configured with n (0: its
// default): at least clusterWorkers in a cluster.
func (n *Node) workers(configured int) int {
	if n.cfg.Cluster == nil {
		return configured
	}
	return max(configured, clusterWorkers)
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
	coalesced  atomic.Uint64 // background replications folded into one already queued

	forgotten      forgottenHints // guarded by mu; see cluster_hints.go
	hintsForgotten atomic.Uint64  // hints dropped: their target was forgotten
}

// peer is the transport to one other node.
type peer struct {
	id    vclock.NodeID
	queue chan replication

	pmu     sync.Mutex          // guards pending
	pending map[string]refState // keys queued or being sent by reference (obj nil)

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
	n.rebalance.c = c // before serving: requests read it (rebalance.go)
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
	// Rebalancing (rebalance.go) starts once the node is a member.
	c.n.rebalance.plan(m.Ring(), c.n.ID()) // marks what this node must fill
	changes, unsubscribe = m.Subscribe()
	c.wg.Add(1)
	go c.n.rebalance.run(changes, unsubscribe)
	return nil
}

// leave announces the node's departure and stops gossiping.
func (c *cluster) leave(ctx context.Context) error {
	m := c.gossip.Load()
	if m == nil {
		return nil
	}
	// Hand the partitions off first (bounded by LeaveTimeout).
	c.n.rebalance.handOff(ctx)
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
			// A member handing its partitions off before it leaves
			// (rebalance.go) is out of the ring: hinted like a left one.
			if mem.State == gossip.StateAlive && !mem.Leaving {
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
		p = &peer{id: id, queue: make(chan replication, c.queueLen), pending: map[string]refState{}}
		c.peers[id] = p
		for range replicationStreams {
			c.wg.Add(1)
			go c.drain(p)
		}
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
	cfg.Dialer = c.cfg.PeerDialer
	cl, err := client.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("node: connecting to peer %v at %s: %w", id, addr, err)
	}
	p.cl, p.addr = cl, addr
	return cl, nil
}

// liveAddr returns the client address of id when it is alive, else "".
// A member that is leaving (rebalance.go) owns nothing and is not sent
// hints or replications.
func (c *cluster) liveAddr(id vclock.NodeID) string {
	m := c.gossip.Load()
	if m == nil {
		return ""
	}
	addr := ""
	for _, mem := range m.Members() {
		if mem.ID == id && mem.State == gossip.StateAlive && !mem.Leaving {
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
//
// A replication by reference (obj nil: "send the key's current object") is
// queued once per key, and one key is sent to a replica at most once at a
// time: while one is waiting, further writes of the key add nothing, since
// the object read when it is sent includes them; while one is being sent,
// they make it go once more when that send is done. A burst of writes to
// one key then costs a transfer or two per replica instead of one per
// write — what keeps a large, hot object (a set grown by SADD) replicable.
func (c *cluster) enqueue(id vclock.NodeID, r replication) {
	p := c.peer(id)
	if p == nil {
		c.hint(id, r)
		return
	}
	if r.obj == nil {
		p.pmu.Lock()
		st := p.pending[refOf(r)]
		switch st {
		case 0:
			p.pending[refOf(r)] = refQueued
		case refSending:
			p.pending[refOf(r)] = refSendAgain
		}
		p.pmu.Unlock()
		if st != 0 {
			c.coalesced.Add(1)
			return
		}
	}
	c.push(p, r)
}

// push hands r to p's queue; when the queue is full (or the node is
// closing) r becomes a hint.
func (c *cluster) push(p *peer, r replication) {
	select {
	case p.queue <- r:
	default:
		if r.obj == nil {
			p.pmu.Lock()
			delete(p.pending, refOf(r))
			p.pmu.Unlock()
		}
		c.hint(p.id, r)
	}
}

// refState is where a replication by reference is (peer.pending).
type refState uint8

const (
	refQueued    refState = iota + 1 // in the queue
	refSending                       // read and being sent
	refSendAgain                     // being sent, and written since: send again after
)

// refOf is the pending-map key of a replication by reference.
func refOf(r replication) string { return string(r.ns) + "\x00" + string(r.key) }

// sendRef sends a replication by reference: it reads the object, sends it
// (a hint when that fails), and queues the key again if it was written
// while being sent.
func (c *cluster) sendRef(p *peer, r replication) {
	ref := refOf(r)
	p.pmu.Lock()
	p.pending[ref] = refSending
	p.pmu.Unlock()
	if r, ok := c.resolve(r); ok {
		if err := c.send(c.ctx, p.id, r); err != nil {
			c.hint(p.id, r)
		}
	}
	p.pmu.Lock()
	again := p.pending[ref] == refSendAgain
	if again {
		p.pending[ref] = refQueued
	} else {
		delete(p.pending, ref)
	}
	p.pmu.Unlock()
	if again {
		c.push(p, r)
	}
}

// resolve reads the current object of a replication by reference; ok is
// false when the store holds none (any more), so there is nothing to send.
func (c *cluster) resolve(r replication) (replication, bool) {
	if r.obj != nil {
		return r, true
	}
	var o vclock.Object
	found, err := c.n.store.Get(r.ns, r.key, &o)
	if err != nil {
		c.n.log.Warn("replication: reading the object failed", "ns", string(r.ns), "err", err)
		return r, false
	}
	// Get reports an object whose siblings all expired as not found but
	// decodes it: it still carries what the replicas must learn.
	if !found && o.IsZero() {
		return r, false
	}
	r.obj = o.AppendMsgpack(nil)
	return r, true
}

// hint keeps r in the store for delivery to id when it is alive again.
func (c *cluster) hint(id vclock.NodeID, r replication) {
	if c.cfg.NoHintedHandoff {
		c.dropped.Add(1)
		return
	}
	r, ok := c.resolve(r)
	if !ok {
		return
	}
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
	if c.cfg.NoHintedHandoff {
		return
	}
	targets, err := c.n.store.HintTargets()
	if err != nil {
		return
	}
	targets = c.dropForgottenHints(targets)
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

// replicationStreams is how many replications to one peer are in flight
// at once: the peer client pipelines them on its connections, so the
// background rate is not bounded by one round trip per object. Order does
// not matter: a replica merges (vclock.Join), which is commutative.
const replicationStreams = 8

// drain delivers p's queued replications until close.
func (c *cluster) drain(p *peer) {
	defer c.wg.Done()
	for {
		select {
		case <-c.ctx.Done():
			return
		case r := <-p.queue:
			if r.obj == nil {
				c.sendRef(p, r)
				continue
			}
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
	if need == 0 {
		// W=1: the other replicas, and the hints for those that are down,
		// get the object in the background, by reference (see enqueue):
		// nothing is encoded here, and obj is not used.
		self := c.n.ID()
		ref := replication{ns: slices.Clone(nsName(ns)), key: slices.Clone(key)}
		for _, id := range c.downOwners(ns, key) {
			if id != self {
				c.hint(id, ref)
			}
		}
		for _, id := range owners {
			if id != self {
				c.enqueue(id, ref)
			}
		}
		return nil
	}
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
	// fill: the key's partition is being filled here (rebalance.go), so a
	// GET that misses locally reads fillOwners with R=2.
	fill       bool
	fillOwners []vclock.NodeID
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
	res := netproto.NewResponse(op)
	// This node is not among owners: call never answers "here".
	_, err := c.call(ctx, owners, op, !readOnly(op), req, res)
	if err != nil {
		var se *client.ServerError
		code := netproto.CodeBusy
		if errors.As(err, &se) {
			code = se.Code
			err = errors.New(se.Message)
		}
		return netproto.AppendError(dst, op, id, code, err.Error()), code
	}
	return netproto.AppendResponse(dst, op, id, res), netproto.CodeOK
}

// readOnly reports whether a routed operation changes nothing, so that it
// may be sent to another replica after an unanswered try.
func readOnly(op netproto.Opcode) bool {
	return op == netproto.OpGet || op == netproto.OpTTL || op == netproto.OpSMembers
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
	if merged.IsZero() || c.cfg.NoReadRepair {
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
	// Coalesced counts background replications folded into one already
	// queued for the same key and replica.
	Coalesced uint64
	// HintsForgotten counts hints dropped because their target left the
	// cluster's memory (gossip's DeadRetention) without coming back.
	HintsForgotten uint64
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
		HintsForgotten: c.hintsForgotten.Load(), Coalesced: c.coalesced.Load(),
		ReadRepairs: c.repaired.Load(),
	}
}
