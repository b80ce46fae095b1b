package netproto

import (
	"encoding/hex"

	"github.com/ecachedb/ecache/vclock"
)

// example is one canonical message: a golden vector and a benchmark case.
type example struct {
	name  string // golden file name, without .hex
	op    Opcode
	flags Flags
	id    uint32
	body  Body
}

// bodyFor returns a fresh body of the type a frame with op and flags
// carries, or nil.
func bodyFor(op Opcode, flags Flags) Body {
	switch {
	case flags&FlagError != 0:
		return new(ErrorBody)
	case flags&FlagResponse != 0:
		return NewResponse(op)
	}
	return NewRequest(op)
}

// examples returns one canonical example of every request and response,
// and of an error response. Request IDs count up from 1 so each vector is
// distinct.
func examples() []example {
	ns := []byte("users")
	key := []byte("alice")
	// The context a server hands out after node 7's second write: clients
	// treat it as opaque bytes.
	ctx := vclock.EncodeContext(vclock.VV{{Node: 7, Counter: 2}})
	ctx2 := vclock.EncodeContext(vclock.VV{{Node: 7, Counter: 3}})
	// The whole object a replica holds after node 7's second write of "v1".
	o := vclock.Object{Clock: vclock.VV{{Node: 7, Counter: 2}}, Siblings: []vclock.Sibling{
		{Dot: vclock.Dot{Node: 7, Counter: 2}, Value: []byte("v1"), HLC: 0x0000018f00000000},
	}}
	obj := o.AppendMsgpack(nil)
	req := func(name string, op Opcode, id uint32, b Body) example {
		return example{name: name + "_request", op: op, id: id, body: b}
	}
	resp := func(name string, op Opcode, id uint32, b Body) example {
		return example{name: name + "_response", op: op, flags: FlagResponse, id: id, body: b}
	}
	return []example{
		req("hello", OpHello, 1, &HelloRequest{Version: 1, Client: "ecache-go/0.1", Features: []string{}, Password: ""}),
		resp("hello", OpHello, 1, &HelloResponse{Version: 1, Server: "ecache 0.1.0", NodeID: 0x0102030405060708, Features: []string{}}),
		req("ping", OpPing, 2, &PingBody{Payload: []byte("hi")}),
		resp("ping", OpPing, 2, &PingBody{Payload: []byte("hi")}),
		req("get", OpGet, 3, &GetRequest{Namespace: ns, Key: key, Flags: 0}),
		resp("get", OpGet, 3, &GetResponse{Status: CodeOK, Values: [][]byte{[]byte("v1")}, Context: ctx, TTL: 0}),
		req("put", OpPut, 4, &PutRequest{Namespace: ns, Key: key, Value: []byte("v2"), Context: ctx, TTL: 60000, W: 0}),
		resp("put", OpPut, 4, &WriteResponse{Status: CodeOK, Context: ctx2}),
		req("del", OpDel, 5, &DelRequest{Namespace: ns, Key: key, Context: ctx2}),
		resp("del", OpDel, 5, &WriteResponse{Status: CodeOK, Context: vclock.EncodeContext(vclock.VV{{Node: 7, Counter: 4}})}),
		req("mget", OpMGet, 6, &MGetRequest{Namespace: ns, Keys: [][]byte{[]byte("a"), []byte("b")}}),
		resp("mget", OpMGet, 6, &MGetResponse{Results: []GetResponse{
			{Status: CodeOK, Values: [][]byte{[]byte("x")}, Context: ctx, TTL: 1500},
			{Status: CodeNotFound, Values: [][]byte{}, Context: []byte{}},
		}}),
		req("mput", OpMPut, 7, &MPutRequest{Namespace: ns, Entries: []MPutEntry{
			{Key: []byte("a"), Value: []byte("x"), Context: []byte{}},
			{Key: []byte("b"), Value: []byte("y"), Context: ctx, TTL: 1000},
		}, W: 2}),
		resp("mput", OpMPut, 7, &MPutResponse{Results: []WriteResponse{
			{Status: CodeOK, Context: ctx},
			{Status: CodeOK, Context: ctx2},
		}}),
		req("incr", OpIncr, 8, &CounterRequest{Namespace: []byte("hits"), Key: key, Delta: 5}),
		resp("incr", OpIncr, 8, &CounterResponse{Status: CodeOK, Value: 5}),
		req("decr", OpDecr, 9, &CounterRequest{Namespace: []byte("hits"), Key: key, Delta: 2}),
		resp("decr", OpDecr, 9, &CounterResponse{Status: CodeOK, Value: 3}),
		req("sadd", OpSAdd, 10, &SetRequest{Namespace: []byte("tags"), Key: key, Members: [][]byte{[]byte("red"), []byte("blue")}}),
		resp("sadd", OpSAdd, 10, &StatusResponse{Status: CodeOK}),
		req("srem", OpSRem, 11, &SetRequest{Namespace: []byte("tags"), Key: key, Members: [][]byte{[]byte("red")}}),
		resp("srem", OpSRem, 11, &StatusResponse{Status: CodeOK}),
		req("smembers", OpSMembers, 12, &KeyRequest{Namespace: []byte("tags"), Key: key}),
		resp("smembers", OpSMembers, 12, &SMembersResponse{Status: CodeOK, Members: [][]byte{[]byte("blue")}, TTL: 0}),
		req("expire", OpExpire, 13, &ExpireRequest{Namespace: ns, Key: key, TTL: 30000}),
		resp("expire", OpExpire, 13, &StatusResponse{Status: CodeOK}),
		req("ttl", OpTTL, 14, &KeyRequest{Namespace: ns, Key: key}),
		resp("ttl", OpTTL, 14, &TTLResponse{Status: CodeOK, TTL: 29998}),
		req("stats", OpStats, 15, &StatsRequest{}),
		resp("stats", OpStats, 15, &StatsResponse{Stats: []Stat{{Name: []byte("keys"), Value: 42}, {Name: []byte("conns"), Value: 3}}}),
		{name: "error_response", op: OpGet, flags: FlagResponse | FlagError, id: 16, body: &ErrorBody{Code: CodeUnknownNamespace, Message: "unknown namespace \"nope\""}},
		req("replicate", OpReplicate, 17, &ReplicateRequest{Namespace: ns, Key: key, Object: obj}),
		resp("replicate", OpReplicate, 17, &StatusResponse{Status: CodeOK}),
		req("fetch", OpFetch, 18, &KeyRequest{Namespace: ns, Key: key}),
		resp("fetch", OpFetch, 18, &FetchResponse{Status: CodeOK, Object: obj}),
		req("get_r", OpGet, 19, &GetRequest{Namespace: ns, Key: key, Flags: 0, R: 2}),
		req("get_local", OpGet, 20, &GetRequest{Namespace: ns, Key: key, Flags: GetFlagLocal}),
		// Anti-entropy (issue #5): a root request of partition 7 and its
		// answer, as antientropy.Message encodings.
		req("antientropy", OpAntiEntropy, 50, &AntiEntropyRequest{Message: aeRootReq}),
		resp("antientropy", OpAntiEntropy, 50, &AntiEntropyResponse{Messages: [][]byte{aeRootResp}}),
		// W and R levels (issue #4).
		req("put_w_quorum", OpPut, 40, &PutRequest{Namespace: ns, Key: key, Value: []byte("v2"), Context: ctx, W: LevelQuorum}),
		req("get_r_all", OpGet, 41, &GetRequest{Namespace: ns, Key: key, R: LevelAll}),
		req("cluster", OpCluster, 42, &ClusterRequest{}),
		resp("cluster", OpCluster, 42, &ClusterResponse{Partitions: 1024, Replicas: 3, Members: []ClusterMember{
			{ID: 0x0102030405060708, ClientAddr: "10.0.0.1:7070", State: MemberAlive},
			{ID: 0x1112131415161718, ClientAddr: "10.0.0.2:7070", State: MemberDead},
		}}),
		// A Redis-protocol command forwarded to a replica of its key, and
		// the replica's reply.
		req("resp", OpRESP, 43, &RESPRequest{Proto: 2, Args: [][]byte{[]byte("SET"), []byte("k"), []byte("v")}}),
		resp("resp", OpRESP, 43, &RESPResponse{Reply: []byte("+OK\r\n")}),
	}
}

// aeRootReq and aeRootResp are antientropy.Message encodings (see
// antientropy's TestMessageVector): a root request of partition 7 with a
// 32x2 tree, and a root response with root 0x0123456789abcdef.
var (
	aeRootReq  = mustHex("9e0101070102922002000090c400909090a0")
	aeRootResp = mustHex("9e0201070100920000cf0123456789abcdef0090c400909090a0")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// frame returns e's encoding.
func (e example) frame() []byte { return AppendFrame(nil, e.op, e.flags, e.id, e.body) }

// bodyBytes returns e's body encoding.
func (e example) bodyBytes() []byte { return e.body.AppendBody(nil) }
