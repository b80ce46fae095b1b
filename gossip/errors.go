package gossip

import "errors"

var (
	// ErrConfig reports an invalid Config field; the message names it.
	ErrConfig = errors.New("gossip: invalid config")
	// ErrJoin reports that no seed in Config.Join could be joined.
	ErrJoin = errors.New("gossip: cannot join the cluster")
	// ErrPartitionCount reports a node whose partition count differs from
	// the cluster's; such a node is refused.
	ErrPartitionCount = errors.New("gossip: node refused")
	// ErrMeta reports node metadata that does not decode.
	ErrMeta = errors.New("gossip: malformed node metadata")
	// ErrClosed reports a call on a closed Membership.
	ErrClosed = errors.New("gossip: membership closed")
)
