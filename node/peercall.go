package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/ecachedb/ecache/client"
	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/vclock"
)

// errNoReplica reports a request none of its key's replicas answered.
var errNoReplica = errors.New("node: no replica of the key answered")

// errOutcomeUnknown reports a forwarded write that timed out or lost its
// connection in flight: it may have been applied, so it is not sent to the
// next replica (which would coordinate it a second time: a second dot, an
// increment counted twice).
var errOutcomeUnknown = errors.New("node: forwarded write's outcome unknown, it may have been applied")

// call sends req to the first of owners that answers and decodes its
// answer into res. It stops at this node: here reports that every owner
// before it in the list failed to connect (or it came first), so the
// caller serves the request itself. A server's error answer is returned as
// a *client.ServerError. Only a request that never left (no connection to
// the owner) goes on to the next owner, unless it is a read.
func (c *cluster) call(ctx context.Context, owners []vclock.NodeID, op netproto.Opcode, write bool, req, res netproto.Body) (here bool, err error) {
	var lastErr error
	for _, owner := range owners {
		if owner == c.n.ID() {
			return true, nil
		}
		cctx, cancel := context.WithTimeout(ctx, c.timeout)
		cl, err := c.client(cctx, owner)
		if err == nil {
			err = cl.Do(cctx, op, req, res)
		}
		cancel()
		var se *client.ServerError
		if err == nil || errors.As(err, &se) {
			c.forwarded.Add(1)
			return false, err
		}
		lastErr = err
		c.n.log.Warn("forwarding failed", "op", op.String(), "peer", owner, "err", err)
		if ctx.Err() != nil {
			break
		}
		if write && cl != nil && !errors.Is(err, client.ErrNoNodes) {
			return false, fmt.Errorf("%w: %w", errOutcomeUnknown, err)
		}
	}
	return false, fmt.Errorf("%w: %w", errNoReplica, lastErr)
}
