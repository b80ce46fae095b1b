package netproto

import (
	"math"

	"github.com/ecachedb/ecache/internal/msgp"
)

// RESPRequest is a peer operation (only from a peer authenticated with the
// cluster key): a node that received a Redis-protocol command for keys it
// does not replicate has an owner run it: [proto uint, args [bin...]].
// proto is the RESP version the client speaks (2 or 3), so the reply is
// encoded as the client expects; args is the command and its arguments as
// the client sent them. The response is a RESPResponse.
type RESPRequest struct {
	Proto uint8
	Args  [][]byte
}

func (m *RESPRequest) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 2)
	b = msgp.AppendUint(b, uint64(m.Proto))
	return appendBytesList(b, m.Args)
}

func (m *RESPRequest) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(2)
	m.Proto = uint8(d.uint(math.MaxUint8))
	m.Args = d.bytesList(m.Args)
	d.leave(s)
	return d.finish()
}

// RESPResponse is the owner's Redis-protocol reply to a RESPRequest,
// exactly the bytes the client would have read from it: [reply bin].
type RESPResponse struct {
	Reply []byte
}

func (m *RESPResponse) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 1)
	return msgp.AppendBytes(b, m.Reply)
}

func (m *RESPResponse) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(1)
	m.Reply = d.bytes()
	d.leave(s)
	return d.finish()
}
