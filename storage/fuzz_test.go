package storage

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ecachedb/ecache/vclock"
)

// FuzzDecodeRecord: stored records come back from disk, where anything can
// happen to them. Decoding must fail with ErrCorrupt or yield an object that
// re-encodes to exactly the same record.
func FuzzDecodeRecord(f *testing.F) {
	o, _ := vclock.Object{}.Update(nil, 7, vclock.Sibling{HLC: 3, Value: []byte("v")})
	o, _ = o.Update(nil, 9, vclock.Sibling{Tombstone: true, Expiry: 5})
	f.Add(encodeRecord(nil, &o))
	f.Add([]byte{recordFormat})
	f.Add([]byte{2, 0x92, 0x90, 0x90})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, rec []byte) {
		var got vclock.Object
		if err := decodeRecord(rec, &got); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again := encodeRecord(nil, &got)
		var back vclock.Object
		if err := decodeRecord(again, &back); err != nil || !vclock.ObjectsEqual(got, back) {
			t.Fatalf("re-encoded record does not decode to the same object: %v", err)
		}
		if !bytes.Equal(again, encodeRecord(nil, &back)) {
			t.Fatal("encoding is not deterministic")
		}
	})
}

// FuzzSplitDataKey: keys read back from Pebble must split or fail cleanly,
// and a split key must rebuild to the same bytes.
func FuzzSplitDataKey(f *testing.F) {
	f.Add(appendDataKey(nil, 5, []byte("ns"), []byte("key")))
	f.Add([]byte{tagData, 0, 0, 200})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, k []byte) {
		p, ns, key, err := splitDataKey(k)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if got := appendDataKey(nil, p, ns, key); !bytes.Equal(got, k) {
			t.Fatalf("rebuilt %x from %x", got, k)
		}
	})
}
