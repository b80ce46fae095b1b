package node

import (
	"context"

	"github.com/ecachedb/ecache/gossip"
	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/vclock"
)

// ClusterInfo is a node's view of its cluster, as served by the admin
// endpoint GET /v1/cluster.
type ClusterInfo struct {
	NodeID     string          `json:"node_id"` // this node, 16 hex digits
	Name       string          `json:"name"`    // this node's gossip name
	GossipAddr string          `json:"gossip_addr"`
	Partitions int             `json:"partitions"` // the cluster's fixed partition count
	Replicas   int             `json:"replicas"`   // N
	Members    []ClusterMember `json:"members"`    // sorted by name
	// Rebalance is the state of this node's partition transfers.
	Rebalance RebalanceStats `json:"rebalance"`
}

// ClusterMember is one member in ClusterInfo. Partition counts come from
// the ring of live members; a dead or left member owns none.
type ClusterMember struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	State           string `json:"state"` // alive, leaving, dead or left
	Local           bool   `json:"local,omitempty"`
	GossipAddr      string `json:"gossip_addr"`
	ClientAddr      string `json:"client_addr"`
	PeerAddr        string `json:"peer_addr"`
	AdminAddr       string `json:"admin_addr"`
	ProtocolVersion uint8  `json:"protocol_version"`
	// Primary counts the partitions whose preference list this member
	// heads; Replica those it holds further down the list.
	Primary int `json:"primary_partitions"`
	Replica int `json:"replica_partitions"`
}

// ClusterInfo returns the node's view of the cluster; ok is false for a
// single node (or before it has joined).
func (n *Node) ClusterInfo() (info ClusterInfo, ok bool) {
	m := n.Membership()
	if m == nil {
		return ClusterInfo{}, false
	}
	r := m.Ring()
	info = ClusterInfo{
		NodeID:     m.LocalID().String(),
		Name:       m.Name(),
		GossipAddr: m.Addr(),
		Partitions: r.Partitions(),
		Replicas:   r.Replicas(),
		Rebalance:  n.RebalanceStats(),
	}
	primary := map[vclock.NodeID]int{}
	owned := map[vclock.NodeID]int{}
	for p := range r.Partitions() {
		for i, id := range r.Owners(uint32(p)) {
			owned[id]++
			if i == 0 {
				primary[id]++
			}
		}
	}
	for _, mem := range m.Members() {
		state := mem.State.String()
		if mem.State == gossip.StateAlive && mem.Leaving {
			state = "leaving" // handing its partitions off (rebalance.go)
		}
		info.Members = append(info.Members, ClusterMember{
			ID:              mem.ID.String(),
			Name:            mem.Name,
			State:           state,
			Local:           mem.Local,
			GossipAddr:      mem.Addr,
			ClientAddr:      mem.Meta.ClientAddr,
			PeerAddr:        mem.Meta.PeerAddr,
			AdminAddr:       mem.Meta.AdminAddr,
			ProtocolVersion: mem.Meta.ProtocolVersion,
			Primary:         primary[mem.ID],
			Replica:         owned[mem.ID] - primary[mem.ID],
		})
	}
	return info, true
}

// SetAdminAddr advertises addr as this node's admin address to the
// cluster (the admin server starts after Open, so Open cannot). It is a
// no-op for a single node.
func (n *Node) SetAdminAddr(ctx context.Context, addr string) error {
	m := n.Membership()
	if m == nil {
		return nil
	}
	meta := gossip.Meta{ClientAddr: n.Addr(), PeerAddr: n.Addr()}
	for _, mem := range m.Members() {
		if mem.Local {
			meta = mem.Meta
		}
	}
	if meta.ProtocolVersion == 0 {
		meta.ProtocolVersion = netproto.Version
	}
	meta.AdminAddr = addr
	return m.SetMeta(ctx, meta)
}

// clusterBody answers CLUSTER: the members and the ring's shape, for smart
// clients; [0, 0, []] for a single node.
func (n *Node) clusterBody() netproto.Body {
	m := n.Membership()
	if m == nil {
		return &netproto.ClusterResponse{Members: []netproto.ClusterMember{}}
	}
	r := m.Ring()
	members := m.Members()
	resp := &netproto.ClusterResponse{
		Partitions: uint32(r.Partitions()),
		Replicas:   uint32(r.Replicas()),
		Members:    make([]netproto.ClusterMember, 0, len(members)),
	}
	for _, mem := range members {
		st := netproto.MemberDead
		switch {
		case mem.State == gossip.StateAlive && mem.Leaving:
			// Handing its partitions off (rebalance.go): out of every
			// ring already, so not alive to a client computing one.
			st = netproto.MemberLeft
		case mem.State == gossip.StateAlive:
			st = netproto.MemberAlive
		case mem.State == gossip.StateLeft:
			st = netproto.MemberLeft
		}
		resp.Members = append(resp.Members, netproto.ClusterMember{ID: uint64(mem.ID), ClientAddr: mem.Meta.ClientAddr, State: st})
	}
	return resp
}
