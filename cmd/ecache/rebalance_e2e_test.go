package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecachedb/ecache/node"
)

// rebalanceArgs are the flags of a persistent N=2 cluster node: kill -9
// and a restart with the same data directory keep its identity.
func rebalanceArgs(name string, extra ...string) []string {
	return clusterArgs(append([]string{"--persistence", "sync", "--replicas", "2", "--node-name", name,
		"--partitions", "64", "--leave-timeout", "20s"}, extra...)...)
}

// ownerNames returns the names of key's replicas in p's view.
func ownerNames(t *testing.T, p *proc, key string) []string {
	t.Helper()
	info, err := clusterInfo(p)
	if err != nil {
		t.Fatal(err)
	}
	_, owners, err := locateKey(info, "", key)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range owners {
		names = append(names, m.Name)
	}
	return names
}

// waitMembers polls until every proc's /v1/cluster lists want alive
// members. Unlike waitAlive it does not wait for their admin addresses,
// which reach the others by gossip a little later (and, should that
// broadcast be lost under load, only at the next full sync).
func waitMembers(t *testing.T, want int, ps ...*proc) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, last := true, ""
		for _, p := range ps {
			info, err := clusterInfo(p)
			alive := 0
			for _, m := range info.Members {
				if m.State == "alive" {
					alive++
				}
			}
			if err != nil || alive != want {
				ok, last = false, fmt.Sprintf("node %s: %d alive (%+v), err %v", p.addr, alive, info.Members, err)
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster did not converge to %d alive members: %s", want, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// eventuallyCLI retries `ecache ARGS` on p until it exits 0 (a write
// refused while the failure detector has not yet noticed a dead node).
func eventuallyCLI(t *testing.T, p *proc, args ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, errs, code := cli(t, p, args...)
		if code == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ecache %s via %s: exit %d, stderr %q", strings.Join(args, " "), p.addr, code, errs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metricValue returns an unlabelled metric's value from p's /metrics, 0 if
// absent.
func metricValue(t *testing.T, p *proc, name string) float64 {
	t.Helper()
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + p.adminAddr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

// keysOn polls until `get --local` on every owner (by via's view) of each
// key finds it with its value.
func keysOn(t *testing.T, via *proc, procs map[string]*proc, keys []string) {
	t.Helper()
	for _, k := range keys {
		for _, name := range ownerNames(t, via, k) {
			p := procs[name]
			if p == nil {
				t.Fatalf("%s: owner %q is not a running node", k, name)
			}
			eventuallyGet(t, p, k, "v-"+k+"\n", "--local")
		}
	}
}

// TestE2EClusterRebalance drives a real 3-process cluster with N=2 through
// a kill -9, a restart, a join and a graceful leave.
func TestE2EClusterRebalance(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test")
	}
	n1 := startServe(t, t.TempDir(), rebalanceArgs("n1", "--cluster")...)
	info, err := clusterInfo(n1)
	if err != nil {
		t.Fatal(err)
	}
	seed := info.GossipAddr
	n2 := startServe(t, t.TempDir(), rebalanceArgs("n2", "--join", seed)...)
	n3 := startServe(t, t.TempDir(), rebalanceArgs("n3", "--join", seed)...)
	waitMembers(t, 3, n1, n2, n3)
	procs := map[string]*proc{"n1": n1, "n2": n2, "n3": n3}

	// N=2 of 3: a key lives on two nodes, so reads and writes through the
	// third are forwarded across processes.
	var keys []string
	for i := range 20 {
		k := fmt.Sprintf("k%d", i)
		keys = append(keys, k)
		mustCLI(t, n1, "", "put", k, "v-"+k, "--w", "2")
	}
	forwarded := 0
	for _, k := range keys {
		mustCLI(t, n3, "v-"+k+"\n", "get", k)
		if !slices.Contains(ownerNames(t, n1, k), "n3") {
			forwarded++
		}
	}
	if forwarded == 0 {
		t.Fatal("n3 owns every key: forwarding was not exercised")
	}
	keysOn(t, n1, procs, keys)

	// kill -9 n3: writes continue at W=1 and at W=quorum (2 of N=2: once
	// the failure detector took n3 out of the ring, n1 and n2 own all).
	n3dir := n3.dataDir
	n3info, err := clusterInfo(n3)
	if err != nil {
		t.Fatal(err)
	}
	n3.kill()
	delete(procs, "n3")
	var down []string
	for i := range 10 {
		k := fmt.Sprintf("down%d", i)
		down = append(down, k)
		w := "1"
		if i%2 == 1 {
			w = "quorum"
		}
		eventuallyCLI(t, n1, "put", k, "v-"+k, "--w", w)
	}
	for _, k := range down {
		eventuallyGet(t, n2, k, "v-"+k+"\n")
	}

	// Restart n3 with the same data directory (and gossip address: the
	// others refuse a dead member's name from another address): the hinted
	// writes (and the partitions it owns again) arrive; get --local on n3
	// finds them.
	n3 = startServe(t, n3dir, rebalanceArgs("n3", "--join", seed, "--gossip-listen", n3info.GossipAddr)...)
	procs["n3"] = n3
	waitMembers(t, 3, n1, n2, n3)
	var onN3 []string
	for _, k := range down {
		if slices.Contains(ownerNames(t, n1, k), "n3") {
			onN3 = append(onN3, k)
			eventuallyGet(t, n3, k, "v-"+k+"\n", "--local")
		}
	}
	if len(onN3) == 0 {
		t.Fatal("n3 owns none of the keys written while it was down")
	}
	all := append(slices.Clone(keys), down...)
	keysOn(t, n1, procs, all)

	// A 4th node joins: every key stays readable while ownership moves,
	// and get --local on the new owners finds their keys.
	c := newClient(t, n1)
	var misses, reads atomic.Int64
	var firstMiss atomic.Value
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			for _, k := range all {
				select {
				case <-stop:
					return
				default:
				}
				it, err := c.Get(context.Background(), k)
				reads.Add(1)
				if err != nil || len(it.Values) != 1 || string(it.Values[0]) != "v-"+k {
					if misses.Add(1) == 1 {
						firstMiss.Store(fmt.Sprintf("%s: %+v %v", k, it, err))
					}
				}
			}
		}
	}()
	n4 := startServe(t, t.TempDir(), rebalanceArgs("n4", "--join", seed)...)
	procs["n4"] = n4
	waitMembers(t, 4, n1, n2, n3, n4)
	keysOn(t, n1, procs, all)
	owns := 0
	for _, k := range all {
		if slices.Contains(ownerNames(t, n1, k), "n4") {
			owns++
		}
	}
	if owns == 0 {
		t.Fatal("n4 owns none of the keys")
	}
	r0 := reads.Load()
	deadline := time.Now().Add(10 * time.Second)
	for reads.Load() < r0+int64(len(all)) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	<-done
	if m := misses.Load(); m != 0 {
		t.Fatalf("%d of %d reads missed while n4 joined; first: %v", m, reads.Load(), firstMiss.Load())
	}
	sent := 0.0
	for _, p := range []*proc{n1, n2, n3} {
		sent += metricValue(t, p, "ecache_rebalance_objects_sent_total")
	}
	if sent == 0 {
		t.Fatal("ecache_rebalance_objects_sent_total is 0 on every old node after a join")
	}

	// SIGTERM n2: it hands its partitions off before leaving; nothing is
	// lost and every key has N=2 local copies on the remaining nodes.
	n2.stop(t)
	delete(procs, "n2")
	<-n2.scanned
	if !strings.Contains(n2.stderr.String(), "partitions handed off before leaving") {
		t.Fatalf("n2 did not report its handoff:\n%s", n2.stderr.String())
	}
	waitMembers(t, 3, n1, n3, n4)
	keysOn(t, n1, procs, all)
	for _, k := range all {
		mustCLI(t, n3, "v-"+k+"\n", "get", k)
	}
	info, err = clusterInfo(n1)
	if err != nil {
		t.Fatal(err)
	}
	if info.Rebalance.State == "" {
		t.Fatalf("/v1/cluster lacks the rebalance state: %+v", info)
	}
	var left *node.ClusterMember
	for i, m := range info.Members {
		if m.Name == "n2" {
			left = &info.Members[i]
		}
	}
	if left == nil || left.State != "left" {
		t.Fatalf("n2 after SIGTERM: %+v", left)
	}
}

func TestE2EGossipProfileFlag(t *testing.T) {
	out := refusedServe(t, clusterArgs("--cluster", "--gossip-profile", "wan")...)
	if !strings.Contains(out, "--gossip-profile") {
		t.Fatalf("--gossip-profile wan: %s", out)
	}
	out = refusedServe(t, clusterArgs("--cluster", "--leave-timeout", "-1s")...)
	if !strings.Contains(out, "--leave-timeout") {
		t.Fatalf("--leave-timeout -1s: %s", out)
	}
	p := startServe(t, t.TempDir(), clusterArgs("--cluster", "--gossip-profile", "lan", "--leave-timeout", "0")...)
	p.stop(t)
}
