package node

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/ecachedb/ecache/merge"
	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/storage"
	"github.com/ecachedb/ecache/vclock"
)

var _ netproto.Handler = (*Node)(nil)

// scratch holds the reusable bodies one request needs, so the request path
// does not allocate them.
type scratch struct {
	obj       vclock.Object
	hello     netproto.HelloRequest
	ping      netproto.PingBody
	get       netproto.GetRequest
	getResp   netproto.GetResponse
	put       netproto.PutRequest
	del       netproto.DelRequest
	writeResp netproto.WriteResponse
	mget      netproto.MGetRequest
	mgetResp  netproto.MGetResponse
	mput      netproto.MPutRequest
	mputResp  netproto.MPutResponse
	counter   netproto.CounterRequest
	set       netproto.SetRequest
	key       netproto.KeyRequest
	expire    netproto.ExpireRequest
	// applied is the object the last single-key write left, for
	// replication; set by write with didApply.
	applied  vclock.Object
	didApply bool
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// maxRetained bounds the slices a pooled scratch keeps, so one large batch
// request does not pin its memory in the pool.
const maxRetained = 1024

// release returns sc to the pool, dropping oversized slices.
func (sc *scratch) release() {
	sc.applied, sc.didApply = vclock.Object{}, false
	if cap(sc.mget.Keys) > maxRetained || cap(sc.mgetResp.Results) > maxRetained {
		sc.mget.Keys, sc.mgetResp.Results = nil, nil
	}
	if cap(sc.mput.Entries) > maxRetained || cap(sc.mputResp.Results) > maxRetained {
		sc.mput.Entries, sc.mputResp.Results = nil, nil
	}
	if cap(sc.set.Members) > maxRetained {
		sc.set.Members = nil
	}
	scratchPool.Put(sc)
}

// ServeFast answers on the event loop what needs no disk: PING, HELLO,
// STATS, reads the memory tier can answer, and every operation of a
// memory-only node.
func (n *Node) ServeFast(s *netproto.Session, f netproto.Frame, dst []byte) ([]byte, bool) {
	return n.dispatch(context.Background(), s, f, dst, n.store.Persistent(), true)
}

// Serve answers any request; it may block on disk.
func (n *Node) Serve(ctx context.Context, s *netproto.Session, f netproto.Frame, dst []byte) []byte {
	out, _ := n.dispatch(ctx, s, f, dst, false, false)
	return out
}

// dispatch handles one frame. With cachedOnly it must not block on disk and
// returns ok=false, dst unchanged, when it would have to; with fast (the
// event loop) it must not wait on the network either.
func (n *Node) dispatch(ctx context.Context, s *netproto.Session, f netproto.Frame, dst []byte, cachedOnly, fast bool) (out []byte, ok bool) {
	start := time.Now()
	op, id := f.Opcode, f.RequestID
	if n.cfg.Password != "" && !s.Authenticated && op != netproto.OpHello && op != netproto.OpPing {
		n.metrics.observe(op, netproto.CodeUnauthenticated, start)
		return netproto.AppendError(dst, op, id, netproto.CodeUnauthenticated, "authenticate with HELLO first"), true
	}
	// In a cluster, a single-key data request goes to the key's replicas:
	// forwarded when this node is not one, coordinated and replicated when
	// it is. A request from a peer is always coordinated here (it was
	// forwarded already), so views of the ring that differ never make it
	// loop.
	//
	// A GET with the local flag reads this node's store only, whoever
	// owns the key.
	var rt route
	r, local := getOptions(op, f.Body)
	if c := n.cluster; c != nil && !local {
		if ns, key, w, isData := keyOf(op, f.Body); isData {
			rt.owners = c.owners(ns, key)
			if !s.Peer && len(rt.owners) > 0 && !slices.Contains(rt.owners, n.ID()) {
				if fast {
					return dst, false
				}
				out, code := c.forward(ctx, f, rt.owners, dst)
				n.metrics.observe(op, code, start)
				return out, true
			}
			// W and R may be counts or levels (quorum, all), resolved
			// against N here, at the coordinator.
			wn, wok := netproto.ResolveLevel(w, c.replicas)
			if !wok {
				msg := fmt.Sprintf("%v: w %d, replicas %d", errWTooLarge, w, c.replicas)
				n.metrics.observe(op, netproto.CodeMalformed, start)
				return netproto.AppendError(dst, op, id, netproto.CodeMalformed, msg), true
			}
			rt.need = max(wn, 1) - 1
			if rt.need > 0 && fast {
				return dst, false
			}
			rn, rok := netproto.ResolveLevel(r, c.replicas)
			if !rok {
				msg := fmt.Sprintf("%v: r %d, replicas %d", errRTooLarge, r, c.replicas)
				n.metrics.observe(op, netproto.CodeMalformed, start)
				return netproto.AppendError(dst, op, id, netproto.CodeMalformed, msg), true
			}
			if rn <= 1 && op == netproto.OpGet {
				// rebalance.go: this replica may not hold the key yet; a
				// local miss also reads another owner.
				rt.fillOwners, rt.fill = n.rebalance.readMore(s.Peer, ns, key, rt.owners)
				if rt.fill && !slices.Contains(rt.owners, n.ID()) {
					rn, rt.owners = 2, rt.fillOwners // a peer's read of a key this node no longer owns
				}
			}
			if rn > 1 {
				if fast {
					return dst, false
				}
				rt.r = rn
			}
		}
	}
	// MGET and MPUT are split by replica set (multikey.go).
	if n.cluster != nil && (op == netproto.OpMGet || op == netproto.OpMPut) {
		if fast {
			return dst, false
		}
		out, code := n.multiKey(ctx, s, f, dst)
		n.metrics.observe(op, code, start)
		return out, true
	}
	sc := scratchPool.Get().(*scratch)
	defer sc.release()
	var (
		body netproto.Body
		err  error
	)
	switch op {
	case netproto.OpHello:
		body, err = n.hello(s, sc, f.Body)
	case netproto.OpPing:
		if err = sc.ping.DecodeBody(f.Body); err == nil {
			body = &sc.ping
		}
	case netproto.OpGet:
		if rt.r > 1 {
			body, err = n.getR(ctx, sc, f.Body, rt)
			break
		}
		body, ok, err = n.get(sc, f.Body, cachedOnly)
		if !ok {
			return dst, false
		}
		if gr, isGet := body.(*netproto.GetResponse); rt.fill && err == nil && isGet && gr.Status == netproto.CodeNotFound {
			if fast {
				return dst, false
			}
			rt.owners, rt.r = rt.fillOwners, 2
			body, err = n.getR(ctx, sc, f.Body, rt)
		}
	case netproto.OpMGet:
		body, ok, err = n.mget(sc, f.Body, cachedOnly)
		if !ok {
			return dst, false
		}
	case netproto.OpSMembers, netproto.OpTTL:
		body, ok, err = n.keyRead(op, sc, f.Body, cachedOnly)
		if !ok {
			return dst, false
		}
	case netproto.OpStats:
		body = n.statsBody()
	case netproto.OpCluster:
		if err = new(netproto.ClusterRequest).DecodeBody(f.Body); err == nil {
			body = n.clusterBody()
		}
	case netproto.OpPut, netproto.OpDel, netproto.OpMPut, netproto.OpIncr, netproto.OpDecr,
		netproto.OpSAdd, netproto.OpSRem, netproto.OpExpire:
		if cachedOnly {
			return dst, false
		}
		body, err = n.write(op, sc, f.Body)
		if err == nil && sc.didApply && len(rt.owners) > 0 {
			ns, key, _, _ := keyOf(op, f.Body)
			err = n.cluster.replicate(ctx, ns, key, sc.applied, rt.owners, rt.need)
		}
	case netproto.OpReplicate, netproto.OpFetch:
		if n.cluster == nil || !s.Peer {
			n.metrics.observe(op, netproto.CodeUnauthenticated, start)
			return netproto.AppendError(dst, op, id, netproto.CodeUnauthenticated, op.String()+" is a peer operation: authenticate with the cluster key"), true
		}
		if cachedOnly {
			return dst, false
		}
		if op == netproto.OpReplicate {
			body, err = n.replicateHandler(f.Body)
		} else {
			body, err = n.fetchHandler(sc, f.Body)
		}
	case netproto.OpRESP:
		if n.cluster == nil || !s.Peer {
			n.metrics.observe(op, netproto.CodeUnauthenticated, start)
			return netproto.AppendError(dst, op, id, netproto.CodeUnauthenticated, op.String()+" is a peer operation: authenticate with the cluster key"), true
		}
		if fast {
			return dst, false
		}
		body, err = n.respForwarded(f.Body)
	case netproto.OpAntiEntropy:
		if n.cluster == nil || !s.Peer {
			n.metrics.observe(op, netproto.CodeUnauthenticated, start)
			return netproto.AppendError(dst, op, id, netproto.CodeUnauthenticated, op.String()+" is a peer operation: authenticate with the cluster key"), true
		}
		if fast {
			return dst, false // scans a partition: never on the event loop
		}
		body, err = n.antiEntropyHandler(f.Body)
	default:
		n.metrics.observe(op, netproto.CodeUnknownOpcode, start)
		return netproto.AppendError(dst, op, id, netproto.CodeUnknownOpcode, "unknown opcode "+op.String()), true
	}
	if err != nil {
		code := codeFor(err)
		if code == netproto.CodeUnsupportedVersion {
			s.CloseAfterReply()
		}
		if code == netproto.CodeInternal {
			n.log.Error("request failed", "op", op.String(), "err", err)
		}
		n.metrics.observe(op, code, start)
		return netproto.AppendError(dst, op, id, code, err.Error()), true
	}
	n.metrics.observe(op, netproto.CodeOK, start)
	return netproto.AppendResponse(dst, op, id, body), true
}

// codeFor maps an error to its wire code.
func codeFor(err error) netproto.Code {
	switch {
	case errors.Is(err, storage.ErrCorrupt), errors.Is(err, storage.ErrDisk), errors.Is(err, storage.ErrClosed):
		return netproto.CodeInternal // the node's fault, never the request's: logged
	case errors.Is(err, ErrUnknownNamespace):
		return netproto.CodeUnknownNamespace
	case errors.Is(err, merge.ErrWrongType):
		return netproto.CodeWrongType
	case errors.Is(err, merge.ErrSiblings):
		return netproto.CodeSiblings
	case errors.Is(err, merge.ErrOverflow):
		return netproto.CodeOverflow
	case errors.Is(err, storage.ErrKeyTooLarge), errors.Is(err, storage.ErrNamespaceTooLong):
		return netproto.CodeKeyTooLarge
	case errors.Is(err, storage.ErrValueTooLarge):
		return netproto.CodeValueTooLarge
	case errors.Is(err, vclock.ErrMalformed), errors.Is(err, merge.ErrInvalidOp), errors.Is(err, errTTL):
		return netproto.CodeMalformed
	case errors.Is(err, errUnauthenticated):
		return netproto.CodeUnauthenticated
	case errors.Is(err, errWNotReached), errors.Is(err, errRNotReached), errors.Is(err, errNoReplica), errors.Is(err, errOutcomeUnknown):
		return netproto.CodeBusy
	}
	return netproto.CodeOf(err)
}

var errUnauthenticated = errors.New("node: wrong password")

func (n *Node) hello(s *netproto.Session, sc *scratch, body []byte) (netproto.Body, error) {
	req := &sc.hello
	if err := req.DecodeBody(body); err != nil {
		return nil, err
	}
	if req.Version < 1 {
		return nil, netproto.ErrVersion
	}
	s.Peer = false
	if n.cluster != nil && n.cluster.isPeer(req.Password) {
		s.Peer = true
	} else if n.cfg.Password != "" {
		if subtle.ConstantTimeCompare([]byte(req.Password), []byte(n.cfg.Password)) != 1 {
			s.Authenticated = false
			return nil, errUnauthenticated
		}
	}
	s.Authenticated = true
	s.ClientName = req.Client
	s.Version = netproto.Version
	return &netproto.HelloResponse{
		Version:  netproto.Version,
		Server:   "ecache/" + n.cfg.Version,
		NodeID:   uint64(n.ID()),
		Features: []string{},
	}, nil
}

// checkLimits applies the wire limits to a key and values before any work.
func (n *Node) checkKey(key []byte) error { return n.cfg.Limits.CheckKey(key) }

// fillGet turns an Item into a GET result.
func fillGet(r *netproto.GetResponse, it Item, noValues bool) {
	r.Context = it.Context
	r.TTL = it.TTL.Milliseconds()
	r.Values = r.Values[:0]
	switch {
	case !it.Found:
		r.Status = netproto.CodeNotFound
		r.TTL = 0
	case len(it.Values) > 1:
		r.Status = netproto.CodeSiblings
	default:
		r.Status = netproto.CodeOK
	}
	if it.Found && !noValues {
		r.Values = append(r.Values, it.Values...)
	}
}

func (n *Node) valueStrategy(ns []byte) error {
	s, err := n.strategy(ns)
	if err != nil {
		return err
	}
	if s.Type() != merge.TypeValue {
		return errorfWrongType(s, "GET")
	}
	return nil
}

func errorfWrongType(s merge.Strategy, op string) error {
	return &wrongTypeError{strategy: s.Name(), op: op}
}

type wrongTypeError struct{ strategy, op string }

func (e *wrongTypeError) Error() string {
	return "node: " + e.op + " is not supported by a " + e.strategy + " namespace"
}
func (e *wrongTypeError) Unwrap() error { return merge.ErrWrongType }

func (n *Node) get(sc *scratch, body []byte, cachedOnly bool) (netproto.Body, bool, error) {
	req := &sc.get
	if err := req.DecodeBody(body); err != nil {
		return nil, true, err
	}
	if err := n.checkKey(req.Key); err != nil {
		return nil, true, err
	}
	if err := n.valueStrategy(req.Namespace); err != nil {
		return nil, true, err
	}
	if st, err := n.strategy(req.Namespace); err == nil && (st.Name() == merge.NameLWW || st.Name() == merge.NameSiblings) {
		ok, err := n.getView(sc, st, req, cachedOnly)
		if !ok || err != nil {
			return nil, ok, err
		}
		return &sc.getResp, true, nil
	}
	it, ok, err := n.read(req.Namespace, req.Key, cachedOnly, &sc.obj)
	if !ok || err != nil {
		return nil, ok, err
	}
	fillGet(&sc.getResp, it, req.Flags&netproto.GetFlagNoValues != 0)
	return &sc.getResp, true, nil
}

// getView answers a GET of an lww or siblings namespace (st) from the
// stored record (storage.Store.GetView): a one-sibling object is not
// decoded, and the context is the record's clock bytes, so a memory hit
// allocates nothing. For those two strategies a lone sibling reads as
// itself; a record with several siblings goes through st.Read. ok is
// false, with sc.getResp unset, when cachedOnly is set and the answer needs
// the disk.
func (n *Node) getView(sc *scratch, st merge.Strategy, req *netproto.GetRequest, cachedOnly bool) (ok bool, err error) {
	v, found, ok, err := n.store.GetView(nsName(req.Namespace), req.Key, cachedOnly, &sc.obj)
	if !ok || err != nil {
		return ok, err
	}
	r := &sc.getResp
	r.Values, r.TTL, r.Context = r.Values[:0], 0, nil
	if !found {
		r.Status = netproto.CodeNotFound
		return true, nil
	}
	r.Context = v.Context
	var res merge.Result
	if v.Single {
		if sib := &v.Sibling; !sib.Tombstone && (sib.Expiry == 0 || !sib.Expired(n.now().UnixNano())) {
			res.Found, res.Expiry = true, sib.Expiry
			r.Values = append(r.Values, sib.Value)
		}
	} else {
		res = st.Read(sc.obj, n.now().UnixNano())
		r.Values = append(r.Values, res.Values...)
	}
	switch {
	case !res.Found:
		r.Status, r.Values = netproto.CodeNotFound, r.Values[:0]
		return true, nil
	case len(r.Values) > 1:
		r.Status = netproto.CodeSiblings
	default:
		r.Status = netproto.CodeOK
	}
	if res.Expiry != 0 {
		r.TTL = max(time.Duration(res.Expiry-n.now().UnixNano()), time.Millisecond).Milliseconds()
	}
	if req.Flags&netproto.GetFlagNoValues != 0 {
		r.Values = r.Values[:0]
	}
	return true, nil
}

// getR serves a GET with R>1 at a replica: the merge of R replicas'
// objects, with read repair (cluster.readR).
func (n *Node) getR(ctx context.Context, sc *scratch, body []byte, rt route) (netproto.Body, error) {
	req := &sc.get
	if err := req.DecodeBody(body); err != nil {
		return nil, err
	}
	if err := n.checkKey(req.Key); err != nil {
		return nil, err
	}
	if err := n.valueStrategy(req.Namespace); err != nil {
		return nil, err
	}
	s, err := n.strategy(req.Namespace)
	if err != nil {
		return nil, err
	}
	obj, err := n.cluster.readR(ctx, s, req.Namespace, req.Key, rt.owners, rt.r)
	if err != nil {
		return nil, err
	}
	var it Item
	if !obj.IsZero() {
		now := n.now()
		it.Result = s.Read(obj, now.UnixNano())
		it.Context = vclock.EncodeContext(obj.Clock)
		if it.Found && it.Expiry != 0 {
			it.TTL = max(time.Duration(it.Expiry-now.UnixNano()), time.Millisecond)
		}
	}
	fillGet(&sc.getResp, it, req.Flags&netproto.GetFlagNoValues != 0)
	return &sc.getResp, nil
}

func (n *Node) mget(sc *scratch, body []byte, cachedOnly bool) (netproto.Body, bool, error) {
	req := &sc.mget
	if err := req.DecodeBody(body); err != nil {
		return nil, true, err
	}
	if err := n.valueStrategy(req.Namespace); err != nil {
		return nil, true, err
	}
	res := sc.mgetResp.Results[:0]
	size := 0
	for _, key := range req.Keys {
		var r netproto.GetResponse
		if err := n.checkKey(key); err != nil {
			r.Status = codeFor(err)
			res = append(res, r)
			continue
		}
		var o vclock.Object // each result's values alias its own object
		it, ok, err := n.read(req.Namespace, key, cachedOnly, &o)
		if !ok {
			sc.mgetResp.Results = res[:0]
			return nil, false, nil
		}
		if err != nil {
			r.Status = codeFor(err)
		} else {
			fillGet(&r, it, req.Flags&netproto.GetFlagNoValues != 0)
		}
		size += 16 + len(key) + len(r.Context)
		for _, v := range r.Values {
			size += 5 + len(v)
		}
		if size > n.cfg.Limits.MaxFrameSize-netproto.HeaderSize {
			sc.mgetResp.Results = res[:0]
			return nil, true, fmt.Errorf("%w: MGET response would exceed the %d-byte frame limit; ask for fewer keys", storage.ErrValueTooLarge, n.cfg.Limits.MaxFrameSize)
		}
		res = append(res, r)
	}
	sc.mgetResp.Results = res
	return &sc.mgetResp, true, nil
}

// keyRead serves SMEMBERS and TTL.
func (n *Node) keyRead(op netproto.Opcode, sc *scratch, body []byte, cachedOnly bool) (netproto.Body, bool, error) {
	req := &sc.key
	if err := req.DecodeBody(body); err != nil {
		return nil, true, err
	}
	if err := n.checkKey(req.Key); err != nil {
		return nil, true, err
	}
	s, err := n.strategy(req.Namespace)
	if err != nil {
		return nil, true, err
	}
	if op == netproto.OpSMembers && s.Type() != merge.TypeSet {
		return nil, true, errorfWrongType(s, "SMEMBERS")
	}
	it, ok, err := n.read(req.Namespace, req.Key, cachedOnly, &sc.obj)
	if !ok || err != nil {
		return nil, ok, err
	}
	status := netproto.CodeOK
	if !it.Found {
		status = netproto.CodeNotFound
	}
	if op == netproto.OpTTL {
		return &netproto.TTLResponse{Status: status, TTL: it.TTL.Milliseconds()}, true, nil
	}
	return &netproto.SMembersResponse{Status: status, Members: it.Members, TTL: it.TTL.Milliseconds()}, true, nil
}

// write serves every operation that changes data.
func (n *Node) write(op netproto.Opcode, sc *scratch, body []byte) (netproto.Body, error) {
	switch op {
	case netproto.OpPut:
		req := &sc.put
		if err := req.DecodeBody(body); err != nil {
			return nil, err
		}
		if err := n.checkKeyValue(req.Key, req.Value); err != nil {
			return nil, err
		}
		cc, err := vclock.DecodeContext(req.Context)
		if err != nil {
			return nil, err
		}
		exp, err := n.expiryFor(req.TTL)
		if err != nil {
			return nil, err
		}
		_, it, err := n.applyOne(sc, req.Namespace, req.Key, merge.Op{Kind: merge.OpPut, Context: cc, Value: req.Value, Expiry: exp})
		if err != nil {
			return nil, err
		}
		sc.writeResp = netproto.WriteResponse{Status: netproto.CodeOK, Context: it.Context}
		return &sc.writeResp, nil
	case netproto.OpDel:
		req := &sc.del
		if err := req.DecodeBody(body); err != nil {
			return nil, err
		}
		if err := n.checkKey(req.Key); err != nil {
			return nil, err
		}
		cc, err := vclock.DecodeContext(req.Context)
		if err != nil {
			return nil, err
		}
		_, it, err := n.applyOne(sc, req.Namespace, req.Key, merge.Op{Kind: merge.OpDelete, Context: cc})
		if err != nil {
			return nil, err
		}
		sc.writeResp = netproto.WriteResponse{Status: netproto.CodeOK, Context: it.Context}
		return &sc.writeResp, nil
	case netproto.OpMPut:
		req := &sc.mput
		if err := req.DecodeBody(body); err != nil {
			return nil, err
		}
		s, err := n.strategy(req.Namespace)
		if err != nil {
			return nil, err
		}
		if s.Type() != merge.TypeValue {
			return nil, errorfWrongType(s, "MPUT")
		}
		res := sc.mputResp.Results[:0]
		for i := range req.Entries {
			var r netproto.WriteResponse
			if _, it, err := n.mputEntry(req.Namespace, &req.Entries[i]); err != nil {
				r.Status = codeFor(err)
			} else {
				r.Context = it.Context
			}
			res = append(res, r)
		}
		sc.mputResp.Results = res
		return &sc.mputResp, nil
	case netproto.OpIncr, netproto.OpDecr:
		req := &sc.counter
		if err := req.DecodeBody(body); err != nil {
			return nil, err
		}
		if err := n.checkKey(req.Key); err != nil {
			return nil, err
		}
		if req.Delta == 0 {
			// A read: it must not create, revive or rewrite the counter.
			s, err := n.strategy(req.Namespace)
			if err != nil {
				return nil, err
			}
			if s.Type() != merge.TypeCounter {
				return nil, errorfWrongType(s, op.String())
			}
			it, _, err := n.read(req.Namespace, req.Key, false, &sc.obj)
			if err != nil {
				return nil, err
			}
			return &netproto.CounterResponse{Status: netproto.CodeOK, Value: it.Counter}, nil
		}
		delta := req.Delta
		if op == netproto.OpDecr {
			if delta == math.MinInt64 {
				return nil, merge.ErrOverflow
			}
			delta = -delta
		}
		_, it, err := n.applyOne(sc, req.Namespace, req.Key, merge.Op{Kind: merge.OpIncr, Delta: delta})
		if err != nil {
			return nil, err
		}
		return &netproto.CounterResponse{Status: netproto.CodeOK, Value: it.Counter}, nil
	case netproto.OpSAdd, netproto.OpSRem:
		req := &sc.set
		if err := req.DecodeBody(body); err != nil {
			return nil, err
		}
		if err := n.checkKey(req.Key); err != nil {
			return nil, err
		}
		for _, m := range req.Members {
			if err := n.cfg.Limits.CheckValue(m); err != nil {
				return nil, err
			}
		}
		if s, err := n.strategy(req.Namespace); err == nil && n.setFastPath(s, n.setNeed(req.W)) {
			// sets.go: no synchronous replication needs the new object;
			// updateSet replicates it by reference.
			if _, err := n.updateSet(req.Namespace, req.Key, op == netproto.OpSAdd, true, req.Members); err != nil {
				return nil, err
			}
			return &netproto.StatusResponse{Status: netproto.CodeOK}, nil
		}
		kind := merge.OpSAdd
		if op == netproto.OpSRem {
			kind = merge.OpSRem
		}
		if _, _, err := n.applyOne(sc, req.Namespace, req.Key, merge.Op{Kind: kind, Members: req.Members}); err != nil {
			return nil, err
		}
		return &netproto.StatusResponse{Status: netproto.CodeOK}, nil
	case netproto.OpExpire:
		req := &sc.expire
		if err := req.DecodeBody(body); err != nil {
			return nil, err
		}
		if err := n.checkKey(req.Key); err != nil {
			return nil, err
		}
		exp, err := n.expiryFor(req.TTL)
		if err != nil {
			return nil, err
		}
		_, _, err = n.applyOne(sc, req.Namespace, req.Key, merge.Op{Kind: merge.OpExpire, Expiry: exp})
		if errors.Is(err, merge.ErrNotFound) {
			return &netproto.StatusResponse{Status: netproto.CodeNotFound}, nil
		}
		if errors.Is(err, merge.ErrSiblings) {
			// Nothing changed: resolve the siblings, then set the TTL.
			return &netproto.StatusResponse{Status: netproto.CodeSiblings}, nil
		}
		if err != nil {
			return nil, err
		}
		return &netproto.StatusResponse{Status: netproto.CodeOK}, nil
	}
	return nil, netproto.ErrUnknownOpcode
}

func (n *Node) checkKeyValue(key, value []byte) error {
	if err := n.checkKey(key); err != nil {
		return err
	}
	return n.cfg.Limits.CheckValue(value)
}

// statsBody reports the node's counters.
func (n *Node) statsBody() netproto.Body {
	st := n.store.Stats()
	stat := func(name string, v int64) netproto.Stat { return netproto.Stat{Name: []byte(name), Value: v} }
	stats := []netproto.Stat{
		stat("memory_bytes", st.MemoryBytes),
		stat("memory_limit_bytes", st.MemoryLimit),
		stat("memory_entries", int64(st.MemoryEntries)),
		stat("memory_hits", int64(st.Memory.Hits)),
		stat("memory_misses", int64(st.Memory.Misses)),
		stat("memory_evictions", int64(st.Memory.Evictions)),
		stat("pending_bytes", st.PendingBytes),
		stat("expired_total", int64(st.Expired)),
	}
	if n.server != nil {
		ss := n.server.Stats()
		stats = append(stats, stat("connections", int64(ss.Conns)), stat("connections_accepted", int64(ss.Accepted)))
	}
	return &netproto.StatsResponse{Stats: stats}
}

// applyOne is Apply for a single-key request: it records the new object in
// sc for replication.
func (n *Node) applyOne(sc *scratch, ns, key []byte, op merge.Op) (vclock.Object, Item, error) {
	obj, it, err := n.Apply(ns, key, op)
	if err == nil {
		sc.applied, sc.didApply = obj, true
	}
	return obj, it, err
}
