//go:build long

package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestE2ERedisBenchmarkFull runs issue #6's full redis-benchmark command
// against the real binary (go test -tags long): it must complete within
// its timeout with no error reply. Its SADD grows one set to ~63,000
// members, which took O(members) per SADD before large sets were kept
// decoded (docs/consistency.md, "Large sets"). No timing is asserted
// beyond the generous timeout that stands for "it finishes".
func TestE2ERedisBenchmarkFull(t *testing.T) {
	bench, err := exec.LookPath("redis-benchmark")
	if err != nil {
		requireTool(t, "redis-benchmark")
	}
	for _, persistence := range []string{"none", "async"} {
		addr, stop := startRESP(t, "--resp-listen", "127.0.0.1:0", "--persistence", persistence)
		host, port := hostPort(t, addr)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		out, err := exec.CommandContext(ctx, bench, "-h", host, "-p", port,
			"-t", "ping,set,get,incr,sadd,mset", "-n", "100000", "-c", "50", "-P", "16", "-r", "100000", "--csv").CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("redis-benchmark (%s): %v\n%s", persistence, err, out)
		}
		text := string(out)
		t.Logf("persistence %s:\n%s", persistence, text)
		for _, test := range []string{"PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "SADD", "MSET"} {
			if !strings.Contains(text, `"`+test) {
				t.Errorf("redis-benchmark (%s) did not report %s:\n%s", persistence, test, text)
			}
		}
		if strings.Contains(strings.ToLower(text), "error") {
			t.Errorf("redis-benchmark (%s) reported errors:\n%s", persistence, text)
		}
		stop()
	}
}
