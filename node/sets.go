package node

import (
	"bytes"
	"context"
	"slices"

	"github.com/ecachedb/ecache/merge"
	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/vclock"
)

// This file holds the write path of set members (SADD and SREM, on both
// protocols). It goes through storage.Store.UpdateSet, which keeps a large
// set decoded so an add or remove costs O(members in the op) instead of
// re-encoding the whole set (docs/consistency.md, "Large sets"). In a
// cluster, a write that waits for no other replica (W=1) is replicated by
// reference (cluster.enqueue: the object is read when it is sent, once per
// burst of writes to the key), so it takes the same path; a write with
// W > 1 needs its new object at once and takes the generic one.

// setFastPath reports whether writes to ns that wait for need other
// replicas may use Store.UpdateSet: the namespace uses the built-in set
// strategy (whose Apply merge.SetObject reproduces) and no write needs the
// new object for synchronous replication.
func (n *Node) setFastPath(s merge.Strategy, need int) bool {
	return s.Name() == merge.NameSet && (n.cluster == nil || need == 0)
}

// updateSet performs SADD (add) or SREM of members on (ns, key) and
// returns how many members it added or removed, as a reader at the time of
// the write sees them. Unless always, it writes nothing when that is zero
// (Redis's SADD of present members is a no-op); always applies the op as
// the binary protocol does, so an add of present members issues a new dot
// (which survives removes that observed only the old ones).
func (n *Node) updateSet(ns, key []byte, add, always bool, members [][]byte) (int64, error) {
	if n.closed.Load() {
		return 0, ErrClosed
	}
	s, err := n.strategy(ns)
	if err != nil {
		return 0, err
	}
	kind := merge.OpSAdd
	if !add {
		kind = merge.OpSRem
	}
	op := merge.Op{Kind: kind, Members: members}
	if !n.setFastPath(s, 0) {
		var count int64
		_, err := n.applyIf(ns, key, func(cur merge.Result, _ *vclock.Object) (merge.Op, bool, error) {
			count = countChanges(members, add, func(m []byte) bool {
				_, found := slices.BinarySearchFunc(cur.Members, m, bytes.Compare)
				return found
			})
			return op, always || count > 0, nil
		})
		return count, err
	}
	var count int64
	applied := false
	err = n.store.UpdateSet(nsName(ns), key, func(set *merge.SetObject) (bool, error) {
		now := n.now().UnixNano()
		count = countChanges(members, add, func(m []byte) bool { return set.Has(m, now) })
		if count == 0 && !always {
			return false, nil
		}
		at := n.coordinatorAt(set.MaxHLC())
		if n.cluster != nil {
			set.FloorCounter(at.Node, uint64(at.HLC)) // as coordinator does (kv679)
		}
		applied = true
		return set.Apply(op, at)
	})
	if err != nil {
		return 0, err
	}
	if c := n.cluster; c != nil && applied {
		// W=1: by reference, so nothing is encoded here (see above).
		err = c.replicate(context.Background(), ns, key, vclock.Object{}, c.owners(ns, key), 0)
	}
	return count, err
}

// setNeed is how many other replicas a set write with w waits for (0
// outside a cluster; an invalid w was refused by dispatch already).
func (n *Node) setNeed(w uint32) int {
	if n.cluster == nil {
		return 0
	}
	wn, _ := netproto.ResolveLevel(w, n.cluster.replicas)
	return max(wn, 1) - 1
}

// countChanges counts the distinct members whose presence differs from
// add: those an add would add, or a remove remove.
func countChanges(members [][]byte, add bool, has func([]byte) bool) int64 {
	var seen map[string]struct{}
	if len(members) > 8 {
		seen = make(map[string]struct{}, len(members))
	}
	var count int64
	for i, m := range members {
		dup := false
		if seen != nil {
			_, dup = seen[string(m)]
			seen[string(m)] = struct{}{}
		} else {
			dup = slices.ContainsFunc(members[:i], func(p []byte) bool { return bytes.Equal(p, m) })
		}
		if !dup && has(m) != add {
			count++
		}
	}
	return count
}

// coordinatorAt is coordinator for an object whose greatest HLC is maxHLC.
func (n *Node) coordinatorAt(maxHLC vclock.Timestamp) merge.Coordinator {
	ts := n.hlc.Now()
	if maxHLC >= ts {
		if t, err := n.hlc.Observe(maxHLC); err == nil {
			ts = t
		}
	}
	return merge.Coordinator{Node: n.store.NodeID(), HLC: ts}
}
