package node

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecachedb/ecache/client"
	"github.com/ecachedb/ecache/gossip"
	"github.com/ecachedb/ecache/gossip/ring"
	"github.com/ecachedb/ecache/storage"
	"github.com/ecachedb/ecache/vclock"
)

// putKeys writes prefix0..prefixN-1 through c with W=w.
func putKeys(t *testing.T, c *client.Client, prefix string, n, w int) {
	t.Helper()
	for i := range n {
		k := fmt.Sprintf("%s%d", prefix, i)
		if _, err := c.Put(t.Context(), k, []byte("v-"+k), client.WithW(w)); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
}

// placement reports what is wrong with where keys live: every owner (by
// ring's view of nodes[0]) must hold its keys locally with the right value
// and, when strict, no other node may hold them. "" when all is well.
func placement(t *testing.T, nodes []*Node, keys []string, strict bool) string {
	t.Helper()
	for _, k := range keys {
		owners := ownersOf(nodes[0], k)
		for i, n := range nodes {
			o, found := localObject(t, n, k)
			owner := slices.Contains(owners, n.ID())
			switch {
			case owner && (!found || len(o.Siblings) != 1 || string(o.Siblings[0].Value) != "v-"+k):
				return fmt.Sprintf("owner node %d lacks %s (found %v)", i+1, k, found)
			case !owner && found && strict:
				return fmt.Sprintf("node %d still holds %s, which it no longer owns", i+1, k)
			}
		}
	}
	return ""
}

// eventuallyPlaced polls placement (and, with quiet, that rebalancing is
// idle everywhere) until it holds, failing with the last finding.
func eventuallyPlaced(t *testing.T, d time.Duration, nodes []*Node, keys []string, strict, quiet bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		msg := placement(t, nodes, keys, strict)
		if msg == "" && quiet && !idle(nodes) {
			msg = "rebalancing not idle"
		}
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func idle(nodes []*Node) bool {
	for _, n := range nodes {
		if n.RebalanceStats().State != "idle" {
			return false
		}
	}
	return true
}

func keyNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// reader GETs every key through c in a loop until stop, counting misses.
type reader struct {
	misses atomic.Int64
	reads  atomic.Int64
	first  atomic.Value // the first miss, a string
	stop   chan struct{}
	done   chan struct{}
}

func startReader(t *testing.T, c *client.Client, keys []string) *reader {
	r := &reader{stop: make(chan struct{}), done: make(chan struct{})}
	deadline := time.Now().Add(2 * time.Minute)
	go func() {
		defer close(r.done)
		for time.Now().Before(deadline) {
			for _, k := range keys {
				select {
				case <-r.stop:
					return
				default:
				}
				it, err := c.Get(context.Background(), k)
				r.reads.Add(1)
				if err != nil || len(it.Values) != 1 || string(it.Values[0]) != "v-"+k {
					if r.misses.Add(1) == 1 {
						r.first.Store(fmt.Sprintf("%s: %v, err %v", k, it, err))
					}
				}
			}
		}
	}()
	t.Cleanup(r.finish)
	return r
}

func (r *reader) finish() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
}

// TestRebalanceJoin: three nodes with N=2 hold keys; a fourth joins. Every
// key stays readable while ownership moves, the new owners then find their
// keys in their own stores and the old owners that lost a partition drop it.
func TestRebalanceJoin(t *testing.T) {
	nodes := startCluster(t, 3, 2, storage.PersistenceNone)
	c1 := dialNode(t, nodes[0], "")
	const n = 300
	keys := keyNames("j", n)
	putKeys(t, c1, "j", n, 2)
	eventuallyPlaced(t, 20*time.Second, nodes, keys, true, true)

	rd := startReader(t, c1, keys)
	n4 := openClusterNode(t, clusterNodeConfig(t, storage.PersistenceNone, 2, nodes[0].Membership().Addr()), 4)
	nodes = append(nodes, n4)
	eventually(t, 15*time.Second, "every ring has four nodes", func() bool {
		for _, n := range nodes {
			if n.Membership().Ring().Len() != 4 {
				return false
			}
		}
		return true
	})
	eventuallyPlaced(t, 30*time.Second, nodes, keys, true, true)
	// Keep reading a little after the move, then stop.
	reads := rd.reads.Load()
	eventually(t, 10*time.Second, "reads after the move", func() bool { return rd.reads.Load() > reads+n })
	rd.finish()
	if m := rd.misses.Load(); m != 0 {
		t.Fatalf("%d of %d reads during the move missed; first: %v", m, rd.reads.Load(), rd.first.Load())
	}
	owned := 0
	for _, k := range keys {
		if slices.Contains(ownersOf(nodes[0], k), n4.ID()) {
			owned++
		}
	}
	if owned == 0 {
		t.Fatal("the new node owns none of the keys")
	}
	var sent, dropped, objects uint64
	for _, n := range nodes {
		st := n.RebalanceStats()
		sent, dropped, objects = sent+st.PartitionsSent, dropped+st.PartitionsDropped, objects+st.ObjectsSent
	}
	if sent == 0 || dropped == 0 || objects < uint64(owned) {
		t.Fatalf("rebalance counters: %d partitions sent, %d dropped, %d objects sent; the new node owns %d keys", sent, dropped, objects, owned)
	}
	var gathered float64
	for _, n := range nodes {
		gathered += gatheredValue(t, n, "ecache_rebalance_objects_sent_total")
	}
	if gathered != float64(objects) {
		t.Fatalf("ecache_rebalance_objects_sent_total sums to %v, want %d", gathered, objects)
	}
	if info, ok := nodes[0].ClusterInfo(); !ok || info.Rebalance.State != "idle" {
		t.Fatalf("ClusterInfo rebalance: %+v", info.Rebalance)
	}
}

// TestRebalanceGracefulLeave: a node that closes hands its partitions off
// first: nothing is lost and every key has N local copies afterwards,
// while writes race the handoff.
func TestRebalanceGracefulLeave(t *testing.T) {
	nodes := startCluster(t, 4, 2, storage.PersistenceNone)
	c1 := dialNode(t, nodes[0], "")
	const n = 300
	keys := keyNames("g", n)
	// W=1: the copy on the leaving node may be the only one for a moment.
	putKeys(t, c1, "g", n, 1)
	eventuallyPlaced(t, 20*time.Second, nodes, keys, false, false)

	// Writes race the handoff: through node 1 (forwarded to an owner,
	// which may be the leaver) and replicated straight into the leaver,
	// as a peer whose ring is behind would.
	leaver := nodes[3]
	var (
		mu    sync.Mutex
		acked []string
	)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 5000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := fmt.Sprintf("race%d", i)
			if _, err := c1.Put(context.Background(), k, []byte("v-"+k), client.WithW(1)); err == nil {
				mu.Lock()
				acked = append(acked, k)
				mu.Unlock()
			}
			k = fmt.Sprintf("peer%d", i)
			obj, _ := vclock.Object{}.Update(nil, leaver.ID(), vclock.Sibling{Value: []byte("v-" + k), HLC: 1})
			if _, err := leaver.Store().Update([]byte(DefaultNamespace), []byte(k), func(vclock.Object, bool) (vclock.Object, error) {
				return obj, nil
			}); err == nil && !leaver.closed.Load() {
				mu.Lock()
				acked = append(acked, k)
				mu.Unlock()
			}
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := leaver.Close(ctx); err != nil {
		t.Fatal(err)
	}
	close(stop)
	<-done
	rest := nodes[:3]
	if st := leaver.RebalanceStats(); st.State != "leaving" || st.PartitionsSent == 0 || st.PartitionsDropped == 0 {
		t.Fatalf("the leaver's rebalance state: %+v", st)
	}
	eventually(t, 15*time.Second, "every ring has three nodes", func() bool {
		for _, n := range rest {
			if n.Membership().Ring().Len() != 3 {
				return false
			}
		}
		return true
	})
	mu.Lock()
	all := append(slices.Clone(keys), acked...)
	mu.Unlock()
	eventuallyPlaced(t, 30*time.Second, rest, all, true, true)
	t.Logf("%d keys, %d written during the handoff", len(keys), len(all)-len(keys))
}

// TestRebalanceLateWriteToNonOwner: an object that reaches a node which
// no longer owns its partition (a peer whose ring is behind replicated
// it) is handed to the owners and then dropped there, not kept or lost.
func TestRebalanceLateWriteToNonOwner(t *testing.T) {
	nodes := startCluster(t, 3, 2, storage.PersistenceNone)
	eventually(t, 10*time.Second, "rebalancing idle", func() bool { return idle(nodes) })
	var key string
	var outsider *Node
	for i := 0; outsider == nil && i < 1000; i++ {
		k := fmt.Sprintf("late%d", i)
		owners := ownersOf(nodes[0], k)
		for _, n := range nodes {
			if !slices.Contains(owners, n.ID()) {
				key, outsider = k, n
			}
		}
	}
	if outsider == nil {
		t.Fatal("no key with a non-owner among three nodes and N=2")
	}
	dropped := outsider.RebalanceStats().PartitionsDropped
	obj, _ := vclock.Object{}.Update(nil, outsider.ID(), vclock.Sibling{Value: []byte("v-" + key), HLC: 1})
	if _, err := outsider.Store().Update([]byte(DefaultNamespace), []byte(key), func(vclock.Object, bool) (vclock.Object, error) {
		return obj, nil
	}); err != nil {
		t.Fatal(err)
	}
	eventuallyPlaced(t, 15*time.Second, nodes, []string{key}, true, false)
	if st := outsider.RebalanceStats(); st.PartitionsDropped <= dropped || st.State != "idle" {
		t.Fatalf("the outsider's rebalance stats: %+v (dropped before: %d)", st, dropped)
	}
}

// TestRebalanceJoinerFillWindow: a node that joins plans first against a
// ring of itself alone; when the others appear, the partitions it owns
// must open the fill window (their data is still being streamed in), as
// those of a node that was not an owner do.
func TestRebalanceJoinerFillWindow(t *testing.T) {
	const parts = 16
	self, other := vclock.NodeID(1), vclock.NodeID(2)
	r := newRebalancer(&ClusterConfig{Gossip: gossip.Config{Partitions: parts}})
	r.c = &cluster{n: &Node{now: time.Now}}
	r.plan(ring.MustNew(parts, 2, []vclock.NodeID{self}), self)
	for p := range uint32(parts) {
		if r.fillUntil[p].Load() != 0 {
			t.Fatalf("partition %d in the fill window on a one-node ring", p)
		}
	}
	rg := ring.MustNew(parts, 2, []vclock.NodeID{self, other})
	r.plan(rg, self)
	owned := rg.PartitionsOf(self)
	if len(owned) == 0 {
		t.Fatal("self owns no partition of the two-node ring")
	}
	for _, p := range owned {
		if r.fillUntil[p].Load() <= time.Now().UnixNano() {
			t.Fatalf("partition %d, owned after the join, is not in the fill window", p)
		}
	}
}
