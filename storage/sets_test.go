package storage

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ecachedb/ecache/merge"
	"github.com/ecachedb/ecache/vclock"
)

// setModel replays the ops a test sends through UpdateSet with the set
// strategy's own Apply: what the store holds must encode to the same bytes.
type setModel struct {
	t     testing.TB
	strat merge.Strategy
	node  vclock.NodeID
	obj   vclock.Object
	hlc   vclock.Timestamp
}

func newSetModel(t testing.TB, s *Store) *setModel {
	strat, err := merge.NewRegistry().Lookup(merge.NameSet)
	if err != nil {
		t.Fatal(err)
	}
	return &setModel{t: t, strat: strat, node: s.NodeID(), hlc: vclock.MakeTimestamp(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 0)}
}

// apply performs op through UpdateSet and on the model.
func (m *setModel) apply(s *Store, key string, op merge.Op) {
	m.t.Helper()
	m.hlc++
	at := merge.Coordinator{Node: m.node, HLC: m.hlc}
	want, err := m.strat.Apply(m.obj, op, at)
	if err != nil {
		m.t.Fatal(err)
	}
	err = s.UpdateSet([]byte("sets"), []byte(key), func(set *merge.SetObject) (bool, error) {
		return set.Apply(op, at)
	})
	if err != nil {
		m.t.Fatalf("UpdateSet %v: %v", op.Kind, err)
	}
	m.obj = want
}

// check reads key and compares it with the model.
func (m *setModel) check(s *Store, key string) {
	m.t.Helper()
	var got vclock.Object
	if _, err := s.Get([]byte("sets"), []byte(key), &got); err != nil {
		m.t.Fatal(err)
	}
	if !bytes.Equal(got.AppendMsgpack(nil), m.obj.AppendMsgpack(nil)) {
		m.t.Fatalf("stored set differs from the strategy's: %d vs %d members",
			len(m.strat.Read(got, 0).Members), len(m.strat.Read(m.obj, 0).Members))
	}
}

func member(i int) []byte { return fmt.Appendf(nil, "member:%06d", i) }

// TestUpdateSetMatchesStrategy: in every persistence mode, a set grown past
// the hot threshold by single adds, with removes and reads interleaved,
// holds exactly what the strategy's Apply yields; reads, scans, generic
// updates and a reopen all see the latest state.
func TestUpdateSetMatchesStrategy(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, p := range []Persistence{PersistenceNone, PersistenceAsync, PersistenceSync} {
		t.Run(p.String(), func(t *testing.T) {
			dir := t.TempDir()
			s := openTest(t, dir, testConfig(t, p))
			m := newSetModel(t, s)
			const n = 600 // ~14 bytes a member: well past hotSetMinValue
			batch := 1
			if p == PersistenceSync {
				batch = 25 // every write is fsynced
			}
			for i := range n {
				if i%batch != 0 {
					continue
				}
				ms := make([][]byte, batch)
				for j := range ms {
					ms[j] = member(i + j)
				}
				m.apply(s, "k", merge.Op{Kind: merge.OpSAdd, Members: ms})
				if i%7 == 3 || batch > 1 && i%50 == 0 {
					m.apply(s, "k", merge.Op{Kind: merge.OpSRem, Members: [][]byte{member(i - 1), []byte("absent")}})
				}
				if i%97 == 0 {
					m.check(s, "k")
				}
			}
			m.apply(s, "k", merge.Op{Kind: merge.OpSAdd, Members: [][]byte{member(1), member(n + 1), member(n + 1)}})
			hot, _ := s.HotSets()
			if want := map[Persistence]int{PersistenceNone: 1, PersistenceAsync: 1, PersistenceSync: 0}[p]; hot != want {
				t.Fatalf("%d hot sets, want %d", hot, want)
			}
			m.check(s, "k")

			// A scan sees the latest state.
			m.apply(s, "k", merge.Op{Kind: merge.OpSAdd, Members: [][]byte{[]byte("scanned")}})
			var scanned []byte
			if err := s.Scan(PartitionOf(nil, []byte("k"), s.cfg.Partitions), func(e *Entry) error {
				if string(e.Key) == "k" {
					scanned = e.Object.AppendMsgpack(nil)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(scanned, m.obj.AppendMsgpack(nil)) {
				t.Fatal("Scan saw a stale set")
			}

			// A generic update sees the latest state and takes the set over.
			m.apply(s, "k", merge.Op{Kind: merge.OpSAdd, Members: [][]byte{[]byte("before-update")}})
			m.hlc++
			next, err := s.Update([]byte("sets"), []byte("k"), func(cur vclock.Object, _ bool) (vclock.Object, error) {
				if !bytes.Equal(cur.AppendMsgpack(nil), m.obj.AppendMsgpack(nil)) {
					t.Error("Update saw a stale set")
				}
				return m.strat.Apply(cur, merge.Op{Kind: merge.OpSRem, Members: [][]byte{member(2)}}, merge.Coordinator{Node: m.node, HLC: m.hlc})
			})
			if err != nil {
				t.Fatal(err)
			}
			m.obj = next
			if hot, _ := s.HotSets(); hot != 0 {
				t.Fatalf("%d hot sets after a generic update, want 0", hot)
			}
			m.apply(s, "k", merge.Op{Kind: merge.OpSAdd, Members: [][]byte{[]byte("after-update")}})
			m.check(s, "k")

			if p == PersistenceNone {
				return
			}
			m.apply(s, "k", merge.Op{Kind: merge.OpSAdd, Members: [][]byte{[]byte("last")}})
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openTest(t, dir, testConfig(t, p))
			m.check(s, "k")
		})
	}
}

// TestUpdateSetSettlesInBackground: with async persistence a dirty set
// reaches the write-behind queue within flush intervals, with no read.
func TestUpdateSetSettlesInBackground(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the store closes
	cfg := testConfig(t, PersistenceAsync)
	cfg.FlushInterval = 5 * time.Millisecond
	s := openTest(t, t.TempDir(), cfg)
	m := newSetModel(t, s)
	for i := range 400 {
		m.apply(s, "k", merge.Op{Kind: merge.OpSAdd, Members: [][]byte{member(i)}})
	}
	if _, dirty := s.HotSets(); dirty != 1 {
		t.Fatalf("%d dirty sets, want 1", dirty)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, dirty := s.HotSets(); dirty == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the dirty set was not settled within 10s")
		}
		time.Sleep(time.Millisecond)
	}
	kb := appendDataKey(nil, PartitionOf(nil, []byte("k"), s.cfg.Partitions), []byte("sets"), []byte("k"))
	rec, ok := s.mem.Get(kb)
	var got vclock.Object
	if !ok || decodeRecord(rec, &got) != nil || !bytes.Equal(got.AppendMsgpack(nil), m.obj.AppendMsgpack(nil)) {
		t.Fatal("settled record differs from the model")
	}
}

// TestUpdateSetOnChange: OnChange sees a chain of versions (each prev the
// previous next) ending at the latest state, as a Merkle tree needs.
func TestUpdateSetOnChange(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the store closes
	cfg := testConfig(t, PersistenceNone)
	var last []byte
	var broken bool
	cfg.OnChange = func(_ uint32, _, _ []byte, prev, next *vclock.Object) {
		var p []byte
		if prev != nil {
			p = prev.AppendMsgpack(nil)
		}
		if !bytes.Equal(p, last) {
			broken = true
		}
		last = next.AppendMsgpack(nil)
	}
	s := openTest(t, "", cfg)
	m := newSetModel(t, s)
	for i := range 500 {
		m.apply(s, "k", merge.Op{Kind: merge.OpSAdd, Members: [][]byte{member(i)}})
		if i%50 == 0 {
			m.check(s, "k")
		}
	}
	m.check(s, "k")
	if broken || !bytes.Equal(last, m.obj.AppendMsgpack(nil)) {
		t.Fatalf("OnChange chain broken=%v or not at the latest state", broken)
	}
}

// TestUpdateSetLimits: an add past what the memory tier of a memory-only
// store can hold fails with ErrValueTooLarge and changes nothing; a
// non-set record fails with merge.ErrMalformedState.
func TestUpdateSetLimits(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the store closes
	cfg := testConfig(t, PersistenceNone)
	cfg.MemoryLimit = 64 << 10
	cfg.MemoryShards = 4 // 16 KiB shards
	s := openTest(t, "", cfg)
	m := newSetModel(t, s)
	var err error
	for i := 0; i < 2000 && err == nil; i += 10 {
		m.hlc++
		at := merge.Coordinator{Node: m.node, HLC: m.hlc}
		op := merge.Op{Kind: merge.OpSAdd, Members: [][]byte{member(i)}}
		for j := 1; j < 10; j++ {
			op.Members = append(op.Members, member(i+j))
		}
		err = s.UpdateSet([]byte("sets"), []byte("k"), func(set *merge.SetObject) (bool, error) { return set.Apply(op, at) })
		if err == nil {
			if m.obj, err = m.strat.Apply(m.obj, op, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !errors.Is(err, ErrValueTooLarge) {
		t.Fatalf("UpdateSet past the shard size: err %v, want ErrValueTooLarge", err)
	}
	m.check(s, "k")

	put(t, s, "sets", "v", "not a set", 0)
	err = s.UpdateSet([]byte("sets"), []byte("v"), func(set *merge.SetObject) (bool, error) { return true, nil })
	if !errors.Is(err, merge.ErrMalformedState) {
		t.Fatalf("UpdateSet of a value: err %v, want ErrMalformedState", err)
	}
}

// TestUpdateSetEviction: no more than hotSetMaxSets sets stay decoded, and
// evicted ones were settled first.
func TestUpdateSetEviction(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the store closes
	s := openTest(t, "", testConfig(t, PersistenceNone))
	models := make([]*setModel, hotSetMaxSets+3)
	for k := range models {
		models[k] = newSetModel(t, s)
		for i := 0; i < 350; i += 50 {
			ms := make([][]byte, 50)
			for j := range ms {
				ms[j] = member(i + j)
			}
			models[k].apply(s, fmt.Sprint("k", k), merge.Op{Kind: merge.OpSAdd, Members: ms})
		}
	}
	if hot, _ := s.HotSets(); hot > hotSetMaxSets {
		t.Fatalf("%d hot sets, bound %d", hot, hotSetMaxSets)
	}
	for k, m := range models {
		m.check(s, fmt.Sprint("k", k))
	}
	s.DropPartition(PartitionOf(nil, []byte("k0"), s.cfg.Partitions))
	var o vclock.Object
	if found, err := s.Get([]byte("sets"), []byte("k0"), &o); err != nil || found {
		t.Fatalf("after DropPartition: found=%v err=%v", found, err)
	}
}

// TestUpdateSetConcurrent: adds from several goroutines racing reads,
// scans and flushes all land (run with -race).
func TestUpdateSetConcurrent(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, p := range []Persistence{PersistenceNone, PersistenceAsync} {
		t.Run(p.String(), func(t *testing.T) {
			cfg := testConfig(t, p)
			cfg.FlushInterval = time.Millisecond
			s := openTest(t, t.TempDir(), cfg)
			strat, _ := merge.NewRegistry().Lookup(merge.NameSet)
			const writers, each = 4, 300
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						op := merge.Op{Kind: merge.OpSAdd, Members: [][]byte{member(w*each + i)}}
						at := merge.Coordinator{Node: s.NodeID(), HLC: vclock.Timestamp(1 + i)}
						if err := s.UpdateSet([]byte("sets"), []byte("k"), func(set *merge.SetObject) (bool, error) { return set.Apply(op, at) }); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				var o vclock.Object
				for range 200 {
					if _, err := s.Get([]byte("sets"), []byte("k"), &o); err != nil {
						t.Error(err)
						return
					}
					if _, _, err := s.GetCached([]byte("sets"), []byte("k"), &o); err != nil {
						t.Error(err)
						return
					}
					if err := s.Flush(); err != nil {
						t.Error(err)
						return
					}
				}
			}()
			wg.Wait()
			var o vclock.Object
			if _, err := s.Get([]byte("sets"), []byte("k"), &o); err != nil {
				t.Fatal(err)
			}
			if got := len(strat.Read(o, 0).Members); got != writers*each {
				t.Fatalf("%d members, want %d", got, writers*each)
			}
		})
	}
}

// BenchmarkUpdateSet: one SADD of a new member through the store (and an
// SREM, to keep the size) on sets of 1k, 10k and 100k members, memory-only.
func BenchmarkUpdateSet(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			cfg := testConfig(b, PersistenceNone)
			cfg.MemoryLimit = 256 << 20
			s := openTest(b, "", cfg)
			at := merge.Coordinator{Node: s.NodeID(), HLC: 1}
			for i := 0; i < n; i += 1000 {
				ms := make([][]byte, 0, 1000)
				for j := i; j < min(n, i+1000); j++ {
					ms = append(ms, fmt.Appendf(nil, "element:%09d", j))
				}
				op := merge.Op{Kind: merge.OpSAdd, Members: ms}
				if err := s.UpdateSet([]byte("sets"), []byte("k"), func(set *merge.SetObject) (bool, error) { return set.Apply(op, at) }); err != nil {
					b.Fatal(err)
				}
			}
			add := merge.Op{Kind: merge.OpSAdd, Members: [][]byte{[]byte("element:x")}}
			rem := merge.Op{Kind: merge.OpSRem, Members: add.Members}
			b.ReportAllocs()
			for b.Loop() {
				for _, op := range []merge.Op{add, rem} {
					if err := s.UpdateSet([]byte("sets"), []byte("k"), func(set *merge.SetObject) (bool, error) { return set.Apply(op, at) }); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// TestUpdateSetSettledByClose: with no flush tick ever due, Close settles
// a dirty set, with a tiny write-behind bound (settleForClose flushes the
// queue before each settle, since the flush loop has stopped by then; this
// test does not reliably catch a Close that forgot to), and the set
// survives the reopen.
func TestUpdateSetSettledByClose(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	dir := t.TempDir()
	cfg := testConfig(t, PersistenceAsync)
	cfg.MaxPendingBytes = 2 << 10
	cfg.FlushInterval = time.Hour // only queue pressure flushes
	s := openTest(t, dir, cfg)
	m := newSetModel(t, s)
	for i := 0; i < 600; i += 20 {
		ms := make([][]byte, 20)
		for j := range ms {
			ms[j] = member(i + j)
		}
		m.apply(s, "k", merge.Op{Kind: merge.OpSAdd, Members: ms})
	}
	m.apply(s, "k", merge.Op{Kind: merge.OpSAdd, Members: [][]byte{[]byte("dirty")}})
	put(t, s, "default", "big", string(bytes.Repeat([]byte("v"), 4<<10)), 0) // fills the queue
	if _, dirty := s.HotSets(); dirty != 1 {
		t.Fatalf("%d dirty sets before Close, want 1", dirty)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, cfg)
	m.check(s, "k")
}
