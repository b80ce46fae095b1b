package vclock_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/ecachedb/ecache/vclock"
)

// FuzzDecodeObject checks that DecodeObject never panics, refuses bad input
// with ErrMalformed, and that whatever it accepts is valid and re-encodes to
// canonical bytes that decode back to the same object.
func FuzzDecodeObject(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		var o vclock.Object
		if err := vclock.DecodeObject(data, &o); err != nil {
			if !errors.Is(err, vclock.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if err := o.Validate(); err != nil {
			t.Fatalf("decoded object invalid: %v", err)
		}
		enc := o.AppendMsgpack(nil)
		if len(enc) > o.EncodedSize() {
			t.Fatalf("encoding is %d bytes, EncodedSize promised at most %d", len(enc), o.EncodedSize())
		}
		// Decode the canonical bytes into a dst holding stale contents, to
		// exercise storage reuse too.
		o2 := vclock.Object{
			Clock:    vclock.VV{{Node: 1, Counter: 1}, {Node: 2, Counter: 2}, {Node: 3, Counter: 3}},
			Siblings: []vclock.Sibling{{HLC: 1, Expiry: 2, Tombstone: true, Value: []byte("stale")}, {}, {}},
		}
		if err := vclock.DecodeObject(enc, &o2); err != nil {
			t.Fatalf("canonical re-encoding %x does not decode: %v", enc, err)
		}
		if !vclock.ObjectsEqual(o, o2) {
			t.Fatalf("re-decoded object differs:\n%+v\n%+v", o, o2)
		}
		if enc2 := o2.AppendMsgpack(nil); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not canonical:\n%x\n%x", enc, enc2)
		}
		// Siblings alias data; re-encoding must not have disturbed it, and
		// the join of the object with itself is itself.
		if j := vclock.Join(o, o2); !vclock.ObjectsEqual(j, o) {
			t.Fatalf("Join(o, o) != o")
		}
	})
}

// FuzzDecodeContext checks DecodeContext the same way.
func FuzzDecodeContext(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := vclock.DecodeContext(data)
		if err != nil {
			if !errors.Is(err, vclock.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if v != nil {
				t.Fatalf("DecodeContext returned %v with error %v", v, err)
			}
			return
		}
		if len(data) == 0 && v != nil {
			t.Fatalf("empty context decoded to %v, want nil", v)
		}
		if err := v.Validate(); err != nil {
			t.Fatalf("decoded context %v invalid: %v", v, err)
		}
		enc := vclock.EncodeContext(v)
		v2, err := vclock.DecodeContext(enc)
		if err != nil {
			t.Fatalf("canonical re-encoding %x does not decode: %v", enc, err)
		}
		if !slices.Equal(v, v2) {
			t.Fatalf("re-decoded context %v, want %v", v2, v)
		}
		if enc2 := vclock.EncodeContext(v2); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not canonical:\n%x\n%x", enc, enc2)
		}
		if len(enc) > len(data) && len(data) > 0 {
			t.Fatalf("canonical encoding %x is longer than the input %x", enc, data)
		}
	})
}
