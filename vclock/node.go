package vclock

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strconv"
)

// NodeID identifies a server node. It is random, created with the node's
// data directory and kept in it; a node that loses its data gets a new one.
// Zero is never a valid NodeID.
type NodeID uint64

// NewNodeID returns a fresh random non-zero NodeID.
func NewNodeID() NodeID {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic(fmt.Sprintf("vclock: reading random bytes: %v", err)) // crypto/rand never fails on supported platforms
		}
		if id := NodeID(binary.LittleEndian.Uint64(b[:])); id != 0 {
			return id
		}
	}
}

// String renders the ID as 16 lower-case hex digits.
func (n NodeID) String() string {
	s := strconv.FormatUint(uint64(n), 16)
	for len(s) < 16 {
		s = "0" + s
	}
	return s
}

// ParseNodeID parses the form String produces.
func ParseNodeID(s string) (NodeID, error) {
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("%w: node id %q", ErrMalformed, s)
	}
	return NodeID(v), nil
}

// Dot names one write: the node that coordinated it and that node's counter
// for the key at the time.
type Dot struct {
	Node    NodeID
	Counter uint64
}

// Less orders dots by node, then counter.
func (d Dot) Less(o Dot) bool {
	if d.Node != o.Node {
		return d.Node < o.Node
	}
	return d.Counter < o.Counter
}

func (d Dot) String() string { return d.Node.String() + ":" + strconv.FormatUint(d.Counter, 10) }
