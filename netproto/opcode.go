package netproto

import "strconv"

// Opcode says what a frame asks for; a response carries its request's
// opcode.
//
// The values are sent to clients in other languages: the list is
// append-only. Never renumber or reuse a value; add new opcodes at the end.
// Zero is not an opcode, so a forgotten field is never taken for a request.
type Opcode uint8

const (
	OpHello       Opcode = iota + 1 // handshake: versions, features, password
	OpPing                          // liveness; echoes a payload
	OpGet                           // read one key
	OpPut                           // write one value
	OpDel                           // delete one key
	OpMGet                          // read several keys of one namespace
	OpMPut                          // write several keys of one namespace
	OpIncr                          // add to a counter
	OpDecr                          // subtract from a counter
	OpSAdd                          // add members to a set
	OpSRem                          // remove members from a set
	OpSMembers                      // read a set
	OpExpire                        // set or clear a key's TTL
	OpTTL                           // read a key's TTL
	OpStats                         // server counters
	OpReplicate                     // peer: merge a whole object into a replica
	OpFetch                         // peer: read a replica's whole object
	OpAntiEntropy                   // peer: one anti-entropy exchange message
	OpCluster                       // the node's view of the cluster, for smart clients
	OpRESP                          // peer: run a Redis-protocol command on a replica of its keys

	opEnd // one past the last opcode; keep last
)

var opNames = [...]string{
	OpHello:       "HELLO",
	OpPing:        "PING",
	OpGet:         "GET",
	OpPut:         "PUT",
	OpDel:         "DEL",
	OpMGet:        "MGET",
	OpMPut:        "MPUT",
	OpIncr:        "INCR",
	OpDecr:        "DECR",
	OpSAdd:        "SADD",
	OpSRem:        "SREM",
	OpSMembers:    "SMEMBERS",
	OpExpire:      "EXPIRE",
	OpTTL:         "TTL",
	OpStats:       "STATS",
	OpReplicate:   "REPLICATE",
	OpFetch:       "FETCH",
	OpAntiEntropy: "ANTIENTROPY",
	OpCluster:     "CLUSTER",
	OpRESP:        "RESP",
}

// Valid reports whether o is an opcode this codec knows.
func (o Opcode) Valid() bool { return o > 0 && o < opEnd }

func (o Opcode) String() string {
	if o.Valid() {
		return opNames[o]
	}
	return "Opcode(" + strconv.Itoa(int(o)) + ")"
}
