package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecachedb/ecache/client"
	"github.com/ecachedb/ecache/gossip"
	"github.com/ecachedb/ecache/gossip/ring"
	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/storage"
	"github.com/ecachedb/ecache/vclock"
)

// Rebalancing moves partitions whose owners changed (docs/operations.md,
// "Adding and removing nodes").
//
// A node compares the ring with the one it last planned against. For a
// partition it still owns, each owner that is new since then is owed the
// partition: the node streams every object of it to them (OpReplicate,
// pipelined through the peer client; merging is idempotent, so sending
// twice is harmless). A partition it no longer owns is streamed to all of
// its current owners and, once every one of them acknowledged every
// object, removed object by object with storage.Forget, each only if its
// clock is still the one that was sent: a write that raced the transfer
// survives and is sent by the next pass. Before such a pass the node asks
// each target for its own view of the ring (CLUSTER) and goes on only if
// the target counts itself an owner: rings converge by gossip, and a
// target whose ring is behind may itself be handing the partition off, so
// both could drop it. A pass that saw no write to the
// partition (the per-partition write counter fed by the store's OnChange
// hook) leaves it empty. A later write to a partition the node does not
// own (a peer with a stale ring replicating to it) starts another pass.
//
// Passes run on a bounded pool of workers, are cancelled by Close, and a
// round that failed (an owner unreachable) is retried with backoff. A
// graceful leave takes the node out of every ring first (gossip
// PrepareLeave), so all its partitions become not-owned and are handed
// off, within ClusterConfig.LeaveTimeout.

// Rebalancing defaults.
const (
	defaultRebalanceWorkers = 2
	defaultRebalanceBatch   = 64
	defaultLeaveTimeout     = 30 * time.Second
	defaultFillWindow       = time.Minute
	// passesPerRound bounds the passes over one partition in one round
	// while writes keep arriving; the next round goes on.
	passesPerRound  = 3
	minRebalanceGap = 100 * time.Millisecond // first retry after a failed round
	maxRebalanceGap = 5 * time.Second        // longest wait between retries
)

// RebalanceStats is the state of a node's partition transfers.
type RebalanceStats struct {
	// State is "idle" (nothing to move), "moving" (transfers owed or under
	// way) or "leaving" (handing every partition off before leaving).
	State string `json:"state"`
	// PendingPartitions is how many partitions the last round left with
	// work owed (waiting for a retry, or written to during the round).
	PendingPartitions int `json:"pending_partitions"`
	// PartitionsSent counts partitions streamed completely to every owner
	// they were owed to; PartitionsDropped those emptied afterwards because
	// this node no longer owns them; ObjectsSent counts objects an owner
	// acknowledged during transfers; Failures counts transfers that failed
	// and were retried.
	PartitionsSent    uint64 `json:"partitions_sent"`
	PartitionsDropped uint64 `json:"partitions_dropped"`
	ObjectsSent       uint64 `json:"objects_sent"`
	Failures          uint64 `json:"failures"`
	// LastError is the last transfer failure, "" when none.
	LastError string `json:"last_error,omitempty"`
}

// rebalancer moves the partitions whose owners change.
type rebalancer struct {
	c            *cluster // set by cluster.open before run starts
	parts        int
	workers      int
	batch        int
	leaveTimeout time.Duration // negative: no handoff

	// written counts, per partition, the writes the store reported (not
	// removals); mayHold is false once a pass found the partition empty
	// with no write since. Both are fed by changed, on the write path.
	written []atomic.Uint64
	mayHold []atomic.Bool
	wake    chan struct{} // cap 1: a not-owned partition got a write
	// fillUntil is, per partition this node became an owner of, when
	// (Unix ns) its reads stop consulting another owner on a miss: the
	// old owners are streaming the partition in meanwhile (readMore).
	fillUntil  []atomic.Int64
	fillWindow time.Duration

	partitionsSent, partitionsDropped, objectsSent, failures atomic.Uint64

	mu sync.Mutex // guards the fields below
	// prev is the ring the owed targets were last computed against; nil
	// before the first round.
	prev *ring.Ring
	// before is the ring prev replaced (nil until the first change), for
	// readMore, which runs on the request path.
	before atomic.Pointer[ring.Ring]
	// owed holds, for partitions this node owns, the owners that are new
	// since they were computed and have not yet received the partition.
	owed    map[uint32]map[vclock.NodeID]bool
	leaving bool
	pending int
	lastErr string
	// started and settled number the rounds: started the last one begun,
	// settled the last one that ended with nothing left to do. roundEnd is
	// closed (and replaced) at the end of every round.
	started, settled uint64
	roundEnd         chan struct{}
}

// newRebalancer returns the rebalancer of a node configured with cfg. It
// exists before the store opens (the store's hook feeds it); cluster.open
// attaches it to the cluster and starts it.
func newRebalancer(cfg *ClusterConfig) *rebalancer {
	parts := cmpOr(cfg.Gossip.Partitions, gossip.DefaultPartitions)
	r := &rebalancer{
		parts:        parts,
		leaveTimeout: cmpOr(cfg.LeaveTimeout, defaultLeaveTimeout),
		workers:      cmpOr(cfg.RebalanceWorkers, defaultRebalanceWorkers),
		batch:        cmpOr(cfg.RebalanceBatch, defaultRebalanceBatch),
		written:      make([]atomic.Uint64, parts),
		mayHold:      make([]atomic.Bool, parts),
		fillUntil:    make([]atomic.Int64, parts),
		fillWindow:   cmpOr(cfg.FillWindow, defaultFillWindow),
		wake:         make(chan struct{}, 1),
		owed:         map[uint32]map[vclock.NodeID]bool{},
		roundEnd:     make(chan struct{}),
	}
	// Until a pass looked, any partition may hold data (a restart with a
	// data directory).
	for i := range r.mayHold {
		r.mayHold[i].Store(true)
	}
	return r
}

// changed is the store's OnChange hook (called under the key's lock; it
// must be fast): it counts writes and restarts transfers for a partition
// that a pass had emptied.
func (r *rebalancer) changed(p uint32, next *vclock.Object) {
	if next == nil || int(p) >= r.parts {
		return // a removal never needs sending
	}
	r.written[p].Add(1)
	if !r.mayHold[p].Load() && !r.mayHold[p].Swap(true) {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// run plans and runs rounds on every membership change, on wake-ups and
// on retries, until the cluster closes.
func (r *rebalancer) run(changes <-chan struct{}, unsubscribe func()) {
	c := r.c
	defer c.wg.Done()
	defer unsubscribe()
	gap := time.Duration(0)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		again, err := r.round(c.ctx)
		if c.ctx.Err() != nil {
			return
		}
		switch {
		case err != nil:
			gap = min(max(2*gap, minRebalanceGap), maxRebalanceGap)
			timer.Reset(gap)
		case again:
			gap = 0
			timer.Reset(minRebalanceGap)
		default:
			gap = 0
		}
		select {
		case <-c.ctx.Done():
			return
		case _, ok := <-changes:
			if !ok {
				changes = nil
			}
		case <-r.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// task is one partition's transfer in a round.
type task struct {
	p       uint32
	targets []vclock.NodeID
	drop    bool // this node does not own p: forget what the targets took
}

// plan updates the owed targets for ring and returns the round's tasks.
func (r *rebalancer) plan(rg *ring.Ring, self vclock.NodeID) []task {
	r.mu.Lock()
	defer r.mu.Unlock()
	fillUntil := r.c.n.now().Add(r.fillWindow).UnixNano()
	if r.prev == nil {
		// At start the node cannot know what the other owners lack; what
		// it holds but does not own is still handed off below. It may
		// itself lack what was written while it was away (or everything,
		// when it is new): its reads consult another owner for a while.
		r.prev = rg
		if rg.Len() > 1 {
			for _, p := range rg.PartitionsOf(self) {
				r.fillUntil[p].Store(fillUntil)
			}
		}
	}
	if !r.prev.Equal(rg) {
		for p := range uint32(r.parts) {
			owners := rg.Owners(p)
			if !slices.Contains(owners, self) {
				delete(r.owed, p)
				continue
			}
			old := r.prev.Owners(p)
			// A partition is being streamed in by its old owners when this
			// node did not own it — or when the previous ring was this node
			// alone: a joining node plans first against a ring of itself,
			// which makes it the owner of everything it has not received.
			if !slices.Contains(old, self) || r.prev.Len() < 2 {
				r.fillUntil[p].Store(fillUntil)
			}
			for _, id := range owners {
				if id != self && !slices.Contains(old, id) {
					if r.owed[p] == nil {
						r.owed[p] = map[vclock.NodeID]bool{}
					}
					r.owed[p][id] = true
				}
			}
			for id := range r.owed[p] {
				if !slices.Contains(owners, id) {
					delete(r.owed[p], id)
				}
			}
			if len(r.owed[p]) == 0 {
				delete(r.owed, p)
			}
		}
		r.before.Store(r.prev)
		r.prev = rg
	}
	var tasks []task
	for p := range uint32(r.parts) {
		owners := rg.Owners(p)
		switch {
		case !slices.Contains(owners, self):
			// With no owner at all (a lone node leaving) there is no one
			// to hand off to: keep the data.
			if len(owners) > 0 && r.mayHold[p].Load() {
				tasks = append(tasks, task{p: p, targets: slices.Clone(owners), drop: true})
			}
		case len(r.owed[p]) > 0:
			if !r.mayHold[p].Load() {
				delete(r.owed, p) // nothing to send; new writes replicate as usual
				continue
			}
			t := task{p: p}
			for id := range r.owed[p] {
				t.targets = append(t.targets, id)
			}
			slices.Sort(t.targets)
			tasks = append(tasks, t)
		}
	}
	return tasks
}

// round runs one planning round. again reports partitions that were
// written to during their transfer and need another pass.
func (r *rebalancer) round(ctx context.Context) (again bool, err error) {
	c := r.c
	r.mu.Lock()
	r.started++
	id := r.started
	r.mu.Unlock()
	m := c.gossip.Load()
	if m == nil {
		return false, nil
	}
	self := c.n.ID()
	rg := m.Ring()
	tasks := r.plan(rg, self)

	var (
		mu       sync.Mutex
		failed   []error
		moreWork int
	)
	views := &peerViews{rings: map[vclock.NodeID]*ring.Ring{}}
	work := make(chan task)
	var wg sync.WaitGroup
	for range min(r.workers, len(tasks)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range work {
				more, err := r.move(ctx, rg, self, t, views)
				mu.Lock()
				if err != nil {
					failed = append(failed, fmt.Errorf("partition %d: %w", t.p, err))
				}
				if err != nil || more {
					moreWork++
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, t := range tasks {
		select {
		case work <- t:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()

	err = errors.Join(failed...)
	if err != nil && ctx.Err() == nil {
		r.failures.Add(uint64(len(failed)))
		c.n.log.Warn("rebalance: transfers failed, retrying", "partitions", len(failed), "err", failed[0])
	}
	r.mu.Lock()
	r.pending = moreWork
	switch {
	case err != nil:
		r.lastErr = failed[0].Error()
	case moreWork == 0 && ctx.Err() == nil:
		r.lastErr = ""
		r.settled = id
	}
	close(r.roundEnd)
	r.roundEnd = make(chan struct{})
	r.mu.Unlock()
	return moreWork > 0, err
}

// sent is an object a drop pass sent: what to forget once acknowledged.
type sent struct {
	ns, key []byte
	clock   vclock.VV
}

// move runs up to passesPerRound passes of task t. more reports that the
// partition was written to during every pass and needs another round.
func (r *rebalancer) move(ctx context.Context, rg *ring.Ring, self vclock.NodeID, t task, views *peerViews) (more bool, err error) {
	c := r.c
	st := c.n.store
	if t.drop {
		for _, id := range t.targets {
			owner, err := r.ownsInItsView(ctx, views, id, t.p)
			if err != nil {
				return false, err
			}
			if !owner {
				return true, nil // its ring is behind: try again next round
			}
		}
	}
	for range passesPerRound {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		w0 := r.written[t.p].Load()
		var done []sent
		var batch []replication
		n := 0
		flush := func() error {
			if err := r.sendBatch(ctx, t.targets, batch); err != nil {
				return err
			}
			n += len(batch)
			batch = batch[:0]
			return nil
		}
		err := st.Scan(t.p, func(e *storage.Entry) error {
			batch = append(batch, replication{
				ns: slices.Clone(e.NS), key: slices.Clone(e.Key), obj: e.Object.AppendMsgpack(nil),
			})
			if t.drop {
				done = append(done, sent{ns: batch[len(batch)-1].ns, key: batch[len(batch)-1].key, clock: e.Object.Clock.Clone()})
			}
			if len(batch) >= r.batch {
				return flush()
			}
			return nil
		})
		if err == nil && len(batch) > 0 {
			err = flush()
		}
		if err != nil {
			return false, err
		}
		if n > 0 {
			r.partitionsSent.Add(1)
		}
		if !t.drop {
			r.mu.Lock()
			for _, id := range t.targets {
				delete(r.owed[t.p], id)
			}
			if len(r.owed[t.p]) == 0 {
				delete(r.owed, t.p)
			}
			r.mu.Unlock()
			if n == 0 {
				r.markEmpty(t.p, w0)
			}
			return false, nil
		}
		// Forget only while this node is still not an owner: a ring that
		// made it one again keeps everything.
		now := c.gossip.Load()
		if now == nil || now.Ring().IsOwner(t.p, self) || !now.Ring().Equal(rg) {
			return true, nil // the next round plans again
		}
		for _, s := range done {
			if c.gossip.Load().Ring() != now.Ring() {
				return true, nil // changed meanwhile: the next round plans again
			}
			if _, err := st.Forget(s.ns, s.key, s.clock); err != nil {
				return false, err
			}
		}
		if r.written[t.p].Load() == w0 {
			// No write since the pass began: every object it held was
			// sent and forgotten.
			if n > 0 {
				r.partitionsDropped.Add(1)
			}
			r.markEmpty(t.p, w0)
			return false, nil
		}
	}
	return true, nil
}

// peerViews caches, for one round, each target's own view of the ring.
type peerViews struct {
	mu    sync.Mutex
	rings map[vclock.NodeID]*ring.Ring
}

// ownsInItsView reports whether node id's own ring (CLUSTER, once per
// round) makes it an owner of partition p.
func (r *rebalancer) ownsInItsView(ctx context.Context, v *peerViews, id vclock.NodeID, p uint32) (bool, error) {
	v.mu.Lock()
	rg, ok := v.rings[id]
	v.mu.Unlock()
	if !ok {
		c := r.c
		cctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		cl, err := c.client(cctx, id)
		if err != nil {
			return false, err
		}
		var resp netproto.ClusterResponse
		if err := cl.Do(cctx, netproto.OpCluster, &netproto.ClusterRequest{}, &resp); err != nil {
			return false, fmt.Errorf("asking %v for its ring: %w", id, err)
		}
		var ids []vclock.NodeID
		for _, m := range resp.Members {
			if m.State == netproto.MemberAlive {
				ids = append(ids, vclock.NodeID(m.ID))
			}
		}
		if rg, err = ring.New(int(resp.Partitions), int(resp.Replicas), ids); err != nil {
			return false, fmt.Errorf("the ring of %v: %w", id, err)
		}
		v.mu.Lock()
		v.rings[id] = rg
		v.mu.Unlock()
	}
	return rg.IsOwner(p, id), nil
}

// markEmpty records that partition p held nothing when its write counter
// read w0, unless a write came since.
func (r *rebalancer) markEmpty(p uint32, w0 uint64) {
	r.mayHold[p].Store(false)
	if r.written[p].Load() != w0 {
		r.mayHold[p].Store(true)
	}
}

// sendBatch sends every object of batch to every target, pipelined, and
// waits until all acknowledged.
func (r *rebalancer) sendBatch(ctx context.Context, targets []vclock.NodeID, batch []replication) error {
	if len(batch) == 0 {
		return nil
	}
	c := r.c
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	clients := make([]*client.Client, len(targets))
	for i, id := range targets {
		cl, err := c.client(ctx, id)
		if err != nil {
			return err
		}
		clients[i] = cl
	}
	errs := make(chan error, len(targets)*len(batch))
	var wg sync.WaitGroup
	for i, id := range targets {
		cl := clients[i]
		for _, rep := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var resp netproto.StatusResponse
				err := cl.Do(ctx, netproto.OpReplicate, &netproto.ReplicateRequest{Namespace: rep.ns, Key: rep.key, Object: rep.obj}, &resp)
				if err == nil && resp.Status != netproto.CodeOK {
					err = fmt.Errorf("node: owner %v answered %v", id, resp.Status)
				}
				if err != nil {
					errs <- fmt.Errorf("sending to %v: %w", id, err)
					return
				}
				r.objectsSent.Add(1)
			}()
		}
	}
	wg.Wait()
	close(errs)
	return <-errs // nil when the channel is empty
}

// handOff hands every partition off before the node leaves: it takes the
// node out of the rings (PrepareLeave) and waits, within the leave timeout
// and ctx, for a round that started afterwards to finish with nothing
// left to do.
func (r *rebalancer) handOff(ctx context.Context) {
	c := r.c
	timeout := r.leaveTimeout
	m := c.gossip.Load()
	if timeout < 0 || m == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r.mu.Lock()
	r.leaving = true
	r.mu.Unlock()
	start := time.Now()
	if err := m.PrepareLeave(ctx); errors.Is(err, gossip.ErrClosed) {
		return
	} else if err != nil {
		// This node's ring is without it already and gossip goes on
		// spreading the news: hand off anyway.
		c.n.log.Warn("rebalance: announcing the leave", "err", err)
	}
	r.mu.Lock()
	want := r.started + 1
	r.mu.Unlock()
	select { // the subscription wakes it too; this makes sure
	case r.wake <- struct{}{}:
	default:
	}
	for {
		r.mu.Lock()
		done, end := r.settled >= want, r.roundEnd
		r.mu.Unlock()
		if done {
			c.n.log.Info("rebalance: partitions handed off before leaving", "took", time.Since(start))
			return
		}
		select {
		case <-end:
		case <-ctx.Done():
			c.n.log.Warn("rebalance: leaving before every partition was handed off", "err", ctx.Err(), "pending", r.stats().PendingPartitions)
			return
		case <-c.ctx.Done():
			return
		}
	}
}

// readMore reports whether a plain GET of (ns, key) at this node should
// also read another owner (R=2 with read repair) because this node may
// not hold the key although it is asked: it became an owner of the
// partition within the fill window, so the old owners may still be
// streaming it in; or it is no longer an owner and a peer whose ring is
// older forwarded the read, after this node may have handed the key off.
//
// When it does, it returns the owners to read, those that were owners
// before the last ring change too (and so hold the key) first: the read
// takes the first answer, and a new owner may answer "not found".
func (r *rebalancer) readMore(fromPeer bool, ns, key []byte, owners []vclock.NodeID) ([]vclock.NodeID, bool) {
	if r == nil || r.c == nil || len(owners) == 0 {
		return owners, false
	}
	p := storage.PartitionOf(nsName(ns), key, r.parts)
	switch {
	case fromPeer && !slices.Contains(owners, r.c.n.ID()):
	case len(owners) < 2:
		return owners, false
	default:
		until := r.fillUntil[p].Load()
		if until == 0 || r.c.n.now().UnixNano() >= until {
			return owners, false
		}
	}
	before := r.before.Load()
	if before == nil {
		return owners, true
	}
	old := before.Owners(p)
	out := make([]vclock.NodeID, 0, len(owners))
	for _, id := range owners {
		if slices.Contains(old, id) {
			out = append(out, id)
		}
	}
	for _, id := range owners {
		if !slices.Contains(old, id) {
			out = append(out, id)
		}
	}
	return out, true
}

// stats returns the transfer counters and state.
func (r *rebalancer) stats() RebalanceStats {
	r.mu.Lock()
	s := RebalanceStats{PendingPartitions: r.pending, LastError: r.lastErr, State: "idle"}
	if r.pending > 0 || len(r.owed) > 0 || r.settled < r.started {
		s.State = "moving"
	}
	if r.leaving {
		s.State = "leaving"
	}
	r.mu.Unlock()
	s.PartitionsSent = r.partitionsSent.Load()
	s.PartitionsDropped = r.partitionsDropped.Load()
	s.ObjectsSent = r.objectsSent.Load()
	s.Failures = r.failures.Load()
	return s
}

// RebalanceStats returns the node's partition-transfer state and counters
// (zero for a single node).
func (n *Node) RebalanceStats() RebalanceStats {
	if n.rebalance == nil {
		return RebalanceStats{}
	}
	return n.rebalance.stats()
}
