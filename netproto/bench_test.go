package netproto

import (
	"testing"
)

// BenchmarkEncode encodes one frame of every example into a reused buffer.
func BenchmarkEncode(b *testing.B) {
	for _, e := range examples() {
		b.Run(e.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 1024)
			for b.Loop() {
				buf = AppendFrame(buf[:0], e.op, e.flags, e.id, e.body)
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

// BenchmarkDecode splits one frame of every example and decodes its body
// into a reused struct, as a server connection does.
func BenchmarkDecode(b *testing.B) {
	d := NewDecoder(DefaultLimits())
	for _, e := range examples() {
		b.Run(e.name, func(b *testing.B) {
			b.ReportAllocs()
			in := e.frame()
			body := bodyFor(e.op, e.flags)
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				f, _, err := d.Next(in)
				if err != nil {
					b.Fatal(err)
				}
				if err := body.DecodeBody(f.Body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodePipelinedGets decodes a buffer of 64 pipelined GET frames
// in one pass.
func BenchmarkDecodePipelinedGets(b *testing.B) {
	var in []byte
	for i := range 64 {
		in = AppendRequest(in, OpGet, uint32(i), &GetRequest{Namespace: []byte("users"), Key: []byte("alice"), Flags: 0})
	}
	d := NewDecoder(DefaultLimits())
	frames := make([]Frame, 0, 64)
	var req GetRequest
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		var err error
		frames, _, err = d.Decode(in, frames[:0])
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range frames {
			if err := req.DecodeBody(f.Body); err != nil {
				b.Fatal(err)
			}
		}
	}
}
