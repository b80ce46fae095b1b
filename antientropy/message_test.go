package antientropy_test

import (
	"encoding/hex"
	"errors"
	"testing"

	"github.com/ecachedb/ecache/antientropy"
	"github.com/ecachedb/ecache/internal/msgp"
	"github.com/ecachedb/ecache/vclock"
)

// sampleMessages has one message of every type, with every field in use
// somewhere.
func sampleMessages() []antientropy.Message {
	o := write(vclock.Object{}, nil, nodeX, live("v"))
	o = write(o, nil, nodeY, vclock.Sibling{HLC: 3, Expiry: 99, Value: []byte("w")})
	s := antientropy.DefaultShape()
	return []antientropy.Message{
		{Type: antientropy.MsgRootReq, Session: 1, Partition: 7, Seq: 1, Now: now, Shape: s},
		{Type: antientropy.MsgRootResp, Session: 1, Partition: 7, Seq: 1, Root: 0xdeadbeefcafef00d},
		{Type: antientropy.MsgNodesReq, Session: 1, Partition: 7, Seq: 2, Now: now, Shape: s, Level: 1, Nodes: []uint32{0, 5, 31}},
		{Type: antientropy.MsgNodesResp, Session: 1, Partition: 7, Seq: 2, Level: 1, Nodes: []uint32{3}, Hashes: []uint64{1, 0, 1 << 63}},
		{Type: antientropy.MsgKeysReq, Session: 1, Seq: 3, Now: -5, Shape: s, Nodes: []uint32{1, 1000}},
		{Type: antientropy.MsgKeysResp, Session: 1, Seq: 3, Entries: []antientropy.KeyClock{
			{NS: []byte("ns"), Key: []byte("k"), Digest: 42, Clock: o.Clock},
			{Key: []byte("k2"), Clock: vclock.VV{{Node: nodeZ, Counter: 9}}},
		}, Ghosts: []uint64{0, 0xfeedface}},
		{Type: antientropy.MsgObjectsReq, Session: 1, Seq: 4, Now: now, Shape: s,
			Keys:    []antientropy.KeyRef{{NS: []byte("ns"), Key: []byte("a")}},
			Objects: []antientropy.KeyObject{{NS: []byte("ns"), Key: []byte("b"), Object: o}}},
		{Type: antientropy.MsgObjectsResp, Session: 1, Seq: 4, Objects: []antientropy.KeyObject{{Key: []byte("c"), Object: o}}},
		{Type: antientropy.MsgAbort, Session: 1, Seq: 4, Error: "antientropy: no"},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		b := m.AppendMsgpack(nil)
		if m.Size() != len(b) {
			t.Fatalf("%v: Size %d, encoding %d", m.Type, m.Size(), len(b))
		}
		d, err := antientropy.DecodeMessage(b)
		if err != nil {
			t.Fatalf("%v: %v", m.Type, err)
		}
		if !d.Equal(&m) || d.Type != m.Type || d.Root != m.Root || len(d.Objects) != len(m.Objects) {
			t.Fatalf("%v: round trip changed the message", m.Type)
		}
		for i := range m.Objects {
			if !vclock.ObjectsEqual(d.Objects[i].Object, m.Objects[i].Object) {
				t.Fatalf("%v: object %d changed", m.Type, i)
			}
		}
	}
}

// TestMessageVector pins the encoding of a root request: the wire format is
// shared with the peer transport and must not drift.
func TestMessageVector(t *testing.T) {
	m := antientropy.Message{Type: antientropy.MsgRootReq, Session: 1, Partition: 7, Seq: 1, Now: 2, Shape: antientropy.Shape{Width: 32, Depth: 2}}
	const want = "9e" + "01" + "01" + "07" + "01" + "02" + "92" + "20" + "02" + "00" + "00" + "90" + "c400" + "90" + "90" + "90" + "a0"
	if got := hex.EncodeToString(m.AppendMsgpack(nil)); got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
}

func TestDecodeMessageRejects(t *testing.T) {
	good := sampleMessages()[0].AppendMsgpack(nil)
	withType := func(typ uint64) []byte {
		m := sampleMessages()[0]
		b := m.AppendMsgpack(nil)
		return append(append([]byte{b[0]}, msgp.AppendUint(nil, typ)...), b[2:]...)
	}
	for name, b := range map[string][]byte{
		"empty":        nil,
		"truncated":    good[:len(good)-1],
		"trailing":     append(append([]byte{}, good...), 0),
		"type 0":       withType(0),
		"unknown type": withType(200),
		"not an array": {0x01},
		"too few":      {0x91, 0x01},
		"bad entry":    {0x9e, 1, 1, 1, 1, 1, 0x92, 2, 1, 0, 0, 0x90, 0xc4, 0, 0x90, 0x90, 0x91, 0x93, 0xc4, 0, 0xc4, 0, 0x92, 0x91, 1, 0x90, 0xa0},
	} {
		if _, err := antientropy.DecodeMessage(b); !errors.Is(err, antientropy.ErrMalformed) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	// Hashes whose length is not a multiple of 8.
	b := []byte{0x9e, 1, 1, 1, 1, 1, 0x92, 2, 1, 0, 0, 0x90, 0xc4, 3, 1, 2, 3, 0x90, 0x90, 0x90, 0xa0}
	if _, err := antientropy.DecodeMessage(b); !errors.Is(err, antientropy.ErrMalformed) {
		t.Errorf("odd hashes: %v", err)
	}
}

// TestDecodeMessageSkipsNewFields: a newer peer's extra trailing fields are
// skipped.
func TestDecodeMessageSkipsNewFields(t *testing.T) {
	m := sampleMessages()[1]
	b := m.AppendMsgpack(nil)
	b = append([]byte{0xdc, 0, 16}, b[1:]...) // 16 fields: ghosts and one unknown
	b = msgp.AppendBytes(b, nil)
	b = msgp.AppendString(b, "future")
	d, err := antientropy.DecodeMessage(b)
	if err != nil || !d.Equal(&m) {
		t.Fatalf("extra field: %v", err)
	}
}
