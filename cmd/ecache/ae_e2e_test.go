package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecachedb/ecache/client"
	"github.com/ecachedb/ecache/node"
)

// aeArgs are the flags of a persistent cluster node whose replicas are
// repaired by anti-entropy alone: hints and read repair off, short rounds.
func aeArgs(extra ...string) []string {
	return append([]string{"--resp-listen", "off", "--gossip-listen", "127.0.0.1:0", "--persistence", "async",
		"--cluster-key", e2eClusterKey, "--partitions", "64", "--leave-timeout", "0",
		"--ae-interval", "200ms", "--hinted-handoff=false", "--read-repair=false"}, extra...)
}

// aeMetric reads p's /metrics and returns the value of an unlabelled
// metric.
func aeMetric(t *testing.T, p *proc, name string) float64 {
	t.Helper()
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + p.adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not in /metrics", name)
	return 0
}

// missingLocal returns how many of keys p's own store lacks (GET with the
// local flag: no forwarding, no other replica consulted).
func missingLocal(t *testing.T, c *client.Client, keys []string) int {
	t.Helper()
	var mu sync.Mutex
	missing := 0
	var wg sync.WaitGroup
	work := make(chan string)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				it, err := c.Get(context.Background(), k, client.WithLocal())
				if err != nil || it == nil || len(it.Values) != 1 || string(it.Values[0]) != "v-"+k {
					mu.Lock()
					missing++
					mu.Unlock()
				}
			}
		}()
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	return missing
}

// TestE2EAntiEntropyRefillsRestartedNode: three nodes with hinted handoff
// and read repair off; node 3 is killed, 10,000 keys are written at W=1
// through node 1 (replicated to node 2; node 3's copies are dropped: no
// hints), node 3 restarts with its data directory and gossip address
// before the others declare it dead — so the ring never changes and
// rebalancing has nothing to move — and anti-entropy alone brings it every
// key, counted in the metrics.
func TestE2EAntiEntropyRefillsRestartedNode(t *testing.T) {
	n1 := startServe(t, t.TempDir(), aeArgs("--cluster", "--node-name", "n1")...)
	info, err := clusterInfo(n1)
	if err != nil {
		t.Fatal(err)
	}
	seed := info.GossipAddr
	n2 := startServe(t, t.TempDir(), aeArgs("--join", seed, "--node-name", "n2")...)
	dir3 := t.TempDir()
	n3 := startServe(t, dir3, aeArgs("--join", seed, "--node-name", "n3")...)
	waitAlive(t, 3, n1, n2, n3)
	info3, err := clusterInfo(n3)
	if err != nil {
		t.Fatal(err)
	}
	addr3 := n3.addr
	n3.kill()

	const total = 10_000
	keys := make([]string, total)
	for i := range keys {
		keys[i] = fmt.Sprintf("ae-%05d", i)
	}
	c1 := newClient(t, n1)
	for lo := 0; lo < total; lo += 500 {
		batch := make([]client.Entry, 0, 500)
		for _, k := range keys[lo : lo+500] {
			batch = append(batch, client.Entry{Key: k, Value: []byte("v-" + k)})
		}
		if _, errs, err := c1.MPut(context.Background(), batch, client.WithW(1)); err != nil {
			t.Fatal(err)
		} else {
			for _, e := range errs {
				if e != nil {
					t.Fatal(e)
				}
			}
		}
	}
	// Every replication the coordinators (node 1, or node 2 for the keys it
	// is the first owner of) queued is settled before node 3 is back:
	// acknowledged by the other live owner or dropped for node 3 (hints are
	// off), so no late one can reach node 3 and pass for anti-entropy's.
	for settleDeadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		settled := 0.0
		for _, p := range []*proc{n1, n2} {
			settled += aeMetric(t, p, "ecache_cluster_replicated_total") + aeMetric(t, p, "ecache_cluster_replications_dropped_total")
		}
		if settled >= 2*total {
			break
		}
		if time.Now().After(settleDeadline) {
			t.Fatalf("nodes 1 and 2 settled %v of %d replications in 60s", settled, 2*total)
		}
	}
	n3 = startServe(t, dir3, aeArgs("--join", seed, "--node-name", "n3", "--listen", addr3, "--gossip-listen", info3.GossipAddr)...)
	waitAlive(t, 3, n1, n2, n3)

	c2, c3 := newClient(t, n2), newClient(t, n3)
	deadline := time.Now().Add(60 * time.Second)
	for {
		m2, m3 := missingLocal(t, c2, keys), missingLocal(t, c3, keys)
		if m2 == 0 && m3 == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s node 2 lacks %d and node 3 %d of %d keys", m2, m3, total)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The CLI agrees, key by key, on a sample.
	for i := 0; i < total; i += 2500 {
		mustCLI(t, n3, "v-"+keys[i]+"\n", "get", keys[i], "--local")
		mustCLI(t, n2, "v-"+keys[i]+"\n", "get", keys[i], "--local")
	}
	// Node 2 got its 10,000 from anti-entropy alone: the exchanges that
	// carried them count them on whichever node initiated each — when the
	// exchange ends, which can be after its keys are readable, so poll.
	var repaired, streamed float64
	for metricsDeadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		repaired, streamed = 0, 0
		for _, p := range []*proc{n1, n2, n3} {
			repaired += aeMetric(t, p, "ecache_antientropy_repaired_keys_total")
			if v := aeMetric(t, p, "ecache_hints_stored_total"); v != 0 {
				t.Fatalf("hints stored with --hinted-handoff=false: %v", v)
			}
		}
		// Had the others declared node 3 dead meanwhile (a slow machine), its
		// return would have made rebalancing stream the partitions too.
		for _, p := range []*proc{n1, n2} {
			streamed += aeMetric(t, p, "ecache_rebalance_objects_sent_total")
		}
		if repaired+streamed >= total && repaired > 0 || time.Now().After(metricsDeadline) {
			break
		}
	}
	t.Logf("anti-entropy repaired %v keys in all (10,000 missing on node 3)", repaired)
	if streamed > 0 {
		t.Logf("%v objects reached node 3 by rebalancing, not anti-entropy", streamed)
	}
	if repaired+streamed < total || repaired == 0 {
		t.Fatalf("ecache_antientropy_repaired_keys_total summed over the nodes = %v (%v by rebalancing), want at least %d", repaired, streamed, total)
	}
	// /v1/antientropy on node 2 shows its partitions exchanged.
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + n2.adminAddr + "/v1/antientropy")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ae node.AntiEntropyInfo
	if err := json.NewDecoder(resp.Body).Decode(&ae); err != nil {
		t.Fatal(err)
	}
	if ae.Interval != "200ms" || !ae.TreesBuilt || len(ae.Partitions) != 64 {
		t.Fatalf("/v1/antientropy: interval %q built %v partitions %d", ae.Interval, ae.TreesBuilt, len(ae.Partitions))
	}
}

// TestAntiEntropyFlags: the anti-entropy options and switches, from flags,
// the environment and the YAML file with the usual precedence, and their
// bad values.
func TestAntiEntropyFlags(t *testing.T) {
	file := filepath.Join(t.TempDir(), "ecache.yaml")
	if err := os.WriteFile(file, []byte("ae-interval: 5s\nae-rate-bytes: 1MiB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ECACHE_AE_RATE_KEYS", "0")
	t.Setenv("ECACHE_READ_REPAIR", "false")
	cmd := newServeCmd()
	if err := cmd.Flags().Parse([]string{"--cluster-key", "k", "--ae-interval", "250ms", "--hinted-handoff=false"}); err != nil {
		t.Fatal(err)
	}
	vals, err := resolve(cmd.Flags(), serveOptions, file)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := clusterConfig(vals)
	if err != nil {
		t.Fatal(err)
	}
	ae := cc.AntiEntropy
	if ae.Interval != 250*time.Millisecond || ae.RateKeys != -1 || ae.RateBytes != 1<<20 || !cc.NoReadRepair || !cc.NoHintedHandoff {
		t.Fatalf("cluster config %+v, read repair off %v, hints off %v", ae, cc.NoReadRepair, cc.NoHintedHandoff)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--ae-interval", "off"}, ""},
		{[]string{"--ae-interval", "0"}, ""},
		{[]string{"--ae-interval", "soon"}, "--ae-interval"},
		{[]string{"--ae-interval", "-1s"}, "--ae-interval"},
		{[]string{"--ae-rate-keys", "-5"}, "--ae-rate-keys"},
		{[]string{"--ae-rate-bytes", "lots"}, "--ae-rate-bytes"},
		{[]string{"--read-repair=maybe"}, "--read-repair"},
	} {
		cmd := newServeCmd()
		if err := cmd.Flags().Parse(append([]string{"--cluster-key", "k"}, tc.args...)); err != nil {
			t.Fatal(err)
		}
		vals, err := resolve(cmd.Flags(), serveOptions, "")
		if err != nil {
			t.Fatal(err)
		}
		cc, err := clusterConfig(vals)
		switch {
		case tc.want == "" && (err != nil || cc.AntiEntropy.Interval >= 0):
			t.Errorf("%v: want the scheduler off, got %+v, %v", tc.args, cc, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: error %v, want one naming %s", tc.args, err, tc.want)
		}
	}
}
