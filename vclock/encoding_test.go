package vclock_test

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"

	"github.com/ecachedb/ecache/internal/msgp"
	"github.com/ecachedb/ecache/vclock"
)

// drawWideVV draws a vector over the whole node range, long enough at times
// to need a 16-bit array header (eight entries are sixteen elements).
func drawWideVV(t *rapid.T, label string) vclock.VV {
	m := rapid.MapOfN(rapid.Uint64Range(1, math.MaxUint64), genCounter, 0, 10).Draw(t, label)
	mm := make(model, len(m))
	for n, c := range m {
		mm[vclock.NodeID(n)] = c
	}
	return mm.vv()
}

// drawValue draws a value whose length sits around the bin8, bin16 and bin32
// boundaries now and then.
func drawValue(t *rapid.T) []byte {
	switch rapid.IntRange(0, 9).Draw(t, "value kind") {
	case 0:
		return nil
	case 1:
		n := rapid.IntRange(250, 260).Draw(t, "value len")
		return bytes.Repeat([]byte{rapid.Byte().Draw(t, "fill")}, n)
	case 2:
		n := rapid.IntRange(65530, 65540).Draw(t, "value len")
		return bytes.Repeat([]byte{rapid.Byte().Draw(t, "fill")}, n)
	}
	return rapid.SliceOfN(rapid.Byte(), 0, 40).Draw(t, "value")
}

// drawObject draws any valid object, reachable or not: a clock and siblings
// under some of the dots it covers.
func drawObject(t *rapid.T) vclock.Object {
	o := vclock.Object{Clock: drawWideVV(t, "clock")}
	if len(o.Clock) == 0 {
		return o
	}
	n := rapid.IntRange(0, 20).Draw(t, "siblings")
	seen := map[vclock.Dot]bool{}
	for range n {
		e := rapid.SampledFrom(o.Clock).Draw(t, "entry")
		d := vclock.Dot{Node: e.Node, Counter: rapid.Uint64Range(1, e.Counter).Draw(t, "counter")}
		if seen[d] {
			continue
		}
		seen[d] = true
		s := vclock.Sibling{
			Dot:       d,
			HLC:       vclock.Timestamp(rapid.Uint64().Draw(t, "hlc")),
			Expiry:    rapid.Int64Range(0, math.MaxInt64).Draw(t, "expiry"),
			Tombstone: rapid.Bool().Draw(t, "tombstone"),
		}
		if !s.Tombstone {
			s.Value = drawValue(t)
		}
		o.Siblings = append(o.Siblings, s)
	}
	slices.SortFunc(o.Siblings, func(a, b vclock.Sibling) int {
		if a.Dot.Less(b.Dot) {
			return -1
		}
		return 1
	})
	return o
}

// generic is the shape of an encoded object as a generic MessagePack
// library sees it: [[node, counter, ...], [[node, counter, hlc, expiry,
// tombstone, value], ...]].
func generic(o vclock.Object) []any {
	clock := []any{}
	for _, e := range o.Clock {
		clock = append(clock, uint64(e.Node), e.Counter)
	}
	sibs := []any{}
	for _, s := range o.Siblings {
		v := s.Value
		if v == nil {
			v = []byte{}
		}
		sibs = append(sibs, []any{uint64(s.Dot.Node), s.Dot.Counter, uint64(s.HLC), s.Expiry, s.Tombstone, v})
	}
	return []any{clock, sibs}
}

// vmEncode encodes v with vmihailenco/msgpack, in shortest integer form when
// compact is set and in the types' full widths otherwise.
func vmEncode(t rapid.TB, v any, compact bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(compact)
	if err := enc.Encode(v); err != nil {
		t.Fatalf("msgpack encode: %v", err)
	}
	return buf.Bytes()
}

// asUint returns the bits of any integer vmihailenco/msgpack decodes to.
func asUint(x any) (uint64, bool) {
	switch v := x.(type) {
	case int8:
		return uint64(v), true
	case int16:
		return uint64(v), true
	case int32:
		return uint64(v), true
	case int64:
		return uint64(v), true
	case uint8:
		return uint64(v), true
	case uint16:
		return uint64(v), true
	case uint32:
		return uint64(v), true
	case uint64:
		return v, true
	}
	return 0, false
}

// checkGenericShape decodes b with vmihailenco/msgpack into interface{} and
// checks it holds o.
func checkGenericShape(t rapid.TB, b []byte, o vclock.Object) {
	t.Helper()
	var v any
	if err := msgpack.Unmarshal(b, &v); err != nil {
		t.Fatalf("msgpack cannot decode our bytes: %v", err)
	}
	top, ok := v.([]any)
	if !ok || len(top) != 2 {
		t.Fatalf("top level = %#v, want a 2-element array", v)
	}
	clock, ok := top[0].([]any)
	if !ok || len(clock) != 2*len(o.Clock) {
		t.Fatalf("clock = %#v, want %d integers", top[0], 2*len(o.Clock))
	}
	for i, e := range o.Clock {
		n, ok1 := asUint(clock[2*i])
		c, ok2 := asUint(clock[2*i+1])
		if !ok1 || !ok2 || vclock.NodeID(n) != e.Node || c != e.Counter {
			t.Fatalf("clock entry %d = %#v, %#v; want %v", i, clock[2*i], clock[2*i+1], e)
		}
	}
	sibs, ok := top[1].([]any)
	if !ok || len(sibs) != len(o.Siblings) {
		t.Fatalf("siblings = %#v, want %d arrays", top[1], len(o.Siblings))
	}
	for i, s := range o.Siblings {
		f, ok := sibs[i].([]any)
		if !ok || len(f) != 6 {
			t.Fatalf("sibling %d = %#v, want a 6-element array", i, sibs[i])
		}
		node, ok1 := asUint(f[0])
		ctr, ok2 := asUint(f[1])
		hlc, ok3 := asUint(f[2])
		exp, ok4 := asUint(f[3])
		tomb, ok5 := f[4].(bool)
		val, ok6 := f[5].([]byte)
		if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
			t.Fatalf("sibling %d has field types %T %T %T %T %T %T", i, f[0], f[1], f[2], f[3], f[4], f[5])
		}
		if vclock.NodeID(node) != s.Dot.Node || ctr != s.Dot.Counter || vclock.Timestamp(hlc) != s.HLC ||
			int64(exp) != s.Expiry || tomb != s.Tombstone || !bytes.Equal(val, s.Value) {
			t.Fatalf("sibling %d decodes as %v, want %+v", i, f, s)
		}
	}
}

func TestPropVVEncodingRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		v := drawWideVV(t, "v")
		prefix := rapid.SliceOfN(rapid.Byte(), 0, 4).Draw(t, "prefix")
		b := v.AppendMsgpack(slices.Clone(prefix))
		if !bytes.Equal(b[:len(prefix)], prefix) {
			t.Fatalf("AppendMsgpack overwrote the prefix")
		}
		enc := b[len(prefix):]
		// The bytes are what a generic library writes for the same integers.
		ints := []any{}
		for _, e := range v {
			ints = append(ints, uint64(e.Node), e.Counter)
		}
		if want := vmEncode(t, ints, true); !bytes.Equal(enc, want) {
			t.Fatalf("encoding of %v = %x, msgpack writes %x", v, enc, want)
		}
		dst := drawWideVV(t, "dst")
		r := msgp.NewReader(enc)
		got, err := vclock.ReadVV(&r, dst)
		if err != nil {
			t.Fatalf("ReadVV(%x): %v", enc, err)
		}
		if !slices.Equal(got, v) || r.Len() != 0 {
			t.Fatalf("ReadVV = %v with %d bytes left, want %v", got, r.Len(), v)
		}
		ctx, err := vclock.DecodeContext(vclock.EncodeContext(v))
		if err != nil || !slices.Equal(ctx, v) {
			t.Fatalf("DecodeContext(EncodeContext(%v)) = %v, %v", v, ctx, err)
		}
	})
}

func TestPropObjectEncodingRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		o := drawObject(t)
		if err := o.Validate(); err != nil {
			t.Fatalf("generated invalid object: %v", err)
		}
		prefix := rapid.SliceOfN(rapid.Byte(), 0, 4).Draw(t, "prefix")
		b := o.AppendMsgpack(slices.Clone(prefix))
		if !bytes.Equal(b[:len(prefix)], prefix) {
			t.Fatalf("AppendMsgpack overwrote the prefix")
		}
		enc := b[len(prefix):]
		if len(enc) > o.EncodedSize() {
			t.Fatalf("encoding is %d bytes, EncodedSize promised at most %d", len(enc), o.EncodedSize())
		}
		// Decode into a fresh object and into one holding another's contents.
		var fresh vclock.Object
		if err := vclock.DecodeObject(enc, &fresh); err != nil {
			t.Fatalf("DecodeObject: %v", err)
		}
		if !vclock.ObjectsEqual(fresh, o) {
			t.Fatalf("round trip changed the object")
		}
		other := drawObject(t)
		dst := other.Clone()
		if err := vclock.DecodeObject(other.AppendMsgpack(nil), &dst); err != nil {
			t.Fatalf("DecodeObject(other): %v", err)
		}
		if err := vclock.DecodeObject(enc, &dst); err != nil {
			t.Fatalf("DecodeObject into used dst: %v", err)
		}
		if !vclock.ObjectsEqual(dst, o) {
			t.Fatalf("decoding into a used dst gave a different object")
		}
		// Deterministic: the decoded object re-encodes to the same bytes, and
		// so does an equal object built independently.
		if re := dst.AppendMsgpack(nil); !bytes.Equal(re, enc) {
			t.Fatalf("re-encoding differs:\n%x\n%x", re, enc)
		}
		if c := o.Clone(); !bytes.Equal(c.AppendMsgpack(nil), enc) {
			t.Fatalf("encoding of a clone differs")
		}
		// Interoperability: a generic library writes the same bytes for the
		// same shape and reads ours back as that shape.
		if want := vmEncode(t, generic(o), true); !bytes.Equal(enc, want) {
			t.Fatalf("encoding = %x, msgpack writes %x", enc, want)
		}
		checkGenericShape(t, enc, o)
		// We read a generic library's wide (non-shortest) integers too, and
		// re-encode them canonically.
		wide := vmEncode(t, generic(o), false)
		var fromWide vclock.Object
		if err := vclock.DecodeObject(wide, &fromWide); err != nil {
			t.Fatalf("DecodeObject of msgpack's full-width encoding: %v", err)
		}
		if !vclock.ObjectsEqual(fromWide, o) || !bytes.Equal(fromWide.AppendMsgpack(nil), enc) {
			t.Fatalf("full-width encoding decodes to a different object")
		}
	})
}

// The wire format is fixed: replicas of different versions must hash equal
// objects identically.
func TestObjectEncodingGolden(t *testing.T) {
	tests := []struct {
		name string
		o    vclock.Object
		want []byte
	}{
		{"zero", vclock.Object{}, []byte{0x92, 0x90, 0x90}},
		{
			"one sibling",
			obj(vv(1, 2), vclock.Sibling{Dot: dot(1, 2), HLC: 0x10000, Value: []byte("hi")}),
			[]byte{
				0x92,
				0x92, 0x01, 0x02,
				0x91,
				0x96, 0x01, 0x02, 0xce, 0x00, 0x01, 0x00, 0x00, 0x00, 0xc2, 0xc4, 0x02, 'h', 'i',
			},
		},
		{
			"tombstone with expiry and wide ids",
			obj(vv(0x80, 1, 1<<64-1, 300), vclock.Sibling{Dot: dot(1<<64-1, 300), HLC: 5, Expiry: 1 << 40, Tombstone: true}),
			[]byte{
				0x92,
				0x94, 0xcc, 0x80, 0x01, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xcd, 0x01, 0x2c,
				0x91,
				0x96, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xcd, 0x01, 0x2c, 0x05,
				0xcf, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc3, 0xc4, 0x00,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.o.AppendMsgpack(nil)
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("AppendMsgpack = % x\nwant            % x", got, tt.want)
			}
			checkGenericShape(t, got, tt.o)
			var back vclock.Object
			if err := vclock.DecodeObject(got, &back); err != nil || !vclock.ObjectsEqual(back, tt.o) {
				t.Fatalf("DecodeObject = %+v, %v", back, err)
			}
		})
	}
}

func TestEncodingDeterministic(t *testing.T) {
	// Equal objects built differently: nil versus empty values, different
	// slice capacities, joined in either order.
	a := obj(vv(1, 2, 2, 1), vclock.Sibling{Dot: dot(1, 2), Value: nil}, sib(2, 1))
	b := vclock.Object{Clock: make(vclock.VV, 0, 10), Siblings: make([]vclock.Sibling, 0, 10)}
	b.Clock = append(b.Clock, vv(1, 2, 2, 1)...)
	b.Siblings = append(b.Siblings, vclock.Sibling{Dot: dot(1, 2), Value: []byte{}}, sib(2, 1))
	if !vclock.ObjectsEqual(a, b) {
		t.Fatal("test objects are not equal")
	}
	if x, y := a.AppendMsgpack(nil), b.AppendMsgpack(nil); !bytes.Equal(x, y) {
		t.Errorf("equal objects encode differently:\n%x\n%x", x, y)
	}
	l, r := vclock.Join(a, obj(vv(3, 1), sib(3, 1))), vclock.Join(obj(vv(3, 1), sib(3, 1)), b)
	if x, y := l.AppendMsgpack(nil), r.AppendMsgpack(nil); !bytes.Equal(x, y) {
		t.Errorf("Join in either order encodes differently:\n%x\n%x", x, y)
	}
}

func TestDecodeContext(t *testing.T) {
	for _, in := range [][]byte{nil, {}} {
		v, err := vclock.DecodeContext(in)
		if err != nil || v != nil {
			t.Errorf("DecodeContext(%#v) = %#v, %v; want nil, nil", in, v, err)
		}
	}
	if got := vclock.EncodeContext(nil); !bytes.Equal(got, []byte{0x90}) {
		t.Errorf("EncodeContext(nil) = %x, want 90", got)
	}
	if v, err := vclock.DecodeContext([]byte{0x90}); err != nil || len(v) != 0 {
		t.Errorf("DecodeContext(90) = %v, %v; want empty", v, err)
	}
	for _, v := range []vclock.VV{vv(1, 1), vv(1, 2, 3, 4, 1<<63, 1<<64-1), vv(1, 1, 2, 1, 3, 1, 4, 1, 5, 1, 6, 1, 7, 1, 8, 1, 9, 1)} {
		b := vclock.EncodeContext(v)
		got, err := vclock.DecodeContext(b)
		if err != nil || !slices.Equal(got, v) {
			t.Errorf("DecodeContext(EncodeContext(%v)) = %v, %v", v, got, err)
		}
	}
}

// malformedContexts are encodings DecodeContext and ReadVV must refuse.
var malformedContexts = []struct {
	name string
	b    []byte
}{
	{"trailing bytes", []byte{0x92, 0x01, 0x01, 0x00}},
	{"odd length", []byte{0x93, 0x01, 0x01, 0x02}},
	{"odd length one", []byte{0x91, 0x01}},
	{"unsorted", []byte{0x94, 0x02, 0x01, 0x01, 0x01}},
	{"duplicate node", []byte{0x94, 0x01, 0x01, 0x01, 0x02}},
	{"zero counter", []byte{0x92, 0x01, 0x00}},
	{"zero node", []byte{0x92, 0x00, 0x01}},
	{"negative counter", []byte{0x92, 0x01, 0xff}},
	{"string node", []byte{0x92, 0xa1, 'x', 0x01}},
	{"not an array", []byte{0x01}},
	{"map", []byte{0x81, 0x01, 0x01}},
	{"truncated header", []byte{0xdc, 0x00}},
	{"truncated counter", []byte{0x92, 0x01, 0xcd, 0x01}},
	{"missing counter", []byte{0x92, 0x01}},
	{"huge header", []byte{0xdd, 0xff, 0xff, 0xff, 0xfe, 0x01, 0x01}},
}

func TestDecodeContextMalformed(t *testing.T) {
	for _, tt := range malformedContexts {
		t.Run(tt.name, func(t *testing.T) {
			v, err := vclock.DecodeContext(tt.b)
			if err == nil {
				t.Fatalf("DecodeContext(%x) = %v, want error", tt.b, v)
			}
			if !errors.Is(err, vclock.ErrMalformed) {
				t.Errorf("DecodeContext(%x) error %v does not wrap ErrMalformed", tt.b, err)
			}
		})
	}
}

// rawObject assembles an object's encoding from an encoded clock and encoded
// siblings, so tests can break one part of it.
func rawObject(clock []byte, sibs ...[]byte) []byte {
	b := append([]byte{0x92}, clock...)
	b = msgp.AppendArrayHeader(b, len(sibs))
	for _, s := range sibs {
		b = append(b, s...)
	}
	return b
}

// withFields replaces an encoded object's array header by hdr and appends
// extra as further fields.
func withFields(b []byte, hdr byte, extra ...byte) []byte {
	b = slices.Clone(b)
	b[0] = hdr
	return append(b, extra...)
}

// rawSibling encodes a sibling's fields as given, plus any extra fields.
func rawSibling(node, counter, hlc uint64, expiry int64, tomb bool, value []byte, extra ...[]byte) []byte {
	b := msgp.AppendArrayHeader(nil, 6+len(extra))
	b = msgp.AppendUint(b, node)
	b = msgp.AppendUint(b, counter)
	b = msgp.AppendUint(b, hlc)
	b = msgp.AppendInt(b, expiry)
	b = msgp.AppendBool(b, tomb)
	b = msgp.AppendBytes(b, value)
	for _, e := range extra {
		b = append(b, e...)
	}
	return b
}

func TestDecodeObjectMalformed(t *testing.T) {
	clock12 := vv(1, 2).AppendMsgpack(nil)
	good := rawSibling(1, 2, 3, 0, false, []byte("v"))
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty input", nil},
		{"trailing bytes", append(rawObject(clock12, good), 0xc0)},
		{"not an array", []byte{0xc0}},
		{"object with one field", []byte{0x91, 0x90}},
		{"object with no fields", []byte{0x90}},
		{"clock odd length", rawObject([]byte{0x93, 0x01, 0x02, 0x03})},
		{"clock unsorted", rawObject([]byte{0x94, 0x02, 0x01, 0x01, 0x02}, good)},
		{"clock zero counter", rawObject([]byte{0x92, 0x01, 0x00})},
		{"clock not an array", rawObject([]byte{0xc0})},
		{"siblings not an array", append(append([]byte{0x92}, clock12...), 0xc0)},
		{"sibling not an array", rawObject(clock12, []byte{0x01})},
		{"sibling with five fields", rawObject(clock12, []byte{0x95, 0x01, 0x02, 0x03, 0x00, 0xc2})},
		{"sibling node negative", rawObject(clock12, []byte{0x96, 0xff, 0x02, 0x03, 0x00, 0xc2, 0xc4, 0x00})},
		{"sibling hlc a string", rawObject(clock12, []byte{0x96, 0x01, 0x02, 0xa1, 'x', 0x00, 0xc2, 0xc4, 0x00})},
		{"sibling expiry overflows int64", rawObject(clock12, []byte{0x96, 0x01, 0x02, 0x03, 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0, 0xc2, 0xc4, 0x00})},
		{"sibling tombstone not a bool", rawObject(clock12, []byte{0x96, 0x01, 0x02, 0x03, 0x00, 0x01, 0xc4, 0x00})},
		{"sibling value an array", rawObject(clock12, []byte{0x96, 0x01, 0x02, 0x03, 0x00, 0xc2, 0x90})},
		{"sibling not covered", rawObject(clock12, rawSibling(1, 3, 0, 0, false, nil))},
		{"sibling of absent node", rawObject(clock12, rawSibling(2, 1, 0, 0, false, nil))},
		{"sibling zero node", rawObject(clock12, rawSibling(0, 1, 0, 0, false, nil))},
		{"sibling zero counter", rawObject(clock12, rawSibling(1, 0, 0, 0, false, nil))},
		{"siblings unsorted", rawObject(clock12, rawSibling(1, 2, 0, 0, false, nil), rawSibling(1, 1, 0, 0, false, nil))},
		{"duplicate sibling", rawObject(clock12, good, good)},
		{"tombstone with value", rawObject(clock12, rawSibling(1, 2, 0, 0, true, []byte("x")))},
		{"negative expiry", rawObject(clock12, rawSibling(1, 2, 0, -1, false, nil))},
		{"bad extra sibling field", rawObject(clock12, rawSibling(1, 2, 0, 0, false, nil, []byte{0xc1}))},
		{"bad extra object field", withFields(rawObject(clock12, good), 0x93, 0xc1)},
		{"truncated extra object field", withFields(rawObject(clock12, good), 0x93, 0xa5, 'a')},
		{"huge sibling count", append(append([]byte{0x92}, clock12...), 0xdd, 0xff, 0xff, 0xff, 0xff, 0x90)},
		{"huge value length", rawObject(clock12, []byte{0x96, 0x01, 0x02, 0x03, 0x00, 0xc2, 0xc6, 0xff, 0xff, 0xff, 0xff})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o vclock.Object
			err := vclock.DecodeObject(tt.b, &o)
			if err == nil {
				t.Fatalf("DecodeObject(%x) = %+v, want error", tt.b, o)
			}
			if !errors.Is(err, vclock.ErrMalformed) {
				t.Errorf("DecodeObject(%x) error %v does not wrap ErrMalformed", tt.b, err)
			}
		})
	}
	for _, tt := range malformedContexts {
		if tt.name == "trailing bytes" {
			continue // the clock is inside the object: its trailing byte is the sibling array
		}
		t.Run("clock "+tt.name, func(t *testing.T) {
			var o vclock.Object
			b := rawObject(tt.b)
			if err := vclock.DecodeObject(b, &o); !errors.Is(err, vclock.ErrMalformed) {
				t.Errorf("DecodeObject(%x) = %v, want ErrMalformed", b, err)
			}
		})
	}
}

func TestDecodeTruncated(t *testing.T) {
	o := obj(vv(1, 2, 1<<40, 70000, 1<<63, 1),
		vclock.Sibling{Dot: dot(1, 1), HLC: 1 << 60, Expiry: 1 << 50, Value: bytes.Repeat([]byte("x"), 300)},
		vclock.Sibling{Dot: dot(1<<40, 69999), Tombstone: true},
		vclock.Sibling{Dot: dot(1<<63, 1), HLC: 7, Value: []byte("y")},
	)
	b := o.AppendMsgpack(nil)
	for i := range len(b) {
		var dst vclock.Object
		if err := vclock.DecodeObject(b[:i], &dst); !errors.Is(err, vclock.ErrMalformed) {
			t.Fatalf("DecodeObject of %d of %d bytes = %v, want ErrMalformed", i, len(b), err)
		}
	}
	c := vclock.EncodeContext(o.Clock)
	for i := 1; i < len(c); i++ {
		if v, err := vclock.DecodeContext(c[:i]); !errors.Is(err, vclock.ErrMalformed) {
			t.Fatalf("DecodeContext of %d of %d bytes = %v, %v; want ErrMalformed", i, len(c), v, err)
		}
	}
}

// Newer versions may append fields to the object and sibling arrays; older
// decoders skip them.
func TestDecodeObjectForwardCompatible(t *testing.T) {
	clock := vv(1, 2).AppendMsgpack(nil)
	extras := [][]byte{
		{0xc0},
		{0x01},
		{0xa3, 'n', 'e', 'w'},
		{0x82, 0x01, 0x02, 0x03, 0x04},             // a map
		{0xd6, 0x01, 0x00, 0x00, 0x00, 0x00},       // fixext4
		{0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0},       // float64
		{0x92, 0x91, 0x90, 0xc7, 0x01, 0x05, 0xaa}, // nested arrays and ext8
		{0xc5, 0x00, 0x01, 0x00},                   // bin16
		{0xd9, 0x01, 'z'},                          // str8
		{0xca, 0x00, 0x00, 0x00, 0x00},             // float32
	}
	want := obj(vv(1, 2), vclock.Sibling{Dot: dot(1, 2), HLC: 9, Expiry: 4, Value: []byte("v")})
	for i, extra := range extras {
		s := rawSibling(1, 2, 9, 4, false, []byte("v"), extra, extra)
		b := rawObject(clock, s)
		b[0] = 0x94 // the object gains two fields as well
		b = append(b, extra...)
		b = append(b, extra...)
		var got vclock.Object
		if err := vclock.DecodeObject(b, &got); err != nil {
			t.Fatalf("extra %d (%x): %v", i, extra, err)
		}
		if !vclock.ObjectsEqual(got, want) {
			t.Fatalf("extra %d: decoded %+v, want %+v", i, got, want)
		}
		if re := got.AppendMsgpack(nil); !bytes.Equal(re, want.AppendMsgpack(nil)) {
			t.Fatalf("extra %d: re-encoding keeps unknown fields: %x", i, re)
		}
	}
}

func TestDecodeObjectReusesStorage(t *testing.T) {
	big := obj(vv(1, 5, 2, 5, 3, 5), sib(1, 4), sib(1, 5), sib(2, 5), sib(3, 5))
	small := obj(vv(1, 2, 2, 1), vclock.Sibling{Dot: dot(1, 2), Tombstone: true}, sib(2, 1))
	none := obj(vv(7, 7))

	for _, want := range []vclock.Object{small, none, big} {
		var dst vclock.Object
		if err := vclock.DecodeObject(big.AppendMsgpack(nil), &dst); err != nil {
			t.Fatal(err)
		}
		clockPtr, sibPtr := &dst.Clock[:1][0], &dst.Siblings[:1][0]
		if err := vclock.DecodeObject(want.AppendMsgpack(nil), &dst); err != nil {
			t.Fatal(err)
		}
		if !vclock.ObjectsEqual(dst, want) {
			t.Fatalf("decoded %+v over a larger object, want %+v", dst, want)
		}
		if err := dst.Validate(); err != nil {
			t.Fatalf("decoded object invalid: %v", err)
		}
		if &dst.Clock[:1][0] != clockPtr || &dst.Siblings[:1][0] != sibPtr {
			t.Errorf("decoding %v did not reuse dst's storage", dotsOf(want))
		}
	}

	// Growing: dst holds fewer siblings than the input.
	dst := small.Clone()
	if err := vclock.DecodeObject(big.AppendMsgpack(nil), &dst); err != nil {
		t.Fatal(err)
	}
	if !vclock.ObjectsEqual(dst, big) {
		t.Fatalf("decoded %+v over a smaller object, want %+v", dst, big)
	}

	// Stale fields of reused siblings never leak: every field is overwritten.
	stale := obj(vv(1, 1), vclock.Sibling{Dot: dot(1, 1), HLC: 99, Expiry: 99, Tombstone: false, Value: []byte("old")})
	fresh := obj(vv(1, 1), vclock.Sibling{Dot: dot(1, 1), Tombstone: true})
	dst = stale.Clone()
	if err := vclock.DecodeObject(fresh.AppendMsgpack(nil), &dst); err != nil {
		t.Fatal(err)
	}
	if s := dst.Siblings[0]; s.HLC != 0 || s.Expiry != 0 || !s.Tombstone || len(s.Value) != 0 {
		t.Errorf("reused sibling = %+v, want a bare tombstone", s)
	}
}

// Decoding a cached object into a dst with room for it must not allocate: it
// is on every read's path.
func TestDecodeObjectAllocs(t *testing.T) {
	o := obj(vv(1, 5, 2, 5, 3, 5), sib(1, 4), sib(2, 5), sib(3, 5))
	b := o.AppendMsgpack(nil)
	var dst vclock.Object
	if err := vclock.DecodeObject(b, &dst); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if err := vclock.DecodeObject(b, &dst); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Errorf("DecodeObject allocates %v times per run, want 0", allocs)
	}
	buf := make([]byte, 0, o.EncodedSize())
	allocs = testing.AllocsPerRun(100, func() { buf = o.AppendMsgpack(buf[:0]) })
	if allocs > 0 {
		t.Errorf("AppendMsgpack into a large enough buffer allocates %v times per run, want 0", allocs)
	}
	ctx := vclock.EncodeContext(o.Clock)
	v := make(vclock.VV, 0, 8)
	allocs = testing.AllocsPerRun(100, func() {
		r := msgp.NewReader(ctx)
		var err error
		if v, err = vclock.ReadVV(&r, v); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Errorf("ReadVV into a large enough vector allocates %v times per run, want 0", allocs)
	}
}
