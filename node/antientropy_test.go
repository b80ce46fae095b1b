package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/ecachedb/ecache/antientropy"
	"github.com/ecachedb/ecache/client"
	"github.com/ecachedb/ecache/merge"
	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/storage"
	"github.com/ecachedb/ecache/vclock"
)

// aeNodeConfig is a cluster node's configuration for anti-entropy tests:
// read repair and hinted handoff off, so anti-entropy alone repairs, and
// the scheduler every interval (negative: off; exchanges are then run by
// the test).
func aeNodeConfig(t *testing.T, p storage.Persistence, replicas int, join string, interval time.Duration) Config {
	cfg := clusterNodeConfig(t, p, replicas, join)
	cfg.Cluster.NoReadRepair = true
	cfg.Cluster.NoHintedHandoff = true
	cfg.Cluster.AntiEntropy.Interval = interval
	cfg.Cluster.AntiEntropy.RateKeys = -1
	cfg.Cluster.AntiEntropy.RateBytes = -1
	return cfg
}

// aeCluster opens size nodes with aeNodeConfig and waits until every ring
// holds them all.
func aeCluster(t *testing.T, size int, p storage.Persistence, interval time.Duration) ([]*Node, []Config) {
	t.Helper()
	var nodes []*Node
	var cfgs []Config
	for i := range size {
		join := ""
		if i > 0 {
			join = nodes[0].Membership().Addr()
		}
		cfg := aeNodeConfig(t, p, size, join, interval)
		cfgs = append(cfgs, cfg)
		nodes = append(nodes, openClusterNode(t, cfg, i+1))
	}
	waitRing(t, nodes, size)
	return nodes, cfgs
}

func waitRing(t *testing.T, nodes []*Node, size int) {
	t.Helper()
	eventually(t, 15*time.Second, "every ring has all nodes", func() bool {
		for _, n := range nodes {
			if n.Membership().Ring().Len() != size {
				return false
			}
		}
		return true
	})
	// Rebalancing moves partitions after a join: wait until it is done,
	// so that what the tests count is anti-entropy's work alone.
	eventually(t, 15*time.Second, "rebalancing idle", func() bool {
		for _, n := range nodes {
			if n.RebalanceStats().State != "idle" {
				return false
			}
		}
		return true
	})
}

// exchangeAll runs from's exchange of every partition both nodes replicate
// with to, and sums what they did.
func exchangeAll(t *testing.T, from, to *Node) antientropy.Stats {
	t.Helper()
	var sum antientropy.Stats
	r := from.Membership().Ring()
	for p := range uint32(r.Partitions()) {
		if !r.IsOwner(p, from.ID()) || !r.IsOwner(p, to.ID()) {
			continue
		}
		st, err := from.AntiEntropyExchange(t.Context(), p, to.ID())
		if err != nil {
			t.Fatalf("partition %d: %v", p, err)
		}
		sum.RootComparisons += st.RootComparisons
		sum.LeavesCompared += st.LeavesCompared
		sum.KeysDiffering += st.KeysDiffering
		sum.KeysTransferred += st.KeysTransferred
		sum.Ghosts += st.Ghosts
	}
	return sum
}

// putLocal writes key at n alone: no replication.
func putLocal(t *testing.T, n *Node, key, value string, ttl time.Duration) {
	t.Helper()
	op := merge.Op{Kind: merge.OpPut, Value: []byte(value)}
	if ttl > 0 {
		op.Expiry = n.now().Add(ttl).UnixNano()
	}
	if _, _, err := n.Apply(nil, []byte(key), op); err != nil {
		t.Fatal(err)
	}
}

// TestAntiEntropyRepairsExactlyTheDifferences: k keys missing on one
// replica are k repairs, in either direction; k keys removed from one
// replica are k repairs; a second pass finds nothing (one root comparison
// per partition); deletes propagate and never come back; expired entries
// are never repaired.
func TestAntiEntropyRepairsExactlyTheDifferences(t *testing.T) {
	nodes, _ := aeCluster(t, 2, storage.PersistenceNone, -1)
	a, b := nodes[0], nodes[1]
	ca := dialNode(t, a, "")
	for i := range 40 {
		if _, err := ca.Put(t.Context(), fmt.Sprintf("both-%d", i), []byte("v"), client.WithW(2)); err != nil {
			t.Fatal(err)
		}
	}
	const k = 7
	for i := range k {
		putLocal(t, a, fmt.Sprintf("only-a-%d", i), "a", 0)
	}
	if st := exchangeAll(t, a, b); st.KeysTransferred != k {
		t.Fatalf("a→b with %d keys missing on b: %+v", k, st)
	}
	for i := range k {
		if _, found := localObject(t, b, fmt.Sprintf("only-a-%d", i)); !found {
			t.Fatalf("only-a-%d not repaired on b", i)
		}
	}
	parts := 0
	r := a.Membership().Ring()
	for p := range uint32(r.Partitions()) {
		if r.IsOwner(p, a.ID()) && r.IsOwner(p, b.ID()) {
			parts++
		}
	}
	for _, pair := range [][2]*Node{{a, b}, {b, a}} {
		if st := exchangeAll(t, pair[0], pair[1]); st.KeysTransferred != 0 || st.RootComparisons != parts || st.KeysDiffering != 0 {
			t.Fatalf("identical replicas: %+v (partitions %d)", st, parts)
		}
	}
	// Remove k keys from b's store entirely (as a lost write would): b
	// pulls them back as initiator.
	for i := range k {
		key := fmt.Sprintf("both-%d", i)
		o, _ := localObject(t, b, key)
		if ok, err := b.Store().Forget([]byte(DefaultNamespace), []byte(key), o.Clock); err != nil || !ok {
			t.Fatalf("forget %s: %v %v", key, ok, err)
		}
	}
	if st := exchangeAll(t, b, a); st.KeysTransferred != k {
		t.Fatalf("b→a with %d keys removed on b: %+v", k, st)
	}
	if got := gatheredValue(t, b, "ecache_antientropy_repaired_keys_total"); got != k {
		t.Fatalf("b's ecache_antientropy_repaired_keys_total = %v, want %d", got, k)
	}
	if got := gatheredValue(t, a, "ecache_antientropy_repaired_keys_total"); got != k {
		t.Fatalf("a's ecache_antientropy_repaired_keys_total = %v, want %d", got, k)
	}

	// A delete made on a alone reaches b, and no exchange brings the
	// value back on either side.
	if _, _, err := a.Apply(nil, []byte("both-20"), merge.Op{Kind: merge.OpDelete}); err != nil {
		t.Fatal(err)
	}
	if st := exchangeAll(t, b, a); st.KeysTransferred != 1 {
		t.Fatalf("b→a after a delete on a: %+v", st)
	}
	for _, n := range nodes {
		if it, err := n.Get(nil, []byte("both-20")); err != nil || it.Found {
			t.Fatalf("deleted key found on %v: %+v %v", n.ID(), it, err)
		}
	}
	for _, pair := range [][2]*Node{{a, b}, {b, a}} {
		if st := exchangeAll(t, pair[0], pair[1]); st.KeysTransferred != 0 {
			t.Fatalf("after the delete propagated: %+v", st)
		}
	}

	// An entry that expired on a before any exchange is never repaired.
	putLocal(t, a, "short-lived", "x", time.Millisecond)
	eventually(t, 5*time.Second, "short-lived expired", func() bool {
		it, err := a.Get(nil, []byte("short-lived"))
		return err == nil && !it.Found
	})
	for _, pair := range [][2]*Node{{a, b}, {b, a}} {
		if st := exchangeAll(t, pair[0], pair[1]); st.KeysTransferred != 0 {
			t.Fatalf("an expired entry was repaired: %+v", st)
		}
	}
	var o vclock.Object
	if found, err := b.Store().Get([]byte(DefaultNamespace), []byte("short-lived"), &o); err != nil || found || len(o.Siblings) != 0 {
		t.Fatalf("b holds the expired entry: found %v err %v", found, err)
	}
}

// TestAntiEntropyNoFalseRepairsAfterRestart: a replica that restarts with
// its data (trees rebuilt from Pebble in the background) and identical
// replicas exchange without a single repair.
func TestAntiEntropyNoFalseRepairsAfterRestart(t *testing.T) {
	nodes, cfgs := aeCluster(t, 2, storage.PersistenceSync, -1)
	ca := dialNode(t, nodes[0], "")
	for i := range 100 {
		if _, err := ca.Put(t.Context(), fmt.Sprintf("k%d", i), []byte("v"), client.WithW(2)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ca.Del(t.Context(), "k5", client.WithW(2)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	if err := nodes[1].Close(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	cfg := cfgs[1]
	cfg.Cluster = new(*cfgs[1].Cluster)
	cfg.Cluster.Gossip.Join = []string{nodes[0].Membership().Addr()}
	b := openClusterNode(t, cfg, 2)
	waitRing(t, []*Node{nodes[0], b}, 2)
	for _, pair := range [][2]*Node{{nodes[0], b}, {b, nodes[0]}} {
		if st := exchangeAll(t, pair[0], pair[1]); st.KeysTransferred != 0 || st.KeysDiffering != 0 {
			t.Fatalf("identical data after a restart: %+v", st)
		}
	}
}

// TestAntiEntropyRestoresWipedReplica: the scheduler alone (read repair
// and hints off, membership unchanged so nothing is rebalanced) spreads
// keys written at one replica only to the others and refills a replica
// whose data was wiped; the admin endpoint and metrics show the exchanges.
func TestAntiEntropyRestoresWipedReplica(t *testing.T) {
	nodes, _ := aeCluster(t, 3, storage.PersistenceNone, 100*time.Millisecond)
	const keys = 300
	for i := range keys {
		putLocal(t, nodes[0], fmt.Sprintf("w%d", i), fmt.Sprintf("v%d", i), 0)
	}
	everywhere := func() bool {
		for _, n := range nodes {
			for i := range keys {
				if _, found := localObject(t, n, fmt.Sprintf("w%d", i)); !found {
					return false
				}
			}
		}
		return true
	}
	eventually(t, 30*time.Second, "anti-entropy copies every key to every replica", everywhere)
	var repaired float64
	for _, n := range nodes {
		repaired += gatheredValue(t, n, "ecache_antientropy_repaired_keys_total")
		if st := n.ClusterStats(); st.ReadRepairs != 0 || st.HintsStored != 0 {
			t.Fatalf("read repair or hints with both off: %+v", st)
		}
	}
	if repaired < 2*keys {
		t.Fatalf("repaired_keys_total summed over the nodes %v, want at least %d", repaired, 2*keys)
	}
	// Wipe node 3's data: every key removed from its store.
	n3 := nodes[2]
	for i := range keys {
		key := fmt.Sprintf("w%d", i)
		o, _ := localObject(t, n3, key)
		if _, err := n3.Store().Forget([]byte(DefaultNamespace), []byte(key), o.Clock); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 30*time.Second, "anti-entropy refills the wiped replica", everywhere)

	admin, err := StartAdmin(n3, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	var info AntiEntropyInfo
	eventually(t, 10*time.Second, "n3 reports completed exchanges", func() bool {
		resp, err := http.Get("http://" + admin.Addr() + "/v1/antientropy")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/antientropy: %s", resp.Status)
		}
		info = AntiEntropyInfo{}
		if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
			t.Fatal(err)
		}
		return info.TreesBuilt && info.Exchanges > 0 && len(info.Partitions) == 64 && info.Partitions[0].LastPeer != ""
	})
	if info.Interval != "100ms" || !info.Partitions[0].TreeReady || info.Partitions[0].AgeSeconds < 0 {
		t.Fatalf("anti-entropy info: %+v", info.Partitions[0])
	}
	if got := gatheredValue(t, n3, "ecache_antientropy_exchanges_total"); got == 0 {
		t.Fatal("ecache_antientropy_exchanges_total is 0")
	}
	for _, name := range []string{"ecache_antientropy_bytes_total", "ecache_antientropy_differences_total"} {
		if got := gatheredValue(t, nodes[0], name); got == 0 {
			t.Fatalf("%s is 0 on node 1", name)
		}
	}
	// One age per partition exchanged, labelled by partition.
	mfs, err := n3.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	ages := 0
	for _, mf := range mfs {
		if mf.GetName() == "ecache_antientropy_last_exchange_age_seconds" {
			for _, m := range mf.GetMetric() {
				if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetName() == "partition" && m.GetGauge().GetValue() >= 0 {
					ages++
				}
			}
		}
	}
	if ages != 64 {
		t.Fatalf("%d partitions with an exchange age, want 64", ages)
	}
}

// TestAntiEntropyPeerOnlyAndSwitches: ANTIENTROPY is refused from
// clients that are not peers; with read repair off an R=2 GET repairs
// nothing; with hinted handoff off no hint is kept for a replica that is
// down.
func TestAntiEntropyPeerOnlyAndSwitches(t *testing.T) {
	nodes, _ := aeCluster(t, 2, storage.PersistenceNone, -1)
	a, b := nodes[0], nodes[1]
	ca := dialNode(t, a, "")
	msg := antientropy.Message{Type: antientropy.MsgRootReq, Session: 1, Seq: 1, Shape: antientropy.DefaultShape()}
	var resp netproto.AntiEntropyResponse
	err := ca.Do(t.Context(), netproto.OpAntiEntropy, &netproto.AntiEntropyRequest{Message: msg.AppendMsgpack(nil)}, &resp)
	var se *client.ServerError
	if !errors.As(err, &se) || se.Code != netproto.CodeUnauthenticated {
		t.Fatalf("ANTIENTROPY from a client: %v", err)
	}
	// Read repair off: the merge is answered, the stale replica stays so.
	putLocal(t, a, "rr", "v", 0)
	it, err := ca.Get(t.Context(), "rr", client.WithR(2))
	if err != nil || len(it.Values) != 1 || string(it.Values[0]) != "v" {
		t.Fatalf("R=2 GET: %+v %v", it, err)
	}
	if _, found := localObject(t, b, "rr"); found || a.ClusterStats().ReadRepairs != 0 || b.ClusterStats().ReadRepairs != 0 {
		t.Fatal("read repair ran with NoReadRepair")
	}
	// Hinted handoff off: b leaves; a write for it keeps no hint.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	eventually(t, 15*time.Second, "b out of a's ring", func() bool { return a.Membership().Ring().Len() == 1 })
	if _, err := ca.Put(t.Context(), "nohint", []byte("v"), client.WithW(1)); err != nil {
		t.Fatal(err)
	}
	if st := a.ClusterStats(); st.HintsStored != 0 || st.HintsPending != 0 || st.Dropped == 0 {
		t.Fatalf("hints with NoHintedHandoff: %+v", st)
	}
}

// TestAntiEntropyEvictionsNotRepaired: a memory-only replica whose memory
// tier evicted most of its keys is not refilled by anti-entropy (the
// evictions are not differences), while a real difference in the same
// partitions still is.
func TestAntiEntropyEvictionsNotRepaired(t *testing.T) {
	var nodes []*Node
	for i := range 2 {
		join := ""
		if i > 0 {
			join = nodes[0].Membership().Addr()
		}
		cfg := aeNodeConfig(t, storage.PersistenceNone, 2, join, -1)
		// Tiny trees (2 leaves per partition) so that the leaves the real
		// differences land in hold evicted keys too.
		cfg.Cluster.AntiEntropy.Exchange = antientropy.DefaultConfig()
		cfg.Cluster.AntiEntropy.Exchange.Shape = antientropy.Shape{Width: 2, Depth: 1}
		if i == 0 {
			cfg.Storage.MemoryLimit = 24 << 10 // a fraction of the keys below
			cfg.Storage.MemoryShards = 1
		}
		nodes = append(nodes, openClusterNode(t, cfg, i+1))
	}
	waitRing(t, nodes, 2)
	a, b := nodes[0], nodes[1]
	cb := dialNode(t, b, "")
	const keys = 800
	for i := range keys {
		if _, err := cb.Put(t.Context(), fmt.Sprintf("e%d", i), []byte(fmt.Sprintf("value-%d", i)), client.WithW(2)); err != nil {
			t.Fatal(err)
		}
	}
	held := map[string]bool{}
	for i := range keys {
		if _, found := localObject(t, a, fmt.Sprintf("e%d", i)); found {
			held[fmt.Sprintf("e%d", i)] = true
		}
	}
	if len(held) > keys/2 {
		t.Fatalf("a holds %d of %d keys: the test needs evictions", len(held), keys)
	}
	const k = 3
	for i := range k {
		putLocal(t, b, fmt.Sprintf("real-%d", i), "r", 0)
	}
	st := exchangeAll(t, a, b)
	st2 := exchangeAll(t, b, a)
	if st.KeysTransferred+st2.KeysTransferred != k || st.Ghosts+st2.Ghosts == 0 {
		t.Fatalf("a→b %+v, b→a %+v: want %d keys transferred in all and evicted keys met", st, st2, k)
	}
	for i := range keys {
		key := fmt.Sprintf("e%d", i)
		if _, found := localObject(t, a, key); found && !held[key] {
			t.Fatalf("evicted key %s came back to a", key)
		}
	}
	t.Logf("a held %d of %d keys; %d+%d evicted keys met in differing leaves were left alone", len(held), keys, st.Ghosts, st2.Ghosts)
}

// TestAntiEntropyEvictionChurn: keys a memory-only replica evicted and
// then received again (a new write, replicated to both) leave its trees
// equal to its peer's: the evicted versions' hashes are replaced, not
// kept beside the new ones, so no leaf differs and nothing is compared.
func TestAntiEntropyEvictionChurn(t *testing.T) {
	var nodes []*Node
	for i := range 2 {
		join := ""
		if i > 0 {
			join = nodes[0].Membership().Addr()
		}
		cfg := aeNodeConfig(t, storage.PersistenceNone, 2, join, -1)
		if i == 0 {
			cfg.Storage.MemoryLimit = 24 << 10
			cfg.Storage.MemoryShards = 1
		}
		nodes = append(nodes, openClusterNode(t, cfg, i+1))
	}
	waitRing(t, nodes, 2)
	a, b := nodes[0], nodes[1]
	cb := dialNode(t, b, "")
	const keys = 600
	put := func(i int, v string) {
		t.Helper()
		if _, err := cb.Put(t.Context(), fmt.Sprintf("c%d", i), []byte(v), client.WithW(2)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range keys {
		put(i, fmt.Sprintf("value-%d", i))
	}
	var evicted []int
	for i := range keys {
		if _, found := localObject(t, a, fmt.Sprintf("c%d", i)); !found {
			evicted = append(evicted, i)
		}
	}
	if len(evicted) < 40 {
		t.Fatalf("a evicted %d of %d keys: the test needs evictions", len(evicted), keys)
	}
	for _, i := range evicted[:20] {
		put(i, "again")
	}
	st, st2 := exchangeAll(t, a, b), exchangeAll(t, b, a)
	if st.LeavesCompared+st2.LeavesCompared != 0 || st.KeysTransferred+st2.KeysTransferred != 0 {
		t.Fatalf("a→b %+v, b→a %+v: want equal trees (no leaf compared, nothing transferred)", st, st2)
	}
}

func TestAntiEntropyConfigValidate(t *testing.T) {
	cfg := clusterNodeConfig(t, storage.PersistenceNone, 2, "")
	cfg.Cluster.AntiEntropy.Exchange = antientropy.DefaultConfig()
	cfg.Cluster.AntiEntropy.Exchange.Shape.Width = 1
	if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("bad anti-entropy shape: %v", err)
	}
	if _, err := Open(cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Open with a bad anti-entropy shape: %v", err)
	}
}

// TestLimiter: a second's worth passes at once, a debt waits (here, for a
// context that is already cancelled), no limit never waits.
func TestLimiter(t *testing.T) {
	if l := newLimiter(0); l != nil || l.wait(t.Context(), 1<<30) != nil {
		t.Fatal("a rate of 0 must mean no limit")
	}
	l := newLimiter(1000)
	if err := l.wait(t.Context(), 1000); err != nil {
		t.Fatalf("the burst: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := l.wait(ctx, 1000); !errors.Is(err, context.Canceled) {
		t.Fatalf("over the rate with a cancelled context: %v", err)
	}
	if err := l.wait(ctx, 0); err != nil {
		t.Fatalf("nothing asked: %v", err)
	}
}
