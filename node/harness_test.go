package node_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecachedb/ecache/client"
	"github.com/ecachedb/ecache/internal/clustertest"
	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/node"
	"github.com/ecachedb/ecache/storage"
	"github.com/ecachedb/ecache/vclock"
)

// These tests run clusters over clustertest's seeded faulty network. Each
// names its seed: a failure replays with the same message fates.

const ns = node.DefaultNamespace

// value returns the single value node i holds for key, "" if none.
func value(c *clustertest.Cluster, i int, namespace, key string) string {
	o, found := c.Local(i, namespace, key)
	if !found || len(o.Siblings) != 1 || o.Siblings[0].Tombstone {
		return ""
	}
	return string(o.Siblings[0].Value)
}

// TestHarnessForwardAroundCutOwner: a non-owner whose link to the first
// owner is cut forwards to the second, which coordinates and replicates to
// the first over their healthy link.
func TestHarnessForwardAroundCutOwner(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Nodes: 3, Replicas: 2, Seed: 11, Persistence: storage.PersistenceNone})
	key := c.KeyWhere(ns, "fwd", func(o []int) bool { return !slices.Contains(o, 0) })
	owners := c.Owners(0, ns, key)
	c.Net.Cut(0, owners[0], clustertest.PathData)
	c0 := c.Client(0)
	if _, err := c0.Put(t.Context(), key, []byte("around")); err != nil {
		t.Fatalf("PUT via node 0 with its link to owner %d cut: %v", owners[0], err)
	}
	if st := c.Net.Stats(0, owners[0], clustertest.PathData); st.Refused == 0 {
		t.Fatalf("no dial to the cut owner was refused: %+v", st)
	}
	for _, o := range owners {
		clustertest.Eventually(t, 10*time.Second, fmt.Sprintf("owner %d holds the key", o), func() bool {
			return value(c, o, ns, key) == "around"
		})
	}
	obj, _ := c.Local(owners[1], ns, key)
	if len(obj.Clock) != 1 || obj.Clock[0].Node != c.Nodes[owners[1]].ID() {
		t.Fatalf("clock %v: want one dot, issued by the owner node 0 reached (%d)", obj.Clock, owners[1])
	}
	if it, err := c0.Get(t.Context(), key); err != nil || string(it.Values[0]) != "around" {
		t.Fatalf("GET via node 0 = %+v, %v", it, err)
	}
}

// TestHarnessWQuorumLossyLink: with the coordinator's link to one replica
// losing 30% of its messages both ways, W=2 writes still succeed (the
// coordinator turns to the other replica when one fails) and every replica
// ends up with every key (retries from the queue, then hints).
func TestHarnessWQuorumLossyLink(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Nodes: 3, Replicas: 3, Seed: 21, Persistence: storage.PersistenceNone, PeerTimeout: 300 * time.Millisecond})
	lossy := clustertest.Faults{Drop: 0.3, Path: clustertest.PathData}
	c.Net.SetLink(0, 1, lossy)
	c.Net.SetLink(1, 0, lossy)
	c0 := c.Client(0)
	const keys = 30
	for i := range keys {
		if _, err := c0.Put(t.Context(), fmt.Sprintf("q%d", i), []byte(fmt.Sprint(i)), client.WithW(2)); err != nil {
			t.Fatalf("W=2 PUT %d over a lossy link: %v", i, err)
		}
	}
	if st := c.Net.Stats(0, 1, clustertest.PathData); st.Dropped == 0 {
		t.Fatalf("the lossy link dropped nothing: %+v", st)
	}
	for i := range keys {
		for n := range 3 {
			clustertest.Eventually(t, 20*time.Second, fmt.Sprintf("node %d holds q%d", n, i), func() bool {
				return value(c, n, ns, fmt.Sprintf("q%d", i)) == fmt.Sprint(i)
			})
		}
	}
}

// TestHarnessWAllCutReplica: W=N fails with a clear error while a replica
// is cut off (the write stays applied where it reached), and the write
// reaches the replica once the cut heals.
func TestHarnessWAllCutReplica(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Nodes: 3, Replicas: 3, Seed: 31, Persistence: storage.PersistenceNone})
	c.Net.Cut(0, 2, clustertest.PathData)
	c0 := c.Client(0)
	_, err := c0.Put(t.Context(), "all", []byte("v"), client.WithW(3))
	if !errors.Is(err, client.ErrBusy) || !strings.Contains(err.Error(), "not acknowledged by w replicas") || !strings.Contains(err.Error(), "2 of 3") {
		t.Fatalf("W=3 PUT with a replica cut = %v, want ErrBusy naming 2 of 3 acknowledgements", err)
	}
	if value(c, 0, ns, "all") != "v" || value(c, 2, ns, "all") != "" {
		t.Fatal("want the write at the coordinator and not at the cut replica")
	}
	clustertest.Eventually(t, 10*time.Second, "node 1 holds the write", func() bool { return value(c, 1, ns, "all") == "v" })
	c.Net.HealAll()
	clustertest.Eventually(t, 20*time.Second, "node 2 holds the write after the heal", func() bool { return value(c, 2, ns, "all") == "v" })
}

// TestHarnessReadRepair: a replica that missed a write (its REPLICATE
// messages lost) answers an R=2 GET with the merge of its copy and a
// fresh replica's, and repairs its own copy.
func TestHarnessReadRepair(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Nodes: 3, Replicas: 3, Seed: 41, Persistence: storage.PersistenceNone})
	c0, c2 := c.Client(0), c.Client(2)
	if _, err := c0.Put(t.Context(), "rr", []byte("old"), client.WithW(3)); err != nil {
		t.Fatal(err)
	}
	c.Net.SetLink(0, 2, clustertest.Faults{Drop: 1, Path: clustertest.PathData, Ops: []netproto.Opcode{netproto.OpReplicate}})
	if _, err := c0.Put(t.Context(), "rr", []byte("new"), client.WithW(2)); err != nil {
		t.Fatal(err)
	}
	if got := value(c, 2, ns, "rr"); got != "old" {
		t.Fatalf("node 2 holds %q before the read, want old", got)
	}
	if it, err := c2.Get(t.Context(), "rr", client.WithLocal()); err != nil || string(it.Values[0]) != "old" {
		t.Fatalf("local GET on node 2 = %+v, %v; want old", it, err)
	}
	it, err := c2.Get(t.Context(), "rr", client.WithR(2))
	if err != nil || len(it.Values) != 1 || string(it.Values[0]) != "new" {
		t.Fatalf("R=2 GET on node 2 = %+v, %v; want new", it, err)
	}
	clustertest.Eventually(t, 10*time.Second, "node 2 repaired", func() bool { return value(c, 2, ns, "rr") == "new" })
	if st := c.Nodes[2].ClusterStats(); st.ReadRepairs == 0 {
		t.Fatalf("no read repair counted on node 2: %+v", st)
	}
}

// TestHarnessHandoffAfterCut: writes to a replica whose data path is cut
// (gossip still sees it alive) become hints on the coordinator, delivered
// once the cut heals.
func TestHarnessHandoffAfterCut(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Nodes: 3, Replicas: 3, Seed: 51, Persistence: storage.PersistenceNone})
	c.Net.Cut(0, 2, clustertest.PathData)
	c0 := c.Client(0)
	const keys = 10
	for i := range keys {
		if _, err := c0.Put(t.Context(), fmt.Sprintf("h%d", i), []byte("v"), client.WithW(2)); err != nil {
			t.Fatal(err)
		}
	}
	clustertest.Eventually(t, 10*time.Second, "hints kept for node 2", func() bool {
		return c.Nodes[0].ClusterStats().HintsPending >= keys
	})
	for i := range keys {
		if value(c, 2, ns, fmt.Sprintf("h%d", i)) != "" {
			t.Fatalf("node 2 holds h%d through a cut", i)
		}
	}
	c.Net.HealAll()
	clustertest.Eventually(t, 20*time.Second, "hints delivered to node 2", func() bool {
		for i := range keys {
			if value(c, 2, ns, fmt.Sprintf("h%d", i)) != "v" {
				return false
			}
		}
		return c.Nodes[0].ClusterStats().HintsPending == 0
	})
	if st := c.Nodes[0].ClusterStats(); st.HintsDelivered < keys {
		t.Fatalf("delivered %d hints, want at least %d", st.HintsDelivered, keys)
	}
}

// TestHarnessDuplicateReplicate: every REPLICATE delivered twice changes
// nothing: the replicas hold exactly the coordinator's objects.
func TestHarnessDuplicateReplicate(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Nodes: 3, Replicas: 3, Seed: 61, Persistence: storage.PersistenceNone})
	dup := clustertest.Faults{Duplicate: 1, Path: clustertest.PathData, Ops: []netproto.Opcode{netproto.OpReplicate}}
	c.Net.SetLink(0, 1, dup)
	c.Net.SetLink(0, 2, dup)
	c0 := c.Client(0)
	const keys = 10
	for i := range keys {
		for v := range 3 {
			if _, err := c0.Put(t.Context(), fmt.Sprintf("d%d", i), []byte(fmt.Sprint(v)), client.WithW(3), client.WithNamespace("sib")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if st := c.Net.Stats(0, 1, clustertest.PathData); st.Duplicated < keys*3 {
		t.Fatalf("link 0→1 duplicated %d messages, want every REPLICATE: %+v", st.Duplicated, st)
	}
	for i := range keys {
		key := fmt.Sprintf("d%d", i)
		want, _ := c.Local(0, "sib", key)
		if len(want.Siblings) != 3 {
			t.Fatalf("coordinator holds %d siblings of blind writes, want 3", len(want.Siblings))
		}
		for n := 1; n < 3; n++ {
			clustertest.Eventually(t, 10*time.Second, fmt.Sprintf("node %d holds %s as node 0 does", n, key), func() bool {
				got, _ := c.Local(n, "sib", key)
				return vclock.ObjectsEqual(got, want)
			})
		}
	}
}

// TestHarnessGossipPartition: gossip goes through the faulty network too:
// a node cut off on every path leaves the others' rings and comes back
// when the cut heals.
func TestHarnessGossipPartition(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Nodes: 3, Replicas: 2, Seed: 71, Persistence: storage.PersistenceNone})
	c.Net.SetLink(0, 1, clustertest.Faults{Drop: 0.2, Duplicate: 0.2, Delay: 20 * time.Millisecond, Path: clustertest.PathGossip})
	c.Net.Isolate(2, clustertest.PathBoth, 0, 1)
	clustertest.Eventually(t, 20*time.Second, "node 2 out of nodes 0 and 1's rings", func() bool {
		return c.Nodes[0].Membership().Ring().Len() == 2 && c.Nodes[1].Membership().Ring().Len() == 2
	})
	c.Net.HealAll()
	c.WaitRings()
	if st := c.Net.Stats(2, 0, clustertest.PathGossip); st.Dropped == 0 {
		t.Fatalf("no gossip from node 2 was lost: %+v", st)
	}
}
