package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ecachedb/ecache/storage"
	"github.com/ecachedb/ecache/vclock"
)

// TestHintsOfForgottenNode: hints for a replica that never comes back are
// dropped once the cluster forgets it (gossip's DeadRetention), not kept
// until the hint store's bound.
func TestHintsOfForgottenNode(t *testing.T) {
	nodes := startCluster(t, 3, 3, storage.PersistenceNone, func(cfg *Config) {
		cfg.Cluster.Gossip.Tuning.DeadRetention = 2 * time.Second
	})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := nodes[2].Close(ctx); err != nil {
		t.Fatal(err)
	}
	c1 := dialNode(t, nodes[0], "")
	for i := range 10 {
		if _, err := c1.Put(ctx, fmt.Sprintf("k%d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if st := nodes[0].ClusterStats(); st.HintsStored == 0 {
		t.Fatalf("no hints stored for the closed replica: %+v", st)
	}
	eventually(t, 15*time.Second, "the forgotten node's hints dropped", func() bool {
		st := nodes[0].ClusterStats()
		return st.HintsPending == 0 && st.HintsForgotten > 0
	})
	// Writes after that leave no hints for it.
	stored := nodes[0].ClusterStats().HintsStored
	if _, err := c1.Put(ctx, "after", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if st := nodes[0].ClusterStats(); st.HintsStored != stored || st.HintsPending != 0 {
		t.Fatalf("a write after the node was forgotten left a hint: %+v", st)
	}
}

// TestReplicationCoalesces: background (W=1) replications of one key wait
// in a replica's queue as one reference, and the object sent is the one
// stored when it is sent, with every write since.
func TestReplicationCoalesces(t *testing.T) {
	nodes := startCluster(t, 1, 1, storage.PersistenceNone)
	n := nodes[0]
	c := n.cluster
	// A replica whose queue nothing drains, so what is queued stays put.
	const other = vclock.NodeID(42)
	p := &peer{id: other, queue: make(chan replication, 8), pending: map[string]refState{}}
	c.mu.Lock()
	c.peers[other] = p
	c.mu.Unlock()
	cl := dialNode(t, n, "")
	for i := range 5 {
		if _, err := cl.Put(t.Context(), "hot", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		obj, _ := localObject(t, n, "hot")
		if err := c.replicate(t.Context(), []byte(DefaultNamespace), []byte("hot"), obj, []vclock.NodeID{n.ID(), other}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if len(p.queue) != 1 || c.coalesced.Load() != 4 {
		t.Fatalf("queued %d, coalesced %d; want 1 and 4", len(p.queue), c.coalesced.Load())
	}
	r, ok := c.resolve(<-p.queue)
	if !ok {
		t.Fatal("the queued reference resolved to nothing")
	}
	var got vclock.Object
	if err := vclock.DecodeObject(r.obj, &got); err != nil {
		t.Fatal(err)
	}
	want, _ := localObject(t, n, "hot")
	if !vclock.ObjectsEqual(got, want) {
		t.Fatalf("sent %+v, want the stored %+v", got, want)
	}
}
