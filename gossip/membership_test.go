package gossip_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ecachedb/ecache/gossip"
	"github.com/ecachedb/ecache/gossip/ring"
	"github.com/ecachedb/ecache/internal/testutil"
	"github.com/ecachedb/ecache/vclock"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

// tlogHandler sends log records to t.Log until the test's cleanups run;
// memberlist may still log from goroutines that are finishing.
type tlogHandler struct {
	mu   *sync.Mutex
	t    testing.TB
	done *bool
	attr []slog.Attr
}

func (h tlogHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h tlogHandler) WithGroup(string) slog.Handler            { return h }
func (h tlogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h.attr = append(append([]slog.Attr(nil), h.attr...), as...)
	return h
}
func (h tlogHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	for _, a := range h.attr {
		fmt.Fprintf(&b, " %s", a)
	}
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s", a); return true })
	h.mu.Lock()
	defer h.mu.Unlock()
	if !*h.done {
		h.t.Log(b.String())
	}
	return nil
}

func testLogger(t testing.TB, name string) *slog.Logger {
	h := tlogHandler{mu: new(sync.Mutex), t: t, done: new(bool)}
	t.Cleanup(func() { h.mu.Lock(); *h.done = true; h.mu.Unlock() })
	return slog.New(h).With("at", name)
}

// fast are failure-detector timers short enough for tests.
// Not shorter: under the race detector on a loaded machine, tighter
// probes make the detector suspect live nodes.
var fast = gossip.Tuning{
	ProbeInterval:    200 * time.Millisecond,
	ProbeTimeout:     100 * time.Millisecond,
	GossipInterval:   20 * time.Millisecond,
	PushPullInterval: time.Second,
	TCPTimeout:       time.Second,
	SuspicionMult:    3,
}

// config returns a config for a node on a free loopback port (memberlist
// picks one for port 0, retrying if UDP on it is taken).
func config(t testing.TB, name string, join ...string) gossip.Config {
	cfg := gossip.DefaultConfig()
	cfg.NodeID = vclock.NewNodeID()
	cfg.BindAddr = "127.0.0.1:0"
	cfg.Join = join
	cfg.Tuning = fast
	cfg.Logger = testLogger(t, name)
	cfg.Meta = gossip.Meta{ClientAddr: "127.0.0.1:7000", PeerAddr: "127.0.0.1:7001", AdminAddr: "127.0.0.1:7002", ProtocolVersion: 1}
	return cfg
}

func open(t testing.TB, cfg gossip.Config) *gossip.Membership {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := gossip.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// cluster opens n nodes, all joining the first.
func cluster(t testing.TB, n int) []*gossip.Membership {
	t.Helper()
	ms := []*gossip.Membership{open(t, config(t, "n0"))}
	for i := 1; i < n; i++ {
		ms = append(ms, open(t, config(t, fmt.Sprintf("n%d", i), ms[0].Addr())))
	}
	return ms
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

func ids(ms ...*gossip.Membership) []vclock.NodeID {
	var out []vclock.NodeID
	for _, m := range ms {
		out = append(out, m.LocalID())
	}
	return out
}

// ringIs reports whether m's ring holds exactly the given nodes.
func ringIs(m *gossip.Membership, want []vclock.NodeID) bool {
	r := m.Ring()
	if r.Len() != len(want) {
		return false
	}
	for _, id := range want {
		if !r.Has(id) {
			return false
		}
	}
	return true
}

func stateOf(m *gossip.Membership, id vclock.NodeID) gossip.State {
	for _, mem := range m.Members() {
		if mem.ID == id {
			return mem.State
		}
	}
	return 0
}

// checkMembers reports what is wrong with m's view of a cluster of
// want nodes, all alive.
func checkMembers(m *gossip.Membership, want int) error {
	members := m.Members()
	if len(members) != want {
		return fmt.Errorf("%d members, want %d", len(members), want)
	}
	locals := 0
	for _, mem := range members {
		if mem.State != gossip.StateAlive || mem.Partitions != gossip.DefaultPartitions ||
			mem.Meta.ClientAddr != "127.0.0.1:7000" || mem.Meta.ProtocolVersion != 1 ||
			mem.Name != "ecache-"+mem.ID.String() || mem.Addr == "" {
			return fmt.Errorf("bad member %+v", mem)
		}
		if mem.Local {
			locals++
			if mem.ID != m.LocalID() || mem.Addr != m.Addr() {
				return fmt.Errorf("local member %+v, addr %s", mem, m.Addr())
			}
		}
	}
	if locals != 1 {
		return fmt.Errorf("%d local members", locals)
	}
	return nil
}

func TestThreeNodesConverge(t *testing.T) {
	ms := cluster(t, 3)
	all := ids(ms...)
	// Snapshot the three rings at once: under load the failure detector
	// may briefly suspect and drop a node, so each check is polled.
	var rings []*ring.Ring
	waitFor(t, 10*time.Second, "three nodes in every ring", func() bool {
		rings = nil
		for _, m := range ms {
			if !ringIs(m, all) {
				return false
			}
			rings = append(rings, m.Ring())
		}
		return true
	})
	for i, r := range rings {
		if !r.Equal(rings[0]) {
			t.Fatalf("node %d's ring differs", i)
		}
		for p := range uint32(r.Partitions()) {
			if a, b := r.Owners(p), rings[0].Owners(p); !slices.Equal(a, b) || len(a) != 3 {
				t.Fatalf("node %d partition %d: owners %v vs %v", i, p, a, b)
			}
		}
	}
	for i, m := range ms {
		var err error
		deadline := time.Now().Add(10 * time.Second)
		for err = checkMembers(m, 3); err != nil && time.Now().Before(deadline); err = checkMembers(m, 3) {
			<-time.After(10 * time.Millisecond) // polling interval
		}
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
}

func TestSubscribeAndSetMeta(t *testing.T) {
	ms := cluster(t, 2)
	changes, cancel := ms[0].Subscribe()
	defer cancel()
	waitFor(t, 10*time.Second, "two nodes", func() bool { return ringIs(ms[0], ids(ms...)) })

	// A new node: a notification arrives, and by then the ring has it.
	n := open(t, config(t, "n2", ms[1].Addr()))
	deadline := time.After(10 * time.Second)
	for !ms[0].Ring().Has(n.LocalID()) {
		select {
		case <-changes:
		case <-deadline:
			t.Fatal("no notification of the new node")
		}
	}

	ctx, cancelCtx := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelCtx()
	if err := n.SetMeta(ctx, gossip.Meta{ClientAddr: "127.0.0.1:9999", ProtocolVersion: 2}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the new metadata", func() bool {
		for _, mem := range ms[0].Members() {
			if mem.ID == n.LocalID() {
				return mem.Meta.ClientAddr == "127.0.0.1:9999" && mem.Meta.ProtocolVersion == 2
			}
		}
		return false
	})
}

func TestLeaveRemovesNode(t *testing.T) {
	ms := cluster(t, 3)
	all := ids(ms...)
	waitFor(t, 10*time.Second, "three nodes", func() bool { return ringIs(ms[0], all) && ringIs(ms[1], all) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ms[2].Leave(ctx); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	if err := ms[2].Close(); err != nil {
		t.Fatalf("Close after Leave: %v", err)
	}
	waitFor(t, 10*time.Second, "the leaver out of the rings", func() bool {
		return ringIs(ms[0], all[:2]) && ringIs(ms[1], all[:2])
	})
	// The leaving announcement takes it out of the rings first (as
	// PrepareLeave does); the departure itself follows.
	waitFor(t, 10*time.Second, "the leaver left", func() bool {
		return stateOf(ms[0], all[2]) != gossip.StateAlive && stateOf(ms[1], all[2]) != gossip.StateAlive
	})
	for i, m := range ms[:2] {
		if s := stateOf(m, all[2]); s != gossip.StateLeft {
			t.Errorf("node %d sees the leaver as %v, want left", i, s)
		}
	}
}

func TestStoppedNodeDeclaredDead(t *testing.T) {
	ms := cluster(t, 3)
	all := ids(ms...)
	waitFor(t, 10*time.Second, "three nodes", func() bool { return ringIs(ms[0], all) && ringIs(ms[1], all) })
	if err := ms[2].Close(); err != nil {
		t.Fatal(err)
	}
	if err := ms[2].Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the stopped node out of the rings", func() bool {
		return ringIs(ms[0], all[:2]) && ringIs(ms[1], all[:2])
	})
	for i, m := range ms[:2] {
		if s := stateOf(m, all[2]); s != gossip.StateDead {
			t.Errorf("node %d sees the stopped node as %v, want dead", i, s)
		}
	}
}

func TestPartitionCountMismatchRefused(t *testing.T) {
	seed := open(t, config(t, "seed"))
	cfg := config(t, "odd", seed.Addr())
	cfg.Partitions = 512
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := gossip.Open(ctx, cfg)
	if err == nil {
		_ = m.Close()
		t.Fatal("a node with 512 partitions joined a 1024-partition cluster")
	}
	if !errors.Is(err, gossip.ErrPartitionCount) || !strings.Contains(err.Error(), "partition count 512 differs from the cluster's 1024") {
		t.Fatalf("error %q", err)
	}
	t.Logf("refused: %v", err)
	if n := len(seed.Members()); n != 1 || seed.Ring().Len() != 1 {
		t.Fatalf("seed has %d members, ring of %d", n, seed.Ring().Len())
	}
}

// TestPartitionCountMismatchSeed: the refusal works the other way round,
// when the seed is the odd one.
func TestPartitionCountMismatchSeed(t *testing.T) {
	cfg := config(t, "odd")
	cfg.Partitions = 512
	seed := open(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := gossip.Open(ctx, config(t, "normal", seed.Addr()))
	if err == nil {
		_ = m.Close()
		t.Fatal("a node with 1024 partitions joined a 512-partition cluster")
	}
	if !errors.Is(err, gossip.ErrPartitionCount) || !strings.Contains(err.Error(), "partition count 1024 differs from the cluster's 512") {
		t.Fatalf("error %q", err)
	}
}

func TestClusterKey(t *testing.T) {
	seedCfg := config(t, "seed")
	seedCfg.ClusterKey = "correct horse battery staple"
	seed := open(t, seedCfg)

	for _, key := range []string{"", "wrong"} {
		cfg := config(t, "intruder", seed.Addr())
		cfg.ClusterKey = key
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		m, err := gossip.Open(ctx, cfg)
		cancel()
		if err == nil {
			_ = m.Close()
			t.Fatalf("a node with key %q joined", key)
		}
		if !errors.Is(err, gossip.ErrJoin) || !strings.Contains(err.Error(), seed.Addr()) {
			t.Fatalf("key %q: error %q", key, err)
		}
		t.Logf("key %q refused: %v", key, err)
	}

	cfg := config(t, "friend", seed.Addr())
	cfg.ClusterKey = seedCfg.ClusterKey
	friend := open(t, cfg)
	all := ids(seed, friend)
	waitFor(t, 10*time.Second, "the keyed node in both rings", func() bool { return ringIs(seed, all) && ringIs(friend, all) })
	if n := len(seed.Members()); n != 2 {
		t.Fatalf("seed has %d members, want 2", n)
	}
}

func TestJoinUnreachable(t *testing.T) {
	// A port nobody listens on: bind one, then release it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := gossip.Open(ctx, config(t, "lonely", addr))
	if err == nil {
		_ = m.Close()
		t.Fatal("joined an unreachable seed")
	}
	if !errors.Is(err, gossip.ErrJoin) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("error %q does not name %s", err, addr)
	}
	t.Logf("refused: %v", err)
}

func TestJoinCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m, err := gossip.Open(ctx, config(t, "canceled", "127.0.0.1:1"))
	if err == nil {
		_ = m.Close()
		t.Fatal("Open succeeded with a canceled context")
	}
	if !errors.Is(err, gossip.ErrJoin) {
		t.Fatalf("error %q", err)
	}
}

func TestCloseEndsSubscriptions(t *testing.T) {
	m := open(t, config(t, "solo"))
	ch, cancel := m.Subscribe()
	ch2, cancel2 := m.Subscribe()
	cancel2()
	cancel2()
	if _, ok := <-ch2; ok {
		t.Fatal("canceled subscription still open")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for range ch { // drains a pending notification, ends when closed
	}
	cancel()
	if ch3, _ := m.Subscribe(); ch3 != nil {
		if _, ok := <-ch3; ok {
			t.Fatal("subscription after Close is open")
		}
	}
	if err := m.Leave(context.Background()); !errors.Is(err, gossip.ErrClosed) {
		t.Fatalf("Leave after Close: %v", err)
	}
	if m.Ring().Len() != 1 || !m.Ring().Has(m.LocalID()) {
		t.Fatalf("solo ring %v", m.Ring())
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		name  string
		edit  func(*gossip.Config)
		field string
	}{
		{"ok", func(*gossip.Config) {}, ""},
		{"no id", func(c *gossip.Config) { c.NodeID = 0 }, "NodeID"},
		{"hostname bind", func(c *gossip.Config) { c.BindAddr = "localhost:7946" }, "BindAddr"},
		{"no port", func(c *gossip.Config) { c.BindAddr = "127.0.0.1" }, "BindAddr"},
		{"advertise port 0", func(c *gossip.Config) { c.AdvertiseAddr = "10.0.0.1:0" }, "AdvertiseAddr"},
		{"bad join", func(c *gossip.Config) { c.Join = []string{"nope"} }, "Join"},
		{"partitions", func(c *gossip.Config) { c.Partitions = 0 }, "Partitions"},
		{"too many partitions", func(c *gossip.Config) { c.Partitions = 1 << 17 }, "Partitions"},
		{"replicas", func(c *gossip.Config) { c.Replicas = 0 }, "Replicas"},
		{"huge meta", func(c *gossip.Config) { c.Meta.ClientAddr = strings.Repeat("x", 600) }, "Meta"},
		{"negative timer", func(c *gossip.Config) { c.Tuning.ProbeInterval = -1 }, "ProbeInterval"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := gossip.DefaultConfig()
			cfg.NodeID = 42
			c.edit(&cfg)
			err := cfg.Validate()
			if c.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, gossip.ErrConfig) || !strings.Contains(err.Error(), c.field) {
				t.Fatalf("error %v does not name %s", err, c.field)
			}
		})
	}
}
