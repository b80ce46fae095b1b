package node

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/ecachedb/ecache/client"
	"github.com/ecachedb/ecache/storage"
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
