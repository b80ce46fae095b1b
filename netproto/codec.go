package netproto

import (
	"fmt"
	"math"

	"github.com/ecachedb/ecache/internal/msgp"
)

// dec reads a body: nested MessagePack arrays of positional fields. Errors
// are sticky, so decode methods read every field unconditionally and check
// once at the end. Fields past the end of an array read as zero values
// (callers enforce each array's minimum length in enter); fields past the
// ones a decoder knows are skipped in leave, for forward compatibility.
type dec struct {
	r   msgp.Reader
	n   int // fields in the current array
	i   int // fields of it read
	err error
}

// MaxArrayLen bounds every array in a body (the keys of an MGET, the
// entries of an MPUT, the members of a SADD), so a small hostile frame
// cannot make a decoder allocate many times its own size.
const MaxArrayLen = 1 << 16

// init readies d to read b as a single top-level value.
func (d *dec) init(b []byte) {
	d.r.Reset(b)
	d.n, d.i, d.err = 1, 0, nil
}

// finish returns the first error, or a trailing-bytes error.
func (d *dec) finish() error {
	if d.err != nil {
		return d.err
	}
	if d.r.Len() != 0 {
		return fmt.Errorf("%w: %d trailing bytes after body", ErrMalformed, d.r.Len())
	}
	return nil
}

func (d *dec) fail(err error) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: field %d: %w", ErrMalformed, d.i-1, err)
	}
}

// next reports whether the current array has another field to read, and
// moves past it.
func (d *dec) next() bool {
	if d.err != nil || d.i >= d.n {
		return false
	}
	d.i++
	return true
}

// enter opens the next field as an array of at least min fields. The saved
// state must be passed to leave.
func (d *dec) enter(min int) (saved [2]int) {
	present := d.next()
	saved = [2]int{d.n, d.i}
	d.n, d.i = 0, 0
	if !present {
		return saved
	}
	n, err := d.r.ArrayHeader()
	if err != nil {
		d.i = 1 // so fail names field 0 of the array
		d.fail(err)
		d.n, d.i = 0, 0
		return saved
	}
	if n < min {
		d.err = fmt.Errorf("%w: array of %d fields, want at least %d", ErrMalformed, n, min)
		return saved
	}
	if n > MaxArrayLen {
		d.err = fmt.Errorf("%w: array of %d elements, limit %d", ErrMalformed, n, MaxArrayLen)
		return saved
	}
	d.n = n
	return saved
}

// leave skips the rest of the array enter opened.
func (d *dec) leave(saved [2]int) {
	for d.next() {
		if err := d.r.Skip(); err != nil {
			d.fail(err)
		}
	}
	d.n, d.i = saved[0], saved[1]
}

// length is the number of fields of the array just entered.
func (d *dec) length() int { return d.n }

func (d *dec) bytes() []byte {
	if !d.next() {
		return nil
	}
	p, err := d.r.Bytes()
	if err != nil {
		d.fail(err)
	}
	return p
}

func (d *dec) str() string {
	return string(d.bytes())
}

func (d *dec) uint(max uint64) uint64 {
	if !d.next() {
		return 0
	}
	v, err := d.r.Uint()
	if err != nil {
		d.fail(err)
		return 0
	}
	if v > max {
		d.fail(fmt.Errorf("%d out of range (max %d)", v, max))
		return 0
	}
	return v
}

func (d *dec) int() int64 {
	if !d.next() {
		return 0
	}
	v, err := d.r.Int()
	if err != nil {
		d.fail(err)
	}
	return v
}

func (d *dec) code() Code { return Code(d.uint(math.MaxUint16)) }

// bytesList reads an array of byte strings into dst's storage.
func (d *dec) bytesList(dst [][]byte) [][]byte {
	s := d.enter(0)
	dst = dst[:0]
	if n := d.length(); cap(dst) < n {
		dst = make([][]byte, 0, n)
	}
	for d.i < d.n && d.err == nil {
		dst = append(dst, d.bytes())
	}
	d.leave(s)
	return dst
}

// strList reads an array of strings.
func (d *dec) strList(dst []string) []string {
	s := d.enter(0)
	dst = dst[:0]
	for d.i < d.n && d.err == nil {
		dst = append(dst, d.str())
	}
	d.leave(s)
	return dst
}

// grow returns s with length n, keeping the elements (and their storage)
// already in its capacity.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		s = append(s[:cap(s)], make([]T, n-cap(s))...)
	}
	return s[:n]
}

// appendStr appends v as a MessagePack str (namespaces and names are held
// as []byte so decoding them does not allocate).
func appendStr(b, v []byte) []byte { return msgp.AppendString(b, v) }

func appendBytesList(b []byte, l [][]byte) []byte {
	b = msgp.AppendArrayHeader(b, len(l))
	for _, v := range l {
		b = msgp.AppendBytes(b, v)
	}
	return b
}

func appendStrList(b []byte, l []string) []byte {
	b = msgp.AppendArrayHeader(b, len(l))
	for _, v := range l {
		b = msgp.AppendString(b, v)
	}
	return b
}
