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

// Riak's history as tests: the failures that shaped Riak's causality
// handling, replayed against real nodes over the wire.

// TestRiakSiblingExplosion: two clients, each on its own coordinator,
// interleave writes to one key of a siblings namespace, always writing
// with the context they last read (from a GET or from their previous
// PUT). With per-node version vectors and no dots, every such write looks
// concurrent with everything and siblings pile up without bound; with
// dotted version vectors a write supersedes exactly what its context
// covers, so there are never more siblings than truly concurrent writers.
func TestRiakSiblingExplosion(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Nodes: 3, Replicas: 3, Seed: 101, Persistence: storage.PersistenceNone})
	ctx := t.Context()
	const key, sns = "exploding", "sib"
	clients := []*client.Client{c.Client(0), c.Client(1)}
	cc := make([][]byte, 2) // what each client last read
	read := func(w int) {
		it, err := clients[w].Get(ctx, key, client.WithNamespace(sns))
		switch {
		case err == nil:
			cc[w] = it.Context
		case !errorsIsNotFound(err):
			t.Fatalf("client %d GET: %v", w, err)
		}
	}
	write := func(w, round int) {
		next, err := clients[w].Put(ctx, key, []byte(fmt.Sprintf("c%d-r%d", w, round)),
			client.WithNamespace(sns), client.WithCausalContext(cc[w]), client.WithW(3))
		if err != nil {
			t.Fatalf("client %d PUT round %d: %v", w, round, err)
		}
		cc[w] = next
	}
	check := func(round int) {
		for n := range 3 {
			o, _ := c.Local(n, sns, key)
			if len(o.Siblings) > 2 || len(o.Clock) > 2 {
				t.Fatalf("round %d: node %d holds %d siblings under clock %v; two writers can make at most 2 (and 2 actors)", round, n, len(o.Siblings), o.Clock)
			}
		}
	}
	const rounds = 25
	for r := range rounds {
		switch r % 3 {
		case 0: // both read, then both write: the writes are concurrent
			read(0)
			read(1)
			write(0, r)
			write(1, r)
		case 1: // each writes with the context of its own last write
			write(0, r)
			write(1, r)
		case 2: // one reads everything and resolves, the other writes stale
			read(0)
			write(0, r)
			write(1, r)
		}
		check(r)
	}
	// A read-then-write resolves to one value.
	read(1)
	write(1, rounds)
	it, err := clients[0].Get(ctx, key, client.WithNamespace(sns), client.WithR(3))
	if err != nil || len(it.Values) != 1 || string(it.Values[0]) != fmt.Sprintf("c1-r%d", rounds) {
		t.Fatalf("after a resolving write: %+v, %v", it, err)
	}
}

func errorsIsNotFound(err error) bool { return err != nil && isErr(err, client.ErrNotFound) }

// TestRiakKV679Tombstone is Riak's kv679 "lingering tombstone / reused
// dot" data loss: a key written several times through one primary, deleted
// while another primary is down, the tombstone collected on the primaries
// that held it; the down primary returns with the old value, and a new
// write through the first primary must win everywhere. Were the first
// primary to restart its counter for the key at 1 (it no longer holds the
// key), the returning primary would take the new write for one it had
// already seen, and the stale value (or the tombstone) would resurface.
func TestRiakKV679Tombstone(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Nodes: 3, Replicas: 3, Seed: 679, Persistence: storage.PersistenceSync})
	ctx := t.Context()
	const key = "kv679"
	c0 := c.Client(0)
	for v := range 3 {
		if _, err := c0.Put(ctx, key, []byte(fmt.Sprintf("v%d", v)), client.WithW(3)); err != nil {
			t.Fatal(err)
		}
	}
	c.Stop(2)
	clustertest.Eventually(t, 20*time.Second, "node 2 out of the rings", func() bool {
		return c.Nodes[0].Membership().Ring().Len() == 2 && c.Nodes[1].Membership().Ring().Len() == 2
	})
	if _, err := c0.Del(ctx, key, client.WithW(2)); err != nil {
		t.Fatal(err)
	}
	// Collect the tombstone on the primaries that hold it.
	for _, n := range []int{0, 1} {
		st := c.Nodes[n].Store()
		p := storage.PartitionOf([]byte(ns), []byte(key), st.Config().Partitions)
		if k, err := st.CollectTombstones(p, func(*storage.Entry) bool { return true }); err != nil || k != 1 {
			t.Fatalf("node %d collected %d tombstones, %v", n, k, err)
		}
		if _, found := c.Local(n, ns, key); found {
			t.Fatalf("node %d still holds the key", n)
		}
	}
	// Node 2 returns with its data (the old value) and identity.
	c.Restart(2)
	c.WaitRings()
	if _, err := c0.Put(ctx, key, []byte("new"), client.WithW(3)); err != nil {
		t.Fatal(err)
	}
	assertOnlyValue(t, c, key, "new")
}

// assertOnlyValue checks, after the replicas converge, that an R=all GET
// through every node and every replica's own copy hold exactly want.
func assertOnlyValue(t *testing.T, c *clustertest.Cluster, key, want string) {
	t.Helper()
	ctx := t.Context()
	for n := range c.Nodes {
		clustertest.Eventually(t, 20*time.Second, fmt.Sprintf("node %d holds only %q", n, want), func() bool {
			return value(c, n, ns, key) == want
		})
	}
	for n := range c.Nodes {
		it, err := c.Client(n).Get(ctx, key, client.WithR(len(c.Nodes)))
		if err != nil || len(it.Values) != 1 || string(it.Values[0]) != want {
			t.Fatalf("R=all GET via node %d = %+v, %v; want only %q", n, it, err, want)
		}
		o, _ := c.Local(n, ns, key)
		if len(o.Siblings) != 1 || string(o.Siblings[0].Value) != want {
			t.Fatalf("node %d holds %+v", n, o)
		}
	}
}

// TestRiakKV679Eviction is kv679's memory-only variant: a node with
// persistence none evicts a key from its small memory tier, then
// coordinates a new write of it. Its new dot must not be one the other
// replicas have seen already (counter restarted at 1), or they would drop
// the new write as old news and keep the stale value.
func TestRiakKV679Eviction(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Nodes: 3, Replicas: 3, Seed: 680, Persistence: storage.PersistenceNone,
		Configure: func(i int, cfg *node.Config) {
			if i == 0 {
				cfg.Storage.MemoryLimit = 256 << 10
				cfg.Storage.MemoryShards = 1
			}
		}})
	ctx := t.Context()
	const key = "evicted"
	c0 := c.Client(0)
	for v := range 3 {
		if _, err := c0.Put(ctx, key, []byte(fmt.Sprintf("v%d", v)), client.WithW(3)); err != nil {
			t.Fatal(err)
		}
	}
	old, _ := c.Local(1, ns, key)
	// Fill node 0's memory (256 KiB) eight times over so that it evicts
	// the key. Each filler key is written twice, so that S3-FIFO moves it
	// to its main queue, where the key ages out; the key itself is not
	// looked at meanwhile, since a read would keep it hot.
	filler := make([]byte, 4<<10)
	for i := range 500 {
		for range 2 {
			if _, err := c0.Put(ctx, fmt.Sprintf("fill%d", i), filler); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, found := c.Local(0, ns, key); found {
		t.Fatal("node 0 did not evict the key")
	}
	if _, err := c0.Put(ctx, key, []byte("new"), client.WithW(3)); err != nil {
		t.Fatal(err)
	}
	o, _ := c.Local(1, ns, key)
	d := o.Siblings[0].Dot
	if d.Node != c.Nodes[0].ID() || old.Clock.Covers(d) {
		t.Fatalf("node 0's new dot %v was seen already by node 1 (%v)", d, old.Clock)
	}
	assertOnlyValue(t, c, key, "new")
}

// TestRiakForwardedWriteOneDot: a write forwarded by a non-owner is
// coordinated once, over a network that duplicates replication messages,
// delays everything and loses the forwarded request's answers. Its owners
// end with one dot, of one owner, whatever the retries.
func TestRiakForwardedWriteOneDot(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Nodes: 3, Replicas: 2, Seed: 4242, Persistence: storage.PersistenceNone})
	ctx := t.Context()
	for a := range 3 {
		for b := range 3 {
			if a != b {
				c.Net.SetLink(a, b, clustertest.Faults{Duplicate: 1, Delay: 5 * time.Millisecond, Path: clustertest.PathData,
					Ops: []netproto.Opcode{netproto.OpReplicate, netproto.OpFetch}})
			}
		}
	}
	c0 := c.Client(0)
	const keys = 10
	var ks []string
	for i := 0; len(ks) < keys; i++ {
		k := fmt.Sprintf("one%d", i)
		if !slices.Contains(c.Owners(0, ns, k), 0) {
			ks = append(ks, k)
		}
	}
	for _, k := range ks {
		if _, err := c0.Put(ctx, k, []byte("once"), client.WithW(2)); err != nil {
			t.Fatal(err)
		}
	}
	// The answers of the first owner to forwarded PUTs get lost: node 0
	// cannot know whether the write happened.
	lost := ks[0] + "-lost"
	lostOwners := c.Owners(0, ns, lost)
	for slices.Contains(lostOwners, 0) {
		lost += "x"
		lostOwners = c.Owners(0, ns, lost)
	}
	c.Net.SetLink(lostOwners[0], 0, clustertest.Faults{Drop: 1, Path: clustertest.PathData, Ops: []netproto.Opcode{netproto.OpPut}})
	// Node 0 must not hand the write to the second owner: the client hears
	// that the outcome is unknown, and the write, applied once by the
	// first owner, still has one dot.
	if _, err := c0.Put(ctx, lost, []byte("once"), client.WithW(2)); !errors.Is(err, client.ErrBusy) || !strings.Contains(err.Error(), "outcome unknown") {
		t.Fatalf("PUT whose answers are lost = %v, want ErrBusy: outcome unknown", err)
	}
	for _, k := range append(ks, lost) {
		owners := c.Owners(0, ns, k)
		for _, o := range owners {
			clustertest.Eventually(t, 10*time.Second, fmt.Sprintf("owner %d holds %s", o, k), func() bool {
				return value(c, o, ns, k) == "once"
			})
			obj, _ := c.Local(o, ns, k)
			if len(obj.Clock) != 1 || len(obj.Siblings) != 1 || obj.Siblings[0].Dot != (vclock.Dot{Node: obj.Clock[0].Node, Counter: obj.Clock[0].Counter}) {
				t.Fatalf("owner %d of %s holds clock %v, siblings %+v: want one dot", o, k, obj.Clock, obj.Siblings)
			}
			if i := c.Index(obj.Clock[0].Node); !slices.Contains(owners, i) {
				t.Fatalf("%s's dot was issued by node %d, not an owner", k, i)
			}
		}
	}
	if st := c.Nodes[0].ClusterStats(); st.Forwarded < keys {
		t.Fatalf("node 0 forwarded %d requests, want %d", st.Forwarded, keys)
	}
}

func isErr(err, target error) bool { return errors.Is(err, target) }
