package client

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ecachedb/ecache/gossip/ring"
	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/vclock"
)

// fakeCluster is size fake servers that all describe the same cluster
// (node i+1 at servers[i]'s address, N=1) to CLUSTER.
type fakeCluster struct {
	servers []*fakeServer
	ids     []vclock.NodeID
	ring    *ring.Ring
}

const testPartitions = 64

func startFakeCluster(t *testing.T, size int) *fakeCluster {
	t.Helper()
	fc := &fakeCluster{}
	resp := &netproto.ClusterResponse{Partitions: testPartitions, Replicas: 1}
	for i := range size {
		fs := startServer(t, fakeOptions{})
		fc.servers = append(fc.servers, fs)
		fc.ids = append(fc.ids, vclock.NodeID(i+1))
		resp.Members = append(resp.Members, netproto.ClusterMember{ID: uint64(i + 1), ClientAddr: fs.Addr(), State: netproto.MemberAlive})
	}
	fc.set(resp)
	return fc
}

// set makes every server answer resp to CLUSTER and recomputes the ring.
func (fc *fakeCluster) set(resp *netproto.ClusterResponse) {
	var alive []vclock.NodeID
	for _, m := range resp.Members {
		if m.State == netproto.MemberAlive {
			alive = append(alive, vclock.NodeID(m.ID))
		}
	}
	fc.ring = ring.MustNew(int(resp.Partitions), int(resp.Replicas), alive)
	for _, fs := range fc.servers {
		fs.setCluster(resp)
	}
}

// owner returns the index of the server that owns key (N=1).
func (fc *fakeCluster) owner(key string) int {
	id := fc.ring.Owners(partitionOf(DefaultNamespace, key, testPartitions))[0]
	return int(id) - 1
}

func routedClient(t *testing.T, addr string) *Client {
	return startClient(t, func(cfg *Config) {
		cfg.Routing = RoutingConfig{Enabled: true, RefreshInterval: time.Hour, RefreshGap: time.Millisecond}
		cfg.ConnsPerNode = 1
	}, addr)
}

// holders returns the indices of the servers holding key.
func (fc *fakeCluster) holders(key string) []int {
	var out []int
	for i, fs := range fc.servers {
		if fs.has(key) {
			out = append(out, i)
		}
	}
	return out
}

// TestRoutingSingleKey: with routing on, every single-key request goes to
// the server that owns the key, whichever server the client was given.
func TestRoutingSingleKey(t *testing.T) {
	fc := startFakeCluster(t, 3)
	c := routedClient(t, fc.servers[0].Addr())
	ctx := t.Context()
	if st := c.RoutingStats(); st.Members != 3 || st.Refreshes != 1 {
		t.Fatalf("after New: %+v, want a view of 3 members", st)
	}
	seen := map[int]bool{}
	const keys = 60
	for i := range keys {
		key := fmt.Sprintf("k%d", i)
		if _, err := c.Put(ctx, key, []byte("v")); err != nil {
			t.Fatal(err)
		}
		want := fc.owner(key)
		seen[want] = true
		if got := fc.holders(key); len(got) != 1 || got[0] != want {
			t.Fatalf("key %s held by servers %v, want only %d", key, got, want)
		}
		if it, err := c.Get(ctx, key); err != nil || string(it.Values[0]) != "v" {
			t.Fatalf("Get %s = %+v, %v", key, it, err)
		}
	}
	if len(seen) != 3 {
		t.Fatalf("60 keys owned by only %d servers", len(seen))
	}
	if st := c.RoutingStats(); st.Direct != 2*keys || st.Fallback != 0 {
		t.Fatalf("stats %+v, want %d direct, no fallback", st, 2*keys)
	}
	// A local read is never routed: it goes to the address given.
	key := ""
	for i := 0; key == ""; i++ {
		if k := fmt.Sprintf("k%d", i); fc.owner(k) != 0 {
			key = k
		}
	}
	if _, err := c.Get(ctx, key, WithLocal()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("local Get of %s (owned by another server) via server 0 = %v, want ErrNotFound", key, err)
	}
}

// TestRoutingBatches: MGET and MPUT are split by owner.
func TestRoutingBatches(t *testing.T) {
	fc := startFakeCluster(t, 3)
	c := routedClient(t, fc.servers[1].Addr())
	ctx := t.Context()
	var entries []Entry
	var keys []string
	for i := range 40 {
		key := fmt.Sprintf("b%d", i)
		keys = append(keys, key)
		entries = append(entries, Entry{Key: key, Value: []byte("v" + key)})
	}
	keys = append(keys, string(make([]byte, 9000))) // too large: fails alone
	_, errs, err := c.MPut(ctx, entries)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		if e != nil {
			t.Fatalf("entry %d: %v", i, e)
		}
	}
	for _, key := range keys[:40] {
		if got := fc.holders(key); len(got) != 1 || got[0] != fc.owner(key) {
			t.Fatalf("key %s held by %v, want only %d", key, got, fc.owner(key))
		}
	}
	items, errs, err := c.MGet(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, key := range keys[:40] {
		if errs[i] != nil || string(items[i].Values[0]) != "v"+key {
			t.Fatalf("MGet %s = %+v, %v", key, items[i], errs[i])
		}
	}
	if !errors.Is(errs[40], ErrKeyTooLarge) {
		t.Fatalf("oversized key: %v", errs[40])
	}
	if st := c.RoutingStats(); st.Direct != 6 || st.Fallback != 0 {
		t.Fatalf("stats %+v, want 6 direct batches (3 MPUT, 3 MGET)", st)
	}
}

// TestRoutingFallback: when a key's owner cannot be reached, the request
// goes to the address the client was given (a real node forwards it), and
// the view is refreshed; a refreshed view routes to the new owners.
func TestRoutingFallback(t *testing.T) {
	fc := startFakeCluster(t, 3)
	c := routedClient(t, fc.servers[0].Addr())
	ctx := t.Context()
	key := ""
	for i := 0; key == ""; i++ {
		if k := fmt.Sprintf("f%d", i); fc.owner(k) == 2 {
			key = k
		}
	}
	fc.servers[2].Close()
	before := c.RoutingStats()
	if _, err := c.Put(ctx, key, []byte("v")); err != nil {
		t.Fatal(err)
	}
	if got := fc.holders(key); len(got) != 1 || got[0] != 0 {
		t.Fatalf("with its owner down, %s landed on %v, want server 0 (the given address)", key, got)
	}
	if st := c.RoutingStats(); st.Fallback != before.Fallback+1 {
		t.Fatalf("stats %+v, want one fallback", st)
	}
	// A batch whose owner is down falls back the same way, group by group.
	items, errs, err := c.MGet(ctx, []string{key, "x"})
	if err != nil || errs[0] != nil || string(items[0].Values[0]) != "v" {
		t.Fatalf("MGet with an owner down = %v, %v, %v", items, errs, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.RoutingStats().Refreshes == before.Refreshes {
		if time.Now().After(deadline) {
			t.Fatal("no refresh after a failed route")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The cluster learns that node 3 is dead: its keys move to the others.
	fc.set(&netproto.ClusterResponse{Partitions: testPartitions, Replicas: 1, Members: []netproto.ClusterMember{
		{ID: 1, ClientAddr: fc.servers[0].Addr(), State: netproto.MemberAlive},
		{ID: 2, ClientAddr: fc.servers[1].Addr(), State: netproto.MemberAlive},
		{ID: 3, ClientAddr: fc.servers[2].Addr(), State: netproto.MemberDead},
	}})
	if err := c.RefreshRouting(ctx); err != nil {
		t.Fatal(err)
	}
	if st := c.RoutingStats(); st.Members != 2 {
		t.Fatalf("after the refresh: %+v, want 2 members", st)
	}
	for i := range 30 {
		k := fmt.Sprintf("g%d", i)
		if _, err := c.Put(ctx, k, []byte("v")); err != nil {
			t.Fatal(err)
		}
		if got := fc.holders(k); len(got) != 1 || got[0] != fc.owner(k) {
			t.Fatalf("key %s held by %v, want only %d", k, got, fc.owner(k))
		}
	}
}

// TestRoutingUnavailable: a server that is not in a cluster, or too old
// to know CLUSTER, leaves the client unrouted and working.
func TestRoutingUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cluster *netproto.ClusterResponse
	}{
		{"old server", nil},
		{"single node", &netproto.ClusterResponse{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := startServer(t, fakeOptions{})
			fs.setCluster(tc.cluster)
			c := routedClient(t, fs.Addr())
			ctx := t.Context()
			if _, err := c.Put(ctx, "k", []byte("v")); err != nil {
				t.Fatal(err)
			}
			if !fs.has("k") {
				t.Fatal("the write did not reach the server")
			}
			if st := c.RoutingStats(); st.Members != 0 || st.Direct != 0 || st.Fallback != 1 {
				t.Fatalf("stats %+v, want one fallback and no view", st)
			}
		})
	}
}

// TestRoutingConfigValidate: negative intervals are refused.
func TestRoutingConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Addrs = []string{"127.0.0.1:1"}
	cfg.Routing.RefreshInterval = -time.Second
	if err := cfg.Validate(); err == nil {
		t.Fatal("negative RefreshInterval accepted")
	}
	cfg.Routing = RoutingConfig{RefreshGap: -1}
	if err := cfg.Validate(); err == nil {
		t.Fatal("negative RefreshGap accepted")
	}
}

// TestLevelOptions: quorum and all travel as the reserved wire values;
// counts stay below them.
func TestLevelOptions(t *testing.T) {
	tests := []struct {
		name string
		o    []Option
		w, r uint32
		err  bool
	}{
		{"none", nil, 0, 0, false},
		{"counts", []Option{WithW(2), WithR(3)}, 2, 3, false},
		{"quorum", []Option{WithWQuorum(), WithRQuorum()}, netproto.LevelQuorum, netproto.LevelQuorum, false},
		{"all", []Option{WithWAll(), WithRAll()}, netproto.LevelAll, netproto.LevelAll, false},
		{"last wins", []Option{WithWAll(), WithW(1), WithR(2), WithRQuorum()}, 1, netproto.LevelQuorum, false},
		{"negative w", []Option{WithW(-1)}, 0, 0, true},
		{"negative r", []Option{WithR(-1)}, 0, 0, true},
	}
	for _, tt := range tests {
		o, err := applyOpts(tt.o)
		if (err != nil) != tt.err || (err == nil && (o.w != tt.w || o.r != tt.r)) {
			t.Errorf("%s: w %#x r %#x err %v; want w %#x r %#x err %v", tt.name, o.w, o.r, err, tt.w, tt.r, tt.err)
		}
		if err != nil && !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v does not wrap ErrInvalidArgument", tt.name, err)
		}
	}
}

// TestPartitionOf pins the key → partition function to the values the
// nodes compute (storage.PartitionOf; docs/protocol.md §12).
func TestPartitionOf(t *testing.T) {
	if partitionOf("", "k", 1024) != partitionOf("other", "k", 1024) {
		t.Fatal("the namespace changed the partition")
	}
	for _, tc := range []struct {
		ns, key string
		n       int
		want    uint32
	}{
		{"default", "k", 1024, 867},
		{"default", "alice", 1024, 73},
		{"users", "alice", 1024, 73},
		{"users", "", 64, 25},
		{"sessions", "key:12345", 4096, 2718},
		{"default", "k", 1, 0},
	} {
		if got := partitionOf(tc.ns, tc.key, tc.n); got != tc.want {
			t.Errorf("partitionOf(%q, %q, %d) = %d, want %d", tc.ns, tc.key, tc.n, got, tc.want)
		}
	}
}

// TestRoutingPeriodicRefresh: the view follows the cluster without errors
// to prompt it.
func TestRoutingPeriodicRefresh(t *testing.T) {
	fc := startFakeCluster(t, 2)
	c := startClient(t, func(cfg *Config) {
		cfg.Routing = RoutingConfig{Enabled: true, RefreshInterval: 10 * time.Millisecond}
	}, fc.servers[0].Addr())
	if st := c.RoutingStats(); st.Members != 2 {
		t.Fatalf("view %+v, want 2 members", st)
	}
	fc.set(&netproto.ClusterResponse{Partitions: testPartitions, Replicas: 1, Members: []netproto.ClusterMember{
		{ID: 1, ClientAddr: fc.servers[0].Addr(), State: netproto.MemberAlive},
		{ID: 2, ClientAddr: fc.servers[1].Addr(), State: netproto.MemberLeft},
	}})
	deadline := time.Now().Add(10 * time.Second)
	for c.RoutingStats().Members != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("view not refreshed: %+v", c.RoutingStats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := range 20 {
		k := fmt.Sprintf("p%d", i)
		if _, err := c.Put(t.Context(), k, []byte("v")); err != nil {
			t.Fatal(err)
		}
		if got := fc.holders(k); len(got) != 1 || got[0] != 0 {
			t.Fatalf("with one member left, %s landed on %v", k, got)
		}
	}
}

// TestRoutingReadRetriedAfterLostConnection: a routed GET whose replica
// drops the connection in flight is retried on Config.Addrs (a read may
// run twice), and the retry's answer — not the lost connection — is the
// result, although the same call carries both attempts.
func TestRoutingReadRetriedAfterLostConnection(t *testing.T) {
	fc := startFakeCluster(t, 3)
	c := routedClient(t, fc.servers[0].Addr())
	ctx := t.Context()
	key := ""
	for i := 0; key == ""; i++ {
		if k := fmt.Sprintf("r%d", i); fc.owner(k) == 2 {
			key = k
		}
	}
	// The value is on server 0 (the given address) only.
	plain := startClient(t, nil, fc.servers[0].Addr())
	if _, err := plain.Put(ctx, key, []byte("v")); err != nil {
		t.Fatal(err)
	}
	fc.servers[2].setHook(func(op netproto.Opcode, _ string) fakeAction {
		return fakeAction{drop: op == netproto.OpGet}
	})
	it, err := c.Get(ctx, key)
	if err != nil || len(it.Values) != 1 || string(it.Values[0]) != "v" {
		t.Fatalf("Get = %+v, %v; want v from the fallback", it, err)
	}
	// A write whose connection is lost is not retried: it may have run.
	fc.servers[2].setHook(func(op netproto.Opcode, _ string) fakeAction {
		return fakeAction{drop: op == netproto.OpPut}
	})
	if _, err := c.Put(ctx, key, []byte("w")); !errors.Is(err, ErrConnLost) {
		t.Fatalf("Put over a dropped connection = %v, want ErrConnLost", err)
	}
}
