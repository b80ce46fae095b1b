package merge

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/ecachedb/ecache/vclock"
	"pgregory.net/rapid"
)

func encodeObj(o vclock.Object) []byte { return o.AppendMsgpack(nil) }

// TestSetObjectMatchesStrategy: a SetObject driven by random adds and
// removes (with expiries set, merges with a concurrent replica and
// re-decodes in between through the strategy) yields, after every op,
// exactly the bytes setStrategy.Apply yields, reports a change exactly when
// the strategy's result differs from its input, and reads the same.
func TestSetObjectMatchesStrategy(t *testing.T) {
	s := mustLookup(t, NewRegistry(), NameSet)
	nodes := []vclock.NodeID{7, 300, 1 << 40}
	rapid.Check(t, func(t *rapid.T) {
		member := rapid.Custom(func(t *rapid.T) []byte {
			if rapid.IntRange(0, 20).Draw(t, "long") == 0 {
				return bytes.Repeat([]byte{'L'}, rapid.IntRange(250, 300).Draw(t, "len"))
			}
			return []byte{byte(rapid.IntRange(0, 9).Draw(t, "m"))}
		})
		var ref vclock.Object // the strategy's object
		var other vclock.Object
		obj, err := NewSetObject(ref, 0)
		if err != nil {
			t.Fatal(err)
		}
		ms := int64(0)
		for step := range rapid.IntRange(1, 60).Draw(t, "steps") {
			ms += rapid.Int64Range(-5, 40).Draw(t, "dt")
			at := Coordinator{Node: nodes[rapid.IntRange(0, 2).Draw(t, "node")], HLC: ts(ms)}
			switch rapid.IntRange(0, 9).Draw(t, "what") {
			case 0: // an expiry, or a concurrent replica's writes, through the strategy
				if rapid.Bool().Draw(t, "expire") {
					exp := nowAt(ms + rapid.Int64Range(1, 50).Draw(t, "ttl"))
					if next, err := s.Apply(ref, Op{Kind: OpExpire, Expiry: exp}, at); err == nil {
						ref = next
					}
				} else {
					if other, err = s.Apply(other, Op{Kind: OpSAdd, Members: [][]byte{member.Draw(t, "om")}}, Coordinator{Node: 9, HLC: ts(ms)}); err != nil {
						t.Fatal(err)
					}
					ref = s.Merge(ref, other)
				}
				if obj, err = NewSetObject(ref, 0); err != nil {
					t.Fatalf("step %d: NewSetObject: %v", step, err)
				}
				continue
			}
			kind := OpSAdd
			if rapid.IntRange(0, 2).Draw(t, "rem") == 0 {
				kind = OpSRem
			}
			op := Op{Kind: kind, Members: rapid.SliceOfN(member, 0, 4).Draw(t, "members")}
			want, err := s.Apply(ref, op, at)
			if err != nil {
				t.Fatalf("step %d: strategy: %v", step, err)
			}
			changed, err := obj.Apply(op, at)
			if err != nil {
				t.Fatalf("step %d: SetObject: %v", step, err)
			}
			wantBytes := encodeObj(want)
			if changed != !bytes.Equal(wantBytes, encodeObj(ref)) {
				t.Fatalf("step %d: %v changed=%v, strategy disagrees", step, op.Kind, changed)
			}
			ref = want
			if rapid.IntRange(0, 3).Draw(t, "skipObject") == 0 {
				continue // several ops between encodings
			}
			got := obj.Object()
			if !bytes.Equal(encodeObj(got), wantBytes) {
				t.Fatalf("step %d: %v: SetObject object %+v, strategy %+v", step, op.Kind, got, want)
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("step %d: invalid object: %v", step, err)
			}
			if got.IsZero() {
				if sz := obj.EncodedSize(); sz != 1 {
					t.Fatalf("step %d: EncodedSize of an absent set = %d", step, sz)
				}
			} else if sz := obj.EncodedSize(); sz != len(got.Siblings[0].Value) {
				t.Fatalf("step %d: EncodedSize %d, encoding has %d bytes", step, sz, len(got.Siblings[0].Value))
			}
			now := nowAt(ms + rapid.Int64Range(-10, 60).Draw(t, "readAt"))
			r := s.Read(ref, now)
			if obj.Len(now) != len(r.Members) {
				t.Fatalf("step %d: Len %d, strategy reads %d members", step, obj.Len(now), len(r.Members))
			}
			for _, m := range r.Members {
				if !obj.Has(m, now) {
					t.Fatalf("step %d: Has(%q) false, strategy reads it", step, m)
				}
			}
			if obj.MaxHLC() != ref.MaxHLC() {
				t.Fatalf("step %d: MaxHLC %v, object's %v", step, obj.MaxHLC(), ref.MaxHLC())
			}
		}
	})
}

// TestSetObjectBound: an add that would pass the bound fails with
// ErrStateTooLarge and leaves the set as it was.
func TestSetObjectBound(t *testing.T) {
	obj, err := NewSetObject(vclock.Object{}, 64)
	if err != nil {
		t.Fatal(err)
	}
	at := Coordinator{Node: 7, HLC: ts(1)}
	if _, err := obj.Apply(Op{Kind: OpSAdd, Members: [][]byte{[]byte("a")}}, at); err != nil {
		t.Fatal(err)
	}
	before := encodeObj(obj.Object())
	_, err = obj.Apply(Op{Kind: OpSAdd, Members: [][]byte{bytes.Repeat([]byte("x"), 64)}}, at)
	if !errors.Is(err, ErrStateTooLarge) {
		t.Fatalf("Apply over the bound: err %v, want ErrStateTooLarge", err)
	}
	if !bytes.Equal(encodeObj(obj.Object()), before) {
		t.Fatal("a refused add changed the set")
	}
	if _, err := obj.Apply(Op{Kind: OpIncr, Delta: 1}, at); !errors.Is(err, ErrWrongType) {
		t.Fatalf("Apply(incr): err %v, want ErrWrongType", err)
	}
	if _, err := NewSetObject(vclock.Object{Clock: vclock.VV{{Node: 1, Counter: 1}}, Siblings: []vclock.Sibling{{Dot: vclock.Dot{Node: 1, Counter: 1}, Value: []byte{0x92}}}}, 0); !errors.Is(err, ErrMalformedState) {
		t.Fatalf("NewSetObject(malformed): err %v, want ErrMalformedState", err)
	}
}

// largeSet returns a set object of n members added by three nodes.
func largeSet(b *testing.B, s Strategy, n int) vclock.Object {
	nodes := []vclock.NodeID{7, 300, 1 << 40}
	var cur vclock.Object
	const batch = 1000
	for i := 0; i < n; i += batch {
		ms := make([][]byte, 0, batch)
		for j := i; j < min(n, i+batch); j++ {
			ms = append(ms, fmt.Appendf(nil, "element:%09d", j))
		}
		cur = mustApply(b, s, cur, Op{Kind: OpSAdd, Members: ms}, nodes[(i/batch)%3], int64(i))
	}
	return cur
}

// BenchmarkSetObjectAdd: one SADD of a new member (and an SREM of it, to keep
// the size) on a decoded set of 1k, 10k and 100k members costs the same at
// every size; BenchmarkSetStrategyAdd is the whole-object path it replaces.
func BenchmarkSetObjectAdd(b *testing.B) {
	s := mustLookup(b, NewRegistry(), NameSet)
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			obj, err := NewSetObject(largeSet(b, s, n), 0)
			if err != nil {
				b.Fatal(err)
			}
			add := Op{Kind: OpSAdd, Members: [][]byte{[]byte("element:x")}}
			rem := Op{Kind: OpSRem, Members: add.Members}
			at := Coordinator{Node: 300, HLC: ts(1 << 30)}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := obj.Apply(add, at); err != nil {
					b.Fatal(err)
				}
				if _, err := obj.Apply(rem, at); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSetStrategyAdd(b *testing.B) {
	s := mustLookup(b, NewRegistry(), NameSet)
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			cur := largeSet(b, s, n)
			add := Op{Kind: OpSAdd, Members: [][]byte{[]byte("element:x")}}
			at := Coordinator{Node: 300, HLC: ts(1 << 30)}
			b.ReportAllocs()
			for b.Loop() {
				obj, err := s.Apply(cur, add, at)
				if err != nil {
					b.Fatal(err)
				}
				sinkObj = obj
			}
		})
	}
}

// BenchmarkSetObjectEncode is what a store pays when it needs the object of
// a hot set (a read, a flush) whose members did not change since the last
// encoding (the sort is cached): one encoding pass.
func BenchmarkSetObjectEncode(b *testing.B) {
	s := mustLookup(b, NewRegistry(), NameSet)
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			obj, err := NewSetObject(largeSet(b, s, n), 0)
			if err != nil {
				b.Fatal(err)
			}
			at := Coordinator{Node: 300, HLC: ts(1 << 30)}
			op := Op{Kind: OpSAdd, Members: [][]byte{[]byte("element:x")}}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := obj.Apply(op, at); err != nil {
					b.Fatal(err)
				}
				sinkObj = obj.Object()
			}
		})
	}
}

// FuzzSetObject: for any state decodeSet accepts, a SetObject re-encodes it
// unchanged, and adds and removes on it (which re-encode incrementally from
// that encoding) match the strategy byte for byte.
func FuzzSetObject(f *testing.F) {
	f.Add([]byte{0x90}, []byte("x"), uint8(0))
	var st setState
	st.push([]byte(""), vclock.Dot{Node: 1, Counter: 1})
	st.push([]byte("member"), vclock.Dot{Node: 1, Counter: 2}, vclock.Dot{Node: 300, Counter: 1 << 33})
	f.Add(st.appendMsgpack(nil), []byte("m"), uint8(1))
	many := make([]vclock.Dot, 9) // a dot array past the 15-element fixarray
	for i := range many {
		many[i] = vclock.Dot{Node: vclock.NodeID(10 + i), Counter: uint64(1) << (7 * i)}
	}
	st.push(bytes.Repeat([]byte("z"), 300), many...)
	f.Add(st.appendMsgpack(nil), []byte("member"), uint8(2))
	s := setStrategy{}
	f.Fuzz(func(t *testing.T, b, m []byte, sel uint8) {
		st, err := decodeSet(b)
		if err != nil {
			return
		}
		obj := fuzzObject(b, st.dots)
		so, err := NewSetObject(obj, 0)
		if err != nil {
			t.Fatalf("NewSetObject of a valid object: %v", err)
		}
		if got := so.Object(); !bytes.Equal(encodeObj(got), encodeObj(obj)) {
			t.Fatal("SetObject does not re-encode its input unchanged")
		}
		var first []byte
		if len(st.entries) > 0 {
			first = st.entries[(int(sel)/4)%len(st.entries)].member
		}
		ops := []Op{
			{Kind: OpSAdd, Members: [][]byte{m}},
			{Kind: OpSRem, Members: [][]byte{first, m}},
			{Kind: OpSAdd, Members: [][]byte{first}},
			{Kind: OpSRem, Members: [][]byte{m}},
		}
		for i := range 4 {
			op := ops[(int(sel)+i)%len(ops)]
			at := Coordinator{Node: vclock.NodeID(1 + i%2), HLC: ts(int64(i))}
			want, err := s.Apply(obj, op, at)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := so.Apply(op, at); err != nil {
				t.Fatal(err)
			}
			if sel&1 == 0 || i == 3 {
				if got := so.Object(); !bytes.Equal(encodeObj(got), encodeObj(want)) {
					t.Fatalf("after %v: SetObject %x, strategy %x", op.Kind, encodeObj(got), encodeObj(want))
				}
			}
			obj = want
		}
	})
}
