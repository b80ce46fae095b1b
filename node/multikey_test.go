package node

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ecachedb/ecache/client"
	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/storage"
	"github.com/ecachedb/ecache/vclock"
)

// TestClusterMultiKey: MPUT and MGET sent to one node of four (N=2, no
// smart routing) are split by replica set: every entry is coordinated at
// its replicas (W=2 waits for both), none at the node addressed unless it
// is one, and MGET answers every key, in order.
func TestClusterMultiKey(t *testing.T) {
	nodes := startCluster(t, 4, 2, storage.PersistenceNone)
	ctx := t.Context()
	c1, c4 := dialNode(t, nodes[0], ""), dialNode(t, nodes[3], "")
	var entries []client.Entry
	var keys []string
	for i := range 40 {
		k := fmt.Sprintf("mk%d", i)
		entries = append(entries, client.Entry{Key: k, Value: []byte("v" + k)})
		keys = append(keys, k)
	}
	_, errs, err := c1.MPut(ctx, entries, client.WithW(2))
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		if e != nil {
			t.Fatalf("MPUT entry %d: %v", i, e)
		}
	}
	// W=2 of N=2: both replicas hold each key when MPUT answers.
	for _, k := range keys {
		own := ownersOf(nodes[0], k)
		for _, n := range nodes {
			if _, found := localObject(t, n, k); found != slices.Contains(own, n.ID()) {
				t.Fatalf("key %s on node %v: %v; owners %v", k, n.ID(), found, own)
			}
		}
	}
	items, errs, err := c4.MGet(ctx, slices.Insert(slices.Clone(keys), 5, "missing"))
	if err != nil {
		t.Fatal(err)
	}
	for i, it := range items {
		switch {
		case i == 5:
			if !errors.Is(errs[i], client.ErrNotFound) {
				t.Fatalf("MGET missing key: %v, %v", it, errs[i])
			}
		default:
			k := keys[i-min(i/6, 1)]
			if errs[i] != nil || len(it.Values) != 1 || string(it.Values[0]) != "v"+k {
				t.Fatalf("MGET[%d] (%s) = %+v, %v", i, k, it, errs[i])
			}
		}
	}
	var forwarded uint64
	for _, n := range nodes {
		forwarded += n.ClusterStats().Forwarded
	}
	if forwarded == 0 {
		t.Fatal("nothing was forwarded: the test did not split")
	}
}

// fetchesServed is how many FETCH requests n answered.
func fetchesServed(n *Node) float64 {
	var total float64
	for _, c := range n.metrics.requests[netproto.OpFetch] {
		var m dto.Metric
		if c != nil && c.Write(&m) == nil {
			total += m.GetCounter().GetValue()
		}
	}
	return total
}

// TestFillWindowReadsLocalFirst: right after a cluster forms, its nodes
// are in rebalancing's fill window (a local miss also asks another owner);
// a GET of a key the node holds is answered locally, with no fetch.
func TestFillWindowReadsLocalFirst(t *testing.T) {
	nodes := startCluster(t, 3, 3, storage.PersistenceNone, func(cfg *Config) {
		cfg.Cluster.FillWindow = time.Hour
	})
	// Node 3 joined last: it became an owner of the partitions it holds.
	c3 := dialNode(t, nodes[2], "")
	ctx := t.Context()
	if _, err := c3.Put(ctx, "here", []byte("v"), client.WithWAll()); err != nil {
		t.Fatal(err)
	}
	before := fetchesServed(nodes[0]) + fetchesServed(nodes[1])
	for range 50 {
		if it, err := c3.Get(ctx, "here"); err != nil || string(it.Values[0]) != "v" {
			t.Fatalf("GET = %+v, %v", it, err)
		}
	}
	if after := fetchesServed(nodes[0]) + fetchesServed(nodes[1]); after != before {
		t.Fatalf("50 GETs of a key held locally made %v fetches", after-before)
	}
	// A key only the other nodes hold (written there directly) is still
	// found, by a fetch.
	obj, _ := localObject(t, nodes[0], "here")
	for _, n := range nodes[:2] {
		if _, err := n.Store().Update([]byte(DefaultNamespace), []byte("elsewhere"), func(vclock.Object, bool) (vclock.Object, error) {
			return obj, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if it, err := c3.Get(ctx, "elsewhere"); err != nil || string(it.Values[0]) != "v" {
		t.Fatalf("GET of a key only nodes 1 and 2 hold = %+v, %v", it, err)
	}
	if after := fetchesServed(nodes[0]) + fetchesServed(nodes[1]); after == before {
		t.Fatal("the miss was answered without a fetch")
	}
}
