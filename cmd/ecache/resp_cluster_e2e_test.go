package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// respAddr reads p's RESP address from its admin /v1/node.
func respAddr(t *testing.T, p *proc) string {
	t.Helper()
	c := http.Client{Timeout: 2 * time.Second}
	res, err := c.Get("http://" + p.adminAddr + "/v1/node")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var info struct {
		RESP string `json:"resp_listen"`
	}
	if err := json.NewDecoder(res.Body).Decode(&info); err != nil || info.RESP == "" {
		t.Fatalf("/v1/node: resp_listen %q, %v", info.RESP, err)
	}
	return info.RESP
}

// TestE2ERedisCluster runs redis-cli and a short redis-benchmark against a
// 3-node cluster of the real binary with N=2, so a third of the keys sent to
// any node are forwarded: every command succeeds, and a key set through
// node 1 reads back through every node.
func TestE2ERedisCluster(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		requireTool(t, "redis-cli")
	}
	args := func(extra ...string) []string {
		return clusterArgs(append([]string{"--replicas", "2", "--resp-listen", "127.0.0.1:0"}, extra...)...)
	}
	n1 := startServe(t, t.TempDir(), args("--cluster", "--node-name", "n1")...)
	info, err := clusterInfo(n1)
	if err != nil {
		t.Fatal(err)
	}
	n2 := startServe(t, t.TempDir(), args("--join", info.GossipAddr, "--node-name", "n2")...)
	n3 := startServe(t, t.TempDir(), args("--join", info.GossipAddr, "--node-name", "n3")...)
	waitAlive(t, 3, n1, n2, n3)
	var hosts, ports []string
	for _, p := range []*proc{n1, n2, n3} {
		h, port := hostPort(t, respAddr(t, p))
		hosts, ports = append(hosts, h), append(ports, port)
	}
	redisCLI := func(i int, cmd ...string) string {
		t.Helper()
		out, err := exec.Command(cli, append([]string{"-h", hosts[i], "-p", ports[i]}, cmd...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %v on node %d: %v\n%s", cmd, i+1, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for i := range 12 {
		if got := redisCLI(0, "SET", fmt.Sprintf("key-%d", i), fmt.Sprintf("value-%d", i)); got != "OK" {
			t.Fatalf("SET key-%d: %q", i, got)
		}
	}
	for node := range 3 {
		for i := range 12 {
			if got := redisCLI(node, "GET", fmt.Sprintf("key-%d", i)); got != fmt.Sprintf("value-%d", i) {
				t.Fatalf("GET key-%d on node %d: %q", i, node+1, got)
			}
		}
	}
	if got := redisCLI(2, "DEL", "key-0", "key-1", "key-2", "key-3", "missing"); got != "4" {
		t.Fatalf("DEL of 4 keys and a missing one: %q", got)
	}

	runRedisBenchmark(t, "3-node cluster", hosts[0], ports[0], 2*time.Minute, "-n", "2000", "-c", "10", "-P", "8", "-r", "1000")
}
