package gossip

import (
	"fmt"

	"github.com/ecachedb/ecache/internal/msgp"
	"github.com/ecachedb/ecache/vclock"
)

// Meta is what a node tells the cluster about itself besides its identity:
// where to reach its services and which protocol it speaks.
type Meta struct {
	ClientAddr      string // binary-protocol client listener, host:port
	PeerAddr        string // peer (node-to-node) listener, host:port
	AdminAddr       string // admin HTTP listener, host:port
	ProtocolVersion uint8  // netproto version the node speaks
}

// nodeMeta is the metadata memberlist carries for each node (at most
// memberlist.MetaMaxSize bytes). It is encoded as one MessagePack array,
// deterministically:
//
//	[id uint, partitions uint, protocol uint, client str, peer str, admin str, leaving bool]
//
// The field list is append-only: a decoder needs the first seven fields and
// skips any that newer versions append.
type nodeMeta struct {
	ID         vclock.NodeID
	Partitions uint32
	Meta
	// Leaving is set by a node that is leaving gracefully, so that the
	// others can tell its departure (left) from a failure (dead): memberlist
	// does not expose the difference to its delegates.
	Leaving bool
}

const metaFields = 7

func (m *nodeMeta) appendTo(b []byte) []byte {
	b = msgp.AppendArrayHeader(b, metaFields)
	b = msgp.AppendUint(b, uint64(m.ID))
	b = msgp.AppendUint(b, uint64(m.Partitions))
	b = msgp.AppendUint(b, uint64(m.ProtocolVersion))
	b = msgp.AppendString(b, m.ClientAddr)
	b = msgp.AppendString(b, m.PeerAddr)
	b = msgp.AppendString(b, m.AdminAddr)
	return msgp.AppendBool(b, m.Leaving)
}

// decodeNodeMeta decodes b, which must hold exactly one metadata array.
func decodeNodeMeta(b []byte) (nodeMeta, error) {
	var m nodeMeta
	r := msgp.NewReader(b)
	n, err := r.ArrayHeader()
	if err != nil {
		return m, fmt.Errorf("%w: %w", ErrMeta, err)
	}
	if n < metaFields {
		return m, fmt.Errorf("%w: %d fields, want at least %d", ErrMeta, n, metaFields)
	}
	id, err := r.Uint()
	if err != nil {
		return m, fmt.Errorf("%w: node id: %w", ErrMeta, err)
	}
	if id == 0 {
		return m, fmt.Errorf("%w: node id is zero", ErrMeta)
	}
	parts, err := r.Uint()
	if err != nil {
		return m, fmt.Errorf("%w: partitions: %w", ErrMeta, err)
	}
	if parts == 0 || parts > maxPartitions {
		return m, fmt.Errorf("%w: partitions %d out of range", ErrMeta, parts)
	}
	proto, err := r.Uint()
	if err != nil {
		return m, fmt.Errorf("%w: protocol version: %w", ErrMeta, err)
	}
	if proto > 255 {
		return m, fmt.Errorf("%w: protocol version %d out of range", ErrMeta, proto)
	}
	m.ID, m.Partitions, m.ProtocolVersion = vclock.NodeID(id), uint32(parts), uint8(proto)
	for _, f := range []*string{&m.ClientAddr, &m.PeerAddr, &m.AdminAddr} {
		if *f, err = r.String(); err != nil {
			return m, fmt.Errorf("%w: address: %w", ErrMeta, err)
		}
	}
	if m.Leaving, err = r.Bool(); err != nil {
		return m, fmt.Errorf("%w: leaving: %w", ErrMeta, err)
	}
	for range n - metaFields {
		if err := r.Skip(); err != nil {
			return m, fmt.Errorf("%w: %w", ErrMeta, err)
		}
	}
	if r.Len() != 0 {
		return m, fmt.Errorf("%w: %d trailing bytes", ErrMeta, r.Len())
	}
	return m, nil
}
