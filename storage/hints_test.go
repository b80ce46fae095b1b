package storage

import (
	"errors"
	"testing"

	"github.com/ecachedb/ecache/vclock"
)

func hintObj(node vclock.NodeID, counter uint64, value string) []byte {
	d := vclock.Dot{Node: node, Counter: counter}
	o := vclock.Object{Clock: vclock.VV{{Node: node, Counter: counter}}, Siblings: []vclock.Sibling{{Dot: d, Value: []byte(value)}}}
	return o.AppendMsgpack(nil)
}

type hint struct{ ns, key, obj string }

func scanHints(t *testing.T, s *Store, target vclock.NodeID) map[string]hint {
	t.Helper()
	out := map[string]hint{}
	if err := s.ScanHints(target, func(ns, key, obj []byte) error {
		out[string(ns)+"/"+string(key)] = hint{string(ns), string(key), string(obj)}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestHintsPersistAcrossReopen(t *testing.T) {
	for _, p := range []Persistence{PersistenceSync, PersistenceAsync} {
		t.Run(p.String(), func(t *testing.T) {
			dir := t.TempDir()
			s := openTest(t, dir, testConfig(t, p))
			for i, k := range []string{"a", "b", "c"} {
				if err := s.PutHint(7, []byte("ns"), []byte(k), hintObj(1, uint64(i+1), k)); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.PutHint(8, []byte("ns"), []byte("a"), hintObj(1, 9, "x")); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openTest(t, dir, testConfig(t, p))
			if st := s.HintStats(); st.Stored != 4 {
				t.Fatalf("stored %d after reopen, want 4", st.Stored)
			}
			got := scanHints(t, s, 7)
			if len(got) != 3 || got["ns/b"].obj != string(hintObj(1, 2, "b")) {
				t.Fatalf("hints for 7: %v", got)
			}
			if got := scanHints(t, s, 8); len(got) != 1 {
				t.Fatalf("hints for 8: %v", got)
			}
			targets, err := s.HintTargets()
			if err != nil || len(targets) != 2 {
				t.Fatalf("targets %v %v", targets, err)
			}
		})
	}
}

func TestHintOverwriteJoinsAndDelete(t *testing.T) {
	for _, p := range []Persistence{PersistenceSync, PersistenceNone} {
		t.Run(p.String(), func(t *testing.T) {
			s := openTest(t, t.TempDir(), testConfig(t, p))
			ns, key := []byte("ns"), []byte("k")
			if err := s.PutHint(7, ns, key, hintObj(1, 1, "one")); err != nil {
				t.Fatal(err)
			}
			if err := s.PutHint(7, ns, key, hintObj(2, 1, "two")); err != nil {
				t.Fatal(err)
			}
			got := scanHints(t, s, 7)
			if len(got) != 1 {
				t.Fatalf("%v", got)
			}
			var o vclock.Object
			if err := vclock.DecodeObject([]byte(got["ns/k"].obj), &o); err != nil {
				t.Fatal(err)
			}
			if len(o.Siblings) != 2 {
				t.Fatalf("overwrite did not join: %+v", o)
			}
			// A stale delivery does not delete the newer hint.
			if ok, err := s.DeleteHint(7, ns, key, hintObj(1, 1, "one")); err != nil || ok {
				t.Fatalf("stale delete: %v %v", ok, err)
			}
			if ok, err := s.DeleteHint(7, ns, key, []byte(got["ns/k"].obj)); err != nil || !ok {
				t.Fatalf("delete: %v %v", ok, err)
			}
			if got := scanHints(t, s, 7); len(got) != 0 {
				t.Fatalf("after delete: %v", got)
			}
			if st := s.HintStats(); st.Stored != 0 {
				t.Fatalf("%+v", st)
			}
			if targets, _ := s.HintTargets(); len(targets) != 0 {
				t.Fatalf("targets %v", targets)
			}
		})
	}
}

func TestHintBound(t *testing.T) {
	t.Run("memory drops oldest", func(t *testing.T) {
		s := openTest(t, "", testConfig(t, PersistenceNone))
		s.SetMaxHints(3)
		for i, k := range []string{"a", "b", "c", "d", "e"} {
			if err := s.PutHint(7, []byte("ns"), []byte(k), hintObj(1, uint64(i+1), k)); err != nil {
				t.Fatal(err)
			}
		}
		st := s.HintStats()
		if st.Stored != 3 || st.Dropped != 2 {
			t.Fatalf("%+v", st)
		}
		got := scanHints(t, s, 7)
		if _, ok := got["ns/a"]; ok || len(got) != 3 {
			t.Fatalf("oldest not dropped: %v", got)
		}
	})
	t.Run("persistent refuses new", func(t *testing.T) {
		s := openTest(t, t.TempDir(), testConfig(t, PersistenceSync))
		s.SetMaxHints(2)
		for i, k := range []string{"a", "b"} {
			if err := s.PutHint(7, []byte("ns"), []byte(k), hintObj(1, uint64(i+1), k)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PutHint(7, []byte("ns"), []byte("c"), hintObj(1, 3, "c")); !errors.Is(err, ErrHintsFull) {
			t.Fatalf("got %v, want ErrHintsFull", err)
		}
		// Overwriting an existing hint is still allowed.
		if err := s.PutHint(7, []byte("ns"), []byte("a"), hintObj(1, 4, "a2")); err != nil {
			t.Fatal(err)
		}
		if st := s.HintStats(); st.Stored != 2 || st.Dropped != 1 {
			t.Fatalf("%+v", st)
		}
	})
}

func TestHintsDoNotShowInDataScans(t *testing.T) {
	s := openTest(t, t.TempDir(), testConfig(t, PersistenceSync))
	if err := s.PutHint(7, []byte("ns"), []byte("k"), hintObj(1, 1, "v")); err != nil {
		t.Fatal(err)
	}
	for p := uint32(0); p < uint32(s.cfg.Partitions); p++ {
		if err := s.Scan(p, func(e *Entry) error { t.Fatalf("hint seen as data: %+v", e); return nil }); err != nil {
			t.Fatal(err)
		}
	}
}
