package netproto

import (
	"math"

	"github.com/ecachedb/ecache/internal/msgp"
)

// Every body is a MessagePack array of positional fields, documented on
// each type as [field, ...]. Fields marked optional may be omitted by
// senders (they read as zero); encoders here always write them. Decoders
// skip fields after the last one they know.
//
// Conventions shared by all bodies:
//   - namespace is a str, key a bin; both come first in keyed requests.
//   - context is the opaque causal context (bin) a read returned; empty is
//     a blind write.
//   - ttl_ms is a duration in milliseconds: in requests 0 means no expiry;
//     in responses it is the remaining time, 0 for none (a key about to
//     expire reports at least 1).
//   - w is the number of replica acknowledgements a write waits for; 0 (or
//     omitted) is the namespace's default; LevelQuorum and LevelAll name
//     levels (as they do for a GET's r).
//   - status is a Code: CodeOK, CodeNotFound or CodeSiblings.

// HelloRequest opens a connection: [version uint, client string,
// features [string...], password string (optional; empty is none)].
type HelloRequest struct {
	Version  uint8
	Client   string
	Features []string
	Password string
}

func (m *HelloRequest) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 4)
	b = msgp.AppendUint(b, uint64(m.Version))
	b = msgp.AppendString(b, m.Client)
	b = appendStrList(b, m.Features)
	return msgp.AppendString(b, m.Password)
}

func (m *HelloRequest) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(3)
	m.Version = uint8(d.uint(math.MaxUint8))
	m.Client = d.str()
	m.Features = d.strList(m.Features)
	m.Password = d.str()
	d.leave(s)
	return d.finish()
}

// HelloResponse accepts a HELLO: [version uint, server string, node_id uint,
// features [string...]].
type HelloResponse struct {
	Version  uint8
	Server   string
	NodeID   uint64
	Features []string
}

func (m *HelloResponse) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 4)
	b = msgp.AppendUint(b, uint64(m.Version))
	b = msgp.AppendString(b, m.Server)
	b = msgp.AppendUint(b, m.NodeID)
	return appendStrList(b, m.Features)
}

func (m *HelloResponse) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(4)
	m.Version = uint8(d.uint(math.MaxUint8))
	m.Server = d.str()
	m.NodeID = d.uint(math.MaxUint64)
	m.Features = d.strList(m.Features)
	d.leave(s)
	return d.finish()
}

// PingBody is the body of PING requests and responses: [payload bin]. The
// response echoes the request's payload.
type PingBody struct {
	Payload []byte
}

func (m *PingBody) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 1)
	return msgp.AppendBytes(b, m.Payload)
}

func (m *PingBody) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(0)
	m.Payload = d.bytes()
	d.leave(s)
	return d.finish()
}

// GetFlagNoValues asks GET and MGET for the status, context and TTL only,
// without the values.
const GetFlagNoValues uint64 = 1 << 0

// GetFlagLocal asks GET to read only the addressed node's own store: never
// forwarded, never merged with other replicas (for operators checking a
// replica). R is ignored with it.
const GetFlagLocal uint64 = 1 << 1

// GetRequest reads a key: [namespace str, key bin, flags uint, r uint].
// R (optional, appended later) is the number of replicas that must answer
// in a cluster; 0 and 1 both mean one; LevelQuorum and LevelAll name levels. It is encoded only when non-zero, so
// a request without it is byte-for-byte what older clients send.
type GetRequest struct {
	Namespace []byte
	Key       []byte
	Flags     uint64
	R         uint32
}

func (m *GetRequest) AppendBody(b []byte) []byte {
	if m.R == 0 {
		b = msgp.AppendArrayHeader(b, 3)
	} else {
		b = msgp.AppendArrayHeader(b, 4)
	}
	b = appendStr(b, m.Namespace)
	b = msgp.AppendBytes(b, m.Key)
	b = msgp.AppendUint(b, m.Flags)
	if m.R != 0 {
		b = msgp.AppendUint(b, uint64(m.R))
	}
	return b
}

func (m *GetRequest) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(2)
	m.Namespace = d.bytes()
	m.Key = d.bytes()
	m.Flags = d.uint(math.MaxUint64)
	m.R = uint32(d.uint(math.MaxUint32))
	d.leave(s)
	return d.finish()
}

// GetResponse is a read's result: [status uint, values [bin...],
// context bin, ttl_ms int]. Status is CodeOK with one value, CodeSiblings
// with several concurrent values (resolve and write back with context), or
// CodeNotFound with none (context may still be non-empty: write with it to
// supersede a deletion).
type GetResponse struct {
	Status  Code
	Values  [][]byte
	Context []byte
	TTL     int64
}

func (m *GetResponse) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 4)
	b = msgp.AppendUint(b, uint64(m.Status))
	b = appendBytesList(b, m.Values)
	b = msgp.AppendBytes(b, m.Context)
	return msgp.AppendInt(b, m.TTL)
}

func (m *GetResponse) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	m.decode(&d)
	return d.finish()
}

func (m *GetResponse) decode(d *dec) {
	s := d.enter(4)
	m.Status = d.code()
	m.Values = d.bytesList(m.Values)
	m.Context = d.bytes()
	m.TTL = d.int()
	d.leave(s)
}

// PutRequest writes a value: [namespace str, key bin, value bin,
// context bin, ttl_ms int, w uint (optional)].
type PutRequest struct {
	Namespace []byte
	Key       []byte
	Value     []byte
	Context   []byte
	TTL       int64
	W         uint32
}

func (m *PutRequest) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 6)
	b = appendStr(b, m.Namespace)
	b = msgp.AppendBytes(b, m.Key)
	b = msgp.AppendBytes(b, m.Value)
	b = msgp.AppendBytes(b, m.Context)
	b = msgp.AppendInt(b, m.TTL)
	return msgp.AppendUint(b, uint64(m.W))
}

func (m *PutRequest) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(5)
	m.Namespace = d.bytes()
	m.Key = d.bytes()
	m.Value = d.bytes()
	m.Context = d.bytes()
	m.TTL = d.int()
	m.W = uint32(d.uint(math.MaxUint32))
	d.leave(s)
	return d.finish()
}

// WriteResponse is the result of PUT and DEL: [status uint, context bin].
// Context covers the write just made: sending it with the next write
// replaces this one without reading first.
type WriteResponse struct {
	Status  Code
	Context []byte
}

func (m *WriteResponse) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 2)
	b = msgp.AppendUint(b, uint64(m.Status))
	return msgp.AppendBytes(b, m.Context)
}

func (m *WriteResponse) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	m.decode(&d)
	return d.finish()
}

func (m *WriteResponse) decode(d *dec) {
	s := d.enter(2)
	m.Status = d.code()
	m.Context = d.bytes()
	d.leave(s)
}

// DelRequest deletes a key: [namespace str, key bin, context bin,
// w uint (optional)]. Context says which versions the delete supersedes;
// empty deletes what the coordinator holds.
type DelRequest struct {
	Namespace []byte
	Key       []byte
	Context   []byte
	W         uint32
}

func (m *DelRequest) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 4)
	b = appendStr(b, m.Namespace)
	b = msgp.AppendBytes(b, m.Key)
	b = msgp.AppendBytes(b, m.Context)
	return msgp.AppendUint(b, uint64(m.W))
}

func (m *DelRequest) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(3)
	m.Namespace = d.bytes()
	m.Key = d.bytes()
	m.Context = d.bytes()
	m.W = uint32(d.uint(math.MaxUint32))
	d.leave(s)
	return d.finish()
}

// MGetRequest reads several keys of one namespace: [namespace str,
// keys [bin...], flags uint].
type MGetRequest struct {
	Namespace []byte
	Keys      [][]byte
	Flags     uint64
}

func (m *MGetRequest) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 3)
	b = appendStr(b, m.Namespace)
	b = appendBytesList(b, m.Keys)
	return msgp.AppendUint(b, m.Flags)
}

func (m *MGetRequest) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(2)
	m.Namespace = d.bytes()
	m.Keys = d.bytesList(m.Keys)
	m.Flags = d.uint(math.MaxUint64)
	d.leave(s)
	return d.finish()
}

// MGetResponse holds one GET result per requested key, in request order:
// [results [[status, values, context, ttl_ms]...]]. A key-level failure
// (key too large) is reported in its result's status.
type MGetResponse struct {
	Results []GetResponse
}

func (m *MGetResponse) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 1)
	b = msgp.AppendArrayHeader(b, len(m.Results))
	for i := range m.Results {
		b = m.Results[i].AppendBody(b)
	}
	return b
}

func (m *MGetResponse) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(1)
	l := d.enter(0)
	m.Results = grow(m.Results, d.length())
	for i := range m.Results {
		m.Results[i].decode(&d)
	}
	d.leave(l)
	d.leave(s)
	return d.finish()
}

// MPutEntry is one write of an MPUT: [key bin, value bin, context bin,
// ttl_ms int].
type MPutEntry struct {
	Key     []byte
	Value   []byte
	Context []byte
	TTL     int64
}

// MPutRequest writes several keys of one namespace: [namespace str,
// entries [[key, value, context, ttl_ms]...], w uint (optional)]. Each
// entry is an independent write; there is no atomicity across entries.
type MPutRequest struct {
	Namespace []byte
	Entries   []MPutEntry
	W         uint32
}

func (m *MPutRequest) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 3)
	b = appendStr(b, m.Namespace)
	b = msgp.AppendArrayHeader(b, len(m.Entries))
	for _, e := range m.Entries {
		b = msgp.AppendArrayHeader(b, 4)
		b = msgp.AppendBytes(b, e.Key)
		b = msgp.AppendBytes(b, e.Value)
		b = msgp.AppendBytes(b, e.Context)
		b = msgp.AppendInt(b, e.TTL)
	}
	return msgp.AppendUint(b, uint64(m.W))
}

func (m *MPutRequest) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(2)
	m.Namespace = d.bytes()
	l := d.enter(0)
	m.Entries = grow(m.Entries, d.length())
	for i := range m.Entries {
		e := &m.Entries[i]
		es := d.enter(4)
		e.Key = d.bytes()
		e.Value = d.bytes()
		e.Context = d.bytes()
		e.TTL = d.int()
		d.leave(es)
	}
	d.leave(l)
	m.W = uint32(d.uint(math.MaxUint32))
	d.leave(s)
	return d.finish()
}

// MPutResponse holds one write result per entry, in request order:
// [results [[status, context]...]]. Status may be an error code (value too
// large, ...) for a single entry.
type MPutResponse struct {
	Results []WriteResponse
}

func (m *MPutResponse) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 1)
	b = msgp.AppendArrayHeader(b, len(m.Results))
	for i := range m.Results {
		b = m.Results[i].AppendBody(b)
	}
	return b
}

func (m *MPutResponse) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(1)
	l := d.enter(0)
	m.Results = grow(m.Results, d.length())
	for i := range m.Results {
		m.Results[i].decode(&d)
	}
	d.leave(l)
	d.leave(s)
	return d.finish()
}

// CounterRequest is the body of INCR and DECR: [namespace str, key bin,
// delta int, w uint (optional)]. INCR adds delta, DECR subtracts it.
type CounterRequest struct {
	Namespace []byte
	Key       []byte
	Delta     int64
	W         uint32
}

func (m *CounterRequest) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 4)
	b = appendStr(b, m.Namespace)
	b = msgp.AppendBytes(b, m.Key)
	b = msgp.AppendInt(b, m.Delta)
	return msgp.AppendUint(b, uint64(m.W))
}

func (m *CounterRequest) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(3)
	m.Namespace = d.bytes()
	m.Key = d.bytes()
	m.Delta = d.int()
	m.W = uint32(d.uint(math.MaxUint32))
	d.leave(s)
	return d.finish()
}

// CounterResponse is the result of INCR and DECR: [status uint, value int],
// value being the counter as the coordinator sees it after the write.
type CounterResponse struct {
	Status Code
	Value  int64
}

func (m *CounterResponse) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 2)
	b = msgp.AppendUint(b, uint64(m.Status))
	return msgp.AppendInt(b, m.Value)
}

func (m *CounterResponse) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(2)
	m.Status = d.code()
	m.Value = d.int()
	d.leave(s)
	return d.finish()
}

// SetRequest is the body of SADD and SREM: [namespace str, key bin,
// members [bin...], w uint (optional)].
type SetRequest struct {
	Namespace []byte
	Key       []byte
	Members   [][]byte
	W         uint32
}

func (m *SetRequest) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 4)
	b = appendStr(b, m.Namespace)
	b = msgp.AppendBytes(b, m.Key)
	b = appendBytesList(b, m.Members)
	return msgp.AppendUint(b, uint64(m.W))
}

func (m *SetRequest) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(3)
	m.Namespace = d.bytes()
	m.Key = d.bytes()
	m.Members = d.bytesList(m.Members)
	m.W = uint32(d.uint(math.MaxUint32))
	d.leave(s)
	return d.finish()
}

// StatusResponse is the result of SADD, SREM and EXPIRE: [status uint].
// EXPIRE answers CodeNotFound for an absent key.
type StatusResponse struct {
	Status Code
}

func (m *StatusResponse) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 1)
	return msgp.AppendUint(b, uint64(m.Status))
}

func (m *StatusResponse) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(1)
	m.Status = d.code()
	d.leave(s)
	return d.finish()
}

// KeyRequest is the body of SMEMBERS and TTL: [namespace str, key bin].
type KeyRequest struct {
	Namespace []byte
	Key       []byte
}

func (m *KeyRequest) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 2)
	b = appendStr(b, m.Namespace)
	return msgp.AppendBytes(b, m.Key)
}

func (m *KeyRequest) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(2)
	m.Namespace = d.bytes()
	m.Key = d.bytes()
	d.leave(s)
	return d.finish()
}

// SMembersResponse is a set read: [status uint, members [bin...],
// ttl_ms int], members sorted bytewise.
type SMembersResponse struct {
	Status  Code
	Members [][]byte
	TTL     int64
}

func (m *SMembersResponse) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 3)
	b = msgp.AppendUint(b, uint64(m.Status))
	b = appendBytesList(b, m.Members)
	return msgp.AppendInt(b, m.TTL)
}

func (m *SMembersResponse) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(3)
	m.Status = d.code()
	m.Members = d.bytesList(m.Members)
	m.TTL = d.int()
	d.leave(s)
	return d.finish()
}

// ExpireRequest sets a live key's TTL: [namespace str, key bin, ttl_ms int
// (0 removes the expiry), w uint (optional)].
type ExpireRequest struct {
	Namespace []byte
	Key       []byte
	TTL       int64
	W         uint32
}

func (m *ExpireRequest) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 4)
	b = appendStr(b, m.Namespace)
	b = msgp.AppendBytes(b, m.Key)
	b = msgp.AppendInt(b, m.TTL)
	return msgp.AppendUint(b, uint64(m.W))
}

func (m *ExpireRequest) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(3)
	m.Namespace = d.bytes()
	m.Key = d.bytes()
	m.TTL = d.int()
	m.W = uint32(d.uint(math.MaxUint32))
	d.leave(s)
	return d.finish()
}

// TTLResponse is a key's remaining TTL: [status uint, ttl_ms int], ttl_ms 0
// for a live key without expiry; status CodeNotFound for an absent key.
type TTLResponse struct {
	Status Code
	TTL    int64
}

func (m *TTLResponse) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 2)
	b = msgp.AppendUint(b, uint64(m.Status))
	return msgp.AppendInt(b, m.TTL)
}

func (m *TTLResponse) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(2)
	m.Status = d.code()
	m.TTL = d.int()
	d.leave(s)
	return d.finish()
}

// StatsRequest asks for the server's counters: [] (no fields).
type StatsRequest struct{}

func (m *StatsRequest) AppendBody(b []byte) []byte { return msgp.AppendArrayHeader(b, 0) }

func (m *StatsRequest) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	d.leave(d.enter(0))
	return d.finish()
}

// Stat is one named server counter.
type Stat struct {
	Name  []byte
	Value int64
}

// StatsResponse lists server counters: [stats [[name str, value int]...]],
// in an order the server chooses. Clients must ignore names they do not
// know.
type StatsResponse struct {
	Stats []Stat
}

func (m *StatsResponse) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 1)
	b = msgp.AppendArrayHeader(b, len(m.Stats))
	for _, s := range m.Stats {
		b = msgp.AppendArrayHeader(b, 2)
		b = appendStr(b, s.Name)
		b = msgp.AppendInt(b, s.Value)
	}
	return b
}

func (m *StatsResponse) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(1)
	l := d.enter(0)
	m.Stats = grow(m.Stats, d.length())
	for i := range m.Stats {
		es := d.enter(2)
		m.Stats[i].Name = d.bytes()
		m.Stats[i].Value = d.int()
		d.leave(es)
	}
	d.leave(l)
	d.leave(s)
	return d.finish()
}

// ReplicateRequest is a peer operation (only from a peer authenticated with
// the cluster key): the coordinator of a write sends the whole resulting
// object to another replica, which merges it into its own: [namespace str,
// key bin, object bin]. object is a vclock.Object in its AppendMsgpack
// encoding. The response is a StatusResponse.
type ReplicateRequest struct {
	Namespace []byte
	Key       []byte
	Object    []byte
}

func (m *ReplicateRequest) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 3)
	b = appendStr(b, m.Namespace)
	b = msgp.AppendBytes(b, m.Key)
	return msgp.AppendBytes(b, m.Object)
}

func (m *ReplicateRequest) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(3)
	m.Namespace = d.bytes()
	m.Key = d.bytes()
	m.Object = d.bytes()
	d.leave(s)
	return d.finish()
}

// FetchResponse is a peer's whole object for a FETCH (whose request is a
// KeyRequest): [status uint, object bin]. Status CodeNotFound with an empty
// object when the replica holds nothing for the key.
type FetchResponse struct {
	Status Code
	Object []byte
}

func (m *FetchResponse) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 2)
	b = msgp.AppendUint(b, uint64(m.Status))
	return msgp.AppendBytes(b, m.Object)
}

func (m *FetchResponse) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(2)
	m.Status = d.code()
	m.Object = d.bytes()
	d.leave(s)
	return d.finish()
}

// ErrorBody is the body of every error response (FlagError set): [code uint,
// message string]. The message is for humans; programs act on the code.
type ErrorBody struct {
	Code    Code
	Message string
}

func (m *ErrorBody) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 2)
	b = msgp.AppendUint(b, uint64(m.Code))
	return msgp.AppendString(b, m.Message)
}

func (m *ErrorBody) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(2)
	m.Code = d.code()
	m.Message = d.str()
	d.leave(s)
	return d.finish()
}

// NewRequest returns a new, empty request body for op, or nil for an
// unknown opcode. Servers keep one of each per connection and decode into
// it, so decoding does not allocate.
func NewRequest(op Opcode) Body {
	switch op {
	case OpHello:
		return new(HelloRequest)
	case OpPing:
		return new(PingBody)
	case OpGet:
		return new(GetRequest)
	case OpPut:
		return new(PutRequest)
	case OpDel:
		return new(DelRequest)
	case OpMGet:
		return new(MGetRequest)
	case OpMPut:
		return new(MPutRequest)
	case OpIncr, OpDecr:
		return new(CounterRequest)
	case OpSAdd, OpSRem:
		return new(SetRequest)
	case OpSMembers, OpTTL, OpFetch:
		return new(KeyRequest)
	case OpExpire:
		return new(ExpireRequest)
	case OpStats:
		return new(StatsRequest)
	case OpReplicate:
		return new(ReplicateRequest)
	case OpRESP:
		return new(RESPRequest)
	case OpCluster:
		return new(ClusterRequest)
	case OpAntiEntropy:
		return new(AntiEntropyRequest)
	}
	return nil
}

// NewResponse returns a new, empty successful-response body for op, or nil
// for an unknown opcode. Error responses use ErrorBody.
func NewResponse(op Opcode) Body {
	switch op {
	case OpHello:
		return new(HelloResponse)
	case OpPing:
		return new(PingBody)
	case OpGet:
		return new(GetResponse)
	case OpPut, OpDel:
		return new(WriteResponse)
	case OpMGet:
		return new(MGetResponse)
	case OpMPut:
		return new(MPutResponse)
	case OpIncr, OpDecr:
		return new(CounterResponse)
	case OpSAdd, OpSRem, OpExpire, OpReplicate:
		return new(StatusResponse)
	case OpSMembers:
		return new(SMembersResponse)
	case OpTTL:
		return new(TTLResponse)
	case OpStats:
		return new(StatsResponse)
	case OpFetch:
		return new(FetchResponse)
	case OpRESP:
		return new(RESPResponse)
	case OpCluster:
		return new(ClusterResponse)
	case OpAntiEntropy:
		return new(AntiEntropyResponse)
	}
	return nil
}

// Reserved W and R values (issue #4). Besides a replica count (0 is the
// namespace's default), a request's w or r may name a level, which the
// coordinating replica resolves against the namespace's replica count N:
// quorum is N/2+1, all is N. They are the two largest uint32 values, so no
// replica count is ever mistaken for one.
const (
	LevelQuorum uint32 = 0xFFFFFFFE
	LevelAll    uint32 = 0xFFFFFFFF
)

// ResolveLevel returns the number of replicas a w or r of v asks for among
// n: v itself for 0..n, n/2+1 for LevelQuorum, n for LevelAll. ok is false
// for any other value (a count over n).
func ResolveLevel(v uint32, n int) (count int, ok bool) {
	switch v {
	case LevelQuorum:
		return n/2 + 1, true
	case LevelAll:
		return n, true
	}
	if int64(v) > int64(n) {
		return 0, false
	}
	return int(v), true
}

// MemberState is a cluster member's state in a ClusterResponse. The
// values are append-only.
type MemberState uint8

// Member states.
const (
	MemberAlive MemberState = 1 // serving; in the ring
	MemberDead  MemberState = 2 // failed: stopped answering probes
	MemberLeft  MemberState = 3 // left gracefully
)

// ClusterRequest asks a node for its view of the cluster: [] (no fields).
type ClusterRequest struct{}

func (m *ClusterRequest) AppendBody(b []byte) []byte { return msgp.AppendArrayHeader(b, 0) }

func (m *ClusterRequest) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	d.leave(d.enter(0))
	return d.finish()
}

// ClusterMember is one member of a ClusterResponse: [node_id uint,
// client_addr str, state uint].
type ClusterMember struct {
	ID         uint64
	ClientAddr string
	State      MemberState
}

// ClusterResponse is a node's view of its cluster, enough for a client to
// compute every key's replicas (docs/protocol.md): [partitions uint,
// replicas uint, members [[node_id, client_addr, state]...]]. A single
// node (not in a cluster) answers partitions 0, replicas 0 and no members.
// The ring is made of the alive members only.
type ClusterResponse struct {
	Partitions uint32
	Replicas   uint32
	Members    []ClusterMember
}

func (m *ClusterResponse) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 3)
	b = msgp.AppendUint(b, uint64(m.Partitions))
	b = msgp.AppendUint(b, uint64(m.Replicas))
	b = msgp.AppendArrayHeader(b, len(m.Members))
	for _, mem := range m.Members {
		b = msgp.AppendArrayHeader(b, 3)
		b = msgp.AppendUint(b, mem.ID)
		b = msgp.AppendString(b, mem.ClientAddr)
		b = msgp.AppendUint(b, uint64(mem.State))
	}
	return b
}

func (m *ClusterResponse) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(3)
	m.Partitions = uint32(d.uint(math.MaxUint32))
	m.Replicas = uint32(d.uint(math.MaxUint32))
	l := d.enter(0)
	m.Members = grow(m.Members, d.length())
	for i := range m.Members {
		es := d.enter(3)
		m.Members[i].ID = d.uint(math.MaxUint64)
		m.Members[i].ClientAddr = d.str()
		m.Members[i].State = MemberState(d.uint(math.MaxUint8))
		d.leave(es)
	}
	d.leave(l)
	d.leave(s)
	return d.finish()
}

// AntiEntropyRequest is a peer operation (only from a peer authenticated
// with the cluster key) carrying one message of an anti-entropy exchange
// from its initiator: [message bin], message being an antientropy.Message
// in its AppendMsgpack encoding. The response is an AntiEntropyResponse.
type AntiEntropyRequest struct {
	Message []byte
}

func (m *AntiEntropyRequest) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 1)
	return msgp.AppendBytes(b, m.Message)
}

func (m *AntiEntropyRequest) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(1)
	m.Message = d.bytes()
	d.leave(s)
	return d.finish()
}

// AntiEntropyResponse carries the responder's answers to an
// AntiEntropyRequest: [[message bin...]], each an antientropy.Message
// encoding (usually one; none for a message that needs no answer).
type AntiEntropyResponse struct {
	Messages [][]byte
}

func (m *AntiEntropyResponse) AppendBody(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, 1)
	b = msgp.AppendArrayHeader(b, len(m.Messages))
	for _, msg := range m.Messages {
		b = msgp.AppendBytes(b, msg)
	}
	return b
}

func (m *AntiEntropyResponse) DecodeBody(b []byte) error {
	var d dec
	d.init(b)
	s := d.enter(1)
	l := d.enter(0)
	m.Messages = grow(m.Messages, d.length())
	for i := range m.Messages {
		m.Messages[i] = d.bytes()
	}
	d.leave(l)
	d.leave(s)
	return d.finish()
}
