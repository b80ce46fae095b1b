package gossip

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ecachedb/ecache/internal/msgp"
)

var sampleMeta = nodeMeta{
	ID:         0x0123456789abcdef,
	Partitions: 1024,
	Meta:       Meta{ClientAddr: "127.0.0.1:7000", PeerAddr: "127.0.0.1:7001", AdminAddr: "127.0.0.1:7002", ProtocolVersion: 1},
}

func TestMetaRoundTrip(t *testing.T) {
	for _, m := range []nodeMeta{
		sampleMeta,
		{ID: 1, Partitions: 1},
		{ID: 0xffffffffffffffff, Partitions: maxPartitions, Meta: Meta{ClientAddr: strings.Repeat("a", 200), ProtocolVersion: 255}, Leaving: true},
	} {
		b := m.appendTo(nil)
		got, err := decodeNodeMeta(b)
		if err != nil {
			t.Fatalf("decode %+v: %v", m, err)
		}
		if got != m {
			t.Fatalf("round trip: %+v -> %+v", m, got)
		}
		if !bytes.Equal(got.appendTo(nil), b) {
			t.Fatalf("re-encoding differs")
		}
	}
}

// TestMetaVector pins the encoding: it is a wire format.
func TestMetaVector(t *testing.T) {
	m := nodeMeta{ID: 1, Partitions: 1024, Meta: Meta{ClientAddr: "a", PeerAddr: "", AdminAddr: "b", ProtocolVersion: 2}}
	want := []byte{0x97, 0x01, 0xcd, 0x04, 0x00, 0x02, 0xa1, 'a', 0xa0, 0xa1, 'b', 0xc2}
	if got := m.appendTo(nil); !bytes.Equal(got, want) {
		t.Fatalf("encoding % x, want % x", got, want)
	}
}

func TestMetaForwardCompatible(t *testing.T) {
	// A newer node appends fields; this version skips them.
	b := sampleMeta.appendTo(nil)
	b[0] = 0x99 // nine fields
	b = msgp.AppendString(b, "future")
	b = msgp.AppendArrayHeader(b, 1)
	b = msgp.AppendUint(b, 7)
	got, err := decodeNodeMeta(b)
	if err != nil || got != sampleMeta {
		t.Fatalf("decode with extra fields: %+v, %v", got, err)
	}
}

func TestMetaRejects(t *testing.T) {
	good := sampleMeta.appendTo(nil)
	for name, b := range map[string][]byte{
		"empty":          nil,
		"truncated":      good[:len(good)-1],
		"trailing":       append(append([]byte(nil), good...), 0x00),
		"too few fields": append([]byte{0x96}, good[1:len(good)-1]...),
		"zero id":        (&nodeMeta{Partitions: 8}).appendTo(nil),
		"zero parts":     (&nodeMeta{ID: 1}).appendTo(nil),
		"huge parts":     (&nodeMeta{ID: 1, Partitions: maxPartitions + 1}).appendTo(nil),
		"not an array":   {0xc0},
	} {
		if _, err := decodeNodeMeta(b); !errors.Is(err, ErrMeta) {
			t.Errorf("%s: err %v", name, err)
		}
	}
}

// FuzzDecodeMeta: the decoder never panics, and whatever it accepts
// re-encodes to a canonical form that decodes to the same value.
func FuzzDecodeMeta(f *testing.F) {
	f.Add(sampleMeta.appendTo(nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeNodeMeta(b)
		if err != nil {
			if !errors.Is(err, ErrMeta) {
				t.Fatalf("error %v is not ErrMeta", err)
			}
			return
		}
		enc := m.appendTo(nil)
		m2, err := decodeNodeMeta(enc)
		if err != nil || m2 != m {
			t.Fatalf("re-decode: %+v vs %+v, %v", m2, m, err)
		}
		if !bytes.Equal(m2.appendTo(nil), enc) {
			t.Fatalf("encoding not canonical")
		}
	})
}
