package netproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func validHeader() []byte {
	return AppendHeader(nil, Header{Opcode: OpGet, RequestID: 9, BodyLen: 3})
}

func TestParseHeader(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(b []byte) []byte
		want   Header
		err    error
	}{
		{"ok", func(b []byte) []byte { return b }, Header{Version: 1, Opcode: OpGet, RequestID: 9, BodyLen: 3}, nil},
		{"short", func(b []byte) []byte { return b[:15] }, Header{}, ErrIncomplete},
		{"bad magic", func(b []byte) []byte { b[0] = 'G'; return b }, Header{}, ErrBadMagic},
		{"magic byte order", func(b []byte) []byte { b[0], b[1] = b[1], b[0]; return b }, Header{}, ErrBadMagic},
		{"version 0", func(b []byte) []byte { b[2] = 0; return b }, Header{}, ErrVersion},
		{"version 2", func(b []byte) []byte { b[2] = 2; return b }, Header{}, ErrVersion},
		{"reserved byte 5", func(b []byte) []byte { b[5] = 1; return b }, Header{}, ErrMalformed},
		{"reserved byte 7", func(b []byte) []byte { b[7] = 0x80; return b }, Header{}, ErrMalformed},
		{"reserved flag", func(b []byte) []byte { b[4] = 0x04; return b }, Header{}, ErrMalformed},
		{"error flag on request", func(b []byte) []byte { b[4] = byte(FlagError); return b }, Header{}, ErrMalformed},
		{"error response", func(b []byte) []byte { b[4] = byte(FlagError | FlagResponse); return b },
			Header{Version: 1, Opcode: OpGet, Flags: FlagError | FlagResponse, RequestID: 9, BodyLen: 3}, nil},
		{"unknown opcode is framing-valid", func(b []byte) []byte { b[3] = 200; return b },
			Header{Version: 1, Opcode: 200, RequestID: 9, BodyLen: 3}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseHeader(tt.mutate(validHeader()))
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if h != tt.want {
				t.Fatalf("header = %+v, want %+v", h, tt.want)
			}
		})
	}
}

func TestHeaderLayout(t *testing.T) {
	b := AppendHeader(nil, Header{Opcode: OpPut, Flags: FlagResponse, RequestID: 0x01020304, BodyLen: 0x0a0b0c0d})
	want := []byte{0x0c, 0xec, 1, 4, 1, 0, 0, 0, 4, 3, 2, 1, 0x0d, 0x0c, 0x0b, 0x0a}
	if !bytes.Equal(b, want) {
		t.Fatalf("header = % x, want % x", b, want)
	}
}

func TestDecoderSplitsStream(t *testing.T) {
	var stream []byte
	exs := examples()
	for _, e := range exs {
		stream = append(stream, e.frame()...)
	}
	d := NewDecoder(DefaultLimits())

	// All at once, in one pass.
	frames, n, err := d.Decode(stream, nil)
	if err != nil || n != len(stream) || len(frames) != len(exs) {
		t.Fatalf("Decode: %d frames, n=%d of %d, err=%v", len(frames), n, len(stream), err)
	}
	for i, f := range frames {
		if f.Opcode != exs[i].op || f.RequestID != exs[i].id || f.Flags != exs[i].flags {
			t.Fatalf("frame %d header %+v, want %v id %d", i, f.Header, exs[i].op, exs[i].id)
		}
		if !bytes.Equal(f.Body, exs[i].bodyBytes()) {
			t.Fatalf("frame %d body % x", i, f.Body)
		}
	}

	// Byte by byte, as a slow connection delivers it.
	var buf []byte
	got := 0
	for _, c := range stream {
		buf = append(buf, c)
		frames, n, err := d.Decode(buf, nil)
		if err != nil {
			t.Fatal(err)
		}
		got += len(frames)
		buf = buf[n:]
	}
	if got != len(exs) || len(buf) != 0 {
		t.Fatalf("byte by byte: %d frames, %d bytes left", got, len(buf))
	}
}

func TestDecoderErrors(t *testing.T) {
	l := DefaultLimits()
	l.MaxFrameSize = 64
	d := NewDecoder(l)
	good := AppendRequest(nil, OpPing, 1, &PingBody{Payload: []byte("x")})

	// Oversize is reported from the header alone, before the body arrives.
	big := AppendHeader(nil, Header{Opcode: OpPut, RequestID: 2, BodyLen: 64 - HeaderSize + 1})
	frames, n, err := d.Decode(append(append([]byte{}, good...), big...), nil)
	if !errors.Is(err, ErrFrameTooLarge) || len(frames) != 1 || n != len(good) {
		t.Fatalf("oversize: %d frames, n=%d, err=%v", len(frames), n, err)
	}
	huge := AppendHeader(nil, Header{Opcode: OpPut, BodyLen: 0xffffffff})
	if _, _, err := d.Next(huge); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("huge: err=%v", err)
	}
	exact := AppendHeader(nil, Header{Opcode: OpPut, BodyLen: 64 - HeaderSize})
	if _, n, err := d.Next(exact); err != nil || n != 0 {
		t.Fatalf("exact limit, body missing: n=%d err=%v", n, err)
	}

	// Incomplete input is not an error.
	for i := 0; i < len(good); i++ {
		if f, n, err := d.Next(good[:i]); err != nil || n != 0 || f.Body != nil {
			t.Fatalf("prefix %d: n=%d err=%v", i, n, err)
		}
	}

	bad := append([]byte{}, good...)
	bad[0] = 0
	if _, _, err := d.Next(bad); !errors.Is(err, ErrBadMagic) {
		t.Fatalf("bad magic: %v", err)
	}
	if CodeOf(err) != CodeFrameTooLarge {
		t.Fatalf("CodeOf(%v) = %v", err, CodeOf(err))
	}
}

func TestDecodeGetAllocs(t *testing.T) {
	frame := AppendRequest(nil, OpGet, 7, &GetRequest{Namespace: []byte("users"), Key: []byte("alice"), Flags: 1})
	resp := AppendResponse(nil, OpGet, 7, &GetResponse{Status: CodeSiblings, Values: [][]byte{[]byte("a"), []byte("b")}, Context: []byte{0x92, 7, 2}, TTL: 10})
	d := NewDecoder(DefaultLimits())
	var req GetRequest
	var res GetResponse
	frames := make([]Frame, 0, 4)
	stream := append(append([]byte{}, frame...), resp...)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		frames, _, err = d.Decode(stream, frames[:0])
		if err != nil || len(frames) != 2 {
			t.Fatal(err)
		}
		if err := req.DecodeBody(frames[0].Body); err != nil {
			t.Fatal(err)
		}
		if err := res.DecodeBody(frames[1].Body); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("GET decode allocates %v times", allocs)
	}
	if string(req.Key) != "alice" || len(res.Values) != 2 || res.Status != CodeSiblings {
		t.Fatalf("decoded %+v %+v", req, res)
	}
	buf := make([]byte, 0, 256)
	allocs = testing.AllocsPerRun(100, func() {
		buf = AppendRequest(buf[:0], OpGet, 7, &req)
	})
	if allocs != 0 {
		t.Fatalf("GET encode allocates %v times", allocs)
	}
}

func TestLimits(t *testing.T) {
	l := DefaultLimits()
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Limits{
		{MaxFrameSize: HeaderSize, MaxKeySize: 1, MaxValueSize: 1},
		{MaxFrameSize: 1 << 20, MaxKeySize: 0, MaxValueSize: 1},
		{MaxFrameSize: 1 << 20, MaxKeySize: 1, MaxValueSize: 1 << 20},
	} {
		if err := bad.Validate(); !errors.Is(err, ErrInvalidLimits) {
			t.Errorf("Validate(%+v) = %v", bad, err)
		}
	}
	if err := l.CheckKey(make([]byte, l.MaxKeySize+1)); !errors.Is(err, ErrKeyTooLarge) || CodeOf(err) != CodeKeyTooLarge {
		t.Errorf("CheckKey: %v", err)
	}
	if err := l.CheckValue(make([]byte, l.MaxValueSize+1)); !errors.Is(err, ErrValueTooLarge) || CodeOf(err) != CodeValueTooLarge {
		t.Errorf("CheckValue: %v", err)
	}
	if l.CheckKey(make([]byte, l.MaxKeySize)) != nil || l.CheckValue(nil) != nil {
		t.Error("limits reject sizes at the limit")
	}
}

func TestFrameAppendTo(t *testing.T) {
	for _, e := range examples() {
		b := e.frame()
		f, n, err := NewDecoder(DefaultLimits()).Next(b)
		if err != nil || n != len(b) {
			t.Fatalf("%s: n=%d err=%v", e.name, n, err)
		}
		if got := f.AppendTo(nil); !bytes.Equal(got, b) {
			t.Fatalf("%s: re-encoded % x, want % x", e.name, got, b)
		}
		if binary.LittleEndian.Uint32(b[12:]) != uint32(len(b)-HeaderSize) {
			t.Fatalf("%s: body length field wrong", e.name)
		}
	}
}

func TestCodesAndOpcodes(t *testing.T) {
	for c := CodeOK; c <= CodeUnknownOpcode; c++ {
		if c.String() == "" || c.String()[0] == 'C' {
			t.Errorf("code %d has no name", c)
		}
	}
	if Code(999).String() != "Code(999)" {
		t.Error(Code(999).String())
	}
	for o := OpHello; o < opEnd; o++ {
		if !o.Valid() || NewRequest(o) == nil || NewResponse(o) == nil || o.String()[0] == 'O' {
			t.Errorf("opcode %d incomplete", o)
		}
	}
	if Opcode(0).Valid() || opEnd.Valid() || NewRequest(0) != nil || NewResponse(opEnd) != nil {
		t.Error("invalid opcodes accepted")
	}
	// The numbers are on the wire: pin them.
	if OpHello != 1 || OpGet != 3 || OpStats != 15 || CodeUnauthenticated != 12 || CodeUnknownOpcode != 13 {
		t.Error("wire numbers changed: opcodes and codes are append-only")
	}
	for _, err := range []error{ErrBadMagic, ErrMalformed, ErrVersion, ErrFrameTooLarge, ErrUnknownOpcode} {
		if CodeOf(err) == CodeInternal || CodeOf(err) == CodeOK {
			t.Errorf("CodeOf(%v) = %v", err, CodeOf(err))
		}
	}
	if CodeOf(nil) != CodeOK || CodeOf(errors.New("x")) != CodeInternal {
		t.Error("CodeOf fallback")
	}
}
