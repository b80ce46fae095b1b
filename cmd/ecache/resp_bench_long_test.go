//go:build long

package main

import (
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
	for _, persistence := range []string{"none", "async"} {
		addr, stop := startRESP(t, "--resp-listen", "127.0.0.1:0", "--persistence", persistence)
		host, port := hostPort(t, addr)
		text := runRedisBenchmark(t, persistence, host, port, 5*time.Minute, "-n", "100000", "-c", "50", "-P", "16", "-r", "100000")
		t.Logf("persistence %s:\n%s", persistence, text)
		stop()
	}
}
