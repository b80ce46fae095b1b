package merge

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/ecachedb/ecache/vclock"
)

// The state decoders take bytes replicated from other nodes and read from
// disk. The fuzz targets check that they never panic, fail only with
// ErrMalformedState, accept only canonical encodings (decode then encode
// gives back the input), and that whatever they accept the strategies can
// read, merge (idempotently) and update. Seeds are in testdata/fuzz.

// fuzzObject wraps a state in an object whose clock covers the given dots
// and the sibling's own.
func fuzzObject(state []byte, dots []vclock.Dot) vclock.Object {
	d := vclock.Dot{Node: 1, Counter: 1}
	clock := vclock.VV{}.With(d)
	for _, x := range dots {
		clock = clock.With(x)
	}
	return vclock.Object{Clock: clock, Siblings: []vclock.Sibling{{Dot: d, Value: state}}}
}

func checkFuzzedObject(t *testing.T, s Strategy, obj vclock.Object, op Op) {
	s.Read(obj, 0)
	if m := s.Merge(obj, obj); !vclock.ObjectsEqual(m, obj) {
		t.Fatalf("Merge(x, x) = %v, want %v", m, obj)
	}
	next, err := s.Apply(obj, op, Coordinator{Node: 2, HLC: ts(0)})
	if err != nil && !errors.Is(err, ErrOverflow) {
		t.Fatalf("Apply(%v): %v", op.Kind, err)
	}
	if err == nil {
		if m := s.Merge(obj, next); !vclock.ObjectsEqual(m, next) {
			t.Fatalf("Merge(x, Apply(x)) = %v, want %v", m, next)
		}
	}
}

func FuzzDecodeCounter(f *testing.F) {
	f.Add([]byte{0x90})
	f.Add(counterState{{node: 1, p: 5}, {node: 1 << 40, p: 1 << 63, n: 7, rp: 3, rn: 7}}.appendMsgpack(nil))
	s := counterStrategy{}
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeCounter(b, nil)
		if err != nil {
			if !errors.Is(err, ErrMalformedState) {
				t.Fatalf("error %v does not wrap ErrMalformedState", err)
			}
			return
		}
		if got := st.appendMsgpack(nil); !bytes.Equal(got, b) {
			t.Fatalf("non-canonical state accepted:\nin  %x\nout %x", b, got)
		}
		st.value()
		obj := fuzzObject(b, nil)
		checkFuzzedObject(t, s, obj, Op{Kind: OpIncr, Delta: -3})
		checkFuzzedObject(t, s, obj, Op{Kind: OpDelete})
	})
}

func FuzzDecodeSet(f *testing.F) {
	f.Add([]byte{0x90})
	var st setState
	st.push([]byte(""), vclock.Dot{Node: 1, Counter: 1})
	st.push([]byte("member"), vclock.Dot{Node: 1, Counter: 2}, vclock.Dot{Node: 300, Counter: 1 << 33})
	f.Add(st.appendMsgpack(nil))
	s := setStrategy{}
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeSet(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedState) {
				t.Fatalf("error %v does not wrap ErrMalformedState", err)
			}
			return
		}
		if got := st.appendMsgpack(nil); !bytes.Equal(got, b) {
			t.Fatalf("non-canonical state accepted:\nin  %x\nout %x", b, got)
		}
		obj := fuzzObject(b, st.dots)
		members := make([][]byte, 0, len(st.entries))
		for i := range st.entries {
			members = append(members, st.entries[i].member)
		}
		if res := s.Read(obj, 0); res.Found != (len(members) > 0) || len(res.Members) != len(members) {
			t.Fatalf("Read = %+v for %d members", res, len(members))
		}
		checkFuzzedObject(t, s, obj, Op{Kind: OpSAdd, Members: [][]byte{[]byte("x"), []byte("")}})
		checkFuzzedObject(t, s, obj, Op{Kind: OpSRem, Members: members})
		checkFuzzedObject(t, s, obj, Op{Kind: OpDelete})
		// Dots the clock does not cover make the object malformed.
		clock := vclock.VV{{Node: 1, Counter: 1}}
		uncovered := slices.ContainsFunc(st.dots, func(d vclock.Dot) bool { return !clock.Covers(d) })
		narrow := vclock.Object{Clock: clock, Siblings: []vclock.Sibling{{Dot: vclock.Dot{Node: 1, Counter: 1}, Value: b}}}
		if _, _, err := decodeSetObject(&narrow); (err != nil) != uncovered || (err != nil && !errors.Is(err, ErrMalformedState)) {
			t.Fatalf("clock %v over dots %v: err = %v", clock, st.dots, err)
		}
	})
}
