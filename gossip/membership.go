package gossip

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/ecachedb/ecache/gossip/ring"
	"github.com/ecachedb/ecache/vclock"
)

// State is a member's state as this node last learned it.
//
// memberlist does not report suspicion to its delegates (v0.5.3 keeps the
// state of a node in a field its callbacks never see), so a suspected node
// reads as alive until it is declared dead.
type State uint8

// States. Append-only.
const (
	StateAlive State = iota + 1
	StateDead        // failed: stopped answering probes
	StateLeft        // left gracefully
)

func (s State) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateDead:
		return "dead"
	case StateLeft:
		return "left"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Member describes one node of the cluster.
type Member struct {
	ID         vclock.NodeID
	Name       string // memberlist node name
	Addr       string // gossip address, host:port
	Meta       Meta
	Partitions int
	State      State
	Since      time.Time // when this node learned State
	Local      bool      // this is the local node
	// Leaving is set while an alive node hands its partitions off before
	// leaving (PrepareLeave): it still answers, but no ring includes it.
	Leaving bool
}

const defaultDeadRetention = time.Hour

// Membership is this node's view of the cluster.
type Membership struct {
	cfg  Config
	log  *slog.Logger
	ml   *memberlist.Memberlist
	name string

	meta    atomic.Pointer[[]byte] // encoded local nodeMeta, served to memberlist
	current atomic.Pointer[ring.Ring]

	// joining is set while Open joins the seeds; refusals found then are
	// kept in refusal so Open can return them (memberlist flattens the
	// delegate's error into a string).
	joining atomic.Bool

	mu sync.Mutex
	// members holds every node seen, by memberlist name, including dead
	// and left ones until DeadRetention passes.
	members map[string]*Member
	subs    map[chan struct{}]struct{}
	refusal error
	closed  bool

	dirty     chan struct{} // cap 1: membership changed, rebuild the ring
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	rebuildMu sync.Mutex // serialises rebuild, so rings are stored in order
}

// Open starts gossiping, joins the cluster through cfg.Join (if any) and
// returns once this node is a member. A join that reaches no seed, or that
// is refused (e.g. for a differing partition count), fails Open.
func Open(ctx context.Context, cfg Config) (*Membership, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Membership{
		cfg:     cfg,
		log:     logger,
		name:    cfg.nodeName(),
		members: map[string]*Member{},
		subs:    map[chan struct{}]struct{}{},
		dirty:   make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
	m.setMeta(nodeMeta{ID: cfg.NodeID, Partitions: uint32(cfg.Partitions), Meta: cfg.Meta})
	m.current.Store(ring.MustNew(cfg.Partitions, cfg.Replicas, nil))

	mc, err := m.memberlistConfig()
	if err != nil {
		return nil, err
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip: listening on %s: %w", cfg.BindAddr, err)
	}
	m.ml = ml
	m.wg.Add(1)
	go m.run()

	if len(cfg.Join) > 0 {
		if err := m.join(ctx); err != nil {
			_ = m.Close()
			return nil, err
		}
	}
	m.rebuild()
	m.log.Info("gossip: member", "node", cfg.NodeID, "name", m.name, "addr", m.Addr(), "members", len(ml.Members()))
	return m, nil
}

func (m *Membership) memberlistConfig() (*memberlist.Config, error) {
	cfg := &m.cfg
	mc := memberlist.DefaultLocalConfig()
	if cfg.Profile == ProfileLAN {
		mc = memberlist.DefaultLANConfig()
	}
	mc.Name = m.name
	bind, _ := parseIPPort(cfg.BindAddr) // validated
	mc.BindAddr, mc.BindPort = bind.Addr().String(), int(bind.Port())
	mc.AdvertiseAddr, mc.AdvertisePort = "", 0
	if cfg.AdvertiseAddr != "" {
		adv, _ := parseIPPort(cfg.AdvertiseAddr)
		mc.AdvertiseAddr, mc.AdvertisePort = adv.Addr().String(), int(adv.Port())
	}
	if cfg.ClusterKey != "" {
		key := sha256.Sum256([]byte(cfg.ClusterKey))
		mc.SecretKey = key[:]
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	t := cfg.Tuning
	setDur := func(dst *time.Duration, v time.Duration) {
		if v > 0 {
			*dst = v
		}
	}
	setDur(&mc.ProbeInterval, t.ProbeInterval)
	setDur(&mc.ProbeTimeout, t.ProbeTimeout)
	setDur(&mc.GossipInterval, t.GossipInterval)
	setDur(&mc.PushPullInterval, t.PushPullInterval)
	setDur(&mc.TCPTimeout, t.TCPTimeout)
	if t.SuspicionMult > 0 {
		mc.SuspicionMult = t.SuspicionMult
	}
	if cfg.WrapTransport != nil {
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{mc.BindAddr}, BindPort: mc.BindPort, Logger: log.New(logWriter{m.log}, "", 0),
		})
		if err != nil {
			return nil, fmt.Errorf("gossip: listening on %s: %w", cfg.BindAddr, err)
		}
		mc.Transport = cfg.WrapTransport(nt)
	}
	d := &delegate{m}
	mc.Delegate, mc.Events, mc.Merge, mc.Alive = d, d, d, d
	mc.Logger = log.New(logWriter{m.log}, "", 0)
	mc.LogOutput = nil
	return mc, nil
}

// join joins through each seed until one succeeds, honouring ctx (an
// abandoned join shuts memberlist down, which ends it).
func (m *Membership) join(ctx context.Context) error {
	m.joining.Store(true)
	defer m.joining.Store(false)
	done := make(chan error, 1)
	go func() {
		var errs []error
		for _, seed := range m.cfg.Join {
			if err := ctx.Err(); err != nil {
				done <- err // never report success for a join we abandoned
				return
			}
			if _, err := m.ml.Join([]string{seed}); err != nil {
				errs = append(errs, fmt.Errorf("%s: %s", seed, joinCause(err)))
				continue
			}
			done <- nil
			return
		}
		done <- errors.Join(errs...)
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = m.ml.Shutdown()
		<-done
		return fmt.Errorf("%w: %w", ErrJoin, ctx.Err())
	}
	m.mu.Lock()
	refusal := m.refusal
	m.mu.Unlock()
	switch {
	case refusal != nil:
		return refusal
	case err != nil:
		return fmt.Errorf("%w: %w", ErrJoin, err)
	}
	return nil
}

// joinCause extracts the cause from memberlist's multi-line join error.
func joinCause(err error) string {
	var me interface{ WrappedErrors() []error }
	if errors.As(err, &me) && len(me.WrappedErrors()) > 0 {
		err = me.WrappedErrors()[0]
	}
	s := err.Error()
	// "Failed to join <addr>: <cause>": the caller names the seed.
	if rest, ok := strings.CutPrefix(s, "Failed to join "); ok {
		if _, cause, ok := strings.Cut(rest, ": "); ok {
			s = cause
		}
	}
	if strings.HasSuffix(s, "EOF") || strings.Contains(s, "crypt") || strings.Contains(s, "connection reset") {
		s += " (does every node use the same cluster key?)"
	}
	return s
}

// run rebuilds the ring whenever membership changes.
func (m *Membership) run() {
	defer m.wg.Done()
	// Dead and left members are forgotten after DeadRetention even when
	// nothing else happens: look again a few times per retention period.
	t := time.NewTicker(min(max(m.DeadRetention()/4, 10*time.Millisecond), time.Minute))
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-m.dirty:
			m.rebuild()
		case <-t.C:
			m.rebuild()
		}
	}
}

// rebuild builds the ring of the live members, stores it and notifies the
// subscribers.
func (m *Membership) rebuild() {
	m.rebuildMu.Lock()
	defer m.rebuildMu.Unlock()
	retention := cmp.Or(m.cfg.Tuning.DeadRetention, defaultDeadRetention)
	now := time.Now()
	m.mu.Lock()
	var ids []vclock.NodeID
	for name, mem := range m.members {
		switch {
		case mem.State == StateAlive && !mem.Leaving:
			ids = append(ids, mem.ID)
		case mem.State == StateAlive:
		case now.Sub(mem.Since) > retention:
			delete(m.members, name)
		}
	}
	m.mu.Unlock()
	r := ring.MustNew(m.cfg.Partitions, m.cfg.Replicas, ids)
	if old := m.current.Swap(r); old.Equal(r) {
		return
	}
	m.log.Info("gossip: ring changed", "nodes", r.Len())
	m.mu.Lock()
	defer m.mu.Unlock()
	for ch := range m.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (m *Membership) markDirty() {
	select {
	case m.dirty <- struct{}{}:
	default:
	}
}

func (m *Membership) setMeta(nm nodeMeta) {
	b := nm.appendTo(nil)
	m.meta.Store(&b)
}

// DeadRetention is how long Members keeps reporting a dead or left node.
func (m *Membership) DeadRetention() time.Duration {
	return cmp.Or(m.cfg.Tuning.DeadRetention, defaultDeadRetention)
}

// Ring returns the current ring. It never blocks and never returns nil.
func (m *Membership) Ring() *ring.Ring { return m.current.Load() }

// LocalID is this node's ID.
func (m *Membership) LocalID() vclock.NodeID { return m.cfg.NodeID }

// Name is this node's memberlist name.
func (m *Membership) Name() string { return m.name }

// Addr is the address this node gossips on (with the port memberlist
// chose if BindAddr had port 0): what other nodes pass in Config.Join.
func (m *Membership) Addr() string {
	n := m.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// Members returns every known node, live ones and those dead or left
// within DeadRetention, sorted by name.
func (m *Membership) Members() []Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Member, 0, len(m.members))
	for _, mem := range m.members {
		out = append(out, *mem)
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Subscribe returns a channel that receives a value after the membership
// (and so possibly the ring) changes; notifications coalesce, so a reader
// should re-read Members and Ring on each. cancel stops and closes the
// channel; Close closes every subscription.
func (m *Membership) Subscribe() (changes <-chan struct{}, cancel func()) {
	ch := make(chan struct{}, 1)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		close(ch)
		return ch, func() {}
	}
	m.subs[ch] = struct{}{}
	return ch, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if _, ok := m.subs[ch]; ok {
			delete(m.subs, ch)
			close(ch)
		}
	}
}

// SetMeta changes this node's advertised metadata and waits (up to ctx)
// for the update to be gossiped.
func (m *Membership) SetMeta(ctx context.Context, meta Meta) error {
	nm := nodeMeta{ID: m.cfg.NodeID, Partitions: uint32(m.cfg.Partitions), Meta: meta}
	if n := len(nm.appendTo(nil)); n > memberlist.MetaMaxSize {
		return fmt.Errorf("%w: Meta encodes to %d bytes, over memberlist's %d", ErrConfig, n, memberlist.MetaMaxSize)
	}
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return ErrClosed
	}
	m.setMeta(nm)
	if err := m.ml.UpdateNode(timeoutOf(ctx)); err != nil {
		return fmt.Errorf("gossip: updating metadata: %w", err)
	}
	return nil
}

// PrepareLeave announces that this node is about to leave: every node,
// this one included, takes it out of its ring at once while it still
// gossips and serves, so that it can hand its partitions off to their next
// owners before Leave. It waits (up to ctx's deadline, 5s without one) for
// the announcement to be gossiped.
func (m *Membership) PrepareLeave(ctx context.Context) error {
	m.mu.Lock()
	closed := m.closed
	if mem := m.members[m.name]; mem != nil {
		mem.Leaving = true
	}
	m.mu.Unlock()
	if closed {
		return ErrClosed
	}
	var nm nodeMeta
	if p := m.meta.Load(); p != nil {
		nm, _ = decodeNodeMeta(*p)
	}
	nm.Leaving = true
	m.setMeta(nm)
	m.rebuild()
	if err := m.ml.UpdateNode(timeoutOf(ctx)); err != nil {
		return fmt.Errorf("gossip: announcing leave: %w", err)
	}
	return nil
}

// Leave announces a graceful departure, waits (up to ctx's deadline, 5s
// without one) for the announcement to be gossiped, then closes. The
// others mark the node left and drop it from their rings at once instead
// of waiting for the failure detector.
func (m *Membership) Leave(ctx context.Context) error {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return ErrClosed
	}
	timeout := timeoutOf(ctx)
	var nm nodeMeta
	if p := m.meta.Load(); p != nil {
		nm, _ = decodeNodeMeta(*p)
	}
	nm.Leaving = true
	m.setMeta(nm)
	// Best effort: the left/dead distinction others make relies on it.
	if err := m.ml.UpdateNode(timeout); err != nil {
		m.log.Warn("gossip: announcing leave", "err", err)
	}
	err := m.ml.Leave(timeout)
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("gossip: leaving: %w", err)
	}
	return nil
}

func timeoutOf(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return 5 * time.Second
}

// Close stops gossiping without announcing a departure (the others detect
// the failure), stops the goroutines it started and closes subscriptions.
// It is idempotent.
func (m *Membership) Close() error {
	m.closeOnce.Do(func() {
		m.closeErr = m.ml.Shutdown()
		close(m.stop)
		m.wg.Wait()
		m.mu.Lock()
		m.closed = true
		for ch := range m.subs {
			close(ch)
		}
		clear(m.subs)
		m.mu.Unlock()
	})
	return m.closeErr
}

// delegate receives memberlist's callbacks. memberlist calls the event,
// alive and merge callbacks with its own locks held: they must not call
// back into memberlist, and must not block.
type delegate struct{ m *Membership }

// NodeMeta implements memberlist.Delegate.
func (d *delegate) NodeMeta(limit int) []byte {
	b := *d.m.meta.Load()
	if len(b) > limit { // Validate and SetMeta keep it under MetaMaxSize
		panic(fmt.Sprintf("gossip: metadata of %d bytes over memberlist's limit %d", len(b), limit))
	}
	return b
}

// NotifyMsg implements memberlist.Delegate; user messages are not used.
func (d *delegate) NotifyMsg([]byte) {}

// GetBroadcasts implements memberlist.Delegate; nothing is broadcast.
func (d *delegate) GetBroadcasts(int, int) [][]byte { return nil }

// LocalState implements memberlist.Delegate; there is no user state.
func (d *delegate) LocalState(bool) []byte { return nil }

// MergeRemoteState implements memberlist.Delegate.
func (d *delegate) MergeRemoteState([]byte, bool) {}

// check returns why node n cannot be a member, or nil.
func (d *delegate) check(n *memberlist.Node) (nodeMeta, error) {
	nm, err := decodeNodeMeta(n.Meta)
	if err != nil {
		return nm, fmt.Errorf("node %s at %s: %w", n.Name, n.Address(), err)
	}
	if want := uint32(d.m.cfg.Partitions); nm.Partitions != want {
		if n.Name == d.m.name {
			return nm, nil // our own stale record in a peer's state
		}
		if d.m.joining.Load() {
			return nm, fmt.Errorf("%w: partition count %d differs from the cluster's %d (node %s at %s)",
				ErrPartitionCount, want, nm.Partitions, n.Name, n.Address())
		}
		return nm, fmt.Errorf("%w: node %s at %s has partition count %d, which differs from the cluster's %d",
			ErrPartitionCount, n.Name, n.Address(), nm.Partitions, want)
	}
	return nm, nil
}

// NotifyMerge implements memberlist.MergeDelegate: a join (in either
// direction) is refused if any node on the other side cannot be a member.
func (d *delegate) NotifyMerge(peers []*memberlist.Node) error {
	for _, p := range peers {
		if _, err := d.check(p); err != nil {
			d.m.log.Warn("gossip: refusing join", "err", err)
			if d.m.joining.Load() {
				d.m.mu.Lock()
				if d.m.refusal == nil {
					d.m.refusal = err
				}
				d.m.mu.Unlock()
			}
			return err
		}
	}
	return nil
}

// NotifyAlive implements memberlist.AliveDelegate: it keeps nodes that
// cannot be members out even if they reach us through gossip rather than
// a join.
func (d *delegate) NotifyAlive(n *memberlist.Node) error {
	_, err := d.check(n)
	return err
}

// NotifyJoin implements memberlist.EventDelegate.
func (d *delegate) NotifyJoin(n *memberlist.Node) { d.update(n, StateAlive) }

// NotifyUpdate implements memberlist.EventDelegate.
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.update(n, StateAlive) }

// NotifyLeave implements memberlist.EventDelegate. memberlist reports dead
// and left nodes alike; a node that announced it was leaving is left.
func (d *delegate) NotifyLeave(n *memberlist.Node) {
	m := d.m
	m.mu.Lock()
	mem, ok := m.members[n.Name]
	if ok {
		mem.State = StateDead
		if nm, err := decodeNodeMeta(n.Meta); err == nil && nm.Leaving {
			mem.State = StateLeft
		}
		mem.Since = time.Now()
		m.log.Info("gossip: node "+mem.State.String(), "node", mem.ID, "name", mem.Name, "addr", mem.Addr)
	}
	m.mu.Unlock()
	if ok {
		m.markDirty()
	}
}

func (d *delegate) update(n *memberlist.Node, state State) {
	m := d.m
	nm, err := d.check(n)
	if err != nil { // unreachable: NotifyAlive filtered it
		m.log.Warn("gossip: ignoring node", "err", err)
		return
	}
	mem := &Member{
		ID:         nm.ID,
		Name:       n.Name,
		Addr:       n.Address(),
		Meta:       nm.Meta,
		Partitions: int(nm.Partitions),
		State:      state,
		Local:      n.Name == m.name,
		Leaving:    nm.Leaving,
	}
	m.mu.Lock()
	old, ok := m.members[n.Name]
	if ok && old.State == state && old.Leaving == mem.Leaving {
		mem.Since = old.Since
	} else {
		mem.Since = time.Now()
		m.log.Info("gossip: node "+state.String(), "node", mem.ID, "name", mem.Name, "addr", mem.Addr)
	}
	m.members[n.Name] = mem
	m.mu.Unlock()
	m.markDirty()
}
