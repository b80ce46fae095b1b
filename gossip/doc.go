// Package gossip wires hashicorp/memberlist into ecache: cluster
// membership and failure detection, each node's metadata (node ID, service
// addresses, protocol version, partition count), and the current partition
// ring built from the live members (package gossip/ring).
//
// Invariants:
//
//   - Every member of a cluster has the same partition count. A node whose
//     count differs is refused both when it joins (memberlist's merge
//     delegate, on both sides of the push/pull) and whenever its alive
//     messages reach a node (the alive delegate), so it can never enter a
//     ring.
//   - Ring always returns the ring of the members memberlist considers live
//     (alive or suspect) with a valid metadata record; it is rebuilt after
//     every membership change and read without locks. Subscribers are told
//     after the new ring is in place.
//   - With a cluster key, every gossip packet and stream is encrypted and
//     authenticated; a node without the key cannot join or be heard.
//
// The package moves no user data.
package gossip
