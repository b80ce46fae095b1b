package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ecachedb/ecache/client"
	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/storage"
	"github.com/ecachedb/ecache/vclock"
)

// startRESPCluster opens size nodes serving RESP, joined, with N replicas.
func startRESPCluster(t *testing.T, size, replicas int) []*Node {
	t.Helper()
	return startCluster(t, size, replicas, storage.PersistenceNone, func(cfg *Config) {
		cfg.RESPListen = "127.0.0.1:0"
		cfg.RESP.Server.EventLoops = 1
		cfg.RESP.Server.Workers = 4
	})
}

// holds reports whether n's own store holds a live (ns, key).
func holds(t *testing.T, n *Node, ns, key string) bool {
	t.Helper()
	var o vclock.Object
	found, err := n.Store().Get([]byte(ns), []byte(key), &o)
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestRedisCluster drives Redis commands through nodes that replicate
// none, some or all of the keys (4 nodes, N=2): every command answers as
// on a single node, the data lands on the keys' replicas only, and the
// replicas converge.
func TestRedisCluster(t *testing.T) {
	nodes := startRESPCluster(t, 4, 2)
	ctx := t.Context()
	r1, r4 := newRedis(t, nodes[0], 2, ""), newRedis(t, nodes[3], 3, "")
	owners := func(key string) []vclock.NodeID {
		return nodes[0].Membership().Ring().Owners(storage.PartitionOf(nil, []byte(key), 64))
	}

	const keys = 40
	var remote int
	for i := range keys {
		k := fmt.Sprintf("k%d", i)
		if !slices.Contains(owners(k), nodes[0].ID()) {
			remote++
		}
		check(t, "SET "+k, must[string](t, "SET")(r1.Set(ctx, k, "v"+k, 0).Result()), nil, "OK")
	}
	if remote == 0 {
		t.Fatal("no key is owned away from node 1: the test would not forward")
	}
	for i := range keys {
		k := fmt.Sprintf("k%d", i)
		v, err := r4.Get(ctx, k).Result()
		check(t, "GET "+k+" via node 4", v, err, "v"+k)
	}
	// Every key reaches both its replicas and no other node.
	eventually(t, 10*time.Second, "every key on exactly its replicas", func() bool {
		for i := range keys {
			k := fmt.Sprintf("k%d", i)
			own := owners(k)
			for _, n := range nodes {
				if holds(t, n, DefaultNamespace, k) != slices.Contains(own, n.ID()) {
					return false
				}
			}
		}
		return true
	})

	// Counters and sets keep their Redis types across nodes.
	for i := range 3 {
		c := []*redis.Client{r1, r4, r1}[i]
		v, err := c.Incr(ctx, "hits").Result()
		check(t, "INCR hits", v, err, int64(i+1))
	}
	check(t, "SADD", must[int64](t, "SADD")(r1.SAdd(ctx, "s", "a", "b").Result()), nil, 2)
	members, err := r4.SMembers(ctx, "s").Result()
	slices.Sort(members)
	if err != nil || !slices.Equal(members, []string{"a", "b"}) {
		t.Fatalf("SMEMBERS via node 4 = %v, %v", members, err)
	}
	wantErr(t, "GET of a set via node 4", r4.Get(ctx, "s").Err(), errWrongType)

	// Multi-key commands split by replica set and combine as Redis does.
	var pairs []any
	var mkeys []string
	for i := range 20 {
		k := fmt.Sprintf("m%d", i)
		pairs = append(pairs, k, "w"+k)
		mkeys = append(mkeys, k)
	}
	check(t, "MSET", must[string](t, "MSET")(r1.MSet(ctx, pairs...).Result()), nil, "OK")
	for _, c := range []*redis.Client{r1, r4} {
		got, err := c.MGet(ctx, append(slices.Insert(slices.Clone(mkeys), 7, "missing"), "hits")...).Result()
		if err != nil || len(got) != 22 {
			t.Fatalf("MGET = %v, %v", got, err)
		}
		for i, v := range got {
			want := any(nil)
			switch {
			case i < 7:
				want = "w" + mkeys[i]
			case i > 7 && i < 21:
				want = "w" + mkeys[i-1]
			case i == 21:
				want = "3"
			}
			if v != want {
				t.Fatalf("MGET[%d] = %v, want %v", i, v, want)
			}
		}
	}
	check(t, "EXISTS", must[int64](t, "EXISTS")(r4.Exists(ctx, append(mkeys, "missing", "s")...).Result()), nil, 21)
	check(t, "DEL", must[int64](t, "DEL")(r4.Del(ctx, append(mkeys, "missing")...).Result()), nil, 20)
	check(t, "EXISTS after DEL", must[int64](t, "EXISTS")(r1.Exists(ctx, mkeys...).Result()), nil, 0)

	var forwarded uint64
	for _, n := range nodes {
		forwarded += n.ClusterStats().Forwarded
	}
	if forwarded == 0 {
		t.Fatal("no command was forwarded")
	}
}

// TestRedisForwardRefused: OpRESP is a peer operation; a client without
// the cluster key is refused.
func TestRedisForwardRefused(t *testing.T) {
	nodes := startRESPCluster(t, 1, 1)
	c := dialNode(t, nodes[0], "")
	req := netproto.RESPRequest{Proto: 2, Args: [][]byte{[]byte("SET"), []byte("k"), []byte("v")}}
	var res netproto.RESPResponse
	err := c.Do(context.Background(), netproto.OpRESP, &req, &res)
	var se *client.ServerError
	if !errors.As(err, &se) || se.Code != netproto.CodeUnauthenticated {
		t.Fatalf("OpRESP from a client: %v, want unauthenticated", err)
	}
	if holds(t, nodes[0], DefaultNamespace, "k") {
		t.Fatal("the refused command was applied")
	}
}

// TestRedisClusterFailover: when a key's primary is down, the next
// replica runs its commands.
func TestRedisClusterFailover(t *testing.T) {
	nodes := startRESPCluster(t, 3, 2)
	ctx := t.Context()
	var key string
	for i := 0; key == ""; i++ {
		k := fmt.Sprintf("f%d", i)
		if nodes[0].Membership().Ring().Owners(storage.PartitionOf(nil, []byte(k), 64))[0] == nodes[2].ID() {
			key = k
		}
	}
	r1 := newRedis(t, nodes[0], 2, "")
	check(t, "SET with the primary up", must[string](t, "SET")(r1.Set(ctx, key, "a", 0).Result()), nil, "OK")
	closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := nodes[2].Close(closeCtx); err != nil {
		t.Fatal(err)
	}
	check(t, "SET with the primary down", must[string](t, "SET")(r1.Set(ctx, key, "b", 0).Result()), nil, "OK")
	v, err := newRedis(t, nodes[1], 3, "").Get(ctx, key).Result()
	check(t, "GET via node 2", v, err, "b")
}

// TestRedisClusterLargeSet: a set grown one SADD at a time past the size
// at which the store keeps it decoded replicates to every replica (by
// reference, coalesced per burst) and converges there.
func TestRedisClusterLargeSet(t *testing.T) {
	nodes := startRESPCluster(t, 3, 3)
	ctx := t.Context()
	r1 := newRedis(t, nodes[0], 2, "")
	const members = 200 // ~5 KiB encoded: past the 4 KiB from which the store keeps a set decoded
	pipe := r1.Pipeline()
	for i := range members {
		pipe.SAdd(ctx, "big", fmt.Sprintf("element:%06d", i))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	check(t, "SCARD", must[int64](t, "SCARD")(r1.SCard(ctx, "big").Result()), nil, members)
	eventually(t, 15*time.Second, "every replica holds every member", func() bool {
		for _, n := range nodes {
			var o vclock.Object
			it, _, err := n.read([]byte("sets"), []byte("big"), false, &o)
			if err != nil || len(it.Members) != members {
				return false
			}
		}
		return true
	})
}
