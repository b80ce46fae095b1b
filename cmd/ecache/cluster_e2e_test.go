package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ecachedb/ecache/node"
)

const e2eClusterKey = "e2e-secret"

// clusterArgs are the flags of a cluster node on free loopback ports.
func clusterArgs(extra ...string) []string { return clusterArgsKey(e2eClusterKey, extra...) }

func clusterArgsKey(key string, extra ...string) []string {
	return append([]string{"--resp-listen", "off", "--gossip-listen", "127.0.0.1:0", "--persistence", "none",
		"--cluster-key", key}, extra...)
}

// eventuallyGet polls `ecache get key [extra...]` on p until it prints want.
func eventuallyGet(t *testing.T, p *proc, key, want string, extra ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, errs, code := cli(t, p, append([]string{"get", key}, extra...)...)
		if code == 0 && out == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("get %s via %s: exit %d, stdout %q (want %q), stderr %q", key, p.addr, code, out, want, errs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// clusterInfo reads GET /v1/cluster from p's admin server.
func clusterInfo(p *proc) (node.ClusterInfo, error) {
	var info node.ClusterInfo
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + p.adminAddr + "/v1/cluster")
	if err != nil {
		return info, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return info, fmt.Errorf("GET /v1/cluster: %s", resp.Status)
	}
	return info, json.NewDecoder(resp.Body).Decode(&info)
}

// waitAlive polls until every proc's /v1/cluster lists want alive members
// with their admin addresses.
func waitAlive(t *testing.T, want int, ps ...*proc) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, last := true, ""
		for _, p := range ps {
			info, err := clusterInfo(p)
			alive := 0
			for _, m := range info.Members {
				if m.State == "alive" && m.AdminAddr != "" {
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

// adminCLI runs `ecache cluster ARGS --admin p.adminAddr`.
func adminCLI(t *testing.T, p *proc, args ...string) string {
	t.Helper()
	out, err := exec.Command(binPath, append(append([]string{"cluster"}, args...), "--admin", p.adminAddr)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ecache cluster %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// refusedServe runs a cluster node expected to fail at startup and returns
// its output.
func refusedServe(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	all := append([]string{"serve", "--listen", "127.0.0.1:0", "--admin-listen", "off", "--data-dir", t.TempDir()}, args...)
	cmd := exec.CommandContext(ctx, binPath, all...)
	cmd.Env = append(os.Environ(), "ECACHE_CONFIG=")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ctx.Err() != nil {
		t.Fatalf("ecache serve %s: want a non-zero exit, got %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestE2EClusterThreeNodes(t *testing.T) {
	n1 := startServe(t, t.TempDir(), clusterArgs("--cluster", "--node-name", "n1")...)
	info, err := clusterInfo(n1)
	if err != nil {
		t.Fatal(err)
	}
	seed := info.GossipAddr
	if info.Name != "n1" || info.Partitions != 1024 || info.Replicas != 3 || !strings.HasPrefix(seed, "127.0.0.1:") {
		t.Fatalf("node 1's /v1/cluster: %+v", info)
	}
	n2 := startServe(t, t.TempDir(), clusterArgs("--join", seed, "--node-name", "n2")...)
	n3 := startServe(t, t.TempDir(), clusterArgs("--join", seed, "--node-name", "n3")...)
	waitAlive(t, 3, n1, n2, n3)

	// Every partition has 3 replicas among 3 nodes: each node owns all of
	// them, a third as primary.
	info, err = clusterInfo(n3)
	if err != nil {
		t.Fatal(err)
	}
	primaries := 0
	for _, m := range info.Members {
		if m.Primary+m.Replica != 1024 || m.ClientAddr == "" || m.PeerAddr == "" {
			t.Fatalf("member %+v: want 1024 partitions and its addresses", m)
		}
		primaries += m.Primary
	}
	if primaries != 1024 {
		t.Fatalf("primaries sum to %d, want 1024", primaries)
	}

	// Write via node 1, read via node 3.
	for i := range 20 {
		mustCLI(t, n1, "", "put", fmt.Sprintf("key-%d", i), fmt.Sprintf("value-%d", i))
	}
	for i := range 20 {
		// Replication beyond W=1 is in the background: poll.
		eventuallyGet(t, n3, fmt.Sprintf("key-%d", i), fmt.Sprintf("value-%d\n", i))
	}
	// With N=3 every node is a replica: `get --local` (no forwarding) finds
	// each key in each node's own store.
	for _, p := range []*proc{n1, n2, n3} {
		for i := range 20 {
			eventuallyGet(t, p, fmt.Sprintf("key-%d", i), fmt.Sprintf("value-%d\n", i), "--local")
		}
	}

	// locate: the partition and 3 distinct replicas.
	out := adminCLI(t, n2, "locate", "key-7")
	if !strings.HasPrefix(out, "partition ") || !strings.Contains(out, "of 1024, replicas 3") {
		t.Fatalf("locate:\n%s", out)
	}
	for _, name := range []string{"n1", "n2", "n3"} {
		if !strings.Contains(out, " "+name+" ") {
			t.Fatalf("locate does not list %s:\n%s", name, out)
		}
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 5 {
		t.Fatalf("locate: want a header and 3 replicas:\n%s", out)
	}
	// members: 3 alive.
	out = adminCLI(t, n1, "members")
	if strings.Count(out, " alive ") != 3 || !strings.Contains(out, "n1*") {
		t.Fatalf("members:\n%s", out)
	}

	// A node with another partition count is refused.
	out = refusedServe(t, clusterArgs("--join", seed, "--partitions", "512")...)
	if !strings.Contains(out, "partition count") {
		t.Fatalf("different --partitions: want a partition-count message:\n%s", out)
	}
	// A node with another cluster key cannot join.
	out = refusedServe(t, clusterArgsKey("wrong-key", "--join", seed)...)
	if !strings.Contains(out, "cannot join the cluster") || !strings.Contains(out, "same cluster key") {
		t.Fatalf("wrong --cluster-key: want a join failure:\n%s", out)
	}
	// Cluster mode without a key is refused before anything starts.
	out = refusedServe(t, "--resp-listen", "off", "--join", seed)
	if !strings.Contains(out, "needs --cluster-key") {
		t.Fatalf("no --cluster-key: %s", out)
	}
	waitAlive(t, 3, n1, n2, n3) // the refused nodes never became members

	// kill -9 node 3: writes via the others still succeed at W=1.
	n3.kill()
	for i := range 5 {
		mustCLI(t, n1, "", "put", fmt.Sprintf("after-%d", i), "x")
		mustCLI(t, n2, "", "put", fmt.Sprintf("after2-%d", i), "y")
	}
	eventuallyGet(t, n2, "after-0", "x\n")
}

func TestE2EClusterNotClustered(t *testing.T) {
	p := startServe(t, t.TempDir(), "--resp-listen", "off")
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + p.adminAddr + "/v1/cluster")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(buf.String(), `"error"`) {
		t.Fatalf("/v1/cluster on a single node: %s %s", resp.Status, buf.String())
	}
	out, err := exec.Command(binPath, "cluster", "members", "--admin", p.adminAddr).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not in cluster mode") {
		t.Fatalf("cluster members on a single node: %v %s", err, out)
	}
}
