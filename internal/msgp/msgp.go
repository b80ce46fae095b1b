// Package msgp holds the few MessagePack primitives ecache's deterministic
// encodings are built from: append-style writers that never allocate beyond
// growing the destination slice, and a bounds-checked reader that returns an
// error (never panics) on truncated or malformed input.
//
// The output is standard MessagePack, always in its shortest form, so the same
// value always encodes to the same bytes (records hash identically on every
// replica) and any MessagePack library can read it. Only the types ecache's
// records use are supported: nil, bool, unsigned and signed integers, binary
// strings, UTF-8 strings and array headers. Maps are deliberately absent:
// their order is not canonical.
package msgp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrShort reports input that ended inside a value.
var ErrShort = errors.New("msgp: unexpected end of input")

// ErrType reports a value of another type than the one asked for.
var ErrType = errors.New("msgp: unexpected type")

// AppendArrayHeader appends an array header for n elements.
func AppendArrayHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return append(b, 0xdc, byte(n>>8), byte(n))
	default:
		return append(b, 0xdd, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// AppendNil appends nil.
func AppendNil(b []byte) []byte { return append(b, 0xc0) }

// AppendBool appends a boolean.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

// AppendUint appends an unsigned integer in its shortest form.
func AppendUint(b []byte, v uint64) []byte {
	switch {
	case v < 128:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return append(b, 0xcd, byte(v>>8), byte(v))
	case v <= math.MaxUint32:
		return append(b, 0xce, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	default:
		b = append(b, 0xcf)
		return binary.BigEndian.AppendUint64(b, v)
	}
}

// AppendInt appends a signed integer in its shortest form; non-negative
// values use the unsigned encodings, as most MessagePack writers do.
func AppendInt(b []byte, v int64) []byte {
	if v >= 0 {
		return AppendUint(b, uint64(v))
	}
	switch {
	case v >= -32:
		return append(b, byte(v))
	case v >= math.MinInt8:
		return append(b, 0xd0, byte(v))
	case v >= math.MinInt16:
		return append(b, 0xd1, byte(v>>8), byte(v))
	case v >= math.MinInt32:
		return append(b, 0xd2, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	default:
		b = append(b, 0xd3)
		return binary.BigEndian.AppendUint64(b, uint64(v))
	}
}

// AppendBytes appends a binary string.
func AppendBytes(b []byte, v []byte) []byte {
	n := len(v)
	switch {
	case n <= math.MaxUint8:
		b = append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		b = append(b, 0xc5, byte(n>>8), byte(n))
	default:
		b = append(b, 0xc6, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, v...)
}

// AppendString appends a UTF-8 string, given as a string or as bytes (so
// callers holding names as []byte need not convert).
func AppendString[S ~string | ~[]byte](b []byte, v S) []byte {
	n := len(v)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = append(b, 0xda, byte(n>>8), byte(n))
	default:
		b = append(b, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, v...)
}

// Reader reads MessagePack values from a byte slice. Byte strings it returns
// alias the input. The zero Reader reads nothing.
type Reader struct {
	b   []byte
	off int
}

// NewReader returns a Reader over b.
func NewReader(b []byte) Reader { return Reader{b: b} }

// Reset makes r read b from its start.
func (r *Reader) Reset(b []byte) { r.b, r.off = b, 0 }

// Len is the number of unread bytes.
func (r *Reader) Len() int { return len(r.b) - r.off }

// Offset is the number of bytes read so far.
func (r *Reader) Offset() int { return r.off }

func (r *Reader) next(n int) ([]byte, error) {
	if n < 0 || len(r.b)-r.off < n {
		return nil, ErrShort
	}
	p := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return p, nil
}

func (r *Reader) tag() (byte, error) {
	if r.off >= len(r.b) {
		return 0, ErrShort
	}
	t := r.b[r.off]
	r.off++
	return t, nil
}

func (r *Reader) peek() (byte, error) {
	if r.off >= len(r.b) {
		return 0, ErrShort
	}
	return r.b[r.off], nil
}

// IsNil reports whether the next value is nil, consuming it if so.
func (r *Reader) IsNil() bool {
	t, err := r.peek()
	if err == nil && t == 0xc0 {
		r.off++
		return true
	}
	return false
}

// ArrayHeader reads an array header and returns its length. The length is
// checked against the bytes left (every element takes at least one byte), so
// a hostile header cannot make the caller allocate more than the input size.
func (r *Reader) ArrayHeader() (int, error) {
	t, err := r.tag()
	if err != nil {
		return 0, err
	}
	var n int
	switch {
	case t&0xf0 == 0x90:
		n = int(t & 0x0f)
	case t == 0xdc:
		p, err := r.next(2)
		if err != nil {
			return 0, err
		}
		n = int(binary.BigEndian.Uint16(p))
	case t == 0xdd:
		p, err := r.next(4)
		if err != nil {
			return 0, err
		}
		n = int(binary.BigEndian.Uint32(p))
	default:
		r.off--
		return 0, fmt.Errorf("%w: want array, got 0x%02x", ErrType, t)
	}
	if n > r.Len() {
		return 0, ErrShort
	}
	return n, nil
}

// Bool reads a boolean.
func (r *Reader) Bool() (bool, error) {
	t, err := r.tag()
	if err != nil {
		return false, err
	}
	switch t {
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	}
	r.off--
	return false, fmt.Errorf("%w: want bool, got 0x%02x", ErrType, t)
}

// Uint reads a non-negative integer in any integer encoding.
func (r *Reader) Uint() (uint64, error) {
	start := r.off
	v, neg, err := r.integer()
	if err != nil {
		return 0, err
	}
	if neg {
		r.off = start
		return 0, fmt.Errorf("%w: want unsigned integer, got negative", ErrType)
	}
	return v, nil
}

// Int reads a signed integer in any integer encoding that fits an int64.
func (r *Reader) Int() (int64, error) {
	start := r.off
	v, neg, err := r.integer()
	if err != nil {
		return 0, err
	}
	if neg {
		return int64(v), nil
	}
	if v > math.MaxInt64 {
		r.off = start
		return 0, fmt.Errorf("%w: integer overflows int64", ErrType)
	}
	return int64(v), nil
}

// integer returns the value's bits; neg reports a negative value, whose
// two's-complement bits are returned.
func (r *Reader) integer() (uint64, bool, error) {
	t, err := r.tag()
	if err != nil {
		return 0, false, err
	}
	switch {
	case t < 0x80:
		return uint64(t), false, nil
	case t >= 0xe0:
		return uint64(int64(int8(t))), true, nil
	}
	var size int
	switch t {
	case 0xcc, 0xd0:
		size = 1
	case 0xcd, 0xd1:
		size = 2
	case 0xce, 0xd2:
		size = 4
	case 0xcf, 0xd3:
		size = 8
	default:
		r.off--
		return 0, false, fmt.Errorf("%w: want integer, got 0x%02x", ErrType, t)
	}
	p, err := r.next(size)
	if err != nil {
		return 0, false, err
	}
	var u uint64
	for _, c := range p {
		u = u<<8 | uint64(c)
	}
	if t >= 0xd0 { // signed encodings
		shift := 64 - 8*size
		s := int64(u<<shift) >> shift
		return uint64(s), s < 0, nil
	}
	return u, false, nil
}

// Bytes reads a binary or UTF-8 string and returns it aliasing the input.
func (r *Reader) Bytes() ([]byte, error) {
	t, err := r.tag()
	if err != nil {
		return nil, err
	}
	var n int
	switch {
	case t&0xe0 == 0xa0:
		n = int(t & 0x1f)
	case t == 0xc4 || t == 0xd9:
		p, err := r.next(1)
		if err != nil {
			return nil, err
		}
		n = int(p[0])
	case t == 0xc5 || t == 0xda:
		p, err := r.next(2)
		if err != nil {
			return nil, err
		}
		n = int(binary.BigEndian.Uint16(p))
	case t == 0xc6 || t == 0xdb:
		p, err := r.next(4)
		if err != nil {
			return nil, err
		}
		n = int(binary.BigEndian.Uint32(p))
	case t == 0xc0:
		return nil, nil
	default:
		r.off--
		return nil, fmt.Errorf("%w: want bytes, got 0x%02x", ErrType, t)
	}
	return r.next(n)
}

// String reads a UTF-8 or binary string as a Go string (one allocation).
func (r *Reader) String() (string, error) {
	p, err := r.Bytes()
	return string(p), err
}

// Skip skips one complete value of any type, including maps and nested
// containers, so decoders can ignore fields appended by newer versions.
func (r *Reader) Skip() error {
	return r.skip(0)
}

const maxDepth = 64

func (r *Reader) skip(depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: nesting deeper than %d", ErrType, maxDepth)
	}
	t, err := r.tag()
	if err != nil {
		return err
	}
	n, elems := 0, 0
	switch {
	case t < 0x80 || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3:
		return nil
	case t&0xf0 == 0x80:
		elems = 2 * int(t&0x0f)
	case t&0xf0 == 0x90:
		elems = int(t & 0x0f)
	case t&0xe0 == 0xa0:
		n = int(t & 0x1f)
	default:
		var hdr int
		switch t {
		case 0xcc, 0xd0, 0xd4:
			n = 1
		case 0xcd, 0xd1, 0xd5:
			n = 2
		case 0xce, 0xd2, 0xca, 0xd6:
			n = 4
		case 0xcf, 0xd3, 0xcb, 0xd7:
			n = 8
		case 0xd8:
			n = 16
		case 0xc4, 0xd9, 0xc7:
			hdr = 1
		case 0xc5, 0xda, 0xdc, 0xde, 0xc8:
			hdr = 2
		case 0xc6, 0xdb, 0xdd, 0xdf, 0xc9:
			hdr = 4
		default:
			return fmt.Errorf("%w: invalid tag 0x%02x", ErrType, t)
		}
		if t == 0xd4 || t == 0xd5 || t == 0xd6 || t == 0xd7 || t == 0xd8 {
			n++ // fixext: type byte plus data
		}
		if hdr > 0 {
			p, err := r.next(hdr)
			if err != nil {
				return err
			}
			var l int
			for _, c := range p {
				l = l<<8 | int(c)
			}
			switch t {
			case 0xdc, 0xdd:
				elems = l
			case 0xde, 0xdf:
				elems = 2 * l
			case 0xc7, 0xc8, 0xc9:
				n = l + 1
			default:
				n = l
			}
		}
	}
	if n > 0 {
		if _, err := r.next(n); err != nil {
			return err
		}
	}
	if elems > r.Len() {
		return ErrShort
	}
	for i := 0; i < elems; i++ {
		if err := r.skip(depth + 1); err != nil {
			return err
		}
	}
	return nil
}
