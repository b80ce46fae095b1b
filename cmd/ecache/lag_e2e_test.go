package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2ELevelsAndReplicationLag: three real nodes (N=3): data commands
// with --w/--r quorum and all, and `ecache bench --replication-lag`
// discovering the replicas from the cluster.
func TestE2ELevelsAndReplicationLag(t *testing.T) {
	n1 := startServe(t, t.TempDir(), clusterArgs("--cluster", "--node-name", "l1")...)
	info, err := clusterInfo(n1)
	if err != nil {
		t.Fatal(err)
	}
	n2 := startServe(t, t.TempDir(), clusterArgs("--join", info.GossipAddr, "--node-name", "l2")...)
	n3 := startServe(t, t.TempDir(), clusterArgs("--join", info.GossipAddr, "--node-name", "l3")...)
	waitAlive(t, 3, n1, n2, n3)

	// W=all: every replica holds the value when put returns.
	mustCLI(t, n1, "", "put", "lv", "all", "--w", "all")
	for _, p := range []*proc{n1, n2, n3} {
		mustCLI(t, p, "all\n", "get", "lv", "--local")
	}
	mustCLI(t, n2, "", "put", "lq", "quorum", "--w", "quorum")
	mustCLI(t, n3, "quorum\n", "get", "lq", "--r", "all")
	mustCLI(t, n3, "quorum\n", "get", "lq", "--r", "quorum")
	mustCLI(t, n3, "quorum\n", "get", "lq", "--r", "2")
	for _, bad := range [][]string{{"put", "k", "v", "--w", "most"}, {"get", "k", "--r", "-1"}, {"incr", "c", "--w", "x"}} {
		_, errs, code := cli(t, n1, bad...)
		if code == 0 || !strings.Contains(errs, "want a replica count, quorum or all") {
			t.Errorf("%v: exit %d, stderr %q", bad, code, errs)
		}
	}
	// W over N is the server's malformed.
	if _, errs, code := cli(t, n1, "put", "k", "v", "--w", "4"); code == 0 || !strings.Contains(errs, "malformed") {
		t.Errorf("--w 4 with N=3: exit %d, stderr %q", code, errs)
	}

	jsonPath := filepath.Join(t.TempDir(), "lag.json")
	cmd := exec.Command(binPath, "bench", "--target", "ecache://"+n1.addr, "--replication-lag", "--samples", "50",
		"--value-size", "100", "--json", jsonPath)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench --replication-lag: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "-> 3 replicas") || !strings.Contains(out.String(), "samples 50, timeouts 0, errors 0") {
		t.Fatalf("output:\n%s", out.String())
	}
	var rep struct {
		Samples int
		Lag     struct{ P50, P99, Max int64 } `json:"lag_us"`
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil || rep.Samples != 50 || rep.Lag.P50 < 1 || rep.Lag.Max < rep.Lag.P99 {
		t.Fatalf("report %s: %v", b, err)
	}
}
