package node

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/ecachedb/ecache/client"
	"github.com/ecachedb/ecache/merge"
	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/storage"
	"github.com/ecachedb/ecache/vclock"
)

// MGET and MPUT in a cluster. The keys of one request may belong to
// different replica sets, so the request is split into one sub-request per
// replica set, sent to that set's first live replica (served here when
// that is this node), and the answers are put back in the request's order.
// A sub-request from a peer is served here whole: it was split already.
// MPUT entries served here are replicated like single PUTs, with the
// request's W; an entry whose replica set cannot be reached, or whose W is
// not met, gets status busy, and the others are unaffected.

// keyGroup is the part of a multi-key request one replica set serves.
type keyGroup struct {
	owners []vclock.NodeID // nil: this node
	idx    []int           // positions of its keys in the request
}

// groupKeys groups n keys (key(i)) by replica set; a peer's request is
// one local group.
func (c *cluster) groupKeys(peer bool, n int, key func(i int) []byte) []*keyGroup {
	if peer {
		g := &keyGroup{idx: make([]int, n)}
		for i := range n {
			g.idx[i] = i
		}
		return []*keyGroup{g}
	}
	self := c.n.ID()
	byOwners := map[string]*keyGroup{}
	var out []*keyGroup
	var b strings.Builder
	for i := range n {
		owners := c.owners(nil, key(i))
		b.Reset()
		if len(owners) == 0 || owners[0] == self {
			owners = nil
		} else {
			for _, o := range owners {
				b.WriteString(strconv.FormatUint(uint64(o), 16))
				b.WriteByte(',')
			}
		}
		g := byOwners[b.String()]
		if g == nil {
			g = &keyGroup{owners: owners}
			byOwners[b.String()] = g
			out = append(out, g)
		}
		g.idx = append(g.idx, i)
	}
	return out
}

// eachGroup runs serve for every group, the remote ones in parallel.
func eachGroup(groups []*keyGroup, serve func(g *keyGroup)) {
	var wg sync.WaitGroup
	for _, g := range groups {
		if g.owners != nil {
			wg.Add(1)
			go func() { defer wg.Done(); serve(g) }()
		}
	}
	for _, g := range groups {
		if g.owners == nil {
			serve(g)
		}
	}
	wg.Wait()
}

// statusOf is the per-key status of a sub-request that failed as a whole.
func statusOf(err error) netproto.Code {
	if se := (*client.ServerError)(nil); errors.As(err, &se) {
		return se.Code
	}
	return codeFor(err)
}

// multiKey serves MGET or MPUT in a cluster.
func (n *Node) multiKey(ctx context.Context, s *netproto.Session, f netproto.Frame, dst []byte) ([]byte, netproto.Code) {
	op, id := f.Opcode, f.RequestID
	var body netproto.Body
	var err error
	if op == netproto.OpMGet {
		body, err = n.mgetCluster(ctx, s.Peer, f.Body)
	} else {
		body, err = n.mputCluster(ctx, s.Peer, f.Body)
	}
	if err != nil {
		code := codeFor(err)
		return netproto.AppendError(dst, op, id, code, err.Error()), code
	}
	return netproto.AppendResponse(dst, op, id, body), netproto.CodeOK
}

func (n *Node) mgetCluster(ctx context.Context, peer bool, body []byte) (netproto.Body, error) {
	var req netproto.MGetRequest
	if err := req.DecodeBody(body); err != nil {
		return nil, err
	}
	if err := n.valueStrategy(req.Namespace); err != nil {
		return nil, err
	}
	c := n.cluster
	results := make([]netproto.GetResponse, len(req.Keys))
	eachGroup(c.groupKeys(peer, len(req.Keys), func(i int) []byte { return req.Keys[i] }), func(g *keyGroup) {
		sub := netproto.MGetRequest{Namespace: req.Namespace, Flags: req.Flags, Keys: make([][]byte, len(g.idx))}
		for j, i := range g.idx {
			sub.Keys[j] = req.Keys[i]
		}
		var res netproto.MGetResponse
		here, err := true, error(nil)
		if g.owners != nil {
			here, err = c.call(ctx, g.owners, netproto.OpMGet, false, &sub, &res)
		}
		if here {
			sc := scratchPool.Get().(*scratch)
			var b netproto.Body
			if b, _, err = n.mget(sc, sub.AppendBody(nil), false); err == nil {
				for _, r := range b.(*netproto.MGetResponse).Results {
					r.Values = append([][]byte(nil), r.Values...) // the scratch's slices are reused
					res.Results = append(res.Results, r)
				}
			}
			sc.release()
		}
		if err == nil && len(res.Results) != len(g.idx) {
			err = fmt.Errorf("%w: a replica answered %d results for %d keys", netproto.ErrMalformed, len(res.Results), len(g.idx))
		}
		for j, i := range g.idx {
			if err != nil {
				results[i] = netproto.GetResponse{Status: statusOf(err)}
				continue
			}
			results[i] = res.Results[j]
		}
	})
	size := 0
	for i, r := range results {
		size += 16 + len(req.Keys[i]) + len(r.Context)
		for _, v := range r.Values {
			size += 5 + len(v)
		}
	}
	if size > n.cfg.Limits.MaxFrameSize-netproto.HeaderSize {
		return nil, fmt.Errorf("%w: MGET response would exceed the %d-byte frame limit; ask for fewer keys", storage.ErrValueTooLarge, n.cfg.Limits.MaxFrameSize)
	}
	return &netproto.MGetResponse{Results: results}, nil
}

func (n *Node) mputCluster(ctx context.Context, peer bool, body []byte) (netproto.Body, error) {
	var req netproto.MPutRequest
	if err := req.DecodeBody(body); err != nil {
		return nil, err
	}
	st, err := n.strategy(req.Namespace)
	if err != nil {
		return nil, err
	}
	if st.Type() != merge.TypeValue {
		return nil, errorfWrongType(st, "MPUT")
	}
	c := n.cluster
	w, ok := netproto.ResolveLevel(req.W, c.replicas)
	if !ok {
		return nil, fmt.Errorf("%w: %v: w %d, replicas %d", netproto.ErrMalformed, errWTooLarge, req.W, c.replicas)
	}
	need := max(w, 1) - 1
	results := make([]netproto.WriteResponse, len(req.Entries))
	eachGroup(c.groupKeys(peer, len(req.Entries), func(i int) []byte { return req.Entries[i].Key }), func(g *keyGroup) {
		here, err := true, error(nil)
		if g.owners != nil {
			sub := netproto.MPutRequest{Namespace: req.Namespace, W: req.W, Entries: make([]netproto.MPutEntry, len(g.idx))}
			for j, i := range g.idx {
				sub.Entries[j] = req.Entries[i]
			}
			var res netproto.MPutResponse
			if here, err = c.call(ctx, g.owners, netproto.OpMPut, true, &sub, &res); !here {
				if err == nil && len(res.Results) != len(g.idx) {
					err = fmt.Errorf("%w: a replica answered %d results for %d entries", netproto.ErrMalformed, len(res.Results), len(g.idx))
				}
				for j, i := range g.idx {
					if err != nil {
						results[i] = netproto.WriteResponse{Status: statusOf(err)}
					} else {
						results[i] = res.Results[j]
					}
				}
				return
			}
		}
		for _, i := range g.idx {
			e := &req.Entries[i]
			obj, it, err := n.mputEntry(req.Namespace, e)
			if err == nil {
				err = c.replicate(ctx, req.Namespace, e.Key, obj, c.owners(req.Namespace, e.Key), need)
			}
			if err != nil {
				results[i] = netproto.WriteResponse{Status: codeFor(err)}
			} else {
				results[i] = netproto.WriteResponse{Context: it.Context}
			}
		}
	})
	return &netproto.MPutResponse{Results: results}, nil
}

// mputEntry applies one MPUT entry at this node.
func (n *Node) mputEntry(ns []byte, e *netproto.MPutEntry) (vclock.Object, Item, error) {
	if err := n.checkKeyValue(e.Key, e.Value); err != nil {
		return vclock.Object{}, Item{}, err
	}
	cc, err := vclock.DecodeContext(e.Context)
	if err != nil {
		return vclock.Object{}, Item{}, err
	}
	exp, err := n.expiryFor(e.TTL)
	if err != nil {
		return vclock.Object{}, Item{}, err
	}
	return n.Apply(ns, e.Key, merge.Op{Kind: merge.OpPut, Context: cc, Value: e.Value, Expiry: exp})
}
