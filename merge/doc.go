// Package merge holds ecache's merge strategies: what a write does to a
// key's object, how two replicas' versions of it join, and what a reader
// sees. Every namespace names one strategy; a Registry, built by the
// embedding program and passed to whoever needs it (there is no global one),
// maps names to strategies. The built-ins are lww, siblings, counter and
// set; NewValueStrategy makes value-type strategies with a user-defined
// read-time resolution.
//
// Every strategy stores a vclock.Object and obeys the same contract:
//
//   - Apply runs once per write, on the coordinator, and issues at most one
//     dot (the coordinator's next counter for the key). Replication and
//     anti-entropy only ever call Merge, which issues none.
//   - Merge is commutative, associative and idempotent on every object
//     Apply and Merge can produce, and never modifies its arguments, so
//     replicas that have exchanged their objects in any order, with
//     duplicates, hold equal objects (vclock.ObjectsEqual) and read equally.
//   - Encodings are deterministic and decoders strict: a state decodes only
//     if it re-encodes to the same bytes. A malformed object makes Apply fail
//     with ErrMalformedState, reads as absent, and is treated as absent by
//     Merge (so it can never cover, and drop, what the other side holds).
//   - Apply's "now", against which it decides whether the current version
//     has expired, is the wall-clock part of the coordinator's HLC reading.
//
// # Value strategies
//
// lww, siblings and NewValueStrategy ones store the DVV sibling set itself
// and merge with vclock.Join, a semilattice whatever the timestamps.
//
//   - OpPut writes Sibling{HLC: at.HLC, Expiry: op.Expiry, Value: op.Value}
//     with Object.Update; OpDelete writes a tombstone the same way. The
//     siblings strategy (and custom ones) pass op.Context, dropping exactly
//     the siblings the client has read. lww passes op.Context joined with the
//     object's clock: even a blind lww write supersedes every local sibling,
//     so concurrent siblings exist only between replicas, until the next
//     write.
//   - lww readers see the sibling with the greatest (HLC, node), tombstones
//     and expired ones included; if that is a tombstone or expired the key
//     is absent. A causally earlier write never wins, whatever its
//     timestamp: it was dropped by dot coverage.
//   - siblings readers see every live sibling (neither tombstone nor
//     expired) in dot order, with the earliest non-zero expiry.
//   - OpExpire rewrites the one visible value with the new expiry, as a
//     write whose context is the object's clock: ErrNotFound if nothing is
//     visible, ErrSiblings if several siblings are.
//
// # counter
//
// A PN-counter with observed reset. The object has one sibling whose value
// encodes, per node that ever coordinated a change, the totals p and n of
// its increments and decrements and the parts rp ≤ p and rn ≤ n of them that
// resets have cancelled; the value is Σ(p−rp) − Σ(n−rn). All four only grow,
// so Merge takes their pointwise maximum.
//
//   - Every Apply that changes the counter issues one dot, which becomes
//     the sibling's Dot; Merge keeps the greater of the two dots and joins
//     the clocks. Op.Context is ignored.
//   - OpIncr adds |Delta| to p or n of the coordinator; ErrOverflow if the
//     value would leave int64 or a total would wrap. Concurrent increments
//     on different replicas can still push the merged value out of range;
//     Read then saturates.
//   - OpDelete is an observed reset: it cancels every total it has seen
//     (rp, rn = p, n), so the value reads 0, increments made elsewhere
//     concurrently survive, and concurrent resets cancel the same totals
//     instead of subtracting twice. A reset counter still exists and reads
//     0 (until it expires). A delete of an absent counter changes nothing.
//   - The sibling's (HLC, Expiry) is an expiry register: Merge keeps the
//     side with the greater HLC, ties going to the greater Expiry. A new
//     counter starts with the zero register, so a concurrent blind increment
//     never clears an expiry set elsewhere. OpExpire (ErrNotFound when absent
//     or expired) writes (HLC, op.Expiry) with HLC = at.HLC, raised above
//     the register's HLC when the coordinator's clock is behind, so that a
//     causally later expiry always wins.
//   - Read: found iff the object exists and is not expired. OpIncr on an
//     expired counter first resets it and clears the expiry, starting a new
//     counter.
//
// # set
//
// An add-wins observed-remove set without tombstones (ORSWOT). The object's
// clock is the set's clock; its one sibling's value encodes each member with
// the dots of the adds that put it there.
//
//   - OpSAdd issues one dot d for the whole op; each added member's dots
//     become {d}, replacing those observed. OpSRem removes the given
//     members' entries, OpDelete every entry; both issue a dot when they
//     remove something (so a dominating clock always means a dominating
//     state) and change nothing otherwise.
//   - Merge: a member both sides hold keeps the dots both hold plus those
//     one holds that the other's clock has not seen; a member one side holds
//     keeps its dots the other's clock has not seen; members left without a
//     dot are dropped. An add concurrent with a remove of the same member
//     therefore wins.
//   - Expiry register, sibling Dot, OpExpire and expired-add behaviour as
//     for counter. Read: members sorted bytewise; found iff there is at
//     least one member and the set is not expired.
package merge
