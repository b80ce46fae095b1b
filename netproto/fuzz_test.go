package netproto

import (
	"bytes"
	"testing"
)

// FuzzDecoder feeds arbitrary bytes to the frame decoder: it must not
// panic, and every frame it returns must re-encode to exactly the bytes it
// came from. Bodies of known opcodes are decoded too, and whatever decodes
// must re-encode to a canonical form that decodes to itself.
func FuzzDecoder(f *testing.F) {
	l := DefaultLimits()
	l.MaxFrameSize = 1 << 16
	d := NewDecoder(l)
	f.Fuzz(func(t *testing.T, in []byte) {
		frames, n, err := d.Decode(in, nil)
		if n > len(in) {
			t.Fatalf("n=%d of %d, err=%v", n, len(in), err)
		}
		var re []byte
		for _, fr := range frames {
			re = fr.AppendTo(re)
			if body := bodyFor(fr.Opcode, fr.Flags); body != nil {
				checkBody(t, body, fr.Opcode, fr.Flags, fr.Body)
			}
		}
		if !bytes.Equal(re, in[:n]) {
			t.Fatalf("re-encoded frames differ from input")
		}
		if err == nil && len(in)-n >= HeaderSize {
			// What is left must be an incomplete frame, not a missed one.
			if _, m, err := d.Next(in[n:]); m != 0 || err != nil {
				t.Fatalf("Decode stopped early: next n=%d err=%v", m, err)
			}
		}
	})
}

// FuzzDecodeBody decodes arbitrary bytes as the body of every message type
// (selected by opcode and flags).
func FuzzDecodeBody(f *testing.F) {
	f.Fuzz(func(t *testing.T, op, flags byte, in []byte) {
		fl := Flags(flags) & flagsKnown
		body := bodyFor(Opcode(op), fl)
		if body == nil {
			return
		}
		checkBody(t, body, Opcode(op), fl, in)
	})
}

// checkBody decodes in; if that succeeds, the re-encoding must decode, and
// re-encode to itself (the canonical form is a fixed point).
func checkBody(t *testing.T, body Body, op Opcode, flags Flags, in []byte) {
	if err := body.DecodeBody(in); err != nil {
		return
	}
	enc := body.AppendBody(nil)
	again := bodyFor(op, flags)
	if err := again.DecodeBody(enc); err != nil {
		t.Fatalf("%v: canonical re-encoding % x does not decode: %v", op, enc, err)
	}
	if enc2 := again.AppendBody(nil); !bytes.Equal(enc, enc2) {
		t.Fatalf("%v: re-encoding not stable:\n% x\n% x", op, enc, enc2)
	}
}
