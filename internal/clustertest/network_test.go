package clustertest

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ecachedb/ecache/netproto"
)

// decisions returns the fates of n messages on 0 → 1.
func decisions(nw *Network, n int, p Path, op netproto.Opcode) []decision {
	out := make([]decision, n)
	for i := range out {
		out[i] = nw.decide(0, 1, p, op)
	}
	return out
}

// TestDecisionsReproducible: the same seed gives every message the same
// fate; another seed does not; the rates follow the faults.
func TestDecisionsReproducible(t *testing.T) {
	f := Faults{Drop: 0.3, Duplicate: 0.2, Delay: 10 * time.Millisecond}
	mk := func(seed uint64) *Network {
		nw := NewNetwork(seed)
		nw.SetLink(0, 1, f)
		return nw
	}
	a, b, c := mk(7), mk(7), mk(8)
	da, db, dc := decisions(a, 1000, PathData, netproto.OpPut), decisions(b, 1000, PathData, netproto.OpPut), decisions(c, 1000, PathData, netproto.OpPut)
	for i := range da {
		if da[i] != db[i] {
			t.Fatalf("message %d: %+v with one network, %+v with the other of the same seed", i, da[i], db[i])
		}
	}
	same := 0
	for i := range da {
		if da[i] == dc[i] {
			same++
		}
	}
	if same == len(da) {
		t.Fatal("seeds 7 and 8 decide alike")
	}
	st := a.Stats(0, 1, PathData)
	if st.Messages != 1000 || st.Dropped < 250 || st.Dropped > 350 || st.Duplicated < 100 || st.Duplicated > 200 {
		t.Fatalf("stats %+v, want about 300 dropped and 140 duplicated of 1000", st)
	}
	// Other links and paths are their own streams, and healthy.
	if d := a.decide(1, 0, PathData, netproto.OpPut); d != (decision{}) {
		t.Fatalf("healthy link decided %+v", d)
	}
	// Changing the faults midway does not shift the draws.
	a.SetLink(0, 1, Faults{})
	b.SetLink(0, 1, Faults{})
	decisions(a, 5, PathData, netproto.OpPut)
	decisions(b, 5, PathGossip, 0) // another stream
	decisions(b, 5, PathData, netproto.OpPut)
	a.SetLink(0, 1, f)
	b.SetLink(0, 1, f)
	if x, y := decisions(a, 100, PathData, netproto.OpPut), decisions(b, 100, PathData, netproto.OpPut); !equalDecisions(x, y) {
		t.Fatal("draws shifted by a healthy stretch or another stream")
	}
}

func equalDecisions(a, b []decision) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

func TestFaultScope(t *testing.T) {
	nw := NewNetwork(1)
	nw.SetLink(0, 1, Faults{Drop: 1, Path: PathData, Ops: []netproto.Opcode{netproto.OpReplicate}})
	if d := nw.decide(0, 1, PathData, netproto.OpReplicate); !d.drop {
		t.Fatal("REPLICATE not dropped")
	}
	if d := nw.decide(0, 1, PathData, netproto.OpPut); d.drop {
		t.Fatal("PUT dropped by a REPLICATE-only fault")
	}
	if d := nw.decide(0, 1, PathGossip, 0); d.drop {
		t.Fatal("gossip dropped by a data-only fault")
	}
	nw.Cut(0, 1, PathGossip)
	if !nw.refuses(1, 0, PathGossip) || nw.refuses(1, 0, PathData) {
		t.Fatal("a gossip cut must refuse gossip dials only")
	}
	nw.Heal(0, 1)
	if nw.refuses(0, 1, PathGossip) {
		t.Fatal("healed link refuses")
	}
}

// pipe returns a fault conn from node 0 to node 1 and the far end.
func pipe(t *testing.T, nw *Network) (*faultConn, net.Conn) {
	a, b := net.Pipe()
	fc := newFaultConn(nw, a, 0, 1)
	t.Cleanup(func() { fc.Close(); b.Close() })
	return fc, b
}

// readFrames reads n frames from c and returns their request IDs.
func readFrames(t *testing.T, c net.Conn, n int) []uint32 {
	t.Helper()
	var ids []uint32
	var buf []byte
	tmp := make([]byte, 4096)
	for len(ids) < n {
		k, err := c.Read(tmp)
		if err != nil {
			t.Fatalf("after %d frames: %v", len(ids), err)
		}
		buf = append(buf, tmp[:k]...)
		for {
			l, _ := frameLen(buf)
			if l <= 0 {
				break
			}
			h, _ := netproto.ParseHeader(buf)
			ids = append(ids, h.RequestID)
			buf = buf[l:]
		}
	}
	return ids
}

// TestFaultConnRequests: frames written in arbitrary chunks are dropped and
// duplicated whole, per opcode.
func TestFaultConnRequests(t *testing.T) {
	nw := NewNetwork(3)
	nw.SetLink(0, 1, Faults{Drop: 1, Ops: []netproto.Opcode{netproto.OpDel}})
	fc, far := pipe(t, nw)
	var stream []byte
	for id := uint32(1); id <= 6; id++ {
		op := netproto.OpGet
		if id%2 == 0 {
			op = netproto.OpDel
		}
		stream = netproto.AppendRequest(stream, op, id, &netproto.KeyRequest{Key: []byte("k")})
	}
	stream = netproto.AppendRequest(stream, netproto.OpGet, 7, &netproto.KeyRequest{Key: []byte("k")})
	done := make(chan []uint32)
	go func() { done <- readFrames(t, far, 4) }()
	// Three-byte writes: frames are judged whole, whatever the chunking.
	for i := 0; i < len(stream); i += 3 {
		if _, err := fc.Write(stream[i:min(i+3, len(stream))]); err != nil {
			t.Fatal(err)
		}
	}
	if ids := <-done; !equalIDs(ids, []uint32{1, 3, 5, 7}) {
		t.Fatalf("far end got %v, want the GETs 1 3 5 7", ids)
	}
	// Duplicates arrive twice, back to back.
	nw.SetLink(0, 1, Faults{Duplicate: 1})
	go func() { done <- readFrames(t, far, 2) }()
	if _, err := fc.Write(netproto.AppendRequest(nil, netproto.OpGet, 9, &netproto.KeyRequest{Key: []byte("k")})); err != nil {
		t.Fatal(err)
	}
	if ids := <-done; !equalIDs(ids, []uint32{9, 9}) {
		t.Fatalf("far end got %v, want 9 twice", ids)
	}
	// A cut breaks the connection at the next frame.
	nw.SetLink(0, 1, Faults{Cut: true})
	if _, err := fc.Write(netproto.AppendRequest(nil, netproto.OpGet, 10, &netproto.KeyRequest{Key: []byte("k")})); !errors.Is(err, ErrCut) {
		t.Fatalf("write over a cut link = %v, want ErrCut", err)
	}
	if _, err := far.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("far end after a cut = %v, want EOF", err)
	}
}

// TestFaultConnResponses: responses are judged on the reverse link.
func TestFaultConnResponses(t *testing.T) {
	nw := NewNetwork(4)
	nw.SetLink(1, 0, Faults{Drop: 1, Ops: []netproto.Opcode{netproto.OpDel}})
	fc, far := pipe(t, nw)
	var stream []byte
	stream = netproto.AppendResponse(stream, netproto.OpDel, 1, &netproto.StatusResponse{})
	stream = netproto.AppendResponse(stream, netproto.OpGet, 2, &netproto.StatusResponse{})
	go func() {
		for i := 0; i < len(stream); i += 5 {
			if _, err := far.Write(stream[i:min(i+5, len(stream))]); err != nil {
				return
			}
		}
	}()
	if ids := readFrames(t, fc, 1); !equalIDs(ids, []uint32{2}) {
		t.Fatalf("read %v, want only response 2", ids)
	}
	if st := nw.Stats(1, 0, PathData); st.Messages != 2 || st.Dropped != 1 {
		t.Fatalf("reverse link stats %+v", st)
	}
}

func equalIDs(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
