package merge

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/ecachedb/ecache/vclock"
)

var sinkObj vclock.Object
var sinkRes Result

// benchLWW is an lww object written by three nodes, holding a 100-byte value.
func benchLWW(b *testing.B, s Strategy) vclock.Object {
	var o vclock.Object
	for i, n := range []vclock.NodeID{7, 300, 1 << 40} {
		o = mustApply(b, s, o, Op{Kind: OpPut, Value: bytes.Repeat([]byte{'v'}, 100)}, n, int64(i))
	}
	return o
}

func BenchmarkLWWApplyPut(b *testing.B) {
	s := mustLookup(b, NewRegistry(), NameLWW)
	cur := benchLWW(b, s)
	op := Op{Kind: OpPut, Context: cur.Clock, Value: bytes.Repeat([]byte{'w'}, 100)}
	at := Coordinator{Node: 300, HLC: ts(10)}
	b.ReportAllocs()
	for b.Loop() {
		obj, err := s.Apply(cur, op, at)
		if err != nil {
			b.Fatal(err)
		}
		sinkObj = obj
	}
}

func BenchmarkLWWRead(b *testing.B) {
	s := mustLookup(b, NewRegistry(), NameLWW)
	obj := s.Merge(benchLWW(b, s), mustApply(b, s, vclock.Object{}, Op{Kind: OpPut, Value: []byte("x")}, 9, 1)) // two siblings
	now := nowAt(0)
	b.ReportAllocs()
	for b.Loop() {
		sinkRes = s.Read(obj, now)
	}
}

// BenchmarkMergeSiblings merges two replicas' 3-sibling objects that share
// one sibling and each hold two the other has not seen.
func BenchmarkMergeSiblings(b *testing.B) {
	s := mustLookup(b, NewRegistry(), NameSiblings)
	base := mustApply(b, s, vclock.Object{}, Op{Kind: OpPut, Value: []byte("base")}, 1, 0)
	x, y := base, base
	for i := range 2 {
		x = mustApply(b, s, x, Op{Kind: OpPut, Value: fmt.Appendf(nil, "x%d", i)}, 2, int64(i+1))
		y = mustApply(b, s, y, Op{Kind: OpPut, Value: fmt.Appendf(nil, "y%d", i)}, 3, int64(i+1))
	}
	if len(x.Siblings) != 3 || len(y.Siblings) != 3 {
		b.Fatalf("setup: %v %v", x, y)
	}
	b.ReportAllocs()
	for b.Loop() {
		sinkObj = s.Merge(x, y)
	}
}

func BenchmarkCounterIncr(b *testing.B) {
	s := mustLookup(b, NewRegistry(), NameCounter)
	var cur vclock.Object
	for i, n := range []vclock.NodeID{7, 300, 1 << 40} {
		cur = mustApply(b, s, cur, Op{Kind: OpIncr, Delta: 1000}, n, int64(i))
	}
	op := Op{Kind: OpIncr, Delta: 1}
	at := Coordinator{Node: 300, HLC: ts(10)}
	b.ReportAllocs()
	for b.Loop() {
		obj, err := s.Apply(cur, op, at)
		if err != nil {
			b.Fatal(err)
		}
		sinkObj = obj
	}
}

func BenchmarkCounterMerge(b *testing.B) {
	s := mustLookup(b, NewRegistry(), NameCounter)
	x := mustApply(b, s, vclock.Object{}, Op{Kind: OpIncr, Delta: 5}, 7, 0)
	y := mustApply(b, s, x, Op{Kind: OpIncr, Delta: 5}, 300, 1)
	x = mustApply(b, s, x, Op{Kind: OpIncr, Delta: -2}, 1<<40, 1)
	b.ReportAllocs()
	for b.Loop() {
		sinkObj = s.Merge(x, y)
	}
}

// benchSet is a set of 100 members added by three nodes.
func benchSet(b *testing.B, s Strategy) vclock.Object {
	var cur vclock.Object
	nodes := []vclock.NodeID{7, 300, 1 << 40}
	for i := range 100 {
		cur = mustApply(b, s, cur, Op{Kind: OpSAdd, Members: [][]byte{fmt.Appendf(nil, "member-%03d", i)}}, nodes[i%3], int64(i))
	}
	return cur
}

func BenchmarkSetAdd100(b *testing.B) {
	s := mustLookup(b, NewRegistry(), NameSet)
	cur := benchSet(b, s)
	op := Op{Kind: OpSAdd, Members: [][]byte{[]byte("member-050x")}}
	at := Coordinator{Node: 300, HLC: ts(1000)}
	b.ReportAllocs()
	for b.Loop() {
		obj, err := s.Apply(cur, op, at)
		if err != nil {
			b.Fatal(err)
		}
		sinkObj = obj
	}
}

func BenchmarkSetMerge100(b *testing.B) {
	s := mustLookup(b, NewRegistry(), NameSet)
	base := benchSet(b, s)
	x := mustApply(b, s, base, Op{Kind: OpSAdd, Members: [][]byte{[]byte("x")}}, 7, 1000)
	y := mustApply(b, s, base, Op{Kind: OpSRem, Members: [][]byte{[]byte("member-010")}}, 300, 1000)
	b.ReportAllocs()
	for b.Loop() {
		sinkObj = s.Merge(x, y)
	}
}

func BenchmarkSetRead100(b *testing.B) {
	s := mustLookup(b, NewRegistry(), NameSet)
	obj := benchSet(b, s)
	b.ReportAllocs()
	for b.Loop() {
		sinkRes = s.Read(obj, 0)
	}
}

func BenchmarkCounterRead(b *testing.B) {
	s := mustLookup(b, NewRegistry(), NameCounter)
	obj := mustApply(b, s, vclock.Object{}, Op{Kind: OpIncr, Delta: 5}, 7, 0)
	b.ReportAllocs()
	for b.Loop() {
		sinkRes = s.Read(obj, 0)
	}
}
