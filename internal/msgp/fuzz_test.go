package msgp_test

import (
	"errors"
	"testing"

	"github.com/ecachedb/ecache/internal/msgp"
)

// checkErr fails unless err is nil or one of the package's two errors.
func checkErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, msgp.ErrShort) && !errors.Is(err, msgp.ErrType) {
		t.Fatalf("%s: unexpected error %v", what, err)
	}
}

// FuzzReader reads random bytes with Skip and with every typed getter. The
// reader must never panic, never loop (every successful read consumes
// input), leave the offset alone on a type mismatch, and agree with Skip on
// where each scalar ends.
func FuzzReader(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		// Skip value after value until the input ends or is bad.
		r := msgp.NewReader(data)
		for r.Len() > 0 {
			before := r.Offset()
			err := r.Skip()
			checkErr(t, "Skip", err)
			if err != nil {
				break
			}
			if r.Offset() <= before || r.Offset() > len(data) || r.Len() != len(data)-r.Offset() {
				t.Fatalf("Skip moved offset from %d to %d of %d", before, r.Offset(), len(data))
			}
		}

		// Rotate through the typed getters, falling back to Skip when one
		// does not fit.
		type getter struct {
			name string
			// read returns whether it succeeded.
			read func(r *msgp.Reader) (bool, error)
			// scalar getters consume a whole value on success.
			scalar bool
		}
		getters := []getter{
			{"ArrayHeader", func(r *msgp.Reader) (bool, error) {
				n, err := r.ArrayHeader()
				if err == nil && (n < 0 || n > r.Len()) {
					t.Fatalf("ArrayHeader() = %d with %d bytes left", n, r.Len())
				}
				return err == nil, err
			}, false},
			{"Bool", func(r *msgp.Reader) (bool, error) { _, err := r.Bool(); return err == nil, err }, true},
			{"Uint", func(r *msgp.Reader) (bool, error) {
				start := r.Offset()
				v, err := r.Uint()
				if err == nil && len(msgp.AppendUint(nil, v)) > r.Offset()-start {
					t.Fatalf("Uint() = %d from %d bytes, shorter than its shortest form", v, r.Offset()-start)
				}
				return err == nil, err
			}, true},
			{"Int", func(r *msgp.Reader) (bool, error) {
				start := r.Offset()
				v, err := r.Int()
				if err == nil && len(msgp.AppendInt(nil, v)) > r.Offset()-start {
					t.Fatalf("Int() = %d from %d bytes, shorter than its shortest form", v, r.Offset()-start)
				}
				return err == nil, err
			}, true},
			{"Bytes", func(r *msgp.Reader) (bool, error) {
				p, err := r.Bytes()
				if err == nil && (len(p) > len(data) || cap(p) != len(p)) {
					t.Fatalf("Bytes() returned len %d cap %d from %d bytes of input", len(p), cap(p), len(data))
				}
				return err == nil, err
			}, true},
			{"String", func(r *msgp.Reader) (bool, error) { _, err := r.String(); return err == nil, err }, true},
			{"IsNil", func(r *msgp.Reader) (bool, error) { return r.IsNil(), nil }, true},
		}
		r.Reset(data)
		for i := 0; r.Len() > 0; i++ {
			g := getters[i%len(getters)]
			before := r.Offset()
			shadow := r // where Skip says this value ends
			skipErr := shadow.Skip()
			checkErr(t, "Skip", skipErr)
			ok, err := g.read(&r)
			checkErr(t, g.name, err)
			switch {
			case ok:
				if r.Offset() <= before {
					t.Fatalf("%s succeeded without consuming input at offset %d", g.name, before)
				}
				if g.scalar && (skipErr != nil || shadow.Offset() != r.Offset()) {
					t.Fatalf("%s ended at %d, Skip at %d (%v)", g.name, r.Offset(), shadow.Offset(), skipErr)
				}
			case errors.Is(err, msgp.ErrType), err == nil:
				// A mismatch leaves the value for another reader.
				if r.Offset() != before {
					t.Fatalf("%s failed with %v but moved offset from %d to %d", g.name, err, before, r.Offset())
				}
				if skipErr != nil {
					return
				}
				r = shadow
			default: // ErrShort: the input ends inside this value.
				if skipErr == nil && g.scalar {
					t.Fatalf("%s ran short at %d where Skip succeeded", g.name, before)
				}
				return
			}
		}
	})
}
