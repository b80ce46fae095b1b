//go:build long

package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ecachedb/ecache/client"
	"github.com/ecachedb/ecache/internal/clustertest"
	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/storage"
	"github.com/ecachedb/ecache/vclock"
)

// TestLongHarnessSeeds sweeps seeds over a network where every link loses,
// delays and (for replication and fetches) duplicates messages, and gossip
// loses packets: writes through any node, once healed, converge to one
// object per key on its owners, with at most one dot per write.
// go test -tags long -run TestLongHarnessSeeds ./node/
func TestLongHarnessSeeds(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			c := clustertest.Start(t, clustertest.Options{Nodes: 3, Replicas: 2, Seed: seed, Persistence: storage.PersistenceNone, PeerTimeout: 300 * time.Millisecond})
			for a := range 3 {
				for b := range 3 {
					if a == b {
						continue
					}
					c.Net.SetLink(a, b, clustertest.Faults{Drop: 0.1, Delay: 5 * time.Millisecond, Path: clustertest.PathData})
				}
			}
			dup := clustertest.Faults{Duplicate: 0.5, Path: clustertest.PathData, Ops: []netproto.Opcode{netproto.OpReplicate, netproto.OpFetch}}
			c.Net.SetLink(0, 1, dup)
			c.Net.SetLink(1, 2, dup)
			c.Net.SetLink(2, 0, clustertest.Faults{Drop: 0.2, Path: clustertest.PathGossip})
			clients := []*client.Client{c.Client(0), c.Client(1), c.Client(2)}
			const keys = 20
			for i := range keys {
				_, err := clients[i%3].Put(t.Context(), fmt.Sprintf("s%d", i), []byte("v"), client.WithW(2))
				if err != nil {
					t.Logf("PUT s%d: %v", i, err) // lost answers: allowed, the write may have been applied
				}
			}
			c.Net.HealAll()
			for i := range keys {
				key := fmt.Sprintf("s%d", i)
				owners := c.Owners(0, ns, key)
				clustertest.Eventually(t, 30*time.Second, key+" converged on its owners", func() bool {
					a, _ := c.Local(owners[0], ns, key)
					b, _ := c.Local(owners[1], ns, key)
					return vclock.ObjectsEqual(a, b)
				})
				if o, _ := c.Local(owners[0], ns, key); len(o.Clock) > 1 || len(o.Siblings) > 1 {
					t.Fatalf("%s holds clock %v and %d siblings: one write, one dot", key, o.Clock, len(o.Siblings))
				}
			}
		})
	}
}
