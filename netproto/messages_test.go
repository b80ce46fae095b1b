package netproto

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/ecachedb/ecache/internal/msgp"
)

// roundTrip encodes b, decodes it into a fresh body of the same type and
// checks the re-encoding is identical.
func roundTrip(t *testing.T, op Opcode, flags Flags, b Body) {
	t.Helper()
	enc := b.AppendBody(nil)
	got := bodyFor(op, flags)
	if err := got.DecodeBody(enc); err != nil {
		t.Fatalf("decode % x: %v", enc, err)
	}
	if re := got.AppendBody(nil); !bytes.Equal(re, enc) {
		t.Fatalf("re-encoded\n% x\nwant\n% x", re, enc)
	}
	// Decoding again into the now-populated struct reuses its storage and
	// gives the same result.
	if err := got.DecodeBody(enc); err != nil {
		t.Fatal(err)
	}
	if re := got.AppendBody(nil); !bytes.Equal(re, enc) {
		t.Fatalf("second decode re-encoded\n% x\nwant\n% x", re, enc)
	}
}

func TestRoundTripExamples(t *testing.T) {
	for _, e := range examples() {
		t.Run(e.name, func(t *testing.T) { roundTrip(t, e.op, e.flags, e.body) })
	}
}

func TestRoundTripEdgeCases(t *testing.T) {
	long := bytes.Repeat([]byte{'x'}, 70000) // bin32, str32 sizes
	mid := bytes.Repeat([]byte{'y'}, 300)    // bin16
	many := make([][]byte, 20)               // array16
	for i := range many {
		many[i] = []byte{byte(i)}
	}
	tests := []struct {
		name  string
		op    Opcode
		flags Flags
		body  Body
	}{
		{"hello empty", OpHello, 0, &HelloRequest{}},
		{"hello password", OpHello, 0, &HelloRequest{Version: 1, Client: "c", Features: []string{"a", "b"}, Password: "s3cret"}},
		{"hello response max node", OpHello, FlagResponse, &HelloResponse{Version: 255, NodeID: ^uint64(0), Features: []string{"x"}}},
		{"ping empty", OpPing, 0, &PingBody{}},
		{"get zero", OpGet, 0, &GetRequest{}},
		{"get long key", OpGet, 0, &GetRequest{Namespace: mid, Key: long, Flags: GetFlagNoValues}},
		{"get long namespace", OpGet, 0, &GetRequest{Namespace: long, Key: mid, Flags: ^uint64(0)}},
		{"get not found", OpGet, FlagResponse, &GetResponse{Status: CodeNotFound}},
		{"get siblings", OpGet, FlagResponse, &GetResponse{Status: CodeSiblings, Values: many, Context: mid, TTL: 1 << 40}},
		{"put large", OpPut, 0, &PutRequest{Namespace: []byte("n"), Key: mid, Value: long, TTL: -1, W: 1<<32 - 1}},
		{"put response", OpPut, FlagResponse, &WriteResponse{Status: CodeOK}},
		{"del", OpDel, 0, &DelRequest{Namespace: []byte("n"), Key: []byte("k"), W: 3}},
		{"mget empty", OpMGet, 0, &MGetRequest{}},
		{"mget many", OpMGet, 0, &MGetRequest{Namespace: []byte("n"), Keys: many, Flags: 1}},
		{"mget response empty", OpMGet, FlagResponse, &MGetResponse{}},
		{"mput empty", OpMPut, 0, &MPutRequest{}},
		{"mput response mixed", OpMPut, FlagResponse, &MPutResponse{Results: []WriteResponse{{Status: CodeValueTooLarge}, {Status: CodeOK, Context: []byte{0x90}}}}},
		{"incr negative", OpIncr, 0, &CounterRequest{Namespace: []byte("c"), Key: []byte("k"), Delta: -1 << 63}},
		{"incr response", OpIncr, FlagResponse, &CounterResponse{Status: CodeOK, Value: 1<<63 - 1}},
		{"sadd many", OpSAdd, 0, &SetRequest{Namespace: []byte("s"), Key: []byte("k"), Members: many, W: 2}},
		{"smembers empty", OpSMembers, FlagResponse, &SMembersResponse{Status: CodeNotFound}},
		{"expire persist", OpExpire, 0, &ExpireRequest{Namespace: []byte("n"), Key: []byte("k")}},
		{"expire not found", OpExpire, FlagResponse, &StatusResponse{Status: CodeNotFound}},
		{"ttl none", OpTTL, FlagResponse, &TTLResponse{Status: CodeOK}},
		{"stats empty", OpStats, FlagResponse, &StatsResponse{}},
		{"error long message", OpPut, FlagResponse | FlagError, &ErrorBody{Code: 60000, Message: string(mid)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { roundTrip(t, tt.op, tt.flags, tt.body) })
	}
}

// body builds a raw body from already-encoded fields.
func rawBody(fields ...[]byte) []byte {
	b := msgp.AppendArrayHeader(nil, len(fields))
	for _, f := range fields {
		b = append(b, f...)
	}
	return b
}

func str(s string) []byte   { return msgp.AppendString(nil, s) }
func bin(s string) []byte   { return msgp.AppendBytes(nil, []byte(s)) }
func uintv(v uint64) []byte { return msgp.AppendUint(nil, v) }
func intv(v int64) []byte   { return msgp.AppendInt(nil, v) }

func TestDecodeCompatibility(t *testing.T) {
	t.Run("extra trailing fields are ignored", func(t *testing.T) {
		b := rawBody(str("ns"), bin("k"), uintv(1), uintv(2), str("future"), rawBody(uintv(1), bin("x")), []byte{0x81, 0x01, 0x02})
		var m GetRequest
		if err := m.DecodeBody(b); err != nil {
			t.Fatal(err)
		}
		if string(m.Namespace) != "ns" || string(m.Key) != "k" || m.Flags != 1 || m.R != 2 {
			t.Fatalf("%+v", m)
		}
	})
	t.Run("extra fields in nested entries are ignored", func(t *testing.T) {
		entry := rawBody(uintv(0), rawBody(bin("v")), bin(""), intv(5), str("later"))
		b := rawBody(rawBody(entry, entry), uintv(9))
		var m MGetResponse
		if err := m.DecodeBody(b); err != nil {
			t.Fatal(err)
		}
		if len(m.Results) != 2 || m.Results[1].TTL != 5 || string(m.Results[1].Values[0]) != "v" {
			t.Fatalf("%+v", m)
		}
	})
	t.Run("optional fields may be omitted", func(t *testing.T) {
		var p PutRequest
		if err := p.DecodeBody(rawBody(str("ns"), bin("k"), bin("v"), bin(""), intv(0))); err != nil || p.W != 0 {
			t.Fatalf("%+v %v", p, err)
		}
		var h HelloRequest
		if err := h.DecodeBody(rawBody(uintv(1), str("c"), rawBody())); err != nil || h.Password != "" {
			t.Fatalf("%+v %v", h, err)
		}
		var g GetRequest
		if err := g.DecodeBody(rawBody(str("ns"), bin("k"))); err != nil || g.Flags != 0 {
			t.Fatalf("%+v %v", g, err)
		}
	})
	t.Run("str and bin are interchangeable, nil is empty", func(t *testing.T) {
		var g GetRequest
		if err := g.DecodeBody(rawBody(bin("ns"), str("k"), []byte{0xc0})); err == nil {
			t.Fatal("nil flags accepted")
		}
		if err := g.DecodeBody(rawBody(bin("ns"), str("k"))); err != nil || string(g.Key) != "k" {
			t.Fatalf("%+v %v", g, err)
		}
		var r GetResponse
		if err := r.DecodeBody(rawBody(uintv(1), rawBody(), []byte{0xc0}, intv(0))); err != nil || len(r.Context) != 0 {
			t.Fatalf("%+v %v", r, err)
		}
	})
	t.Run("non-shortest integers are accepted", func(t *testing.T) {
		var c CounterRequest
		b := rawBody(str("n"), bin("k"), []byte{0xd3, 0, 0, 0, 0, 0, 0, 0, 5}, []byte{0xcd, 0, 2})
		if err := c.DecodeBody(b); err != nil || c.Delta != 5 || c.W != 2 {
			t.Fatalf("%+v %v", c, err)
		}
	})
}

func TestDecodeMalformed(t *testing.T) {
	tests := []struct {
		name string
		body Body
		in   []byte
	}{
		{"empty input", new(GetRequest), nil},
		{"not an array", new(GetRequest), str("x")},
		{"map", new(GetRequest), []byte{0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0x02}},
		{"too few fields", new(GetRequest), rawBody(str("ns"))},
		{"put missing ttl", new(PutRequest), rawBody(str("ns"), bin("k"), bin("v"), bin(""))},
		{"wrong type", new(GetRequest), rawBody(uintv(1), bin("k"), uintv(0))},
		{"negative flags", new(GetRequest), rawBody(str("ns"), bin("k"), intv(-1))},
		{"truncated", new(GetRequest), rawBody(str("ns"), bin("k"), uintv(0))[:6]},
		{"trailing bytes", new(GetRequest), append(rawBody(str("ns"), bin("k"), uintv(0)), 0x00)},
		{"status overflow", new(GetResponse), rawBody(uintv(1<<16), rawBody(), bin(""), intv(0))},
		{"w overflow", new(PutRequest), rawBody(str("ns"), bin("k"), bin("v"), bin(""), intv(0), uintv(1<<32))},
		{"version overflow", new(HelloRequest), rawBody(uintv(256), str("c"), rawBody())},
		{"values not array", new(GetResponse), rawBody(uintv(0), bin("v"), bin(""), intv(0))},
		{"value not bytes", new(GetResponse), rawBody(uintv(0), rawBody(uintv(3)), bin(""), intv(0))},
		{"ttl overflow", new(GetResponse), rawBody(uintv(0), rawBody(), bin(""), uintv(1<<63))},
		{"short nested entry", new(MPutRequest), rawBody(str("ns"), rawBody(rawBody(bin("k"), bin("v"))))},
		{"huge array header", new(MGetRequest), []byte{0x93, 0xa1, 'n', 0xdd, 0xff, 0xff, 0xff, 0xff}},
		{"bad trailing field", new(GetRequest), rawBody(str("ns"), bin("k"), uintv(0), []byte{0xc1})},
		{"stats entry short", new(StatsResponse), rawBody(rawBody(rawBody(str("x"))))},
		{"error body", new(ErrorBody), rawBody(uintv(1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.body.DecodeBody(tt.in)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if !strings.HasPrefix(err.Error(), "netproto: ") {
				t.Fatalf("error %q lacks package prefix", err)
			}
			if CodeOf(err) != CodeMalformed {
				t.Fatalf("CodeOf = %v", CodeOf(err))
			}
		})
	}
}

func TestDecodeAliasesInput(t *testing.T) {
	b := (&PutRequest{Namespace: []byte("n"), Key: []byte("k"), Value: []byte("v")}).AppendBody(nil)
	var p PutRequest
	if err := p.DecodeBody(b); err != nil {
		t.Fatal(err)
	}
	i := bytes.IndexByte(b, 'v')
	b[i] = 'w'
	if string(p.Value) != "w" {
		t.Fatal("Value does not alias the input")
	}
	// Aliased slices have capped capacity: appending to one never
	// overwrites the next field.
	if cap(p.Key) != len(p.Key) {
		t.Fatalf("cap(Key) = %d", cap(p.Key))
	}
}

// TestArrayLimit: an array header claiming more than MaxArrayLen elements is
// refused before anything is allocated for it.
func TestArrayLimit(t *testing.T) {
	body := []byte{0x93, 0xa0, 0xdd, 0x00, 0x01, 0x00, 0x01} // [ns, keys: array32 of 65537, ...]
	body = append(body, make([]byte, 70000)...)
	var m MGetRequest
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := m.DecodeBody(body); !errors.Is(err, ErrMalformed) {
		t.Fatalf("got %v, want ErrMalformed", err)
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 16<<10 {
		t.Fatalf("refusing an oversized array allocated %d bytes", d)
	}
	ok := append([]byte{0x93, 0xa0, 0xdc, 0x00, 0x03}, 0xa1, 'a', 0xa1, 'b', 0xa1, 'c', 0x00)
	if err := m.DecodeBody(ok); err != nil || len(m.Keys) != 3 {
		t.Fatalf("small array: %v %q", err, m.Keys)
	}
}
