package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ecachedb/ecache/client"
	"github.com/ecachedb/ecache/gossip"
	"github.com/ecachedb/ecache/node"
	"github.com/ecachedb/ecache/storage"
)

// openLagNode opens an in-process node on loopback; with join (or first)
// it is a cluster member with N=replicas.
func openLagNode(t *testing.T, cluster bool, replicas int, join string) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.Storage.Persistence = storage.PersistenceNone
	cfg.Storage.MemoryLimit = 16 << 20
	if cluster {
		g := gossip.DefaultConfig()
		g.BindAddr = "127.0.0.1:0"
		g.Partitions = 64
		g.Tuning = gossip.Tuning{ProbeInterval: 200 * time.Millisecond, ProbeTimeout: 100 * time.Millisecond,
			GossipInterval: 20 * time.Millisecond, PushPullInterval: time.Second, TCPTimeout: time.Second, SuspicionMult: 3}
		if join != "" {
			g.Join = []string{join}
		}
		cfg.Cluster = &node.ClusterConfig{Gossip: g, Replicas: replicas, ClusterKey: "lag-test"}
	}
	n, err := node.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Close(ctx)
	})
	return n
}

// TestRunLagCluster measures lag against an in-process cluster of three
// (N=2, so each key's replicas come from the ring), discovering the
// replicas from the target.
func TestRunLagCluster(t *testing.T) {
	n1 := openLagNode(t, true, 2, "")
	nodes := []*node.Node{n1, openLagNode(t, true, 2, n1.Membership().Addr()), openLagNode(t, true, 2, n1.Membership().Addr())}
	deadline := time.Now().Add(15 * time.Second)
	for _, n := range nodes {
		for n.Membership().Ring().Len() != 3 {
			if time.Now().After(deadline) {
				t.Fatal("the cluster did not form")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := RunLag(ctx, LagOptions{Target: "ecache://" + n1.Addr(), Samples: 30, ValueSize: 10, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Samples != 30 || rep.Timeouts != 0 || rep.Errors != 0 {
		t.Fatalf("report %+v", rep)
	}
	if len(rep.Replicas) != 3 {
		t.Fatalf("polled %v, want all three nodes (30 keys, N=2)", rep.Replicas)
	}
	if rep.Lag.Max < rep.Lag.P50 || rep.Lag.P50 < 1 || rep.Write.P50 < 1 {
		t.Fatalf("lag %+v write %+v", rep.Lag, rep.Write)
	}
	var buf bytes.Buffer
	if err := rep.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"samples 30, timeouts 0", "lag (write start to last replica)", "p99"} {
		if !strings.Contains(buf.String(), want) {
			t.Fatalf("text lacks %q:\n%s", want, buf.String())
		}
	}
	// W=all through the options: every replica holds the key when the
	// write returns.
	rep, err = RunLag(ctx, LagOptions{Target: "ecache://" + n1.Addr(), Samples: 5, Seed: 8, Options: []client.Option{client.WithWAll()}})
	if err != nil || rep.Samples != 5 {
		t.Fatalf("W=all: %+v, %v", rep, err)
	}
}

// TestRunLagTimeoutsAndErrors: a replica that never gets the writes
// times out; bad targets and a node outside any cluster are clear errors.
func TestRunLagTimeoutsAndErrors(t *testing.T) {
	a, b := openLagNode(t, false, 0, ""), openLagNode(t, false, 0, "")
	ctx := context.Background()
	// a is its own replica (lag = the write); b never sees a's writes.
	rep, err := RunLag(ctx, LagOptions{Target: "ecache://" + a.Addr(), Replicas: []string{a.Addr()}, Samples: 3, PollInterval: time.Millisecond})
	if err != nil || rep.Samples != 3 {
		t.Fatalf("own replica: %+v, %v", rep, err)
	}
	rep, err = RunLag(ctx, LagOptions{Target: "ecache://" + a.Addr(), Replicas: []string{a.Addr(), b.Addr()}, Samples: 2, Timeout: 50 * time.Millisecond})
	if err != nil || rep.Timeouts != 2 || rep.Samples != 0 {
		t.Fatalf("unreplicated: %+v, %v", rep, err)
	}
	if _, err := RunLag(ctx, LagOptions{Target: "ecache://" + a.Addr(), Samples: 1}); err == nil || !strings.Contains(err.Error(), "not in a cluster") {
		t.Fatalf("discovery on a single node: %v", err)
	}
	for _, bad := range []string{"redis://" + a.Addr(), "ecache://nohost", "::"} {
		if _, err := RunLag(ctx, LagOptions{Target: bad}); err == nil {
			t.Errorf("target %q accepted", bad)
		}
	}
	if _, err := RunLag(ctx, LagOptions{Target: "ecache://" + a.Addr(), Samples: -1}); err == nil {
		t.Error("negative samples accepted")
	}
}
