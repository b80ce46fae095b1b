package node

// This file runs Redis-protocol commands in a cluster. A key's partition
// depends on the key alone (storage.PartitionOf), so its string, counter
// and set versions share one replica set and a command on one key runs
// whole on one replica: the key's first live replica (its primary), the
// next one when that does not answer. Running every command on a key at
// one replica while it is up gives Redis clients what they expect of a
// single server — INCR hands out each value once, a GET after a SET through
// another node sees it — and the other replicas follow in the background
// (W=1: the RESP mapping has no way to ask for more). A node forwards a
// command over the peer opcode OpRESP. A command over several keys (MGET,
// MSET, DEL, UNLINK, EXISTS) is split into one command per replica set and
// the replies are combined as Redis would have answered.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/ecachedb/ecache/client"
	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/netproto/resp"
	"github.com/ecachedb/ecache/vclock"
)

// errRESPOff answers a forwarded command on a node whose RESP mapping is
// not configured.
var errRESPOff = errors.New("node: the Redis protocol is off on this replica")

// route runs, in a cluster, a command with keys whose primary replica is
// not this node. handled is false when the command should run here as
// usual; ok is false (with fast) when it must wait for a worker, since
// forwarding waits on the network.
func (h *redisHandler) route(s *resp.Session, info *cmdInfo, args [][]byte, dst []byte, fast bool) (out []byte, handled, ok bool) {
	c := h.n.cluster
	if c == nil || info.first == 0 || len(args) <= info.first {
		return dst, false, true
	}
	self := h.n.ID()
	remote := false
	for i := info.first; i < len(args); i += info.step {
		if owners := c.owners(h.strings, args[i]); len(owners) > 0 && owners[0] != self {
			remote = true
			break
		}
		if info.last > 0 && i >= info.last {
			break
		}
	}
	if !remote {
		return dst, false, true
	}
	if fast {
		return dst, true, false
	}
	ctx := context.Background()
	if info.last > 0 { // one key
		out, here := c.forwardRESP(ctx, c.owners(h.strings, args[info.first]), s, args, info.write, dst)
		if here {
			return dst, false, true
		}
		return out, true, true
	}
	return h.split(ctx, s, info, args, dst), true, true
}

// split runs a multi-key command as one command per replica set, in
// parallel (multikey.go's grouping), and combines the replies.
func (h *redisHandler) split(ctx context.Context, s *resp.Session, info *cmdInfo, args [][]byte, dst []byte) []byte {
	c := h.n.cluster
	groups := c.groupKeys(false, (len(args)-1)/info.step, func(i int) []byte { return args[1+i*info.step] })
	replies := make(map[*keyGroup][]byte, len(groups))
	var mu sync.Mutex
	eachGroup(groups, func(g *keyGroup) {
		sub := make([][]byte, 1, 1+len(g.idx)*info.step)
		sub[0] = args[0]
		for _, i := range g.idx {
			sub = append(sub, args[1+i*info.step:1+(i+1)*info.step]...)
		}
		var reply []byte
		here := g.owners == nil
		if !here {
			// here: no replica before this node in the list answered.
			reply, here = c.forwardRESP(ctx, g.owners, s, sub, info.write, nil)
		}
		if here {
			out, _, err := h.run(s, info, sub, nil, false)
			if err != nil {
				out = resp.AppendError(nil, h.errorReply(info.name, err))
			}
			reply = out
		}
		mu.Lock()
		replies[g] = reply
		mu.Unlock()
	})
	for _, g := range groups {
		if r := replies[g]; len(r) > 0 && r[0] == '-' {
			return append(dst, r...)
		}
	}
	switch info.name {
	case "mget":
		items := make([][]byte, (len(args)-1)/info.step)
		for _, g := range groups {
			elems, err := splitArray(replies[g])
			if err != nil || len(elems) != len(g.idx) {
				return resp.AppendError(dst, fmt.Sprintf("ERR a replica's MGET reply is malformed: %v", err))
			}
			for j, p := range g.idx {
				items[p] = elems[j]
			}
		}
		dst = resp.AppendArray(dst, len(items))
		for _, it := range items {
			dst = append(dst, it...)
		}
		return dst
	case "mset":
		return resp.AppendOK(dst)
	}
	var sum int64 // del, unlink, exists
	for _, g := range groups {
		v, err := parseIntReply(replies[g])
		if err != nil {
			return resp.AppendError(dst, fmt.Sprintf("ERR a replica's %s reply is malformed: %v", strings.ToUpper(info.name), err))
		}
		sum += v
	}
	return resp.AppendInt(dst, sum)
}

// forwardRESP has the first of owners that answers run args and appends
// its reply to dst. here reports that the owners before this node in the
// list did not answer (or there were none): the caller runs the command.
func (c *cluster) forwardRESP(ctx context.Context, owners []vclock.NodeID, s *resp.Session, args [][]byte, write bool, dst []byte) (out []byte, here bool) {
	req := netproto.RESPRequest{Proto: uint8(max(s.Proto, 2)), Args: args}
	var res netproto.RESPResponse
	here, err := c.call(ctx, owners, netproto.OpRESP, write, &req, &res)
	var se *client.ServerError
	switch {
	case here:
		return dst, true
	case errors.As(err, &se):
		return resp.AppendError(dst, "ERR "+se.Message), false
	case err != nil:
		return resp.AppendError(dst, "TRYAGAIN "+err.Error()), false
	}
	return append(dst, res.Reply...), false
}

// respForwarded serves OpRESP: a command another node forwarded because
// this node replicates its keys. It runs here whoever owns the keys in this
// node's view, so differing views never make a command loop.
func (n *Node) respForwarded(body []byte) (netproto.Body, error) {
	var req netproto.RESPRequest
	if err := req.DecodeBody(body); err != nil {
		return nil, err
	}
	h := n.redis.Load()
	if h == nil {
		return nil, errRESPOff
	}
	if len(req.Args) == 0 {
		return nil, fmt.Errorf("%w: RESP: no command", netproto.ErrMalformed)
	}
	s := &resp.Session{Proto: int(req.Proto), Authenticated: true}
	return &netproto.RESPResponse{Reply: h.execLocal(s, req.Args, nil)}, nil
}

// execLocal runs a command here, without routing (a forwarded one).
func (h *redisHandler) execLocal(s *resp.Session, args [][]byte, dst []byte) []byte {
	info, errReply := lookupCommand(args)
	if info == nil {
		return resp.AppendError(dst, errReply)
	}
	out, _, err := h.run(s, info, args, dst, false)
	if err != nil {
		return resp.AppendError(dst, h.errorReply(info.name, err))
	}
	return out
}

// splitArray splits an array reply of bulk strings and nulls (MGET's)
// into its elements' encodings.
func splitArray(b []byte) ([][]byte, error) {
	n, rest, err := header(b, '*')
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, n)
	for range n {
		var elem []byte
		switch {
		case bytes.HasPrefix(rest, []byte("_\r\n")):
			elem, rest = rest[:3], rest[3:]
		case len(rest) > 0 && rest[0] == '$':
			l, after, err := header(rest, '$')
			if err != nil {
				return nil, err
			}
			size := len(rest) - len(after)
			if l >= 0 {
				if len(after) < l+2 {
					return nil, errors.New("truncated bulk string")
				}
				size += l + 2
			}
			elem, rest = rest[:size], rest[size:]
		default:
			return nil, fmt.Errorf("unexpected element %.8q", rest)
		}
		out = append(out, elem)
	}
	if len(rest) != 0 {
		return nil, errors.New("trailing bytes")
	}
	return out, nil
}

// header parses a "<kind><int>\r\n" line, returning the integer and what
// follows.
func header(b []byte, kind byte) (int, []byte, error) {
	if len(b) == 0 || b[0] != kind {
		return 0, nil, fmt.Errorf("want %q, have %.8q", kind, b)
	}
	end := bytes.Index(b, []byte("\r\n"))
	if end < 0 {
		return 0, nil, errors.New("unterminated line")
	}
	v, err := strconv.Atoi(string(b[1:end]))
	if err != nil {
		return 0, nil, err
	}
	return v, b[end+2:], nil
}

// parseIntReply parses an integer reply.
func parseIntReply(b []byte) (int64, error) {
	v, rest, err := header(b, ':')
	if err == nil && len(rest) != 0 {
		err = errors.New("trailing bytes")
	}
	return int64(v), err
}
