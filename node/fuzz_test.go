package node

import (
	"context"
	"testing"

	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/storage"
)

// FuzzHandler sends arbitrary request frames (any opcode, any body) through
// the node's protocol handler. Whatever the input, the node must answer
// with exactly one well-formed response frame carrying the request's
// opcode and ID, and never panic. Seeds: testdata/fuzz/FuzzHandler plus one
// valid request per opcode.
func FuzzHandler(f *testing.F) {
	seeds := []struct {
		op   netproto.Opcode
		body netproto.Body
	}{
		{netproto.OpHello, &netproto.HelloRequest{Version: 1, Client: "fuzz"}},
		{netproto.OpPing, &netproto.PingBody{Payload: []byte("p")}},
		{netproto.OpGet, &netproto.GetRequest{Namespace: []byte("default"), Key: []byte("k")}},
		{netproto.OpPut, &netproto.PutRequest{Namespace: []byte("sib"), Key: []byte("k"), Value: []byte("v"), TTL: 1000}},
		{netproto.OpDel, &netproto.DelRequest{Key: []byte("k")}},
		{netproto.OpMGet, &netproto.MGetRequest{Keys: [][]byte{[]byte("k"), []byte("j")}}},
		{netproto.OpMPut, &netproto.MPutRequest{Entries: []netproto.MPutEntry{{Key: []byte("k"), Value: []byte("v")}}}},
		{netproto.OpIncr, &netproto.CounterRequest{Namespace: []byte("cnt"), Key: []byte("c"), Delta: 3}},
		{netproto.OpDecr, &netproto.CounterRequest{Namespace: []byte("cnt"), Key: []byte("c"), Delta: 1}},
		{netproto.OpSAdd, &netproto.SetRequest{Namespace: []byte("tags"), Key: []byte("s"), Members: [][]byte{[]byte("m")}}},
		{netproto.OpSRem, &netproto.SetRequest{Namespace: []byte("tags"), Key: []byte("s"), Members: [][]byte{[]byte("m")}}},
		{netproto.OpSMembers, &netproto.KeyRequest{Namespace: []byte("tags"), Key: []byte("s")}},
		{netproto.OpExpire, &netproto.ExpireRequest{Key: []byte("k"), TTL: 5000}},
		{netproto.OpTTL, &netproto.KeyRequest{Key: []byte("k")}},
		{netproto.OpStats, &netproto.StatsRequest{}},
	}
	for _, s := range seeds {
		f.Add(uint8(s.op), s.body.AppendBody(nil))
	}
	f.Add(uint8(200), []byte{0x90})
	f.Add(uint8(netproto.OpPut), []byte{0x96, 0xa0, 0xc4, 0x01, 'k', 0xc4, 0x00, 0xc4, 0x02, 0xff, 0xff, 0x00})

	cfg := testConfig(f, storage.PersistenceNone)
	n, err := Open(cfg)
	if err != nil {
		f.Fatal(err)
	}
	defer n.Close(context.Background())
	dec := netproto.NewDecoder(netproto.DefaultLimits())
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		raw := netproto.AppendHeader(nil, netproto.Header{Version: netproto.Version, Opcode: netproto.Opcode(op), RequestID: 7, BodyLen: uint32(len(body))})
		raw = append(raw, body...)
		fr, _, err := dec.Next(raw)
		if err != nil {
			return // framing errors are the server's, fuzzed in netproto
		}
		s := &netproto.Session{}
		out, ok := n.ServeFast(s, fr, nil)
		if !ok {
			out = n.Serve(context.Background(), s, fr, nil)
		}
		resp, used, err := dec.Next(out)
		if err != nil || used != len(out) || used == 0 {
			t.Fatalf("response is not exactly one frame: %v (%d of %d bytes)", err, used, len(out))
		}
		if !resp.IsResponse() || resp.Opcode != fr.Opcode || resp.RequestID != 7 {
			t.Fatalf("response header %+v for request %+v", resp.Header, fr.Header)
		}
		if resp.IsError() {
			var e netproto.ErrorBody
			if err := e.DecodeBody(resp.Body); err != nil || e.Code == netproto.CodeOK || e.Code == netproto.CodeInternal {
				t.Fatalf("error response %+v (%v): bad input must get a specific code", e, err)
			}
			return
		}
		if body := netproto.NewResponse(resp.Opcode); body != nil {
			if err := body.DecodeBody(resp.Body); err != nil {
				t.Fatalf("%v response does not decode: %v", resp.Opcode, err)
			}
		}
	})
}
