package client

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecachedb/ecache/netproto"
)

// fakeServer is a minimal in-memory ecache server for the client's tests:
// one goroutine per connection, requests answered in order. Namespaces:
// "default" (lww), "siblings" (keeps concurrent writes), "counters" and
// "sets". A causal context is the key's 8-byte write counter: a write with
// context c replaces the siblings created at or before c.
//
// A hook set with setHook can make it wait, fail, drop the connection or
// send garbage for chosen requests; channels, not sleeps, drive it.
type fakeServer struct {
	ln       net.Listener
	password string
	limits   netproto.Limits
	done     chan struct{}
	wg       sync.WaitGroup

	accepts  atomic.Int64 // connections accepted
	requests atomic.Int64 // request frames received, HELLO included

	closeOnce sync.Once

	// mu guards the fields below.
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	objs     map[string]map[string]*fakeObj // by namespace, key
	values   [][]byte                       // scratch for GET responses
	getResp  netproto.GetResponse           // scratch for GET responses
	counters map[string]int64
	sets     map[string]map[string]struct{}
	hook     func(op netproto.Opcode, key string) fakeAction
	cluster  *netproto.ClusterResponse // CLUSTER's answer; nil: unknown opcode
}

// setCluster sets what the server answers to CLUSTER (routing_test.go).
func (fs *fakeServer) setCluster(r *netproto.ClusterResponse) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.cluster = r
}

// has reports whether the server holds a live key in the default
// namespace.
func (fs *fakeServer) has(key string) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.obj([]byte("default"), []byte(key), time.Now(), false) != nil
}

// fakeAction says how the fake server treats one request.
type fakeAction struct {
	arrived chan<- struct{} // gets a token (if it has room) when the request arrives
	wait    <-chan struct{} // the reply waits until this is closed
	code    netproto.Code   // non-zero: answer with this error code
	drop    bool            // close the connection instead of answering
	garbage bool            // answer with a frame with a bad magic
}

type fakeObj struct {
	counter uint64 // last dot issued for the key
	ctx     []byte // fakeContext(counter)
	sibs    []fakeSib
	expiry  time.Time // zero: none
}

type fakeSib struct {
	dot uint64
	val []byte
}

type fakeOptions struct {
	addr     string // listen address; default 127.0.0.1:0
	password string
	limits   netproto.Limits // zero: defaults
}

func newFakeServer(o fakeOptions) (*fakeServer, error) {
	if o.addr == "" {
		o.addr = "127.0.0.1:0"
	}
	if o.limits == (netproto.Limits{}) {
		o.limits = netproto.DefaultLimits()
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return nil, err
	}
	fs := &fakeServer{
		ln:       ln,
		password: o.password,
		limits:   o.limits,
		done:     make(chan struct{}),
		conns:    make(map[net.Conn]struct{}),
		objs:     make(map[string]map[string]*fakeObj),
		counters: make(map[string]int64),
		sets:     make(map[string]map[string]struct{}),
	}
	fs.wg.Add(1)
	go fs.acceptLoop()
	return fs, nil
}

func (fs *fakeServer) Addr() string { return fs.ln.Addr().String() }

// Close stops the server, closes its connections and waits for its
// goroutines. Idempotent.
func (fs *fakeServer) Close() {
	fs.closeOnce.Do(func() {
		close(fs.done)
		fs.ln.Close()
		fs.dropConns()
		fs.wg.Wait()
	})
}

// dropConns closes every open connection.
func (fs *fakeServer) dropConns() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for c := range fs.conns {
		c.Close()
	}
}

func (fs *fakeServer) setHook(h func(op netproto.Opcode, key string) fakeAction) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.hook = h
}

func (fs *fakeServer) acceptLoop() {
	defer fs.wg.Done()
	for {
		nc, err := fs.ln.Accept()
		if err != nil {
			return
		}
		fs.accepts.Add(1)
		fs.mu.Lock()
		select {
		case <-fs.done:
			fs.mu.Unlock()
			nc.Close()
			return
		default:
		}
		fs.conns[nc] = struct{}{}
		fs.mu.Unlock()
		fs.wg.Add(1)
		go fs.serveConn(nc)
	}
}

func (fs *fakeServer) serveConn(nc net.Conn) {
	defer fs.wg.Done()
	defer func() {
		fs.mu.Lock()
		delete(fs.conns, nc)
		fs.mu.Unlock()
		nc.Close()
	}()
	dec := netproto.NewDecoder(fs.limits)
	authed := fs.password == ""
	bodies := make(map[netproto.Opcode]netproto.Body)
	in := make([]byte, 0, 64<<10)
	var out []byte
	flush := func() bool {
		if len(out) == 0 {
			return true
		}
		_, err := nc.Write(out)
		out = out[:0]
		return err == nil
	}
	for {
		if len(in) == cap(in) {
			in = slices.Grow(in, cap(in))
		}
		n, err := nc.Read(in[len(in):cap(in)])
		in = in[:len(in)+n]
		if err != nil {
			return
		}
		r := 0
		for {
			f, m, err := dec.Next(in[r:])
			if err != nil {
				out = netproto.AppendError(out, 0, 0, netproto.CodeOf(err), err.Error())
				flush()
				return
			}
			if m == 0 {
				break
			}
			r += m
			fs.requests.Add(1)
			act := fs.action(f)
			if act.arrived != nil {
				select {
				case act.arrived <- struct{}{}:
				default:
				}
			}
			if act.wait != nil {
				if !flush() {
					return
				}
				select {
				case <-act.wait:
				case <-fs.done:
					return
				}
			}
			switch {
			case act.drop:
				flush()
				return
			case act.garbage:
				out = append(out, bytes.Repeat([]byte{0xff}, netproto.HeaderSize)...)
			case act.code != 0:
				out = netproto.AppendError(out, f.Opcode, f.RequestID, act.code, "injected")
			default:
				out = fs.handle(&authed, bodies, f, out)
			}
		}
		in = in[:copy(in, in[r:])]
		if !flush() {
			return
		}
	}
}

// action returns what the hook says about f.
func (fs *fakeServer) action(f netproto.Frame) fakeAction {
	fs.mu.Lock()
	h := fs.hook
	fs.mu.Unlock()
	if h == nil {
		return fakeAction{}
	}
	key := ""
	if req := netproto.NewRequest(f.Opcode); req != nil && req.DecodeBody(f.Body) == nil {
		switch r := req.(type) {
		case *netproto.GetRequest:
			key = string(r.Key)
		case *netproto.PutRequest:
			key = string(r.Key)
		case *netproto.DelRequest:
			key = string(r.Key)
		case *netproto.CounterRequest:
			key = string(r.Key)
		case *netproto.SetRequest:
			key = string(r.Key)
		case *netproto.KeyRequest:
			key = string(r.Key)
		case *netproto.ExpireRequest:
			key = string(r.Key)
		}
	}
	return h(f.Opcode, key)
}

// handle answers one request.
// bodies holds the connection's request bodies, reused so that the hot
// path does not allocate and benchmarks count the client's allocations.
func (fs *fakeServer) handle(authed *bool, bodies map[netproto.Opcode]netproto.Body, f netproto.Frame, out []byte) []byte {
	op, id := f.Opcode, f.RequestID
	req := bodies[op]
	if req == nil {
		req = netproto.NewRequest(op)
		bodies[op] = req
	}
	if req == nil {
		return netproto.AppendError(out, op, id, netproto.CodeUnknownOpcode, "unknown opcode "+op.String())
	}
	if err := req.DecodeBody(f.Body); err != nil {
		return netproto.AppendError(out, op, id, netproto.CodeMalformed, err.Error())
	}
	if !*authed && op != netproto.OpHello && op != netproto.OpPing {
		return netproto.AppendError(out, op, id, netproto.CodeUnauthenticated, "authenticate with HELLO first")
	}
	fail := func(code netproto.Code, format string, args ...any) []byte {
		return netproto.AppendError(out, op, id, code, fmt.Sprintf(format, args...))
	}
	// checkNS reports the error for a namespace that does not exist or
	// does not take op.
	checkNS := func(ns []byte, kinds ...string) (bool, []byte) {
		switch string(ns) {
		case "default", "siblings", "counters", "sets":
		default:
			return false, fail(netproto.CodeUnknownNamespace, "unknown namespace %q", ns)
		}
		if !slices.Contains(kinds, string(ns)) {
			return false, fail(netproto.CodeWrongType, "%s not supported by namespace %q", op, ns)
		}
		return true, nil
	}

	fs.mu.Lock()
	defer fs.mu.Unlock()
	now := time.Now()
	switch r := req.(type) {
	case *netproto.HelloRequest:
		if fs.password != "" && r.Password != fs.password {
			return fail(netproto.CodeUnauthenticated, "wrong password")
		}
		*authed = true
		return netproto.AppendResponse(out, op, id, &netproto.HelloResponse{Version: 1, Server: "fake 0.0.0", NodeID: 42})
	case *netproto.PingBody:
		return netproto.AppendResponse(out, op, id, r)
	case *netproto.StatsRequest:
		return netproto.AppendResponse(out, op, id, &netproto.StatsResponse{Stats: []netproto.Stat{
			{Name: []byte("keys"), Value: int64(len(fs.objs["default"]) + len(fs.objs["siblings"]))},
			{Name: []byte("conns"), Value: int64(len(fs.conns))},
		}})
	case *netproto.GetRequest:
		if ok, o := checkNS(r.Namespace, "default", "siblings"); !ok {
			return o
		}
		if fs.limits.CheckKey(r.Key) != nil {
			return fail(netproto.CodeKeyTooLarge, "key too large")
		}
		fs.getResp = fs.get(r.Namespace, r.Key, now)
		return netproto.AppendResponse(out, op, id, &fs.getResp)
	case *netproto.MGetRequest:
		if ok, o := checkNS(r.Namespace, "default", "siblings"); !ok {
			return o
		}
		var res netproto.MGetResponse
		for _, k := range r.Keys {
			if fs.limits.CheckKey(k) != nil {
				res.Results = append(res.Results, netproto.GetResponse{Status: netproto.CodeKeyTooLarge})
				continue
			}
			g := fs.get(r.Namespace, k, now)
			g.Values = slices.Clone(g.Values) // get's are scratch
			res.Results = append(res.Results, g)
		}
		return netproto.AppendResponse(out, op, id, &res)
	case *netproto.PutRequest:
		if ok, o := checkNS(r.Namespace, "default", "siblings"); !ok {
			return o
		}
		res := fs.put(r.Namespace, r.Key, r.Value, r.Context, r.TTL, now)
		if res.Status != netproto.CodeOK {
			return fail(res.Status, "%s", res.Status)
		}
		return netproto.AppendResponse(out, op, id, &res)
	case *netproto.MPutRequest:
		if ok, o := checkNS(r.Namespace, "default", "siblings"); !ok {
			return o
		}
		var res netproto.MPutResponse
		for _, e := range r.Entries {
			res.Results = append(res.Results, fs.put(r.Namespace, e.Key, e.Value, e.Context, e.TTL, now))
		}
		return netproto.AppendResponse(out, op, id, &res)
	case *netproto.DelRequest:
		if ok, o := checkNS(r.Namespace, "default", "siblings"); !ok {
			return o
		}
		o := fs.obj(r.Namespace, r.Key, now, true)
		o.sibs = slices.DeleteFunc(o.sibs, func(s fakeSib) bool {
			return s.dot <= ctxCounter(r.Context) || string(r.Namespace) == "default" || len(r.Context) == 0
		})
		o.counter++
		o.ctx = fakeContext(o.counter)
		return netproto.AppendResponse(out, op, id, &netproto.WriteResponse{Context: o.ctx})
	case *netproto.CounterRequest:
		if ok, o := checkNS(r.Namespace, "counters"); !ok {
			return o
		}
		k := string(r.Key)
		if op == netproto.OpDecr {
			fs.counters[k] -= r.Delta
		} else {
			fs.counters[k] += r.Delta
		}
		return netproto.AppendResponse(out, op, id, &netproto.CounterResponse{Value: fs.counters[k]})
	case *netproto.SetRequest:
		if ok, o := checkNS(r.Namespace, "sets"); !ok {
			return o
		}
		for _, m := range r.Members {
			if fs.limits.CheckValue(m) != nil {
				return fail(netproto.CodeValueTooLarge, "member too large")
			}
		}
		k := string(r.Key)
		s := fs.sets[k]
		if s == nil {
			s = make(map[string]struct{})
			fs.sets[k] = s
		}
		for _, m := range r.Members {
			if op == netproto.OpSAdd {
				s[string(m)] = struct{}{}
			} else {
				delete(s, string(m))
			}
		}
		return netproto.AppendResponse(out, op, id, &netproto.StatusResponse{})
	case *netproto.KeyRequest:
		if op == netproto.OpSMembers {
			if ok, o := checkNS(r.Namespace, "sets"); !ok {
				return o
			}
			res := netproto.SMembersResponse{Status: netproto.CodeNotFound}
			for m := range fs.sets[string(r.Key)] {
				res.Status = netproto.CodeOK
				res.Members = append(res.Members, []byte(m))
			}
			slices.SortFunc(res.Members, bytes.Compare)
			return netproto.AppendResponse(out, op, id, &res)
		}
		if ok, o := checkNS(r.Namespace, "default", "siblings"); !ok {
			return o
		}
		o := fs.obj(r.Namespace, r.Key, now, false)
		if o == nil || len(o.sibs) == 0 {
			return netproto.AppendResponse(out, op, id, &netproto.TTLResponse{Status: netproto.CodeNotFound})
		}
		return netproto.AppendResponse(out, op, id, &netproto.TTLResponse{TTL: remaining(o.expiry, now)})
	case *netproto.ExpireRequest:
		if ok, o := checkNS(r.Namespace, "default", "siblings"); !ok {
			return o
		}
		o := fs.obj(r.Namespace, r.Key, now, false)
		if o == nil || len(o.sibs) == 0 {
			return netproto.AppendResponse(out, op, id, &netproto.StatusResponse{Status: netproto.CodeNotFound})
		}
		o.expiry = expiryOf(r.TTL, now)
		return netproto.AppendResponse(out, op, id, &netproto.StatusResponse{})
	case *netproto.ClusterRequest:
		// Without setCluster the fake is a server too old to know CLUSTER.
		if fs.cluster == nil {
			return fail(netproto.CodeUnknownOpcode, "unknown opcode %s", op)
		}
		return netproto.AppendResponse(out, op, id, fs.cluster)
	}
	return fail(netproto.CodeInternal, "fake server does not implement %s", op)
}

// obj returns the live object for ns/key, creating it if create is set.
func (fs *fakeServer) obj(ns, key []byte, now time.Time, create bool) *fakeObj {
	m := fs.objs[string(ns)]
	if m == nil {
		if !create {
			return nil
		}
		m = make(map[string]*fakeObj)
		fs.objs[string(ns)] = m
	}
	o := m[string(key)]
	if o != nil && !o.expiry.IsZero() && !now.Before(o.expiry) {
		o.sibs, o.expiry = nil, time.Time{}
	}
	if o == nil && create {
		o = new(fakeObj)
		m[string(key)] = o
	}
	return o
}

func (fs *fakeServer) get(ns, key []byte, now time.Time) netproto.GetResponse {
	o := fs.obj(ns, key, now, false)
	if o == nil {
		return netproto.GetResponse{Status: netproto.CodeNotFound}
	}
	res := netproto.GetResponse{Context: o.ctx, TTL: remaining(o.expiry, now), Values: fs.values[:0]}
	for _, s := range o.sibs {
		res.Values = append(res.Values, s.val)
	}
	fs.values = res.Values[:0]
	switch len(res.Values) {
	case 0:
		res.Status, res.TTL = netproto.CodeNotFound, 0
	case 1:
		res.Status = netproto.CodeOK
	default:
		res.Status = netproto.CodeSiblings
	}
	return res
}

func (fs *fakeServer) put(ns, key, val, cc []byte, ttl int64, now time.Time) netproto.WriteResponse {
	if fs.limits.CheckKey(key) != nil {
		return netproto.WriteResponse{Status: netproto.CodeKeyTooLarge}
	}
	if fs.limits.CheckValue(val) != nil {
		return netproto.WriteResponse{Status: netproto.CodeValueTooLarge}
	}
	o := fs.obj(ns, key, now, true)
	if string(ns) == "default" {
		o.sibs = o.sibs[:0]
	} else {
		seen := ctxCounter(cc)
		o.sibs = slices.DeleteFunc(o.sibs, func(s fakeSib) bool { return s.dot <= seen })
	}
	o.counter++
	o.sibs = append(o.sibs, fakeSib{dot: o.counter, val: bytes.Clone(val)})
	o.expiry = expiryOf(ttl, now)
	o.ctx = fakeContext(o.counter)
	return netproto.WriteResponse{Context: o.ctx}
}

func fakeContext(counter uint64) []byte {
	if counter == 0 {
		return nil
	}
	return binary.BigEndian.AppendUint64(nil, counter)
}

func ctxCounter(cc []byte) uint64 {
	if len(cc) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(cc)
}

func expiryOf(ttlMS int64, now time.Time) time.Time {
	if ttlMS <= 0 {
		return time.Time{}
	}
	return now.Add(time.Duration(ttlMS) * time.Millisecond)
}

func remaining(expiry, now time.Time) int64 {
	if expiry.IsZero() {
		return 0
	}
	return max(expiry.Sub(now).Milliseconds(), 1)
}
