package antientropy

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/ecachedb/ecache/internal/msgp"
	"github.com/ecachedb/ecache/vclock"
)

// MsgType names a message of the exchange. It is a wire enum: values are
// append-only and never change meaning.
type MsgType uint8

const (
	// MsgRootReq (initiator → responder) opens an exchange: Shape, Root.
	MsgRootReq MsgType = 1
	// MsgRootResp answers with the responder's Root.
	MsgRootResp MsgType = 2
	// MsgNodesReq asks for the children of Nodes at depth Level.
	MsgNodesReq MsgType = 3
	// MsgNodesResp answers with Width hashes per requested node, in order.
	MsgNodesResp MsgType = 4
	// MsgKeysReq asks for the key-and-clock lists of the leaves in Nodes,
	// judged at Now.
	MsgKeysReq MsgType = 5
	// MsgKeysResp answers with Entries.
	MsgKeysResp MsgType = 6
	// MsgObjectsReq pushes Objects for the responder to merge and pulls the
	// objects of Keys.
	MsgObjectsReq MsgType = 7
	// MsgObjectsResp answers with the pulled Objects the responder holds.
	MsgObjectsResp MsgType = 8
	// MsgAbort ends the exchange on the other side; Error says why.
	MsgAbort MsgType = 9

	msgTypeEnd = 10
)

func (t MsgType) String() string {
	switch t {
	case MsgRootReq:
		return "RootReq"
	case MsgRootResp:
		return "RootResp"
	case MsgNodesReq:
		return "NodesReq"
	case MsgNodesResp:
		return "NodesResp"
	case MsgKeysReq:
		return "KeysReq"
	case MsgKeysResp:
		return "KeysResp"
	case MsgObjectsReq:
		return "ObjectsReq"
	case MsgObjectsResp:
		return "ObjectsResp"
	case MsgAbort:
		return "Abort"
	}
	return fmt.Sprintf("MsgType(%d)", uint8(t))
}

// KeyClock is one key of a leaf listing: its version digest (0: expired,
// present only to carry its clock) and clock.
type KeyClock struct {
	NS, Key []byte
	Digest  uint64
	Clock   vclock.VV
}

// KeyRef names a key.
type KeyRef struct {
	NS, Key []byte
}

// KeyObject is a key and its whole object.
type KeyObject struct {
	NS, Key []byte
	Object  vclock.Object
}

// Message is one message of an exchange. Which fields are meaningful depends
// on Type; the others are zero. A response echoes the request's Session,
// Partition and Seq.
type Message struct {
	Type      MsgType
	Session   uint64
	Partition uint32
	// Seq numbers the initiator's requests; a response to another Seq is
	// stale and ignored.
	Seq uint64
	// Now is the initiator's clock at the start of the exchange (Unix
	// nanoseconds): the instant both sides judge expiry at.
	Now   int64
	Shape Shape
	Root  uint64
	// Level is the depth of the nodes named in Nodes (MsgNodes*).
	Level uint32
	// Nodes are node indexes at Level (MsgNodes*) or leaf indexes
	// (MsgKeysReq), ascending.
	Nodes   []uint32
	Hashes  []uint64
	Entries []KeyClock
	Keys    []KeyRef
	Objects []KeyObject
	Error   string
	// Ghosts (MsgKeysResp) holds, for each requested leaf in order, the XOR
	// of the entry hashes the responder's tree holds for the leaf but its
	// listing did not explain: keys evicted from a memory-only replica
	// (see Exchange). Empty when every leaf is explained.
	Ghosts []uint64
}

// messageFields is the number of fields of an encoded message without
// Ghosts; a message with Ghosts has one more.
const messageFields = 14

// AppendMsgpack appends m's deterministic encoding: the MessagePack array
// [type, session, partition, seq, now, [width, depth], root, level, [node...],
// hashes, [[ns, key, digest, clock]...], [[ns, key]...],
// [[ns, key, object]...], error] where hashes is one binary string of 8-byte
// big-endian hashes, clock is as vclock.VV.AppendMsgpack and object as
// vclock.Object.AppendMsgpack; a message with Ghosts appends a 15th field,
// ghosts, encoded like hashes.
func (m *Message) AppendMsgpack(b []byte) []byte {
	if len(m.Ghosts) > 0 {
		b = msgp.AppendArrayHeader(b, messageFields+1)
	} else {
		b = msgp.AppendArrayHeader(b, messageFields)
	}
	b = msgp.AppendUint(b, uint64(m.Type))
	b = msgp.AppendUint(b, m.Session)
	b = msgp.AppendUint(b, uint64(m.Partition))
	b = msgp.AppendUint(b, m.Seq)
	b = msgp.AppendInt(b, m.Now)
	b = msgp.AppendArrayHeader(b, 2)
	b = msgp.AppendUint(b, uint64(m.Shape.Width))
	b = msgp.AppendUint(b, uint64(m.Shape.Depth))
	b = msgp.AppendUint(b, m.Root)
	b = msgp.AppendUint(b, uint64(m.Level))
	b = msgp.AppendArrayHeader(b, len(m.Nodes))
	for _, n := range m.Nodes {
		b = msgp.AppendUint(b, uint64(n))
	}
	b = msgp.AppendBytes(b, appendHashes(make([]byte, 0, 8*len(m.Hashes)), m.Hashes))
	b = msgp.AppendArrayHeader(b, len(m.Entries))
	for i := range m.Entries {
		e := &m.Entries[i]
		b = msgp.AppendArrayHeader(b, 4)
		b = msgp.AppendBytes(b, e.NS)
		b = msgp.AppendBytes(b, e.Key)
		b = msgp.AppendUint(b, e.Digest)
		b = e.Clock.AppendMsgpack(b)
	}
	b = msgp.AppendArrayHeader(b, len(m.Keys))
	for i := range m.Keys {
		b = msgp.AppendArrayHeader(b, 2)
		b = msgp.AppendBytes(b, m.Keys[i].NS)
		b = msgp.AppendBytes(b, m.Keys[i].Key)
	}
	b = msgp.AppendArrayHeader(b, len(m.Objects))
	for i := range m.Objects {
		o := &m.Objects[i]
		b = msgp.AppendArrayHeader(b, 3)
		b = msgp.AppendBytes(b, o.NS)
		b = msgp.AppendBytes(b, o.Key)
		b = o.Object.AppendMsgpack(b)
	}
	b = msgp.AppendString(b, m.Error)
	if len(m.Ghosts) > 0 {
		b = msgp.AppendBytes(b, appendHashes(nil, m.Ghosts))
	}
	return b
}

func appendHashes(b []byte, hs []uint64) []byte {
	for _, h := range hs {
		b = binary.BigEndian.AppendUint64(b, h)
	}
	return b
}

func readHashes(r *msgp.Reader, what string) ([]uint64, error) {
	hb, err := r.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(hb)%8 != 0 {
		return nil, fmt.Errorf("%s: length %d not a multiple of 8", what, len(hb))
	}
	if len(hb) == 0 {
		return nil, nil
	}
	hs := make([]uint64, len(hb)/8)
	for i := range hs {
		hs[i] = binary.BigEndian.Uint64(hb[8*i:])
	}
	return hs, nil
}

// Size returns the length of m's encoding.
func (m *Message) Size() int { return len(m.AppendMsgpack(nil)) }

// DecodeMessage decodes a message written by AppendMsgpack. Byte slices in
// the result alias b. Trailing fields of a newer version are skipped; an
// unknown Type, a malformed object or trailing bytes are ErrMalformed.
func DecodeMessage(b []byte) (Message, error) {
	var m Message
	r := msgp.NewReader(b)
	if err := readMessage(&r, &m); err != nil {
		return Message{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if r.Len() != 0 {
		return Message{}, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, r.Len())
	}
	return m, nil
}

func readUint(r *msgp.Reader, what string, limit uint64) (uint64, error) {
	v, err := r.Uint()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if v > limit {
		return 0, fmt.Errorf("%s: %d out of range", what, v)
	}
	return v, nil
}

func readMessage(r *msgp.Reader, m *Message) error {
	n, err := r.ArrayHeader()
	if err != nil {
		return fmt.Errorf("message: %w", err)
	}
	if n < messageFields {
		return fmt.Errorf("message has %d fields, want %d", n, messageFields)
	}
	t, err := readUint(r, "type", 255)
	if err != nil {
		return err
	}
	if t == 0 || t >= msgTypeEnd {
		return fmt.Errorf("unknown message type %d", t)
	}
	m.Type = MsgType(t)
	if m.Session, err = r.Uint(); err != nil {
		return fmt.Errorf("session: %w", err)
	}
	p, err := readUint(r, "partition", 1<<32-1)
	if err != nil {
		return err
	}
	m.Partition = uint32(p)
	if m.Seq, err = r.Uint(); err != nil {
		return fmt.Errorf("seq: %w", err)
	}
	if m.Now, err = r.Int(); err != nil {
		return fmt.Errorf("now: %w", err)
	}
	if k, err := r.ArrayHeader(); err != nil || k != 2 {
		return fmt.Errorf("shape: want 2 fields (%v)", err)
	}
	w, err := readUint(r, "width", maxWidth)
	if err != nil {
		return err
	}
	d, err := readUint(r, "depth", maxDepth)
	if err != nil {
		return err
	}
	m.Shape = Shape{Width: int(w), Depth: int(d)}
	if m.Root, err = r.Uint(); err != nil {
		return fmt.Errorf("root: %w", err)
	}
	l, err := readUint(r, "level", maxDepth)
	if err != nil {
		return err
	}
	m.Level = uint32(l)
	k, err := r.ArrayHeader()
	if err != nil {
		return fmt.Errorf("nodes: %w", err)
	}
	if k > 0 {
		m.Nodes = make([]uint32, k)
		for i := range m.Nodes {
			v, err := readUint(r, "node", 1<<32-1)
			if err != nil {
				return err
			}
			m.Nodes[i] = uint32(v)
		}
	}
	if m.Hashes, err = readHashes(r, "hashes"); err != nil {
		return err
	}
	if k, err = r.ArrayHeader(); err != nil {
		return fmt.Errorf("entries: %w", err)
	}
	if k > 0 {
		m.Entries = make([]KeyClock, k)
		for i := range m.Entries {
			if err := readEntry(r, &m.Entries[i]); err != nil {
				return err
			}
		}
	}
	if k, err = r.ArrayHeader(); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	if k > 0 {
		m.Keys = make([]KeyRef, k)
		for i := range m.Keys {
			f, err := r.ArrayHeader()
			if err != nil || f < 2 {
				return fmt.Errorf("key: want 2 fields (%v)", err)
			}
			if m.Keys[i].NS, m.Keys[i].Key, err = readNSKey(r); err != nil {
				return err
			}
			if err := skip(r, f-2); err != nil {
				return err
			}
		}
	}
	if k, err = r.ArrayHeader(); err != nil {
		return fmt.Errorf("objects: %w", err)
	}
	if k > 0 {
		m.Objects = make([]KeyObject, k)
		for i := range m.Objects {
			o := &m.Objects[i]
			f, err := r.ArrayHeader()
			if err != nil || f < 3 {
				return fmt.Errorf("object: want 3 fields (%v)", err)
			}
			if o.NS, o.Key, err = readNSKey(r); err != nil {
				return err
			}
			if err := vclock.ReadObject(r, &o.Object); err != nil {
				return err
			}
			if err := skip(r, f-3); err != nil {
				return err
			}
		}
	}
	if m.Error, err = r.String(); err != nil {
		return fmt.Errorf("error: %w", err)
	}
	if n == messageFields {
		return nil
	}
	if m.Ghosts, err = readHashes(r, "ghosts"); err != nil {
		return err
	}
	return skip(r, n-messageFields-1)
}

func readEntry(r *msgp.Reader, e *KeyClock) error {
	f, err := r.ArrayHeader()
	if err != nil || f < 4 {
		return fmt.Errorf("entry: want 4 fields (%v)", err)
	}
	if e.NS, e.Key, err = readNSKey(r); err != nil {
		return err
	}
	if e.Digest, err = r.Uint(); err != nil {
		return fmt.Errorf("entry digest: %w", err)
	}
	if e.Clock, err = vclock.ReadVV(r, nil); err != nil {
		return err
	}
	return skip(r, f-4)
}

// readNSKey reads a namespace and a key; empty ones decode as nil so that a
// decoded message compares equal to the one encoded.
func readNSKey(r *msgp.Reader) (ns, key []byte, err error) {
	if ns, err = r.Bytes(); err != nil {
		return nil, nil, fmt.Errorf("namespace: %w", err)
	}
	if len(ns) > 255 {
		return nil, nil, fmt.Errorf("namespace of %d bytes", len(ns))
	}
	if key, err = r.Bytes(); err != nil {
		return nil, nil, fmt.Errorf("key: %w", err)
	}
	if len(ns) == 0 {
		ns = nil
	}
	if len(key) == 0 {
		key = nil
	}
	return ns, key, nil
}

func skip(r *msgp.Reader, n int) error {
	for range n {
		if err := r.Skip(); err != nil {
			return err
		}
	}
	return nil
}

// Equal reports whether m and o encode the same.
func (m *Message) Equal(o *Message) bool {
	return bytes.Equal(m.AppendMsgpack(nil), o.AppendMsgpack(nil))
}

// compareKeys orders keys by namespace, then key.
func compareKeys(ans, akey, bns, bkey []byte) int {
	if c := bytes.Compare(ans, bns); c != 0 {
		return c
	}
	return bytes.Compare(akey, bkey)
}
