package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecachedb/ecache/antientropy"
	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/storage"
	"github.com/ecachedb/ecache/vclock"
)

// AntiEntropyConfig configures a cluster node's anti-entropy: one Merkle
// tree per partition kept current from the store's changes, and a
// scheduler that exchanges every partition the node replicates with every
// other live replica, one exchange at a time.
type AntiEntropyConfig struct {
	// Interval is the time between the starts of two rounds over the
	// partitions; 0 means 30s and a negative value disables the scheduler
	// (trees are still kept and peers' exchanges still answered).
	Interval time.Duration
	// RateKeys bounds the keys this node's exchanges push and pull per
	// second; 0 means 20,000 and a negative value no limit.
	RateKeys int
	// RateBytes bounds the bytes of exchange messages this node's
	// exchanges send and receive per second; 0 means 32 MiB and a negative
	// value no limit.
	RateBytes int64
	// Exchange configures the exchanges; the zero value means
	// antientropy.DefaultConfig(). Every node of a cluster must use the
	// same Shape.
	Exchange antientropy.Config
}

const (
	defaultAEInterval  = 30 * time.Second
	defaultAERateKeys  = 20_000
	defaultAERateBytes = 32 << 20
)

func (c *AntiEntropyConfig) validate() error {
	if c.Exchange != (antientropy.Config{}) {
		if err := c.Exchange.Validate(); err != nil {
			return fmt.Errorf("%w: Cluster: AntiEntropy: %w", ErrInvalidConfig, err)
		}
	}
	return nil
}

// errAENotReady reports an exchange of a partition whose tree is still
// being built.
var errAENotReady = errors.New("node: anti-entropy tree not built yet")

// antiEntropy is a cluster node's anti-entropy: trees, the scheduler and
// the responder side of the ANTIENTROPY peer operation.
type antiEntropy struct {
	n        *Node
	trees    *antientropy.Trees
	xcfg     antientropy.Config
	interval time.Duration
	keys     *limiter
	bytes    *limiter

	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// ready is closed when the start-up build of every tree has ended.
	ready chan struct{}

	// run serialises this node's exchanges: one at a time.
	run     sync.Mutex
	session atomic.Uint64

	exchanges   atomic.Uint64 // exchanges completed (as initiator)
	failures    atomic.Uint64 // exchanges that failed (as initiator)
	differences atomic.Uint64 // keys found to differ
	repaired    atomic.Uint64 // keys pushed or pulled
	ghosts      atomic.Uint64 // keys not repaired: evicted here or there
	byteCount   atomic.Uint64 // bytes of exchange messages sent and received

	mu sync.Mutex
	// parts holds per partition what its last completed exchange did.
	// Guarded by mu.
	parts map[uint32]*aePartition
}

// aePartition is the state of one partition's exchanges.
type aePartition struct {
	last        time.Time
	peer        vclock.NodeID
	exchanges   uint64
	differences uint64
	repaired    uint64
	bytes       uint64
}

func newAntiEntropy(n *Node, cfg AntiEntropyConfig, partitions int) (*antiEntropy, error) {
	xcfg := cfg.Exchange
	if xcfg == (antientropy.Config{}) {
		xcfg = antientropy.DefaultConfig()
	}
	trees, err := antientropy.NewTrees(xcfg.Shape, partitions)
	if err != nil {
		return nil, fmt.Errorf("%w: Cluster: AntiEntropy: %w", ErrInvalidConfig, err)
	}
	a := &antiEntropy{
		n: n, trees: trees, xcfg: xcfg,
		interval: cmpOr(cfg.Interval, defaultAEInterval),
		keys:     newLimiter(float64(cmpOr(cfg.RateKeys, defaultAERateKeys))),
		bytes:    newLimiter(float64(cmpOr(cfg.RateBytes, defaultAERateBytes))),
		ready:    make(chan struct{}),
		parts:    map[uint32]*aePartition{},
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	// A fresh session base per process, so a restarted node's exchanges
	// never look like its previous life's.
	a.session.Store(rand.Uint64() &^ (1<<20 - 1))
	return a, nil
}

// start builds the trees in the background and, unless disabled, runs the
// scheduler. The node serves already: requests never wait for the build.
func (a *antiEntropy) start() {
	a.n.metrics.reg.MustRegister(&aeCollector{a: a})
	a.wg.Add(1)
	go a.loop()
}

// close stops the scheduler, abandoning the exchange in flight, and waits.
// It is idempotent.
func (a *antiEntropy) close() {
	a.cancel()
	a.wg.Wait()
}

// loop builds the trees, then runs a round every interval until close.
func (a *antiEntropy) loop() {
	defer a.wg.Done()
	a.build()
	if a.interval < 0 {
		return
	}
	t := time.NewTimer(a.interval)
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
		}
		a.round()
		t.Reset(a.interval)
	}
}

// resetAll makes every partition's tree empty and ready: a memory-only
// store's, before the node serves (Open).
func (a *antiEntropy) resetAll() {
	for p := range uint32(a.trees.Partitions()) {
		a.trees.Reset(p)
	}
}

// build makes every partition's tree from a scan of the partition, one at
// a time (a memory-only store's trees were made empty by resetAll). A
// partition whose scan fails stays not ready (skipped by exchanges) and is
// logged.
func (a *antiEntropy) build() {
	defer close(a.ready)
	st := a.n.store
	if !st.Persistent() {
		return
	}
	start := time.Now()
	for p := range uint32(a.trees.Partitions()) {
		if a.ctx.Err() != nil {
			return
		}
		if err := a.trees.RebuildFromStore(st, p); err != nil {
			if a.ctx.Err() == nil && !errors.Is(err, storage.ErrClosed) {
				a.n.log.Warn("anti-entropy: building a partition's tree failed; it is skipped", "partition", p, "err", err)
			}
		}
	}
	a.n.log.Info("anti-entropy trees built", "partitions", a.trees.Partitions(), "took", time.Since(start))
}

// round exchanges every partition this node replicates with every other
// live replica, in partition order.
func (a *antiEntropy) round() {
	c := a.n.cluster
	m := c.gossip.Load()
	if m == nil {
		return
	}
	r := m.Ring()
	self := a.n.ID()
	for p := range uint32(r.Partitions()) {
		owners := r.Owners(p)
		if !slices.Contains(owners, self) || !a.trees.Ready(p) {
			continue
		}
		for _, id := range owners {
			if a.ctx.Err() != nil {
				return
			}
			if id == self || c.liveAddr(id) == "" {
				continue
			}
			if _, err := a.exchange(a.ctx, p, id); err != nil && a.ctx.Err() == nil {
				a.n.log.Debug("anti-entropy exchange failed", "partition", p, "peer", id, "err", err)
			}
		}
	}
}

// AntiEntropyExchange runs one anti-entropy exchange of partition p with
// replica peer now, waiting for this node's trees to be built and for any
// exchange in flight, and returns what it did once both replicas hold the
// merge of their objects (the keys that differed were pushed and pulled).
// Rebalancing uses it to fill a new owner. It fails on a single node.
func (n *Node) AntiEntropyExchange(ctx context.Context, p uint32, peer vclock.NodeID) (antientropy.Stats, error) {
	a := n.ae
	if a == nil {
		return antientropy.Stats{}, errNoPeer
	}
	select {
	case <-a.ready:
	case <-ctx.Done():
		return antientropy.Stats{}, ctx.Err()
	}
	return a.exchange(ctx, p, peer)
}

// maxExchangeRounds bounds the request-response rounds of one exchange:
// far more than any exchange takes (depth + lists + object batches).
const maxExchangeRounds = 1 << 20

// exchange runs one exchange of partition p with peer as its initiator.
func (a *antiEntropy) exchange(ctx context.Context, p uint32, peer vclock.NodeID) (antientropy.Stats, error) {
	a.run.Lock()
	defer a.run.Unlock()
	tree, ok := a.trees.Tree(p)
	if !ok {
		return antientropy.Stats{}, errAENotReady
	}
	ex, err := antientropy.NewExchange(a.xcfg, a.session.Add(1), p, tree, a.replica(p))
	if err != nil {
		return antientropy.Stats{}, err
	}
	var nbytes uint64
	err = a.drive(ctx, ex, peer, &nbytes)
	st := ex.Stats()
	a.byteCount.Add(nbytes)
	if err == nil && !ex.Done() {
		err = errors.New("node: anti-entropy exchange ended unanswered")
	}
	if err == nil {
		err = ex.Err()
	}
	// What an exchange transferred was merged, whether or not it then
	// finished: count it either way.
	a.differences.Add(uint64(st.KeysDiffering))
	a.repaired.Add(uint64(st.KeysTransferred))
	a.ghosts.Add(uint64(st.Ghosts))
	a.mu.Lock()
	ps := a.parts[p]
	if ps == nil {
		ps = &aePartition{}
		a.parts[p] = ps
	}
	ps.differences += uint64(st.KeysDiffering)
	ps.repaired += uint64(st.KeysTransferred)
	ps.bytes += nbytes
	if err == nil {
		ps.last, ps.peer = a.n.now(), peer
		ps.exchanges++
	}
	a.mu.Unlock()
	if err != nil {
		a.failures.Add(1)
		return st, fmt.Errorf("node: anti-entropy exchange of partition %d with %v: %w", p, peer, err)
	}
	a.exchanges.Add(1)
	return st, nil
}

// drive sends ex's messages to peer over the peer transport and steps ex
// with the answers until no message is left, within the rate limits.
func (a *antiEntropy) drive(ctx context.Context, ex *antientropy.Exchange, peer vclock.NodeID, nbytes *uint64) error {
	c := a.n.cluster
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	cl, err := c.client(cctx, peer)
	cancel()
	if err != nil {
		return err
	}
	out := ex.Start(a.n.now().UnixNano())
	for rounds := 0; len(out) > 0; rounds++ {
		if rounds >= maxExchangeRounds {
			return errors.New("node: anti-entropy exchange does not end")
		}
		var next []antientropy.Message
		for i := range out {
			m := &out[i]
			enc := m.AppendMsgpack(nil)
			if err := a.bytes.wait(ctx, len(enc)); err != nil {
				return err
			}
			if err := a.keys.wait(ctx, len(m.Objects)+len(m.Keys)); err != nil {
				return err
			}
			*nbytes += uint64(len(enc))
			var resp netproto.AntiEntropyResponse
			rctx, cancel := context.WithTimeout(ctx, a.xcfg.Timeout)
			err := cl.Do(rctx, netproto.OpAntiEntropy, &netproto.AntiEntropyRequest{Message: enc}, &resp)
			cancel()
			if m.Type == antientropy.MsgAbort {
				continue // best effort: the exchange has failed already
			}
			if err != nil {
				return err
			}
			for _, rb := range resp.Messages {
				*nbytes += uint64(len(rb))
				// Answers count against the byte rate too: the wait
				// delays the next request.
				if err := a.bytes.wait(ctx, len(rb)); err != nil {
					return err
				}
				rm, err := antientropy.DecodeMessage(slices.Clone(rb))
				if err != nil {
					return err
				}
				next = append(next, ex.Step(a.n.now().UnixNano(), rm)...)
			}
		}
		out = next
	}
	return nil
}

// replica returns partition p of the store as an exchange's Replica,
// merging peers' objects with their namespace's strategy.
func (a *antiEntropy) replica(p uint32) antientropy.Replica {
	n := a.n
	return antientropy.NewStoreReplica(n.store, p, a.xcfg.Shape, func(ns, _ []byte, cur, in vclock.Object) (vclock.Object, error) {
		s, err := n.strategy(ns)
		if err != nil {
			return vclock.Object{}, err
		}
		if m := in.MaxHLC(); m != 0 {
			_, _ = n.hlc.Observe(m) // best effort, as in replicateHandler
		}
		return s.Merge(cur, in), nil
	})
}

// antiEntropyHandler answers one exchange message from a peer's
// initiator. A partition whose tree is not ready is answered with an
// abort, which ends the peer's exchange; it tries again next round.
func (n *Node) antiEntropyHandler(body []byte) (netproto.Body, error) {
	var req netproto.AntiEntropyRequest
	if err := req.DecodeBody(body); err != nil {
		return nil, err
	}
	m, err := antientropy.DecodeMessage(req.Message)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", netproto.ErrMalformed, err)
	}
	a := n.ae
	var out []antientropy.Message
	if tree, ok := a.trees.Tree(m.Partition); ok {
		out, err = antientropy.NewResponder(m.Partition, tree, a.replica(m.Partition)).Step(m)
		if err != nil {
			n.log.Debug("anti-entropy: answering a peer's exchange failed", "partition", m.Partition, "err", err)
		}
	} else if m.Type != antientropy.MsgAbort && m.Type%2 == 1 {
		out = []antientropy.Message{{Type: antientropy.MsgAbort, Session: m.Session, Partition: m.Partition, Seq: m.Seq, Error: errAENotReady.Error()}}
	}
	resp := &netproto.AntiEntropyResponse{Messages: make([][]byte, 0, len(out))}
	nb := len(req.Message)
	for i := range out {
		enc := out[i].AppendMsgpack(nil)
		nb += len(enc)
		resp.Messages = append(resp.Messages, enc)
	}
	a.byteCount.Add(uint64(nb))
	return resp, nil
}

// AntiEntropyPartition is one partition's anti-entropy state, as served by
// the admin endpoint /v1/antientropy.
type AntiEntropyPartition struct {
	Partition uint32 `json:"partition"`
	// TreeReady is false while the partition's tree is being built.
	TreeReady bool `json:"tree_ready"`
	// LastExchange is when this node's last exchange of the partition
	// completed (zero: none yet), with LastPeer.
	LastExchange time.Time `json:"last_exchange,omitzero"`
	LastPeer     string    `json:"last_peer,omitempty"`
	// AgeSeconds is the age of LastExchange; -1 when there was none.
	AgeSeconds float64 `json:"age_seconds"`
	// Totals over this node's completed exchanges of the partition.
	Exchanges   uint64 `json:"exchanges"`
	Differences uint64 `json:"differences"`
	Repaired    uint64 `json:"repaired"`
	Bytes       uint64 `json:"bytes"`
}

// AntiEntropyInfo is a node's anti-entropy state.
type AntiEntropyInfo struct {
	Interval   string `json:"interval"` // "off" when the scheduler is disabled
	TreesBuilt bool   `json:"trees_built"`
	// Totals over this node's exchanges (as initiator), and bytes of the
	// exchange messages it sent and received in either role.
	Exchanges   uint64 `json:"exchanges"`
	Failures    uint64 `json:"failures"`
	Differences uint64 `json:"differences"`
	Repaired    uint64 `json:"repaired"`
	Ghosts      uint64 `json:"evicted_not_repaired"`
	Bytes       uint64 `json:"bytes"`
	// Partitions are those this node replicates, ascending.
	Partitions []AntiEntropyPartition `json:"partitions"`
}

// AntiEntropyInfo returns the node's anti-entropy state; ok is false for a
// single node.
func (n *Node) AntiEntropyInfo() (info AntiEntropyInfo, ok bool) {
	a := n.ae
	if a == nil {
		return AntiEntropyInfo{}, false
	}
	info = AntiEntropyInfo{
		Interval:    a.interval.String(),
		Exchanges:   a.exchanges.Load(),
		Failures:    a.failures.Load(),
		Differences: a.differences.Load(),
		Repaired:    a.repaired.Load(),
		Ghosts:      a.ghosts.Load(),
		Bytes:       a.byteCount.Load(),
		Partitions:  []AntiEntropyPartition{},
	}
	if a.interval < 0 {
		info.Interval = "off"
	}
	select {
	case <-a.ready:
		info.TreesBuilt = true
	default:
	}
	m := n.cluster.gossip.Load()
	if m == nil {
		return info, true
	}
	r := m.Ring()
	now := n.now()
	self := n.ID()
	a.mu.Lock()
	defer a.mu.Unlock()
	for p := range uint32(r.Partitions()) {
		if !r.IsOwner(p, self) {
			continue
		}
		ap := AntiEntropyPartition{Partition: p, TreeReady: a.trees.Ready(p), AgeSeconds: -1}
		if ps := a.parts[p]; ps != nil {
			ap.LastExchange, ap.LastPeer = ps.last, ps.peer.String()
			ap.AgeSeconds = now.Sub(ps.last).Seconds()
			ap.Exchanges, ap.Differences, ap.Repaired, ap.Bytes = ps.exchanges, ps.differences, ps.repaired, ps.bytes
		}
		info.Partitions = append(info.Partitions, ap)
	}
	return info, true
}

// aeCollector exports the anti-entropy counters at scrape time.
type aeCollector struct{ a *antiEntropy }

var (
	descAEExchanges   = prometheus.NewDesc("ecache_antientropy_exchanges_total", "Anti-entropy exchanges this node completed as initiator.", nil, nil)
	descAEFailures    = prometheus.NewDesc("ecache_antientropy_failures_total", "Anti-entropy exchanges this node started that failed.", nil, nil)
	descAEDifferences = prometheus.NewDesc("ecache_antientropy_differences_total", "Keys this node's exchanges found to differ.", nil, nil)
	descAERepaired    = prometheus.NewDesc("ecache_antientropy_repaired_keys_total", "Keys this node's exchanges pushed or pulled.", nil, nil)
	descAEGhosts      = prometheus.NewDesc("ecache_antientropy_evicted_skipped_total", "Keys found missing only because a memory-only replica evicted them, not repaired.", nil, nil)
	descAEBytes       = prometheus.NewDesc("ecache_antientropy_bytes_total", "Bytes of anti-entropy messages this node sent and received.", nil, nil)
	descAEAge         = prometheus.NewDesc("ecache_antientropy_last_exchange_age_seconds", "Age of this node's last completed exchange of a partition.", []string{"partition"}, nil)
)

func (c *aeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAEExchanges, descAEFailures, descAEDifferences, descAERepaired, descAEGhosts, descAEBytes, descAEAge} {
		ch <- d
	}
}

func (c *aeCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	counter(descAEExchanges, a.exchanges.Load())
	counter(descAEFailures, a.failures.Load())
	counter(descAEDifferences, a.differences.Load())
	counter(descAERepaired, a.repaired.Load())
	counter(descAEGhosts, a.ghosts.Load())
	counter(descAEBytes, a.byteCount.Load())
	now := a.n.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for p, ps := range a.parts {
		ch <- prometheus.MustNewConstMetric(descAEAge, prometheus.GaugeValue, now.Sub(ps.last).Seconds(), strconv.FormatUint(uint64(p), 10))
	}
}

// limiter is a token bucket with debt: wait(n) takes n tokens at once and,
// when that leaves the bucket negative, sleeps until it would be refilled,
// so a rate of r per second holds over any stretch longer than a second
// whatever the sizes asked for. A nil limiter never waits.
type limiter struct {
	rate float64 // tokens per second

	mu sync.Mutex
	// tokens (at most rate: one second's burst) as of last. Guarded by mu.
	tokens float64
	last   time.Time
}

// newLimiter returns a limiter of rate per second; nil (no limit) for a
// rate that is not positive.
func newLimiter(rate float64) *limiter {
	if rate <= 0 {
		return nil
	}
	return &limiter{rate: rate, tokens: rate, last: time.Now()}
}

func (l *limiter) wait(ctx context.Context, n int) error {
	if l == nil || n <= 0 {
		return nil
	}
	l.mu.Lock()
	now := time.Now()
	l.tokens = min(l.rate, l.tokens+now.Sub(l.last).Seconds()*l.rate) - float64(n)
	l.last = now
	var d time.Duration
	if l.tokens < 0 {
		d = time.Duration(-l.tokens / l.rate * float64(time.Second))
	}
	l.mu.Unlock()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
