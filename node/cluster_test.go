package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ecachedb/ecache/client"
	"github.com/ecachedb/ecache/gossip"
	"github.com/ecachedb/ecache/merge"
	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/storage"
	"github.com/ecachedb/ecache/vclock"
)

// fastGossip are the gossip package's test timers.
var fastGossip = gossip.Tuning{
	ProbeInterval:    200 * time.Millisecond,
	ProbeTimeout:     100 * time.Millisecond,
	GossipInterval:   20 * time.Millisecond,
	PushPullInterval: time.Second,
	TCPTimeout:       time.Second,
	SuspicionMult:    3,
}

const testClusterKey = "test-cluster-key"

// startCluster opens size nodes on loopback (port 0 everywhere), all
// joining the first, with replicas N and the edits applied to each
// node's configuration, and waits until every node's ring holds them all.
func startCluster(t *testing.T, size, replicas int, p storage.Persistence, edits ...func(*Config)) []*Node {
	t.Helper()
	var nodes []*Node
	for i := range size {
		join := ""
		if i > 0 {
			join = nodes[0].Membership().Addr()
		}
		cfg := clusterNodeConfig(t, p, replicas, join)
		for _, edit := range edits {
			edit(&cfg)
		}
		nodes = append(nodes, openClusterNode(t, cfg, i+1))
	}
	eventually(t, 15*time.Second, "every ring has all nodes", func() bool {
		for _, n := range nodes {
			if n.Membership().Ring().Len() != size {
				return false
			}
		}
		return true
	})
	return nodes
}

// clusterNodeConfig is the configuration of one test cluster node joining
// join (none when empty).
func clusterNodeConfig(t *testing.T, p storage.Persistence, replicas int, join string) Config {
	cfg := testConfig(t, p)
	cfg.Listen = "127.0.0.1:0"
	// memberlist's goroutines may log after Close returns: drop what
	// comes after the test.
	cfg.Logger = guardedLogger(t)
	g := gossip.DefaultConfig()
	g.BindAddr = "127.0.0.1:0"
	g.Tuning = fastGossip
	g.Partitions = 64
	if join != "" {
		g.Join = []string{join}
	}
	cfg.Cluster = &ClusterConfig{Gossip: g, Replicas: replicas, ClusterKey: testClusterKey, HintInterval: 100 * time.Millisecond}
	return cfg
}

// openClusterNode opens node number i with cfg, closing it at cleanup.
func openClusterNode(t *testing.T, cfg Config, i int) *Node {
	t.Helper()
	n, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open node %d: %v", i, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("Close node %d: %v", i, err)
		}
	})
	return n
}

// guardedLog writes to the test's log until the test's cleanup runs.
type guardedLog struct {
	mu   *sync.Mutex
	done *bool
	t    testing.TB
}

func (w guardedLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !*w.done {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

func guardedLogger(t testing.TB) *slog.Logger {
	w := guardedLog{mu: new(sync.Mutex), done: new(bool), t: t}
	t.Cleanup(func() { w.mu.Lock(); *w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dialNode(t *testing.T, n *Node, password string) *client.Client {
	t.Helper()
	cfg := client.DefaultConfig()
	cfg.Addrs = []string{n.Addr()}
	cfg.Password = password
	c, err := client.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// localObject reads n's own copy of (default, key).
func localObject(t *testing.T, n *Node, key string) (vclock.Object, bool) {
	t.Helper()
	var o vclock.Object
	found, err := n.Store().Get([]byte(DefaultNamespace), []byte(key), &o)
	if err != nil {
		t.Fatal(err)
	}
	return o, found
}

func ownersOf(n *Node, key string) []vclock.NodeID {
	return n.Membership().Ring().Owners(storage.PartitionOf([]byte(DefaultNamespace), []byte(key), 64))
}

// TestClusterReplication writes through node 1 of three (N=3), reads
// through node 3, and finds every key in every node's own store.
func TestClusterReplication(t *testing.T) {
	nodes := startCluster(t, 3, 3, storage.PersistenceNone)
	c1, c3 := dialNode(t, nodes[0], ""), dialNode(t, nodes[2], "")
	ctx := t.Context()
	const keys = 50
	for i := range keys {
		if _, err := c1.Put(ctx, fmt.Sprintf("k%d", i), []byte(fmt.Sprintf("v%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range keys {
		key, want := fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i)
		eventually(t, 10*time.Second, "GET "+key+" via node 3", func() bool {
			it, err := c3.Get(ctx, key)
			return err == nil && len(it.Values) == 1 && string(it.Values[0]) == want
		})
		for j, n := range nodes {
			eventually(t, 10*time.Second, fmt.Sprintf("%s in node %d's store", key, j+1), func() bool {
				_, found := localObject(t, n, key)
				return found
			})
		}
	}
	if st := nodes[0].ClusterStats(); st.Dropped != 0 {
		t.Errorf("node 1 dropped %d replications", st.Dropped)
	}
}

// TestClusterForwarding writes, through node 1, a key node 1 does not own
// (N=2 of 3 nodes): the write is forwarded, coordinated once, and lands on
// exactly the two owners.
func TestClusterForwarding(t *testing.T) {
	nodes := startCluster(t, 3, 2, storage.PersistenceSync)
	key := ""
	for i := 0; key == ""; i++ {
		k := fmt.Sprintf("fwd%d", i)
		if !slices.Contains(ownersOf(nodes[0], k), nodes[0].ID()) {
			key = k
		}
	}
	owners := ownersOf(nodes[0], key)
	c1 := dialNode(t, nodes[0], "")
	ctx := t.Context()
	if _, err := c1.Put(ctx, key, []byte("forwarded")); err != nil {
		t.Fatal(err)
	}
	if nodes[0].ClusterStats().Forwarded != 1 {
		t.Fatalf("node 1 forwarded %d requests, want 1", nodes[0].ClusterStats().Forwarded)
	}
	var holders []vclock.NodeID
	eventually(t, 10*time.Second, "both owners hold the key", func() bool {
		holders = holders[:0]
		for _, n := range nodes {
			if _, found := localObject(t, n, key); found {
				holders = append(holders, n.ID())
			}
		}
		return len(holders) == 2
	})
	slices.Sort(holders)
	sorted := slices.Sorted(slices.Values(owners))
	if !slices.Equal(holders, sorted) {
		t.Fatalf("held by %v, want the owners %v", holders, sorted)
	}
	for _, n := range nodes {
		o, found := localObject(t, n, key)
		if !found {
			continue
		}
		if len(o.Clock) != 1 || o.Siblings[0].Dot != (vclock.Dot{Node: o.Clock[0].Node, Counter: o.Clock[0].Counter}) || !slices.Contains(owners, o.Clock[0].Node) {
			t.Fatalf("node %v holds clock %v, want one dot issued by an owner", n.ID(), o.Clock)
		}
		if len(o.Siblings) != 1 || string(o.Siblings[0].Value) != "forwarded" {
			t.Fatalf("node %v holds %+v", n.ID(), o.Siblings)
		}
	}
	// A read through node 1 is forwarded too.
	it, err := c1.Get(ctx, key)
	if err != nil || string(it.Values[0]) != "forwarded" {
		t.Fatalf("GET via node 1 = %+v, %v", it, err)
	}
	// Errors pass through with their code.
	if _, err := c1.Put(ctx, key, []byte("x"), client.WithNamespace("nope")); !errors.Is(err, client.ErrUnknownNamespace) {
		t.Fatalf("PUT to an unknown namespace = %v, want ErrUnknownNamespace", err)
	}
}

// TestClusterWAll: a PUT with W=N returns only once every replica holds
// the object.
func TestClusterWAll(t *testing.T) {
	nodes := startCluster(t, 3, 3, storage.PersistenceSync)
	c := dialNode(t, nodes[1], "")
	ctx := t.Context()
	for i := range 10 {
		key := fmt.Sprintf("w%d", i)
		if _, err := c.Put(ctx, key, []byte("all"), client.WithW(3)); err != nil {
			t.Fatal(err)
		}
		for j, n := range nodes {
			if o, found := localObject(t, n, key); !found || string(o.Siblings[0].Value) != "all" {
				t.Fatalf("after a W=3 PUT, node %d holds %+v (found %v)", j+1, o, found)
			}
		}
	}
	// W over N is refused.
	if _, err := c.Put(ctx, "w", []byte("x"), client.WithW(4)); !errors.Is(err, client.ErrMalformed) {
		t.Fatalf("W=4 PUT with N=3 = %v, want ErrMalformed", err)
	}
}

// TestClusterPeerAuth: peer operations need the peer secret.
func TestClusterPeerAuth(t *testing.T) {
	nodes := startCluster(t, 2, 2, storage.PersistenceNone)
	o := vclock.Object{Clock: vclock.VV{{Node: 99, Counter: 1}}, Siblings: []vclock.Sibling{{Dot: vclock.Dot{Node: 99, Counter: 1}, Value: []byte("evil")}}}
	req := &netproto.ReplicateRequest{Namespace: []byte(DefaultNamespace), Key: []byte("k"), Object: o.AppendMsgpack(nil)}
	ctx := t.Context()

	for _, pw := range []string{"", "wrong", testClusterKey} {
		c := dialNode(t, nodes[0], pw)
		var resp netproto.StatusResponse
		if err := c.Do(ctx, netproto.OpReplicate, req, &resp); !errors.Is(err, client.ErrUnauthenticated) {
			t.Fatalf("REPLICATE with password %q = %v, want ErrUnauthenticated", pw, err)
		}
		var fr netproto.FetchResponse
		if err := c.Do(ctx, netproto.OpFetch, &netproto.KeyRequest{Key: []byte("k")}, &fr); !errors.Is(err, client.ErrUnauthenticated) {
			t.Fatalf("FETCH with password %q = %v, want ErrUnauthenticated", pw, err)
		}
	}
	if _, found := localObject(t, nodes[0], "k"); found {
		t.Fatal("an unauthenticated REPLICATE was stored")
	}

	// With the peer secret both work.
	peer := dialNode(t, nodes[0], PeerSecret(testClusterKey))
	var resp netproto.StatusResponse
	if err := peer.Do(ctx, netproto.OpReplicate, req, &resp); err != nil || resp.Status != netproto.CodeOK {
		t.Fatalf("peer REPLICATE = %v, %v", resp.Status, err)
	}
	var fr netproto.FetchResponse
	if err := peer.Do(ctx, netproto.OpFetch, &netproto.KeyRequest{Key: []byte("k")}, &fr); err != nil || fr.Status != netproto.CodeOK {
		t.Fatalf("peer FETCH = %v, %v", fr.Status, err)
	}
	var got vclock.Object
	if err := vclock.DecodeObject(fr.Object, &got); err != nil || !vclock.ObjectsEqual(got, o) {
		t.Fatalf("FETCH returned %+v, %v; want %+v", got, err, o)
	}
	if err := peer.Do(ctx, netproto.OpFetch, &netproto.KeyRequest{Key: []byte("absent")}, &fr); err != nil || fr.Status != netproto.CodeNotFound || len(fr.Object) != 0 {
		t.Fatalf("peer FETCH of an absent key = %v %x, %v", fr.Status, fr.Object, err)
	}
	// A malformed object is refused.
	bad := &netproto.ReplicateRequest{Key: []byte("k2"), Object: []byte{0xc1}}
	if err := peer.Do(ctx, netproto.OpReplicate, bad, &resp); !errors.Is(err, client.ErrMalformed) {
		t.Fatalf("REPLICATE of a malformed object = %v, want ErrMalformed", err)
	}
}

func TestClusterConfigValidate(t *testing.T) {
	cfg := testConfig(t, storage.PersistenceNone)
	cfg.Cluster = &ClusterConfig{ClusterKey: "k"}
	if _, err := Open(cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("cluster without Listen: %v", err)
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.Cluster = &ClusterConfig{}
	if _, err := Open(cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("cluster without key: %v", err)
	}
}

// TestClusterReadRepair: an R=3 GET merges the three replicas' objects when
// one replica holds a newer write the others missed, answers with the
// merge, and repairs the stale replicas.
func TestClusterReadRepair(t *testing.T) {
	nodes := startCluster(t, 3, 3, storage.PersistenceNone)
	ctx := t.Context()
	c1 := dialNode(t, nodes[0], "")
	if _, err := c1.Put(ctx, "rr", []byte("old"), client.WithW(3)); err != nil {
		t.Fatal(err)
	}
	// A write node 2 applies locally only: nodes 1 and 3 are stale.
	cur, _ := localObject(t, nodes[1], "rr")
	if _, _, err := nodes[1].Apply([]byte(DefaultNamespace), []byte("rr"), merge.Op{Kind: merge.OpPut, Context: cur.Clock, Value: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	if o, _ := localObject(t, nodes[0], "rr"); string(o.Siblings[0].Value) != "old" {
		t.Fatalf("node 1 holds %+v before the read", o)
	}
	// R=1 through node 1 answers from its own (stale) copy.
	if it, err := c1.Get(ctx, "rr"); err != nil || string(it.Values[0]) != "old" {
		t.Fatalf("R=1 GET = %+v, %v", it, err)
	}
	it, err := c1.Get(ctx, "rr", client.WithR(3))
	if err != nil || len(it.Values) != 1 || string(it.Values[0]) != "new" {
		t.Fatalf("R=3 GET = %+v, %v; want new", it, err)
	}
	want, _ := localObject(t, nodes[1], "rr")
	for i, n := range nodes {
		eventually(t, 10*time.Second, fmt.Sprintf("node %d repaired", i+1), func() bool {
			o, found := localObject(t, n, "rr")
			return found && vclock.ObjectsEqual(o, want)
		})
	}
	if st := nodes[0].ClusterStats(); st.ReadRepairs == 0 {
		t.Errorf("no read repair counted: %+v", st)
	}
	// R over N is refused.
	if _, err := c1.Get(ctx, "rr", client.WithR(4)); !errors.Is(err, client.ErrMalformed) {
		t.Fatalf("R=4 GET with N=3 = %v, want ErrMalformed", err)
	}
}

// TestClusterGetLocal: GET --local on a node that does not own the key
// finds nothing, where a normal GET is forwarded and finds it.
func TestClusterGetLocal(t *testing.T) {
	nodes := startCluster(t, 3, 2, storage.PersistenceNone)
	key := ""
	for i := 0; key == ""; i++ {
		k := fmt.Sprintf("loc%d", i)
		if !slices.Contains(ownersOf(nodes[0], k), nodes[0].ID()) {
			key = k
		}
	}
	ctx := t.Context()
	c1 := dialNode(t, nodes[0], "")
	if _, err := c1.Put(ctx, key, []byte("v"), client.WithW(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Get(ctx, key, client.WithLocal()); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("local GET on a non-owner = %v, want ErrNotFound", err)
	}
	if it, err := c1.Get(ctx, key); err != nil || string(it.Values[0]) != "v" {
		t.Fatalf("GET via a non-owner = %+v, %v", it, err)
	}
	for _, n := range nodes[1:] {
		if !slices.Contains(ownersOf(nodes[0], key), n.ID()) {
			continue
		}
		c := dialNode(t, n, "")
		if it, err := c.Get(ctx, key, client.WithLocal()); err != nil || string(it.Values[0]) != "v" {
			t.Fatalf("local GET on owner %v = %+v, %v", n.ID(), it, err)
		}
	}
}

// TestClusterHintedHandoff: writes made while a replica is down are kept
// as hints on the coordinator and delivered when the replica returns with
// the same identity.
func TestClusterHintedHandoff(t *testing.T) {
	var nodes []*Node
	var cfgs []Config
	for i := range 3 {
		join := ""
		if i > 0 {
			join = nodes[0].Membership().Addr()
		}
		cfg := clusterNodeConfig(t, storage.PersistenceSync, 3, join)
		cfgs = append(cfgs, cfg)
		nodes = append(nodes, openClusterNode(t, cfg, i+1))
	}
	eventually(t, 15*time.Second, "every ring has all nodes", func() bool {
		for _, n := range nodes {
			if n.Membership().Ring().Len() != 3 {
				return false
			}
		}
		return true
	})
	id3 := nodes[2].ID()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	if err := nodes[2].Close(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	eventually(t, 15*time.Second, "node 3 out of node 1's ring", func() bool {
		return nodes[0].Membership().Ring().Len() == 2
	})
	c1 := dialNode(t, nodes[0], "")
	const keys = 20
	for i := range keys {
		if _, err := c1.Put(t.Context(), fmt.Sprintf("h%d", i), []byte(fmt.Sprintf("v%d", i)), client.WithW(1)); err != nil {
			t.Fatal(err)
		}
	}
	if st := nodes[0].ClusterStats(); st.HintsStored < keys || st.HintsPending < keys {
		t.Fatalf("after %d writes with node 3 down: %+v", keys, st)
	}
	// Node 3 comes back with the same data directory, so the same ID.
	cfg := cfgs[2]
	cfg.Cluster = new(*cfgs[2].Cluster)
	cfg.Cluster.Gossip.Join = []string{nodes[0].Membership().Addr()}
	n3 := openClusterNode(t, cfg, 3)
	if n3.ID() != id3 {
		t.Fatalf("node 3 came back as %v, was %v", n3.ID(), id3)
	}
	eventually(t, 20*time.Second, "hints delivered to node 3", func() bool {
		for i := range keys {
			o, found := localObject(t, n3, fmt.Sprintf("h%d", i))
			if !found || string(o.Siblings[0].Value) != fmt.Sprintf("v%d", i) {
				return false
			}
		}
		st := nodes[0].ClusterStats()
		return st.HintsDelivered == keys && st.HintsPending == 0
	})
	// The same counters reach /metrics.
	if got := gatheredValue(t, nodes[0], "ecache_hints_delivered_total"); got != keys {
		t.Fatalf("ecache_hints_delivered_total = %v, want %d", got, keys)
	}
	if got := gatheredValue(t, nodes[0], "ecache_hints_pending"); got != 0 {
		t.Fatalf("ecache_hints_pending = %v, want 0", got)
	}
}

// gatheredValue returns the value of an unlabelled metric from n's registry.
func gatheredValue(t *testing.T, n *Node, name string) float64 {
	t.Helper()
	mfs, err := n.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) != 1 {
			continue
		}
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("metric %s not gathered", name)
	return 0
}
