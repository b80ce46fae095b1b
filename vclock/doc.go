// Package vclock holds ecache's causal metadata: node identities, dots,
// version vectors, the dotted-version-vector sibling set every stored object
// is, and the hybrid logical clock that timestamps versions.
//
// Invariants the rest of ecache relies on:
//
//   - Actors are server nodes only. A version vector has at most one entry per
//     node that ever coordinated a write to that key, so it never needs pruning.
//   - A dot (node, counter) names exactly one write. A node issues the dots of
//     one key in order, each one greater than every counter of that node the
//     object's clock (joined with the writer's context) already holds, so a
//     dot is never reused while the node keeps its data.
//   - Replicas exchange whole objects (state, not deltas). Then a clock entry
//     n:k means "every dot (n, 1..k) has been seen": a sibling whose dot is
//     covered by a clock but absent from that clock's object was superseded.
//   - Encodings are deterministic: the same value always yields the same
//     bytes, so replicas holding equal objects hash them identically.
//
// The package does no I/O.
package vclock
