package msgp_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/ecachedb/ecache/internal/msgp"
)

// uintBoundaries are the unsigned values at and around every change of
// encoding, with the length of their shortest encoding.
var uintBoundaries = []struct {
	v   uint64
	len int
}{
	{0, 1}, {1, 1}, {15, 1}, {16, 1}, {31, 1}, {32, 1}, {127, 1},
	{128, 2}, {255, 2},
	{256, 3}, {65535, 3},
	{65536, 5}, {math.MaxUint32, 5},
	{math.MaxUint32 + 1, 9}, {math.MaxInt64, 9}, {math.MaxInt64 + 1, 9}, {math.MaxUint64, 9},
}

// intBoundaries are the signed values at and around every change of
// encoding, with the length of their shortest encoding.
var intBoundaries = []struct {
	v   int64
	len int
}{
	{0, 1}, {1, 1}, {127, 1}, {128, 2}, {255, 2}, {256, 3}, {65535, 3}, {65536, 5},
	{math.MaxInt32, 5}, {math.MaxUint32, 5}, {math.MaxUint32 + 1, 9}, {math.MaxInt64, 9},
	{-1, 1}, {-15, 1}, {-16, 1}, {-31, 1}, {-32, 1},
	{-33, 2}, {-127, 2}, {-128, 2},
	{-129, 3}, {-255, 3}, {-256, 3}, {math.MinInt16, 3},
	{math.MinInt16 - 1, 5}, {-65535, 5}, {-65536, 5}, {math.MinInt32, 5},
	{math.MinInt32 - 1, 9}, {math.MinInt64 + 1, 9}, {math.MinInt64, 9},
}

// lengths are string and array sizes at and around every change of header.
var lengths = []int{0, 1, 15, 16, 31, 32, 127, 128, 255, 256, 65535, 65536, 70000}

// vm encodes with vmihailenco/msgpack, the reference implementation.
func vm(t *testing.T, f func(e *msgpack.Encoder) error) []byte {
	t.Helper()
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	if err := f(e); err != nil {
		t.Fatalf("msgpack: %v", err)
	}
	return buf.Bytes()
}

// vmDecoder returns a vmihailenco/msgpack decoder over b.
func vmDecoder(b []byte) *msgpack.Decoder { return msgpack.NewDecoder(bytes.NewReader(b)) }

var prefix = []byte{0xde, 0xad}

// appendAfterPrefix runs an appender on a buffer already holding prefix,
// checks the prefix survived and returns only the appended bytes.
func appendAfterPrefix(t *testing.T, f func([]byte) []byte) []byte {
	t.Helper()
	b := f(slices.Clone(prefix))
	if !bytes.HasPrefix(b, prefix) {
		t.Fatalf("appender overwrote the buffer's contents: %x", b)
	}
	return b[len(prefix):]
}

// checkTruncated checks that every proper prefix of enc makes read fail with
// ErrShort.
func checkTruncated(t *testing.T, enc []byte, read func(r *msgp.Reader) error) {
	t.Helper()
	step := 1
	if len(enc) > 1000 {
		step = len(enc) / 97 // spot-check long encodings
	}
	for i := 0; i < len(enc); i += step {
		r := msgp.NewReader(enc[:i])
		if err := read(&r); !errors.Is(err, msgp.ErrShort) {
			t.Fatalf("reading %d of %d bytes (%x): %v, want ErrShort", i, len(enc), enc[:min(i, 16)], err)
		}
	}
}

// checkSkip checks that Skip consumes exactly enc.
func checkSkip(t *testing.T, enc []byte) {
	t.Helper()
	b := append(slices.Clone(enc), 0x7f) // a sentinel after the value
	r := msgp.NewReader(b)
	if err := r.Skip(); err != nil {
		t.Fatalf("Skip(%x...): %v", enc[:min(len(enc), 16)], err)
	}
	if r.Offset() != len(enc) {
		t.Fatalf("Skip consumed %d bytes, want %d", r.Offset(), len(enc))
	}
	if v, err := r.Uint(); err != nil || v != 0x7f || r.Len() != 0 {
		t.Fatalf("after Skip, sentinel read %d, %v with %d bytes left", v, err, r.Len())
	}
}

func TestUint(t *testing.T) {
	for _, tt := range uintBoundaries {
		t.Run(fmt.Sprint(tt.v), func(t *testing.T) {
			enc := appendAfterPrefix(t, func(b []byte) []byte { return msgp.AppendUint(b, tt.v) })
			if len(enc) != tt.len {
				t.Errorf("AppendUint(%d) = %x, want %d bytes", tt.v, enc, tt.len)
			}
			if want := vm(t, func(e *msgpack.Encoder) error { return e.EncodeUint(tt.v) }); !bytes.Equal(enc, want) {
				t.Errorf("AppendUint(%d) = %x, msgpack writes %x", tt.v, enc, want)
			}
			if got, err := vmDecoder(enc).DecodeUint64(); err != nil || got != tt.v {
				t.Errorf("msgpack reads %x as %d, %v", enc, got, err)
			}
			r := msgp.NewReader(enc)
			if got, err := r.Uint(); err != nil || got != tt.v || r.Len() != 0 {
				t.Errorf("Uint() = %d, %v with %d bytes left; want %d", got, err, r.Len(), tt.v)
			}
			r.Reset(enc)
			got, err := r.Int()
			if tt.v <= math.MaxInt64 {
				if err != nil || got != int64(tt.v) {
					t.Errorf("Int() = %d, %v; want %d", got, err, tt.v)
				}
			} else if !errors.Is(err, msgp.ErrType) || r.Offset() != 0 {
				t.Errorf("Int() of %d = %d, %v at offset %d; want ErrType at 0", tt.v, got, err, r.Offset())
			}
			checkSkip(t, enc)
			checkTruncated(t, enc, func(r *msgp.Reader) error { _, err := r.Uint(); return err })
			checkTruncated(t, enc, func(r *msgp.Reader) error { return r.Skip() })
		})
	}
}

func TestInt(t *testing.T) {
	for _, tt := range intBoundaries {
		t.Run(fmt.Sprint(tt.v), func(t *testing.T) {
			enc := appendAfterPrefix(t, func(b []byte) []byte { return msgp.AppendInt(b, tt.v) })
			if len(enc) != tt.len {
				t.Errorf("AppendInt(%d) = %x, want %d bytes", tt.v, enc, tt.len)
			}
			if want := vm(t, func(e *msgpack.Encoder) error { return e.EncodeInt(tt.v) }); !bytes.Equal(enc, want) {
				t.Errorf("AppendInt(%d) = %x, msgpack writes %x", tt.v, enc, want)
			}
			if got, err := vmDecoder(enc).DecodeInt64(); err != nil || got != tt.v {
				t.Errorf("msgpack reads %x as %d, %v", enc, got, err)
			}
			r := msgp.NewReader(enc)
			if got, err := r.Int(); err != nil || got != tt.v || r.Len() != 0 {
				t.Errorf("Int() = %d, %v with %d bytes left; want %d", got, err, r.Len(), tt.v)
			}
			r.Reset(enc)
			got, err := r.Uint()
			if tt.v >= 0 {
				if err != nil || got != uint64(tt.v) {
					t.Errorf("Uint() = %d, %v; want %d", got, err, tt.v)
				}
				if want := msgp.AppendUint(nil, uint64(tt.v)); !bytes.Equal(enc, want) {
					t.Errorf("AppendInt(%d) = %x differs from AppendUint's %x", tt.v, enc, want)
				}
			} else if !errors.Is(err, msgp.ErrType) || r.Offset() != 0 {
				t.Errorf("Uint() of %d = %d, %v at offset %d; want ErrType at 0", tt.v, got, err, r.Offset())
			}
			checkSkip(t, enc)
			checkTruncated(t, enc, func(r *msgp.Reader) error { _, err := r.Int(); return err })
			checkTruncated(t, enc, func(r *msgp.Reader) error { return r.Skip() })
		})
	}
}

// The reader accepts every integer encoding, not only the shortest, since
// other writers use fixed widths.
func TestReadWideIntegers(t *testing.T) {
	type enc struct {
		name string
		f    func(e *msgpack.Encoder, v int64) error
		min  int64
		max  int64
	}
	encs := []enc{
		{"uint8", func(e *msgpack.Encoder, v int64) error { return e.EncodeUint8(uint8(v)) }, 0, math.MaxUint8},
		{"uint16", func(e *msgpack.Encoder, v int64) error { return e.EncodeUint16(uint16(v)) }, 0, math.MaxUint16},
		{"uint32", func(e *msgpack.Encoder, v int64) error { return e.EncodeUint32(uint32(v)) }, 0, math.MaxUint32},
		{"uint64", func(e *msgpack.Encoder, v int64) error { return e.EncodeUint64(uint64(v)) }, 0, math.MaxInt64},
		{"int8", func(e *msgpack.Encoder, v int64) error { return e.EncodeInt8(int8(v)) }, math.MinInt8, math.MaxInt8},
		{"int16", func(e *msgpack.Encoder, v int64) error { return e.EncodeInt16(int16(v)) }, math.MinInt16, math.MaxInt16},
		{"int32", func(e *msgpack.Encoder, v int64) error { return e.EncodeInt32(int32(v)) }, math.MinInt32, math.MaxInt32},
		{"int64", func(e *msgpack.Encoder, v int64) error { return e.EncodeInt64(v) }, math.MinInt64, math.MaxInt64},
	}
	for _, e := range encs {
		for _, tt := range intBoundaries {
			if tt.v < e.min || tt.v > e.max {
				continue
			}
			b := vm(t, func(enc *msgpack.Encoder) error { return e.f(enc, tt.v) })
			r := msgp.NewReader(b)
			if got, err := r.Int(); err != nil || got != tt.v || r.Len() != 0 {
				t.Errorf("%s %d (%x): Int() = %d, %v", e.name, tt.v, b, got, err)
			}
			r.Reset(b)
			got, err := r.Uint()
			if tt.v >= 0 && (err != nil || got != uint64(tt.v)) {
				t.Errorf("%s %d (%x): Uint() = %d, %v", e.name, tt.v, b, got, err)
			}
			if tt.v < 0 && !errors.Is(err, msgp.ErrType) {
				t.Errorf("%s %d (%x): Uint() = %d, %v; want ErrType", e.name, tt.v, b, got, err)
			}
			checkSkip(t, b)
		}
	}
	// The largest uint64 in full width.
	b := vm(t, func(e *msgpack.Encoder) error { return e.EncodeUint64(math.MaxUint64) })
	r := msgp.NewReader(b)
	if got, err := r.Uint(); err != nil || got != math.MaxUint64 {
		t.Errorf("Uint() = %d, %v; want MaxUint64", got, err)
	}
}

func TestBytes(t *testing.T) {
	for _, n := range lengths {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			v := bytes.Repeat([]byte{0xa5}, n)
			enc := appendAfterPrefix(t, func(b []byte) []byte { return msgp.AppendBytes(b, v) })
			var hdr []byte
			switch {
			case n <= math.MaxUint8:
				hdr = []byte{0xc4, byte(n)}
			case n <= math.MaxUint16:
				hdr = []byte{0xc5, byte(n >> 8), byte(n)}
			default:
				hdr = []byte{0xc6, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
			}
			if !bytes.HasPrefix(enc, hdr) || len(enc) != len(hdr)+n {
				t.Fatalf("AppendBytes of %d bytes starts %x, %d long; want header %x", n, enc[:min(len(enc), 5)], len(enc), hdr)
			}
			if want := vm(t, func(e *msgpack.Encoder) error { return e.EncodeBytes(v) }); !bytes.Equal(enc, want) {
				t.Errorf("AppendBytes of %d bytes differs from msgpack's", n)
			}
			if got, err := vmDecoder(enc).DecodeBytes(); err != nil || !bytes.Equal(got, v) {
				t.Errorf("msgpack cannot read our bytes back: %v", err)
			}
			b := append(slices.Clone(enc), 0x01)
			r := msgp.NewReader(b)
			got, err := r.Bytes()
			if err != nil || !bytes.Equal(got, v) {
				t.Fatalf("Bytes() = %d bytes, %v; want %d", len(got), err, n)
			}
			// The result aliases the input but cannot be appended into it.
			if n > 0 && &got[0] != &b[len(hdr)] {
				t.Errorf("Bytes() copied instead of aliasing the input")
			}
			if cap(got) != len(got) {
				t.Errorf("Bytes() result has capacity %d beyond its length %d", cap(got), len(got))
			}
			_ = append(got, 0xff)
			if next, err := r.Uint(); err != nil || next != 1 {
				t.Errorf("value after the bytes = %d, %v; want 1 (appending to the result must not clobber the input)", next, err)
			}
			r.Reset(enc)
			if s, err := r.String(); err != nil || s != string(v) {
				t.Errorf("String() of bin = %d bytes, %v", len(s), err)
			}
			checkSkip(t, enc)
			checkTruncated(t, enc, func(r *msgp.Reader) error { _, err := r.Bytes(); return err })
			checkTruncated(t, enc, func(r *msgp.Reader) error { return r.Skip() })
		})
	}
}

func TestString(t *testing.T) {
	for _, n := range lengths {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			v := strings.Repeat("é", n/2) + strings.Repeat("x", n%2)
			enc := appendAfterPrefix(t, func(b []byte) []byte { return msgp.AppendString(b, v) })
			var hdr []byte
			switch {
			case n < 32:
				hdr = []byte{0xa0 | byte(n)}
			case n <= math.MaxUint8:
				hdr = []byte{0xd9, byte(n)}
			case n <= math.MaxUint16:
				hdr = []byte{0xda, byte(n >> 8), byte(n)}
			default:
				hdr = []byte{0xdb, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
			}
			if !bytes.HasPrefix(enc, hdr) || len(enc) != len(hdr)+n {
				t.Fatalf("AppendString of %d bytes starts %x, %d long; want header %x", n, enc[:min(len(enc), 5)], len(enc), hdr)
			}
			if want := vm(t, func(e *msgpack.Encoder) error { return e.EncodeString(v) }); !bytes.Equal(enc, want) {
				t.Errorf("AppendString of %d bytes differs from msgpack's", n)
			}
			if got, err := vmDecoder(enc).DecodeString(); err != nil || got != v {
				t.Errorf("msgpack cannot read our string back: %v", err)
			}
			r := msgp.NewReader(enc)
			if got, err := r.String(); err != nil || got != v || r.Len() != 0 {
				t.Errorf("String() = %d bytes, %v", len(got), err)
			}
			r.Reset(enc)
			if got, err := r.Bytes(); err != nil || string(got) != v {
				t.Errorf("Bytes() of str = %d bytes, %v", len(got), err)
			}
			checkSkip(t, enc)
			checkTruncated(t, enc, func(r *msgp.Reader) error { _, err := r.String(); return err })
			checkTruncated(t, enc, func(r *msgp.Reader) error { return r.Skip() })
		})
	}
}

func TestArrayHeader(t *testing.T) {
	for _, n := range lengths {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			hdr := appendAfterPrefix(t, func(b []byte) []byte { return msgp.AppendArrayHeader(b, n) })
			var want []byte
			switch {
			case n < 16:
				want = []byte{0x90 | byte(n)}
			case n <= math.MaxUint16:
				want = []byte{0xdc, byte(n >> 8), byte(n)}
			default:
				want = []byte{0xdd, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
			}
			if !bytes.Equal(hdr, want) {
				t.Fatalf("AppendArrayHeader(%d) = %x, want %x", n, hdr, want)
			}
			if vmHdr := vm(t, func(e *msgpack.Encoder) error { return e.EncodeArrayLen(n) }); !bytes.Equal(hdr, vmHdr) {
				t.Errorf("AppendArrayHeader(%d) = %x, msgpack writes %x", n, hdr, vmHdr)
			}
			// A whole array of small integers, compared with msgpack's
			// encoding of the same slice.
			enc := slices.Clone(hdr)
			elems := make([]any, n)
			for i := range n {
				enc = msgp.AppendUint(enc, uint64(i%128))
				elems[i] = uint64(i % 128)
			}
			if want := vm(t, func(e *msgpack.Encoder) error { e.UseCompactInts(true); return e.Encode(elems) }); !bytes.Equal(enc, want) {
				t.Errorf("array of %d differs from msgpack's", n)
			}
			r := msgp.NewReader(enc)
			if got, err := r.ArrayHeader(); err != nil || got != n || r.Offset() != len(hdr) {
				t.Fatalf("ArrayHeader() = %d, %v at offset %d; want %d at %d", got, err, r.Offset(), n, len(hdr))
			}
			for i := range n {
				if v, err := r.Uint(); err != nil || v != uint64(i%128) {
					t.Fatalf("element %d = %d, %v", i, v, err)
				}
			}
			checkSkip(t, enc)
			checkTruncated(t, enc, func(r *msgp.Reader) error { return r.Skip() })
			if n > 0 {
				// A header whose elements are missing is refused up front.
				r := msgp.NewReader(hdr)
				if _, err := r.ArrayHeader(); !errors.Is(err, msgp.ErrShort) {
					t.Errorf("ArrayHeader() of a bare %d-element header = %v, want ErrShort", n, err)
				}
			}
		})
	}
}

func TestNilAndBool(t *testing.T) {
	if got, want := msgp.AppendNil(nil), vm(t, func(e *msgpack.Encoder) error { return e.EncodeNil() }); !bytes.Equal(got, want) {
		t.Errorf("AppendNil = %x, msgpack writes %x", got, want)
	}
	for _, v := range []bool{false, true} {
		enc := appendAfterPrefix(t, func(b []byte) []byte { return msgp.AppendBool(b, v) })
		if want := vm(t, func(e *msgpack.Encoder) error { return e.EncodeBool(v) }); !bytes.Equal(enc, want) {
			t.Errorf("AppendBool(%v) = %x, msgpack writes %x", v, enc, want)
		}
		r := msgp.NewReader(enc)
		if got, err := r.Bool(); err != nil || got != v || r.Len() != 0 {
			t.Errorf("Bool() = %v, %v; want %v", got, err, v)
		}
		checkSkip(t, enc)
	}
	b := msgp.AppendNil(msgp.AppendBool(msgp.AppendNil(nil), true))
	r := msgp.NewReader(b)
	if !r.IsNil() || r.Offset() != 1 {
		t.Fatalf("IsNil() on nil = false or did not consume it")
	}
	if r.IsNil() || r.Offset() != 1 {
		t.Fatalf("IsNil() on a bool = true or consumed it")
	}
	if v, err := r.Bool(); err != nil || !v {
		t.Fatalf("Bool() = %v, %v", v, err)
	}
	// A nil reads as an absent byte string.
	if v, err := r.Bytes(); err != nil || v != nil || r.Len() != 0 {
		t.Fatalf("Bytes() of nil = %v, %v", v, err)
	}
	if r.IsNil() {
		t.Fatalf("IsNil() at end of input = true")
	}
	checkSkip(t, msgp.AppendNil(nil))
}

func TestTypeErrors(t *testing.T) {
	getters := map[string]func(r *msgp.Reader) error{
		"ArrayHeader": func(r *msgp.Reader) error { _, err := r.ArrayHeader(); return err },
		"Bool":        func(r *msgp.Reader) error { _, err := r.Bool(); return err },
		"Uint":        func(r *msgp.Reader) error { _, err := r.Uint(); return err },
		"Int":         func(r *msgp.Reader) error { _, err := r.Int(); return err },
		"Bytes":       func(r *msgp.Reader) error { _, err := r.Bytes(); return err },
		"String":      func(r *msgp.Reader) error { _, err := r.String(); return err },
	}
	values := map[string][]byte{
		"array":       {0x91, 0x01},
		"bool":        {0xc3},
		"uint":        {0xcc, 0xff},
		"negative":    {0xd0, 0x80},
		"big uint":    msgp.AppendUint(nil, math.MaxUint64),
		"bin":         {0xc4, 0x01, 'a'},
		"str":         {0xa1, 'a'},
		"nil":         {0xc0},
		"map":         {0x81, 0x01, 0x02},
		"float":       {0xca, 0, 0, 0, 0},
		"ext":         {0xd4, 0x01, 0x02},
		"invalid tag": {0xc1},
	}
	accepts := map[string][]string{
		"ArrayHeader": {"array"},
		"Bool":        {"bool"},
		"Uint":        {"uint", "big uint"},
		"Int":         {"uint", "negative"},
		"Bytes":       {"bin", "str", "nil"},
		"String":      {"bin", "str", "nil"},
	}
	for gname, get := range getters {
		for vname, b := range values {
			r := msgp.NewReader(b)
			err := get(&r)
			if slices.Contains(accepts[gname], vname) {
				if err != nil {
					t.Errorf("%s of %s (%x) = %v", gname, vname, b, err)
				}
				continue
			}
			if !errors.Is(err, msgp.ErrType) {
				t.Errorf("%s of %s (%x) = %v, want ErrType", gname, vname, b, err)
			}
			if r.Offset() != 0 {
				t.Errorf("%s of %s (%x) failed but consumed %d bytes", gname, vname, b, r.Offset())
			}
		}
	}
}

// Skip must step over anything a generic writer produces, so that decoders
// can ignore fields newer versions add.
func TestSkipForeignValues(t *testing.T) {
	bigMap := make(map[string]any, 70000)
	for i := range 70000 {
		bigMap[fmt.Sprint(i)] = i
	}
	midMap := make(map[string]any, 20)
	for i := range 20 {
		midMap[fmt.Sprint(i)] = []any{i, "x"}
	}
	tests := map[string]func(e *msgpack.Encoder) error{
		"fixmap":       func(e *msgpack.Encoder) error { return e.Encode(map[string]any{"a": 1, "b": []any{true, nil, "c"}}) },
		"map16":        func(e *msgpack.Encoder) error { return e.Encode(midMap) },
		"map32":        func(e *msgpack.Encoder) error { return e.Encode(bigMap) },
		"empty map":    func(e *msgpack.Encoder) error { return e.Encode(map[string]any{}) },
		"map of maps":  func(e *msgpack.Encoder) error { return e.Encode(map[int]any{1: map[int]any{2: map[int]any{3: 4}}}) },
		"float32":      func(e *msgpack.Encoder) error { return e.EncodeFloat32(1.5) },
		"float64":      func(e *msgpack.Encoder) error { return e.EncodeFloat64(math.Pi) },
		"time":         func(e *msgpack.Encoder) error { return e.EncodeTime(time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)) },
		"time seconds": func(e *msgpack.Encoder) error { return e.EncodeTime(time.Unix(1700000000, 0)) },
		"time far":     func(e *msgpack.Encoder) error { return e.EncodeTime(time.Date(3000, 1, 1, 0, 0, 0, 1, time.UTC)) },
		"nested arrays": func(e *msgpack.Encoder) error {
			return e.Encode([]any{[]any{}, []any{[]any{[]any{1, "x"}}, -1, []byte("y")}, nil, 2.5})
		},
		"array of maps": func(e *msgpack.Encoder) error { return e.Encode([]any{map[string]int{"a": 1}, map[string]int{}}) },
		"array16 of arrays": func(e *msgpack.Encoder) error {
			a := make([]any, 300)
			for i := range a {
				a[i] = []any{i, float32(i)}
			}
			return e.Encode(a)
		},
		"struct": func(e *msgpack.Encoder) error {
			return e.Encode(struct {
				A int
				B string
				C []float64
				D map[string]bool
			}{1, "two", []float64{3}, map[string]bool{"four": true}})
		},
		"string":    func(e *msgpack.Encoder) error { return e.EncodeString(strings.Repeat("s", 300)) },
		"bin":       func(e *msgpack.Encoder) error { return e.EncodeBytes(make([]byte, 70000)) },
		"int64":     func(e *msgpack.Encoder) error { return e.EncodeInt64(-5) },
		"uint8":     func(e *msgpack.Encoder) error { return e.EncodeUint8(3) },
		"bool":      func(e *msgpack.Encoder) error { return e.EncodeBool(true) },
		"nil":       func(e *msgpack.Encoder) error { return e.EncodeNil() },
		"negfixint": func(e *msgpack.Encoder) error { return e.EncodeInt(-7) },
	}
	for name, f := range tests {
		t.Run(name, func(t *testing.T) {
			enc := vm(t, f)
			checkSkip(t, enc)
			if len(enc) < 5000 {
				checkTruncated(t, enc, func(r *msgp.Reader) error { return r.Skip() })
			}
		})
	}
	// Every ext form: fixext1..16, ext8, ext16, ext32. Payload bytes are not
	// tags, so fill them with one that is invalid as a tag.
	for _, n := range []int{1, 2, 4, 8, 16, 0, 3, 255, 256, 65535, 65536} {
		t.Run(fmt.Sprintf("ext of %d", n), func(t *testing.T) {
			enc := vm(t, func(e *msgpack.Encoder) error { return e.EncodeExtHeader(42, n) })
			enc = append(enc, bytes.Repeat([]byte{0xc1}, n)...)
			checkSkip(t, enc)
			if len(enc) < 5000 {
				checkTruncated(t, enc, func(r *msgp.Reader) error { return r.Skip() })
			}
		})
	}
}

func TestSkipDepth(t *testing.T) {
	nested := func(depth int) []byte {
		b := bytes.Repeat([]byte{0x91}, depth)
		return append(b, 0xc0)
	}
	checkSkip(t, nested(32))
	// Deep nesting is refused rather than recursed into without bound.
	for _, depth := range []int{1000, 1 << 20} {
		r := msgp.NewReader(nested(depth))
		if err := r.Skip(); !errors.Is(err, msgp.ErrType) {
			t.Errorf("Skip of %d nested arrays = %v, want ErrType", depth, err)
		}
	}
	// The same through maps.
	m := append(bytes.Repeat([]byte{0x81, 0x01}, 1000), 0x01)
	r := msgp.NewReader(m)
	if err := r.Skip(); !errors.Is(err, msgp.ErrType) {
		t.Errorf("Skip of 1000 nested maps = %v, want ErrType", err)
	}
}

func TestSkipInvalidTag(t *testing.T) {
	for _, b := range [][]byte{{0xc1}, {0x92, 0x01, 0xc1}, {0x81, 0xc1, 0x01}} {
		r := msgp.NewReader(b)
		if err := r.Skip(); !errors.Is(err, msgp.ErrType) {
			t.Errorf("Skip(%x) = %v, want ErrType", b, err)
		}
	}
}

// Headers that claim more than the input holds fail with ErrShort before
// anything is allocated for them.
func TestHostileHeaders(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		read func(r *msgp.Reader) error
	}{
		{"array32 of 2^32-1", []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0}, arrayHeader},
		{"array32 of 2^31", []byte{0xdd, 0x80, 0x00, 0x00, 0x00}, arrayHeader},
		{"array16 past end", []byte{0xdc, 0xff, 0xff, 0x01, 0x02}, arrayHeader},
		{"fixarray past end", []byte{0x9f, 0x01}, arrayHeader},
		{"bin32 past end", []byte{0xc6, 0xff, 0xff, 0xff, 0xff, 'a'}, bytesGetter},
		{"bin16 past end", []byte{0xc5, 0x01, 0x00, 'a'}, bytesGetter},
		{"bin8 past end", []byte{0xc4, 0x05, 'a'}, bytesGetter},
		{"str32 past end", []byte{0xdb, 0x7f, 0xff, 0xff, 0xff}, bytesGetter},
		{"str32 as string", []byte{0xdb, 0x7f, 0xff, 0xff, 0xff}, func(r *msgp.Reader) error { _, err := r.String(); return err }},
		{"skip array32", []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0}, skip},
		{"skip map32", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0}, skip},
		{"skip map16", []byte{0xde, 0x00, 0x02, 0xc0, 0xc0, 0xc0}, skip},
		{"skip bin32", []byte{0xc6, 0xff, 0xff, 0xff, 0xff}, skip},
		{"skip str32", []byte{0xdb, 0xff, 0xff, 0xff, 0xff}, skip},
		{"skip ext32", []byte{0xc9, 0xff, 0xff, 0xff, 0xff, 0x01}, skip},
		{"skip ext8", []byte{0xc7, 0x02, 0x01, 0x00}, skip},
		{"skip fixext16", append([]byte{0xd8, 0x01}, make([]byte, 15)...), skip},
		{"skip nested array32s", []byte{0x91, 0xdd, 0xff, 0xff, 0xff, 0xff, 0xdd, 0xff, 0xff, 0xff, 0xff}, skip},
		{"skip array16 of array16s", []byte{0xdc, 0x00, 0x03, 0xdc, 0xff, 0xff, 0xc0, 0xc0}, skip},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := msgp.NewReader(tt.b)
			if err := tt.read(&r); !errors.Is(err, msgp.ErrShort) {
				t.Fatalf("read(%x) = %v, want ErrShort", tt.b, err)
			}
			allocs := testing.AllocsPerRun(10, func() {
				r.Reset(tt.b)
				_ = tt.read(&r)
			})
			if allocs > 0 {
				t.Errorf("read(%x) allocates %v times", tt.b, allocs)
			}
		})
	}
}

func arrayHeader(r *msgp.Reader) error { _, err := r.ArrayHeader(); return err }
func bytesGetter(r *msgp.Reader) error { _, err := r.Bytes(); return err }
func skip(r *msgp.Reader) error        { return r.Skip() }

func TestZeroReader(t *testing.T) {
	var r msgp.Reader
	if r.Len() != 0 || r.Offset() != 0 || r.IsNil() {
		t.Fatalf("zero Reader: Len %d, Offset %d", r.Len(), r.Offset())
	}
	for name, read := range map[string]func() error{
		"ArrayHeader": func() error { _, err := r.ArrayHeader(); return err },
		"Bool":        func() error { _, err := r.Bool(); return err },
		"Uint":        func() error { _, err := r.Uint(); return err },
		"Int":         func() error { _, err := r.Int(); return err },
		"Bytes":       func() error { _, err := r.Bytes(); return err },
		"String":      func() error { _, err := r.String(); return err },
		"Skip":        r.Skip,
	} {
		if err := read(); !errors.Is(err, msgp.ErrShort) {
			t.Errorf("%s on the zero Reader = %v, want ErrShort", name, err)
		}
	}
}

// A record of every supported type, as ecache builds them, reads back field
// by field, skips as a whole, and is what a generic library would write.
func TestRecord(t *testing.T) {
	var b []byte
	b = msgp.AppendArrayHeader(b, 7)
	b = msgp.AppendNil(b)
	b = msgp.AppendBool(b, true)
	b = msgp.AppendUint(b, 1<<40)
	b = msgp.AppendInt(b, -1000)
	b = msgp.AppendBytes(b, []byte{1, 2, 3})
	b = msgp.AppendString(b, "héllo")
	b = msgp.AppendArrayHeader(b, 2)
	b = msgp.AppendUint(b, 0)
	b = msgp.AppendArrayHeader(b, 0)

	want := []any{nil, true, uint64(1 << 40), int64(-1000), []byte{1, 2, 3}, "héllo", []any{uint64(0), []any{}}}
	if enc := vm(t, func(e *msgpack.Encoder) error { e.UseCompactInts(true); return e.Encode(want) }); !bytes.Equal(b, enc) {
		t.Errorf("record = %x\nmsgpack writes %x", b, enc)
	}
	var got any
	if err := msgpack.Unmarshal(b, &got); err != nil {
		t.Fatalf("msgpack cannot read the record: %v", err)
	}
	if s := fmt.Sprint(got); s != "[<nil> true 1099511627776 -1000 [1 2 3] héllo [0 []]]" {
		t.Errorf("msgpack reads the record as %s", s)
	}

	r := msgp.NewReader(b)
	n, err := r.ArrayHeader()
	if err != nil || n != 7 {
		t.Fatalf("ArrayHeader() = %d, %v", n, err)
	}
	if !r.IsNil() {
		t.Fatal("field 0 not nil")
	}
	if v, err := r.Bool(); err != nil || !v {
		t.Fatalf("field 1 = %v, %v", v, err)
	}
	if v, err := r.Uint(); err != nil || v != 1<<40 {
		t.Fatalf("field 2 = %v, %v", v, err)
	}
	if v, err := r.Int(); err != nil || v != -1000 {
		t.Fatalf("field 3 = %v, %v", v, err)
	}
	if v, err := r.Bytes(); err != nil || !bytes.Equal(v, []byte{1, 2, 3}) {
		t.Fatalf("field 4 = %v, %v", v, err)
	}
	if v, err := r.String(); err != nil || v != "héllo" {
		t.Fatalf("field 5 = %q, %v", v, err)
	}
	off := r.Offset()
	if err := r.Skip(); err != nil || r.Len() != 0 {
		t.Fatalf("skipping field 6 = %v with %d bytes left", err, r.Len())
	}
	if r.Offset() != len(b) || off >= len(b) {
		t.Fatalf("Offset() = %d, want %d", r.Offset(), len(b))
	}
	r.Reset(b)
	if r.Offset() != 0 || r.Len() != len(b) {
		t.Fatalf("after Reset: Offset %d, Len %d", r.Offset(), r.Len())
	}
	checkSkip(t, b)
}

// Appenders never allocate beyond growing the destination.
func TestAppendersDoNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 1024)
	val := make([]byte, 300)
	allocs := testing.AllocsPerRun(100, func() {
		b := buf[:0]
		b = msgp.AppendArrayHeader(b, 70000)
		b = msgp.AppendNil(b)
		b = msgp.AppendBool(b, false)
		b = msgp.AppendUint(b, math.MaxUint64)
		b = msgp.AppendInt(b, math.MinInt64)
		b = msgp.AppendBytes(b, val)
		b = msgp.AppendString(b, "some string")
		buf = b
	})
	if allocs > 0 {
		t.Errorf("appenders allocate %v times per run into a large enough buffer", allocs)
	}
}
