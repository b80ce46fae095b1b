package vclock_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ecachedb/ecache/vclock"
)

// benchVVs returns two concurrent vectors of n entries each over the same
// nodes, the worst case for Compare (it must scan to the end).
func benchVVs(n int) (vclock.VV, vclock.VV) {
	a, b := make(vclock.VV, n), make(vclock.VV, n)
	for i := range n {
		node := vclock.NodeID(uint64(i+1) << 40)
		a[i] = vclock.Entry{Node: node, Counter: uint64(100 + i)}
		b[i] = vclock.Entry{Node: node, Counter: uint64(100 + i)}
	}
	a[n-1].Counter++
	b[0].Counter++
	return a, b
}

func BenchmarkVVCompare(b *testing.B) {
	for _, n := range []int{3, 8} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			x, y := benchVVs(n)
			b.ReportAllocs()
			for b.Loop() {
				if x.Compare(y) != vclock.Concurrent {
					b.Fatal("wrong ordering")
				}
			}
		})
	}
}

func BenchmarkVVJoin(b *testing.B) {
	for _, n := range []int{3, 8} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			x, y := benchVVs(n)
			b.ReportAllocs()
			for b.Loop() {
				x.Join(y)
			}
		})
	}
}

// benchObject returns an object of three nodes holding two concurrent
// siblings of 64-byte values.
func benchObject() vclock.Object {
	val := make([]byte, 64)
	o := vclock.Object{}
	o, _ = o.Update(nil, 1<<40, vclock.Sibling{HLC: 1, Value: val})
	ctx := o.Clock.Clone()
	o, _ = o.Update(nil, 2<<40, vclock.Sibling{HLC: 2, Value: val})
	o, _ = o.Update(ctx, 3<<40, vclock.Sibling{HLC: 3, Value: val})
	if len(o.Siblings) != 2 {
		panic("benchObject: want 2 siblings")
	}
	return o
}

func BenchmarkObjectUpdate(b *testing.B) {
	o := benchObject()
	// The context covers one of the two siblings: one is dropped, one kept.
	ctx := vclock.VV{{Node: 2 << 40, Counter: 1}}
	s := vclock.Sibling{HLC: 4, Value: make([]byte, 64)}
	if got, _ := o.Update(ctx, 1<<40, s); len(got.Siblings) != 2 {
		b.Fatalf("update leaves %d siblings, want 2", len(got.Siblings))
	}
	b.ReportAllocs()
	for b.Loop() {
		o.Update(ctx, 1<<40, s)
	}
}

func BenchmarkObjectJoin(b *testing.B) {
	base := benchObject()
	x, _ := base.Update(nil, 1<<40, vclock.Sibling{HLC: 5, Value: make([]byte, 64)})
	y, _ := base.Update(base.Clock, 2<<40, vclock.Sibling{HLC: 6, Value: make([]byte, 64)})
	b.ReportAllocs()
	for b.Loop() {
		vclock.Join(x, y)
	}
}

func BenchmarkDecodeObject(b *testing.B) {
	o := benchObject()
	buf := o.AppendMsgpack(nil)
	var dst vclock.Object
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if err := vclock.DecodeObject(buf, &dst); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendObject(b *testing.B) {
	o := benchObject()
	buf := make([]byte, 0, o.EncodedSize())
	b.SetBytes(int64(len(o.AppendMsgpack(nil))))
	b.ReportAllocs()
	for b.Loop() {
		buf = o.AppendMsgpack(buf[:0])
	}
}

func BenchmarkHLCNow(b *testing.B) {
	h := vclock.NewHLC(time.Now, time.Second)
	b.ReportAllocs()
	for b.Loop() {
		h.Now()
	}
}
