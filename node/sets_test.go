package node

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/storage"
)

// TestRedisLargeSet grows one set past the store's decoded-set threshold
// the way redis-benchmark does (one member per SADD, some repeated), with
// SREMs and reads in between, and checks every reply against a model; then,
// on a persistent node, that a restart keeps every member.
func TestRedisLargeSet(t *testing.T) {
	for _, p := range []storage.Persistence{storage.PersistenceNone, storage.PersistenceAsync} {
		t.Run(p.String(), func(t *testing.T) {
			ctx := context.Background()
			n := openRESP(t, p, nil)
			c := newRedis(t, n, 3, "")
			model := map[string]bool{}
			for i := range 1500 {
				m := fmt.Sprintf("element:%06d", (i*7919)%1000) // repeats after 1000
				got, err := c.SAdd(ctx, "myset", m).Result()
				check(t, "SADD "+m, got, err, int64(boolInt(!model[m])))
				model[m] = true
				if i%10 == 5 {
					r := fmt.Sprintf("element:%06d", (i*31)%1000)
					got, err := c.SRem(ctx, "myset", r, "absent").Result()
					check(t, "SREM "+r, got, err, int64(boolInt(model[r])))
					delete(model, r)
				}
				if i%250 == 0 {
					checkSet(t, c, model)
				}
			}
			if hot, _ := n.Store().HotSets(); hot != 1 {
				t.Fatalf("%d sets kept decoded, want 1 (the fast path was not taken)", hot)
			}
			checkSet(t, c, model)
			// The binary protocol writes the same set.
			s := &netproto.Session{}
			var st netproto.StatusResponse
			if _, e := serveFrame(t, n, s, netproto.OpSAdd, &netproto.SetRequest{Namespace: b("sets"), Key: b("myset"), Members: [][]byte{b("binary"), b("element:000001")}}, &st); e != nil || st.Status != netproto.CodeOK {
				t.Fatalf("binary SADD: %+v %+v", st, e)
			}
			model["binary"], model["element:000001"] = true, true
			var sm netproto.SMembersResponse
			if _, e := serveFrame(t, n, s, netproto.OpSMembers, &netproto.KeyRequest{Namespace: b("sets"), Key: b("myset")}, &sm); e != nil || len(sm.Members) != len(model) {
				t.Fatalf("binary SMEMBERS: %d members, want %d", len(sm.Members), len(model))
			}
			if p == storage.PersistenceNone {
				// A SET replaces the set, through the generic write path,
				// which takes the set back from the decoded table.
				check(t, "SET", must[string](t, "SET")(c.Set(ctx, "myset", "x", 0).Result()), nil, "OK")
				check(t, "GET", must[string](t, "GET")(c.Get(ctx, "myset").Result()), nil, "x")
				if hot, _ := n.Store().HotSets(); hot != 0 {
					t.Fatalf("%d sets kept decoded after SET, want 0", hot)
				}
				wantErr(t, "SMEMBERS of a string", c.SMembers(ctx, "myset").Err(), "WRONGTYPE Operation against a key holding the wrong kind of value")
				return
			}
			cfg := n.cfg
			if err := n.Close(ctx); err != nil {
				t.Fatal(err)
			}
			n = openNode(t, cfg)
			checkSet(t, newRedis(t, n, 3, ""), model)
		})
	}
}

// checkSet compares SCARD, SMEMBERS and SISMEMBER of myset with model.
func checkSet(t *testing.T, c *redis.Client, model map[string]bool) {
	t.Helper()
	ctx := context.Background()
	want := make([]string, 0, len(model))
	for m := range model {
		want = append(want, m)
	}
	slices.Sort(want)
	card, err := c.SCard(ctx, "myset").Result()
	check(t, "SCARD", card, err, int64(len(want)))
	got, err := c.SMembers(ctx, "myset").Result()
	slices.Sort(got)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("SMEMBERS: %d members, err %v; want %d", len(got), err, len(want))
	}
	for _, m := range []string{want[0], want[len(want)-1], "absent"} {
		is, err := c.SIsMember(ctx, "myset", m).Result()
		check(t, "SISMEMBER "+m, is, err, model[m])
	}
}
