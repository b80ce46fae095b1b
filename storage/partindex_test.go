package storage

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
)

// scanKeys returns the keys Scan(p) meets, in order.
func scanKeys(t *testing.T, s *Store, p uint32) []string {
	t.Helper()
	var keys []string
	if err := s.Scan(p, func(e *Entry) error {
		keys = append(keys, string(e.NS)+"/"+string(e.Key))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestPartitionIndexScan: with the index, Scan of a partition meets
// exactly the keys a walk of the whole memory tier finds for it, in key
// order, through writes, deletes and drops.
func TestPartitionIndexScan(t *testing.T) {
	cfg := testConfig(t, PersistenceNone)
	cfg.Partitions = 8
	cfg.PartitionIndex = true
	s := openTest(t, t.TempDir(), cfg)
	for i := range 200 {
		put(t, s, []string{"a", "bb"}[i%2], fmt.Sprintf("k%03d", i), "v", 0)
	}
	if _, err := s.Forget([]byte("a"), []byte("k000"), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.DropPartition(3); err != nil {
		t.Fatal(err)
	}
	total := 0
	for p := range uint32(8) {
		got := scanKeys(t, s, p)
		lo, hi := partitionBounds(p)
		var want []string
		if err := s.scanMemory(func(k []byte) bool { return bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0 }, func(e *Entry) error {
			want = append(want, string(e.NS)+"/"+string(e.Key))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		slices.Sort(want) // a walk of the tier meets keys in no order
		if !slices.Equal(got, want) {
			t.Fatalf("partition %d: indexed scan %v, walk %v", p, got, want)
		}
		if !slices.IsSorted(got) {
			t.Fatalf("partition %d: not in key order: %v", p, got)
		}
		if p == 3 && len(got) != 0 {
			t.Fatalf("dropped partition still scans %v", got)
		}
		total += len(got)
	}
	if total == 0 || total >= 199 || s.indexLen() != total {
		t.Fatalf("scanned %d keys, index holds %d", total, s.indexLen())
	}
}

// TestPartitionIndexEvictions: keys the memory tier evicts are not met by
// Scan, and the sweep prunes them from the index even where nobody scans.
func TestPartitionIndexEvictions(t *testing.T) {
	cfg := testConfig(t, PersistenceNone)
	cfg.Partitions = 4
	cfg.PartitionIndex = true
	cfg.MemoryShards = 1
	cfg.MemoryLimit = 64 << 10
	s := openTest(t, t.TempDir(), cfg)
	value := string(bytes.Repeat([]byte("v"), 200))
	for i := range 2000 {
		put(t, s, "ns", fmt.Sprintf("k%04d", i), value, 0)
	}
	live := s.mem.Len()
	if live >= 2000 || s.indexLen() != 2000 {
		t.Fatalf("tier holds %d, index %d: want evictions and every key indexed", live, s.indexLen())
	}
	// Scanning skips the evicted keys (and prunes them)...
	n := 0
	for p := range uint32(2) {
		n += len(scanKeys(t, s, p))
	}
	if want := s.indexLen() - s.pidxLenOf(2) - s.pidxLenOf(3); n != want {
		t.Fatalf("scans of partitions 0 and 1 met %d keys, their index holds %d", n, want)
	}
	if s.pidxLenOf(2)+s.pidxLenOf(3)+n == live {
		t.Fatal("no evicted key left in the unscanned partitions: the sweep step shows nothing")
	}
	// ...and the sweep prunes partitions nobody scans.
	s.pruneIndex(4)
	if got := s.indexLen(); got != live {
		t.Fatalf("index holds %d keys after pruning, the tier %d", got, live)
	}
	if n == 0 {
		t.Fatal("the scans met nothing")
	}
}

// pidxLenOf is how many keys the index holds for partition p.
func (s *Store) pidxLenOf(p uint32) int {
	s.pidx.mu.Lock()
	defer s.pidx.mu.Unlock()
	return len(s.pidx.parts[p])
}
