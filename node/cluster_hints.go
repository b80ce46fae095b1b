package node

import (
	"time"

	"github.com/ecachedb/ecache/vclock"
)

// Hints for a replica that never returns. Gossip remembers a dead or left
// node for its DeadRetention (1h by default); while it does, writes for the
// node's partitions leave hints for it (downOwners). Once the cluster has
// forgotten a node, its hints are dropped: a node that comes back after
// that is repaired by anti-entropy, as after any long absence, and the hint
// store does not fill up with objects for a node that is gone for good.

// forgottenHints tracks which hint targets the cluster has known.
type forgottenHints struct {
	started time.Time              // when this node joined
	seen    map[vclock.NodeID]bool // hint targets seen in membership since
}

// forgotten reports whether id is gone for good: not among the members the
// cluster remembers, although it was seen since this node started, or this
// node has been up longer than the retention (so a node it has never heard
// of cannot be one that is merely slow to rejoin). The caller holds c.mu.
func (c *cluster) forgottenLocked(id vclock.NodeID, remembered map[vclock.NodeID]bool, retention time.Duration, now time.Time) bool {
	f := &c.forgotten
	if f.seen == nil {
		f.seen, f.started = map[vclock.NodeID]bool{}, now
	}
	if remembered[id] {
		f.seen[id] = true
		return false
	}
	return f.seen[id] || now.Sub(f.started) > retention
}

// dropForgottenHints drops the hints held for targets the cluster has
// forgotten and returns the targets that are still remembered.
func (c *cluster) dropForgottenHints(targets []vclock.NodeID) []vclock.NodeID {
	m := c.gossip.Load()
	if m == nil {
		return targets
	}
	remembered := map[vclock.NodeID]bool{}
	for _, mem := range m.Members() {
		remembered[mem.ID] = true
	}
	now := time.Now()
	keep := targets[:0]
	for _, id := range targets {
		c.mu.Lock()
		gone := c.forgottenLocked(id, remembered, m.DeadRetention(), now)
		c.mu.Unlock()
		if !gone {
			keep = append(keep, id)
			continue
		}
		var n uint64
		err := c.n.store.ScanHints(id, func(ns, key, obj []byte) error {
			ok, err := c.n.store.DeleteHint(id, ns, key, obj)
			if ok {
				n++
			}
			return err
		})
		c.hintsForgotten.Add(n)
		if err != nil {
			c.n.log.Warn("dropping the hints of a forgotten node failed", "peer", id, "err", err)
		} else if n > 0 {
			c.n.log.Warn("dropped the hints of a node the cluster has forgotten", "peer", id, "hints", n)
		}
	}
	return keep
}
