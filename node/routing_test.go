package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ecachedb/ecache/client"
	"github.com/ecachedb/ecache/gossip"
	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/storage"
	"github.com/ecachedb/ecache/vclock"
)

// Smart routing and W/R levels against real in-process clusters (issue #4).

func forwardedTotal(nodes []*Node) uint64 {
	var f uint64
	for _, n := range nodes {
		f += n.ClusterStats().Forwarded
	}
	return f
}

func routedClient(t testing.TB, addr string) *client.Client {
	t.Helper()
	cfg := client.DefaultConfig()
	cfg.Addrs = []string{addr}
	cfg.ConnsPerNode = 1
	cfg.Routing = client.RoutingConfig{Enabled: true, RefreshInterval: time.Hour}
	c, err := client.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestClusterSmartRouting: a routed client sends every request straight
// to the key's owner (N=1 of 3): no node forwards anything, and each key
// is in its owner's store only. The same traffic without routing is
// mostly forwarded.
func TestClusterSmartRouting(t *testing.T) {
	nodes := startCluster(t, 3, 1, storage.PersistenceNone)
	ctx := t.Context()
	c := routedClient(t, nodes[0].Addr())
	if st := c.RoutingStats(); st.Members != 3 {
		t.Fatalf("routing view %+v, want 3 members", st)
	}
	const keys = 60
	byID := map[vclock.NodeID]*Node{}
	for _, n := range nodes {
		byID[n.ID()] = n
	}
	for i := range keys {
		key := fmt.Sprintf("route%d", i)
		if _, err := c.Put(ctx, key, []byte("v")); err != nil {
			t.Fatal(err)
		}
		if it, err := c.Get(ctx, key); err != nil || string(it.Values[0]) != "v" {
			t.Fatalf("Get %s = %+v, %v", key, it, err)
		}
		owner := ownersOf(nodes[0], key)[0]
		for _, n := range nodes {
			if _, found := localObject(t, n, key); found != (n.ID() == owner) {
				t.Fatalf("key %s: node %v holds it: %v; owner is %v", key, n.ID(), found, owner)
			}
		}
	}
	if f := forwardedTotal(nodes); f != 0 {
		t.Fatalf("%d requests forwarded with smart routing, want 0", f)
	}
	// Batches are split by owner: nothing is forwarded either, and every
	// key is readable (MGET/MPUT act on the addressed node's store).
	var entries []client.Entry
	var mkeys []string
	for i := range 30 {
		k := fmt.Sprintf("batch%d", i)
		entries = append(entries, client.Entry{Key: k, Value: []byte(k)})
		mkeys = append(mkeys, k)
	}
	if _, errs, err := c.MPut(ctx, entries); err != nil || errors.Join(errs...) != nil {
		t.Fatalf("MPut: %v %v", err, errs)
	}
	items, errs, err := c.MGet(ctx, mkeys)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range mkeys {
		if errs[i] != nil || string(items[i].Values[0]) != k {
			t.Fatalf("MGet %s = %+v, %v", k, items[i], errs[i])
		}
		if _, found := localObject(t, byID[ownersOf(nodes[0], k)[0]], k); !found {
			t.Fatalf("batch key %s is not in its owner's store", k)
		}
	}
	if st := c.RoutingStats(); st.Fallback != 0 || st.Direct == 0 {
		t.Fatalf("routing stats %+v, want no fallback", st)
	}

	// Without routing, through node 1, about two thirds are forwarded.
	plain := dialNode(t, nodes[0], "")
	for i := range keys {
		if _, err := plain.Get(ctx, fmt.Sprintf("route%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if f := forwardedTotal(nodes); f == 0 {
		t.Fatal("no request forwarded without routing: the test shows nothing")
	}
}

// TestClusterRoutingOwnerDown: when the owner of a key leaves, the routed
// client still serves it (through a fallback, then a refreshed view).
func TestClusterRoutingOwnerDown(t *testing.T) {
	nodes := startCluster(t, 3, 2, storage.PersistenceNone)
	ctx := t.Context()
	c := routedClient(t, nodes[0].Addr())
	key := ""
	for i := 0; key == ""; i++ {
		k := fmt.Sprintf("down%d", i)
		if ownersOf(nodes[0], k)[0] == nodes[2].ID() {
			key = k
		}
	}
	if _, err := c.Put(ctx, key, []byte("v"), client.WithWAll()); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := nodes[2].Close(cctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "node 3 leaves every ring", func() bool {
		return nodes[0].Membership().Ring().Len() == 2 && nodes[1].Membership().Ring().Len() == 2
	})
	it, err := c.Get(ctx, key)
	if err != nil || string(it.Values[0]) != "v" {
		t.Fatalf("Get after the owner left = %+v, %v", it, err)
	}
	if err := c.RefreshRouting(ctx); err != nil {
		t.Fatal(err)
	}
	if st := c.RoutingStats(); st.Members != 2 {
		t.Fatalf("after the refresh %+v, want 2 members", st)
	}
}

// TestClusterWRLevels: quorum and all, resolved against N at the
// coordinator.
func TestClusterWRLevels(t *testing.T) {
	nodes := startCluster(t, 3, 3, storage.PersistenceNone)
	ctx := t.Context()
	c := dialNode(t, nodes[1], "")
	holders := func(key string) int {
		h := 0
		for _, n := range nodes {
			if _, found := localObject(t, n, key); found {
				h++
			}
		}
		return h
	}
	for i := range 5 {
		key := fmt.Sprintf("lvl%d", i)
		if _, err := c.Put(ctx, key, []byte("all"), client.WithWAll()); err != nil {
			t.Fatal(err)
		}
		if h := holders(key); h != 3 {
			t.Fatalf("after a W=all PUT %d of 3 replicas hold %s", h, key)
		}
		key = fmt.Sprintf("q%d", i)
		if _, err := c.Put(ctx, key, []byte("quorum"), client.WithWQuorum()); err != nil {
			t.Fatal(err)
		}
		if h := holders(key); h < 2 {
			t.Fatalf("after a W=quorum PUT %d of 3 replicas hold %s", h, key)
		}
		for _, o := range []client.Option{client.WithRQuorum(), client.WithRAll()} {
			if it, err := c.Get(ctx, key, o); err != nil || string(it.Values[0]) != "quorum" {
				t.Fatalf("Get %s = %+v, %v", key, it, err)
			}
		}
	}
}

// TestClusterWAllReplicaDown: W=all and R=all fail with busy while a
// replica is down; quorum goes on.
func TestClusterWAllReplicaDown(t *testing.T) {
	nodes := startCluster(t, 3, 3, storage.PersistenceNone)
	ctx := t.Context()
	c := dialNode(t, nodes[0], "")
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := nodes[2].Close(cctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "node 3 leaves node 1's ring", func() bool {
		return nodes[0].Membership().Ring().Len() == 2
	})
	if _, err := c.Put(ctx, "k", []byte("v"), client.WithWAll()); !errors.Is(err, client.ErrBusy) {
		t.Fatalf("W=all with a replica down = %v, want ErrBusy", err)
	}
	if _, err := c.Put(ctx, "k", []byte("v"), client.WithWQuorum()); err != nil {
		t.Fatalf("W=quorum with one replica of three down = %v", err)
	}
	if _, err := c.Get(ctx, "k", client.WithRAll()); !errors.Is(err, client.ErrBusy) {
		t.Fatalf("R=all with a replica down = %v, want ErrBusy", err)
	}
	if _, err := c.Get(ctx, "k", client.WithRQuorum()); err != nil {
		t.Fatalf("R=quorum with one replica of three down = %v", err)
	}
}

// TestClusterOpcode: CLUSTER describes the members and the ring; a single
// node answers with an empty view.
func TestClusterOpcode(t *testing.T) {
	nodes := startCluster(t, 2, 2, storage.PersistenceNone)
	var resp netproto.ClusterResponse
	if err := dialNode(t, nodes[1], "").Do(t.Context(), netproto.OpCluster, &netproto.ClusterRequest{}, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Partitions != 64 || resp.Replicas != 2 || len(resp.Members) != 2 {
		t.Fatalf("CLUSTER = %+v", resp)
	}
	var got, want []uint64
	for i, m := range resp.Members {
		if m.State != netproto.MemberAlive || m.ClientAddr != nodes[0].Addr() && m.ClientAddr != nodes[1].Addr() {
			t.Fatalf("member %d = %+v", i, m)
		}
		got = append(got, m.ID)
	}
	for _, n := range nodes {
		want = append(want, uint64(n.ID()))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("members %v, want %v", got, want)
	}

	cfg := testConfig(t, storage.PersistenceNone)
	cfg.Listen = "127.0.0.1:0"
	single := openNode(t, cfg)
	resp = netproto.ClusterResponse{}
	if err := dialNode(t, single, "").Do(t.Context(), netproto.OpCluster, &netproto.ClusterRequest{}, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Partitions != 0 || len(resp.Members) != 0 {
		t.Fatalf("single node CLUSTER = %+v", resp)
	}
}

// startBenchCluster is startCluster for benchmarks: size nodes, N
// replicas, memory only.
func startBenchCluster(b *testing.B, size, replicas int) []*Node {
	b.Helper()
	var nodes []*Node
	for i := range size {
		cfg := testConfig(b, storage.PersistenceNone)
		cfg.Listen = "127.0.0.1:0"
		cfg.Logger = guardedLogger(b)
		g := gossip.DefaultConfig()
		g.BindAddr = "127.0.0.1:0"
		g.Tuning = fastGossip
		g.Partitions = 64
		if i > 0 {
			g.Join = []string{nodes[0].Membership().Addr()}
		}
		cfg.Cluster = &ClusterConfig{Gossip: g, Replicas: replicas, ClusterKey: testClusterKey}
		n, err := Open(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { n.Close(context.Background()) })
		nodes = append(nodes, n)
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, n := range nodes {
		for n.Membership().Ring().Len() != size {
			if time.Now().After(deadline) {
				b.Fatal("the cluster did not form")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nodes
}

// BenchmarkForwarding compares one request sent straight to the key's
// owner with the same request sent to a node that forwards it (N=1 of
// 3 nodes, memory only, one request at a time on loopback), and with a
// smart client given the non-owner's address. Allocations are the whole
// process's: client and every node.
func BenchmarkForwarding(b *testing.B) {
	nodes := startBenchCluster(b, 3, 1)
	const nkeys = 256
	var keys []string // owned by node 2
	for i := 0; len(keys) < nkeys; i++ {
		k := fmt.Sprintf("key:%d", i)
		if ownersOf(nodes[0], k)[0] == nodes[1].ID() {
			keys = append(keys, k)
		}
	}
	dial := func(addr string, routing bool) *client.Client {
		cfg := client.DefaultConfig()
		cfg.Addrs = []string{addr}
		cfg.ConnsPerNode = 1
		cfg.Routing.Enabled = routing
		c, err := client.New(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		return c
	}
	clients := []struct {
		name string
		c    *client.Client
	}{
		{"direct", dial(nodes[1].Addr(), false)},
		{"forwarded", dial(nodes[0].Addr(), false)},
		{"routed", dial(nodes[0].Addr(), true)},
	}
	ctx := context.Background()
	val := make([]byte, 100)
	for _, k := range keys {
		if _, err := clients[0].c.Put(ctx, k, val); err != nil {
			b.Fatal(err)
		}
	}
	for _, op := range []string{"get", "put"} {
		for _, cl := range clients {
			b.Run(op+"/"+cl.name, func(b *testing.B) {
				c := cl.c
				before := forwardedTotal(nodes)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					k := keys[i%nkeys]
					i++
					var err error
					if op == "get" {
						_, err = c.Get(ctx, k)
					} else {
						_, err = c.Put(ctx, k, val)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(forwardedTotal(nodes)-before)/float64(i), "fwd/op")
			})
		}
	}
}
