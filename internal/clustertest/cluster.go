package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ecachedb/ecache/client"
	"github.com/ecachedb/ecache/gossip"
	"github.com/ecachedb/ecache/merge"
	"github.com/ecachedb/ecache/node"
	"github.com/ecachedb/ecache/storage"
	"github.com/ecachedb/ecache/vclock"
)

// ClusterKey is the cluster key of every test cluster.
const ClusterKey = "clustertest-key"

// Partitions is the partition count of every test cluster.
const Partitions = 64

// Gossip are fast memberlist timers for tests.
var Gossip = gossip.Tuning{
	ProbeInterval:    200 * time.Millisecond,
	ProbeTimeout:     100 * time.Millisecond,
	GossipInterval:   20 * time.Millisecond,
	PushPullInterval: time.Second,
	TCPTimeout:       time.Second,
	SuspicionMult:    3,
}

// Options configure a test cluster.
type Options struct {
	// Nodes is K, the number of nodes (default 3).
	Nodes int
	// Replicas is N (default 3).
	Replicas int
	// Seed seeds the network's faults.
	Seed uint64
	// Persistence is every node's (the zero value is storage.PersistenceAsync).
	Persistence storage.Persistence
	// PeerTimeout bounds one peer call (default 500ms, so that dropped
	// messages fail fast).
	PeerTimeout time.Duration
	// Configure, when set, adjusts node i's configuration before it first
	// opens.
	Configure func(i int, cfg *node.Config)
}

// Cluster is K nodes of one test, on one Network.
type Cluster struct {
	t   testing.TB
	Net *Network
	// Nodes are the nodes by index; a stopped node's entry is nil.
	Nodes []*node.Node
	cfgs  []node.Config
	log   *slog.Logger
}

// Start opens the nodes, each joining the first, and waits until every
// ring holds them all. They close at the test's cleanup.
func Start(t testing.TB, opt Options) *Cluster {
	t.Helper()
	opt.Nodes = cmpOr(opt.Nodes, 3)
	opt.Replicas = cmpOr(opt.Replicas, 3)
	opt.PeerTimeout = cmpOr(opt.PeerTimeout, 500*time.Millisecond)
	c := &Cluster{t: t, Net: NewNetwork(opt.Seed), log: guardedLogger(t)}
	t.Cleanup(c.closeAll)
	for i := range opt.Nodes {
		cfg := node.DefaultConfig()
		cfg.DataDir = t.TempDir()
		cfg.Listen = "127.0.0.1:0"
		cfg.Storage.Persistence = opt.Persistence
		cfg.Storage.MemoryLimit = 16 << 20
		cfg.Storage.PebbleCacheSize = 1 << 20
		cfg.Storage.ExpiryInterval = 0
		cfg.Logger = c.log.With("node", i)
		cfg.Namespaces = map[string]string{
			node.DefaultNamespace: merge.NameLWW,
			"sib":                 merge.NameSiblings,
			"cnt":                 merge.NameCounter,
		}
		g := gossip.DefaultConfig()
		g.BindAddr = "127.0.0.1:0"
		g.Tuning = Gossip
		g.Partitions = Partitions
		g.WrapTransport = c.Net.WrapTransport(i)
		cfg.Cluster = &node.ClusterConfig{
			Gossip: g, Replicas: opt.Replicas, ClusterKey: ClusterKey,
			PeerTimeout: opt.PeerTimeout, HintInterval: 100 * time.Millisecond,
			PeerDialer: c.Net.Dialer(i),
		}
		if opt.Configure != nil {
			opt.Configure(i, &cfg)
		}
		c.cfgs = append(c.cfgs, cfg)
		c.Nodes = append(c.Nodes, nil)
		c.Restart(i)
	}
	c.WaitRings()
	return c
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Restart opens node i again (or for the first time) with its
// configuration, joining any running node; with persistence on it comes
// back with its data and identity. It does not wait for the rings.
func (c *Cluster) Restart(i int) *node.Node {
	c.t.Helper()
	if c.Nodes[i] != nil {
		c.t.Fatalf("clustertest: node %d is running", i)
	}
	cfg := c.cfgs[i]
	cl := *cfg.Cluster
	cl.Gossip.Join = nil
	for j, n := range c.Nodes {
		if n != nil && j != i {
			cl.Gossip.Join = append(cl.Gossip.Join, n.Membership().Addr())
		}
	}
	cfg.Cluster = &cl
	n, err := node.Open(cfg)
	if err != nil {
		c.t.Fatalf("clustertest: opening node %d: %v", i, err)
	}
	c.Net.Register(i, n.Addr(), n.Membership().Addr())
	c.Nodes[i] = n
	return n
}

// Stop closes node i (a graceful leave).
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	n := c.Nodes[i]
	c.Nodes[i] = nil
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		c.t.Errorf("clustertest: closing node %d: %v", i, err)
	}
}

// closeAll closes the running nodes over a healed network: a graceful
// leave hands partitions off and broadcasts, which faults would only slow.
func (c *Cluster) closeAll() {
	c.Net.HealAll()
	for i, n := range c.Nodes {
		if n != nil {
			c.Stop(i)
		}
	}
}

// Running returns the indexes of the running nodes.
func (c *Cluster) Running() []int {
	var out []int
	for i, n := range c.Nodes {
		if n != nil {
			out = append(out, i)
		}
	}
	return out
}

// WaitRings waits until every running node's ring holds every running
// node.
func (c *Cluster) WaitRings() {
	c.t.Helper()
	run := c.Running()
	Eventually(c.t, 20*time.Second, fmt.Sprintf("every ring holds the %d running nodes", len(run)), func() bool {
		for _, i := range run {
			if c.Nodes[i].Membership().Ring().Len() != len(run) {
				return false
			}
		}
		return true
	})
}

// Index returns the index of the node with identity id, -1 if none.
func (c *Cluster) Index(id vclock.NodeID) int {
	for i, n := range c.Nodes {
		if n != nil && n.ID() == id {
			return i
		}
	}
	return -1
}

// Owners returns the indexes of the replicas of (ns, key), in preference
// order, as node from's ring has them.
func (c *Cluster) Owners(from int, ns, key string) []int {
	ids := c.Nodes[from].Membership().Ring().Owners(storage.PartitionOf([]byte(ns), []byte(key), Partitions))
	out := make([]int, 0, len(ids))
	for _, id := range ids {
		out = append(out, c.Index(id))
	}
	return out
}

// KeyWhere returns the first key "prefix<n>" of ns for which ok accepts
// the owners (as node 0 sees them).
func (c *Cluster) KeyWhere(ns, prefix string, ok func(owners []int) bool) string {
	c.t.Helper()
	for i := range 100000 {
		k := fmt.Sprintf("%s%d", prefix, i)
		if ok(c.Owners(c.Running()[0], ns, k)) {
			return k
		}
	}
	c.t.Fatalf("clustertest: no key with the wanted owners")
	return ""
}

// Client returns a client of node i alone, closed at cleanup.
func (c *Cluster) Client(i int) *client.Client {
	c.t.Helper()
	cfg := client.DefaultConfig()
	cfg.Addrs = []string{c.Nodes[i].Addr()}
	cl, err := client.New(context.Background(), cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

// Local returns node i's own copy of (ns, key).
func (c *Cluster) Local(i int, ns, key string) (vclock.Object, bool) {
	c.t.Helper()
	var o vclock.Object
	found, err := c.Nodes[i].Store().Get([]byte(ns), []byte(key), &o)
	if err != nil {
		c.t.Fatal(err)
	}
	return o.Clone(), found
}

// Eventually polls cond every 10ms until it holds, failing the test when
// d passes first.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// guardedLogger logs warnings to t until the test's cleanup: memberlist's
// goroutines may log after a node closes.
func guardedLogger(t testing.TB) *slog.Logger {
	w := &guardedLog{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type guardedLog struct {
	mu   sync.Mutex
	done bool
	t    testing.TB
}

func (w *guardedLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}
