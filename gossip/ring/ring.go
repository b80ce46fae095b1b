// Package ring maps partitions to the nodes that replicate them.
//
// A partition's preference list is the top-N nodes by rendezvous (highest
// random weight) hashing: every node gets the weight
//
//	weight(p, n) = xxhash64(be32(p) || be64(n))
//
// for partition p and node ID n (big-endian bytes, 12 in all), and the list
// is the nodes in decreasing weight, ties broken by smaller node ID. Because
// a node's weight for a partition does not depend on which other nodes
// exist, the order of any two nodes is the same in every ring, so:
//
//   - adding a node x changes a preference list only by inserting x at its
//     rank (pushing the last entry out when the list was full) or not at all;
//   - removing a node only deletes it from the lists it was in, each of which
//     then gains at most one node at its end.
//
// No tokens, no coordination: any process that knows the member IDs and the
// partition count (a smart client, too) computes the same lists. The package
// does no I/O and imports nothing from the gossip layer, so the SDK can use
// it. A Ring is immutable and safe for concurrent use.
package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cespare/xxhash/v2"

	"github.com/ecachedb/ecache/vclock"
)

// MaxPartitions is the largest partition count: Pebble keys carry the
// partition in two bytes.
const MaxPartitions = 1 << 16

// ErrConfig reports a partition or replica count out of range.
var ErrConfig = errors.New("ring: invalid configuration")

// Weight is the rendezvous weight of node n for partition p.
func Weight(p uint32, n vclock.NodeID) uint64 {
	var b [12]byte
	binary.BigEndian.PutUint32(b[:4], p)
	binary.BigEndian.PutUint64(b[4:], uint64(n))
	return xxhash.Sum64(b[:])
}

// Ring holds the preference lists of every partition for one set of nodes.
type Ring struct {
	partitions int
	replicas   int
	nodes      []vclock.NodeID // sorted, distinct, non-zero
	// owners[p*width:(p+1)*width] is partition p's preference list, where
	// width = min(replicas, len(nodes)).
	owners []vclock.NodeID
	width  int
}

// New returns the ring of the given node IDs (in any order; duplicates and
// zero IDs are ignored) with partitions partitions, each replicated on
// replicas nodes (fewer while the ring has fewer nodes).
func New(partitions, replicas int, nodes []vclock.NodeID) (*Ring, error) {
	if partitions < 1 || partitions > MaxPartitions {
		return nil, fmt.Errorf("%w: partitions %d not in [1, %d]", ErrConfig, partitions, MaxPartitions)
	}
	if replicas < 1 {
		return nil, fmt.Errorf("%w: replicas %d < 1", ErrConfig, replicas)
	}
	ns := make([]vclock.NodeID, 0, len(nodes))
	for _, n := range nodes {
		if n != 0 {
			ns = append(ns, n)
		}
	}
	slices.Sort(ns)
	ns = slices.Compact(ns)
	r := &Ring{partitions: partitions, replicas: replicas, nodes: ns, width: min(replicas, len(ns))}
	r.owners = make([]vclock.NodeID, partitions*r.width)
	scratch := make([]scored, len(ns))
	for p := range partitions {
		copy(r.owners[p*r.width:(p+1)*r.width], r.rank(uint32(p), r.width, scratch))
	}
	return r, nil
}

// MustNew is New for arguments known to be valid; it panics otherwise.
func MustNew(partitions, replicas int, nodes []vclock.NodeID) *Ring {
	r, err := New(partitions, replicas, nodes)
	if err != nil {
		panic(err)
	}
	return r
}

type scored struct {
	w uint64
	n vclock.NodeID
}

// higher orders by decreasing weight, then increasing node ID.
func higher(a, b scored) int {
	switch {
	case a.w > b.w:
		return -1
	case a.w < b.w:
		return 1
	case a.n < b.n:
		return -1
	case a.n > b.n:
		return 1
	}
	return 0
}

// rank returns the top n nodes of partition p, using scratch (len(r.nodes)).
func (r *Ring) rank(p uint32, n int, scratch []scored) []vclock.NodeID {
	for i, id := range r.nodes {
		scratch[i] = scored{Weight(p, id), id}
	}
	n = min(n, len(r.nodes))
	// Selection of the top n: n is small (the replica count), so n passes
	// beat a full sort.
	for i := range n {
		best := i
		for j := i + 1; j < len(scratch); j++ {
			if higher(scratch[j], scratch[best]) < 0 {
				best = j
			}
		}
		scratch[i], scratch[best] = scratch[best], scratch[i]
	}
	out := make([]vclock.NodeID, n)
	for i := range n {
		out[i] = scratch[i].n
	}
	return out
}

// Partitions is the partition count.
func (r *Ring) Partitions() int { return r.partitions }

// Replicas is the configured replica count N; Owners returns fewer while
// the ring has fewer nodes.
func (r *Ring) Replicas() int { return r.replicas }

// Nodes returns the ring's node IDs in increasing order.
func (r *Ring) Nodes() []vclock.NodeID { return slices.Clone(r.nodes) }

// Len is the number of nodes.
func (r *Ring) Len() int { return len(r.nodes) }

// Has reports whether node is in the ring.
func (r *Ring) Has(node vclock.NodeID) bool {
	_, ok := slices.BinarySearch(r.nodes, node)
	return ok
}

// Preference returns the first n nodes of partition p's preference list
// (fewer if the ring has fewer nodes; nil for an empty ring, n < 1 or a
// partition out of range).
func (r *Ring) Preference(p uint32, n int) []vclock.NodeID {
	if n < 1 || int64(p) >= int64(r.partitions) || len(r.nodes) == 0 {
		return nil
	}
	if n <= r.width {
		return slices.Clone(r.owners[int(p)*r.width : int(p)*r.width+n])
	}
	return r.rank(p, n, make([]scored, len(r.nodes)))
}

// Owners returns the replicas of partition p: its preference list of
// Replicas nodes, primary first. The slice is shared; do not modify it.
func (r *Ring) Owners(p uint32) []vclock.NodeID {
	if int64(p) >= int64(r.partitions) {
		return nil
	}
	return r.owners[int(p)*r.width : (int(p)+1)*r.width : (int(p)+1)*r.width]
}

// Primary returns the first owner of partition p, or 0 for an empty ring.
func (r *Ring) Primary(p uint32) vclock.NodeID {
	if o := r.Owners(p); len(o) > 0 {
		return o[0]
	}
	return 0
}

// IsOwner reports whether node is one of partition p's replicas.
func (r *Ring) IsOwner(p uint32, node vclock.NodeID) bool {
	return slices.Contains(r.Owners(p), node)
}

// PartitionsOf returns, in increasing order, the partitions node replicates.
func (r *Ring) PartitionsOf(node vclock.NodeID) []uint32 {
	var out []uint32
	if !r.Has(node) {
		return out
	}
	for p := range r.partitions {
		if r.IsOwner(uint32(p), node) {
			out = append(out, uint32(p))
		}
	}
	return out
}

// Equal reports whether r and o have the same partitions, replicas and
// nodes, and therefore the same preference lists.
func (r *Ring) Equal(o *Ring) bool {
	if r == nil || o == nil {
		return r == o
	}
	return r.partitions == o.partitions && r.replicas == o.replicas && slices.Equal(r.nodes, o.nodes)
}

// String summarises the ring for logs.
func (r *Ring) String() string {
	return fmt.Sprintf("ring{partitions=%d replicas=%d nodes=%d}", r.partitions, r.replicas, len(r.nodes))
}
