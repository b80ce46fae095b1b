package clustertest

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/ecachedb/ecache/netproto"
)

// FuzzFaultConn feeds arbitrary byte streams, in arbitrary chunks, through
// a faultConn's frame splitter. Without faults the far end receives the
// stream unchanged; with drops and duplicates it receives the stream's
// whole frames in order, each zero, one or two times, then the bytes after
// the first thing that is not a frame header, unchanged.
func FuzzFaultConn(f *testing.F) {
	get := netproto.AppendRequest(nil, netproto.OpGet, 1, &netproto.KeyRequest{Key: []byte("k")})
	put := netproto.AppendRequest(nil, netproto.OpPut, 2, &netproto.PutRequest{Key: []byte("k"), Value: []byte("v")})
	f.Add(append(append([]byte{}, get...), put...), uint8(3), uint64(1), true)
	f.Add(append(append([]byte{}, get...), get...), uint8(0), uint64(2), false)
	f.Add(append(append([]byte{}, get...), "not a frame"...), uint8(7), uint64(3), true)
	f.Add(get[:10], uint8(1), uint64(4), true)
	f.Add([]byte{0x0c, 0xec, 1, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}, uint8(2), uint64(5), true)
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, seed uint64, faulty bool) {
		nw := NewNetwork(seed)
		if faulty {
			nw.SetLink(0, 1, Faults{Drop: 0.3, Duplicate: 0.3})
		}
		a, b := net.Pipe()
		fc := newFaultConn(nw, a, 0, 1)
		got := make(chan []byte)
		go func() {
			out, _ := io.ReadAll(b)
			got <- out
		}()
		step := int(chunk%16) + 1
		for i := 0; i < len(data); i += step {
			if _, err := fc.Write(data[i:min(i+step, len(data))]); err != nil {
				t.Fatal(err)
			}
		}
		fc.Close()
		out := <-got
		b.Close()
		// The frames of data, and what follows them.
		var frames [][]byte
		rest := data
		raw := false
		for {
			n, _ := frameLen(rest)
			if n < 0 {
				raw = true
			}
			if n <= 0 {
				break
			}
			frames = append(frames, rest[:n])
			rest = rest[n:]
		}
		if !faulty {
			want := data
			if !raw {
				want = data[:len(data)-len(rest)] // an incomplete last frame waits
			}
			if !bytes.Equal(out, want) {
				t.Fatalf("healthy link changed the stream:\n got %x\nwant %x", out, want)
			}
			return
		}
		for _, fr := range frames {
			for k := 0; k < 2 && bytes.HasPrefix(out, fr); k++ {
				out = out[len(fr):]
			}
		}
		var tail []byte
		if raw {
			tail = rest
		}
		if !bytes.Equal(out, tail) {
			t.Fatalf("after the frames, %x is left; want %x", out, tail)
		}
	})
}
