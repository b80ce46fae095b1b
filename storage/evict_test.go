package storage

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/ecachedb/ecache/vclock"
)

// TestOnEvict: a memory-only store reports every object its memory tier
// evicts, with the object that was stored, once the write that made room
// is done — and a key reported absent is indeed gone.
func TestOnEvict(t *testing.T) {
	cfg := testConfig(t, PersistenceNone)
	cfg.MemoryShards = 1
	cfg.MemoryLimit = 64 << 10
	var mu sync.Mutex
	got := map[string]string{}
	var s *Store
	cfg.OnEvict = func(p uint32, ns, key []byte, obj *vclock.Object, present bool) {
		mu.Lock()
		defer mu.Unlock()
		if present {
			t.Errorf("%s reported present: nothing writes it again", key)
		}
		if p != PartitionOf(ns, key, cfg.Partitions) || len(obj.Siblings) != 1 {
			t.Errorf("%s: partition %d, %d siblings", key, p, len(obj.Siblings))
			return
		}
		got[string(key)] = string(obj.Siblings[0].Value[:8])
		if _, ok := s.mem.Get(appendDataKey(nil, p, ns, key)); ok {
			t.Errorf("%s reported evicted but held", key)
		}
	}
	s = openTest(t, t.TempDir(), cfg)
	value := bytes.Repeat([]byte("v"), 200)
	for i := range 1000 {
		copy(value, fmt.Sprintf("%08d", i))
		put(t, s, "ns", fmt.Sprintf("k%04d", i), string(value), 0)
	}
	mu.Lock()
	defer mu.Unlock()
	if ev := s.mem.Stats().Evictions; ev == 0 || uint64(len(got)) != ev {
		t.Fatalf("%d evictions, %d reported", ev, len(got))
	}
	for k, v := range got {
		var i int
		fmt.Sscanf(k, "k%04d", &i)
		if v != fmt.Sprintf("%08d", i) {
			t.Fatalf("%s reported with value %q", k, v)
		}
	}
}
