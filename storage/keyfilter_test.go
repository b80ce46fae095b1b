package storage

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ecachedb/ecache/vclock"
)

// TestKeyFilter: no added key is ever reported absent, across layer
// growth, with adders racing; keys never added are mostly reported absent.
func TestKeyFilter(t *testing.T) {
	f := newKeyFilter(64)
	f.ready.Store(true)
	const n = 5000 // 64, 128, … : seven layers
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := g; i < n; i += 4 {
				f.add([]byte(fmt.Sprint("key:", i)))
			}
		})
	}
	wg.Wait()
	for i := range n {
		if !f.mayExist([]byte(fmt.Sprint("key:", i))) {
			t.Fatalf("key:%d added and reported absent", i)
		}
	}
	if got := len(*f.layers.Load()); got < 6 {
		t.Errorf("%d layers for %d keys from 64, want at least 6", got, n)
	}
	fp := 0
	for i := range n {
		if f.mayExist([]byte(fmt.Sprint("other:", i))) {
			fp++
		}
	}
	// Each layer is about 1% at capacity; the sum over layers bounds it.
	if fp > n/10 {
		t.Errorf("%d of %d absent keys reported present", fp, n)
	}
	// Not ready (the scan of Pebble is running): everything may exist.
	f.ready.Store(false)
	if !f.mayExist([]byte("other:0")) || !f.mayExist([]byte("never")) {
		t.Error("a filter that is not ready answered absent")
	}
}

func waitFilterReady(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !s.keys.ready.Load() {
		if time.Now().After(deadline) {
			t.Fatal("miss filter not ready")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestMissFilterSkipsDisk: once the filter is ready, reads of keys never
// written and writes of new keys do not touch Pebble; a key written after a
// filtered miss is found, from memory and (memory cleared) from disk.
func TestMissFilterSkipsDisk(t *testing.T) {
	for _, p := range []Persistence{PersistenceAsync, PersistenceSync} {
		t.Run(p.String(), func(t *testing.T) {
			s := openTest(t, t.TempDir(), testConfig(t, p))
			waitFilterReady(t, s)
			before := s.diskReads.Load()
			for i := range 100 {
				if _, found := get(t, s, "ns", fmt.Sprint("absent", i)); found {
					t.Fatal("absent key found")
				}
			}
			put(t, s, "ns", "k", "v", 0) // Update reads the current object first
			if got := s.diskReads.Load() - before; got > 5 {
				t.Fatalf("%d disk reads for 100 misses of keys never written and a new key", got)
			}
			if v, found := get(t, s, "ns", "k"); !found || v != "v" {
				t.Fatalf("written after a miss: %q %v", v, found)
			}
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			s.mem.Clear()
			if v, found := get(t, s, "ns", "k"); !found || v != "v" {
				t.Fatalf("from disk: %q %v", v, found)
			}
		})
	}
}

// TestMissFilterRestart: keys on disk when the store opens are found
// whether or not the filter's scan has finished, and misses skip Pebble
// once it has.
func TestMissFilterRestart(t *testing.T) {
	for _, p := range []Persistence{PersistenceAsync, PersistenceSync} {
		t.Run(p.String(), func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(t, p)
			s := openTest(t, dir, cfg)
			n := 3000
			if p == PersistenceSync {
				n = 200 // an fsync each
			}
			for i := range n {
				put(t, s, "ns", fmt.Sprint("k", i), fmt.Sprint("v", i), 0)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openTest(t, dir, cfg)
			// Reads race the scan here; every key must be found regardless.
			for i := 0; i < n; i += 7 {
				if v, found := get(t, s, "ns", fmt.Sprint("k", i)); !found || v != fmt.Sprint("v", i) {
					t.Fatalf("k%d after restart: %q %v", i, v, found)
				}
			}
			waitFilterReady(t, s)
			for i := range n {
				if v, found := get(t, s, "ns", fmt.Sprint("k", i)); !found || v != fmt.Sprint("v", i) {
					t.Fatalf("k%d after restart, filter ready: %q %v", i, v, found)
				}
			}
			before := s.diskReads.Load()
			for i := range 100 {
				if _, found := get(t, s, "ns", fmt.Sprint("absent", i)); found {
					t.Fatal("absent key found")
				}
			}
			if got := s.diskReads.Load() - before; got > 5 {
				t.Fatalf("%d disk reads for 100 misses after restart", got)
			}
		})
	}
}

// TestMissFilterConcurrentWrites: with a memory tier too small for the
// data (so reads go to disk), a reader that starts after a write was
// acknowledged always finds it, while other writers add keys and grow the
// filter.
func TestMissFilterConcurrentWrites(t *testing.T) {
	cfg := testConfig(t, PersistenceAsync)
	cfg.MemoryLimit = 64 << 10
	s := openTest(t, t.TempDir(), cfg)
	waitFilterReady(t, s)     // the scan is done with the filter it was given
	s.keys = newKeyFilter(16) // many layers; replaced before any write
	s.keys.ready.Store(true)
	const writers, per = 4, 300
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			var o vclock.Object
			for i := range per {
				key := []byte(fmt.Sprint("w", w, "k", i))
				if _, err := s.Update([]byte("ns"), key, func(cur vclock.Object, _ bool) (vclock.Object, error) {
					next, _ := cur.Update(cur.Clock, s.NodeID(), vclock.Sibling{HLC: 1, Value: key})
					return next, nil
				}); err != nil {
					errc <- err
					return
				}
				if found, err := s.Get([]byte("ns"), key, &o); err != nil || !found {
					errc <- fmt.Errorf("%s not found right after its write: %v", key, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}

// BenchmarkGetAbsent: a read of a key never written in a persistent
// store, memory tier missed: answered by the miss filter, or (filter=off,
// as before it existed) by Pebble's bloom filters and memtable.
func BenchmarkGetAbsent(b *testing.B) {
	for _, on := range []bool{true, false} {
		b.Run(fmt.Sprintf("filter=%v", map[bool]string{true: "on", false: "off"}[on]), func(b *testing.B) {
			s := openTest(b, b.TempDir(), benchConfig(b, PersistenceAsync))
			fill(b, s, benchKeys(10000))
			if err := s.Flush(); err != nil {
				b.Fatal(err)
			}
			for !s.keys.ready.Load() {
				time.Sleep(time.Millisecond)
			}
			s.keys.ready.Store(on)
			absent := benchKeys(20000)[10000:]
			var o vclock.Object
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if ok, err := s.Get([]byte("default"), absent[i%len(absent)], &o); ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}
