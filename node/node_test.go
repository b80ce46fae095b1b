package node

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/ecachedb/ecache/internal/testutil"
	"github.com/ecachedb/ecache/merge"
	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/storage"
	"github.com/ecachedb/ecache/vclock"
)

func newFakeClock() *testutil.Clock {
	return testutil.NewClock(time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC))
}

type tlog struct{ t testing.TB }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func testConfig(t testing.TB, p storage.Persistence) Config {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = ""
	cfg.Storage.Persistence = p
	cfg.Storage.MemoryLimit = 16 << 20
	cfg.Storage.PebbleCacheSize = 1 << 20
	cfg.Storage.ExpiryInterval = 0
	cfg.Logger = slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg.Namespaces = map[string]string{
		"default": merge.NameLWW,
		"sib":     merge.NameSiblings,
		"cnt":     merge.NameCounter,
		"tags":    merge.NameSet,
	}
	return cfg
}

func openNode(t testing.TB, cfg Config) *Node {
	t.Helper()
	n, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	return n
}

func b(s string) []byte { return []byte(s) }

func TestValueNamespaces(t *testing.T) {
	n := openNode(t, testConfig(t, storage.PersistenceSync))
	// lww: a blind write replaces.
	if _, _, err := n.Apply(b("default"), b("k"), merge.Op{Kind: merge.OpPut, Value: b("v1")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.Apply(nil, b("k"), merge.Op{Kind: merge.OpPut, Value: b("v2")}); err != nil {
		t.Fatal(err)
	}
	it, err := n.Get(b("default"), b("k"))
	if err != nil || !it.Found || len(it.Values) != 1 || string(it.Values[0]) != "v2" {
		t.Fatalf("lww get: %+v %v", it, err)
	}
	// siblings: two blind writers conflict; a write with the merged context resolves.
	for _, v := range []string{"a", "b"} {
		if _, _, err := n.Apply(b("sib"), b("k"), merge.Op{Kind: merge.OpPut, Value: b(v)}); err != nil {
			t.Fatal(err)
		}
	}
	it, _ = n.Get(b("sib"), b("k"))
	if len(it.Values) != 2 {
		t.Fatalf("want 2 siblings, got %q", it.Values)
	}
	cc, _ := vclock.DecodeContext(it.Context)
	if _, _, err := n.Apply(b("sib"), b("k"), merge.Op{Kind: merge.OpPut, Context: cc, Value: b("ab")}); err != nil {
		t.Fatal(err)
	}
	it, _ = n.Get(b("sib"), b("k"))
	if len(it.Values) != 1 || string(it.Values[0]) != "ab" {
		t.Fatalf("resolved: %q", it.Values)
	}
	// delete
	if _, _, err := n.Apply(b("default"), b("k"), merge.Op{Kind: merge.OpDelete}); err != nil {
		t.Fatal(err)
	}
	if it, _ := n.Get(b("default"), b("k")); it.Found || len(it.Context) == 0 {
		t.Fatalf("after delete: found=%v context=%x (want absent with a context)", it.Found, it.Context)
	}
}

func TestCRDTNamespacesAndWrongType(t *testing.T) {
	n := openNode(t, testConfig(t, storage.PersistenceNone))
	for _, d := range []int64{5, -2, 10} {
		if _, _, err := n.Apply(b("cnt"), b("c"), merge.Op{Kind: merge.OpIncr, Delta: d}); err != nil {
			t.Fatal(err)
		}
	}
	if it, _ := n.Get(b("cnt"), b("c")); it.Counter != 13 {
		t.Fatalf("counter = %d, want 13", it.Counter)
	}
	if _, _, err := n.Apply(b("tags"), b("s"), merge.Op{Kind: merge.OpSAdd, Members: [][]byte{b("x"), b("y")}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.Apply(b("tags"), b("s"), merge.Op{Kind: merge.OpSRem, Members: [][]byte{b("x")}}); err != nil {
		t.Fatal(err)
	}
	if it, _ := n.Get(b("tags"), b("s")); len(it.Members) != 1 || string(it.Members[0]) != "y" {
		t.Fatalf("members = %q", it.Members)
	}
	if _, _, err := n.Apply(b("tags"), b("s"), merge.Op{Kind: merge.OpIncr, Delta: 1}); !errors.Is(err, merge.ErrWrongType) {
		t.Fatalf("INCR on a set: %v, want ErrWrongType", err)
	}
	if _, _, err := n.Apply(b("nope"), b("s"), merge.Op{Kind: merge.OpPut, Value: b("v")}); !errors.Is(err, ErrUnknownNamespace) {
		t.Fatalf("unknown namespace: %v", err)
	}
}

func TestTTL(t *testing.T) {
	clock := newFakeClock()
	cfg := testConfig(t, storage.PersistenceAsync)
	cfg.Now = clock.Now
	n := openNode(t, cfg)
	exp, err := n.expiryFor(10_000)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.Apply(nil, b("k"), merge.Op{Kind: merge.OpPut, Value: b("v"), Expiry: exp}); err != nil {
		t.Fatal(err)
	}
	it, _ := n.Get(nil, b("k"))
	if !it.Found || it.TTL != 10*time.Second {
		t.Fatalf("TTL = %v found=%v, want 10s", it.TTL, it.Found)
	}
	clock.Advance(10 * time.Second)
	if it, _ := n.Get(nil, b("k")); it.Found {
		t.Fatal("expired key found")
	}
}

func TestRestartKeepsData(t *testing.T) {
	for _, p := range []storage.Persistence{storage.PersistenceSync, storage.PersistenceAsync} {
		t.Run(p.String(), func(t *testing.T) {
			cfg := testConfig(t, p)
			n, err := Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			id := n.ID()
			n.Apply(nil, b("k"), merge.Op{Kind: merge.OpPut, Value: b("v")})
			n.Apply(b("cnt"), b("c"), merge.Op{Kind: merge.OpIncr, Delta: 3})
			if err := n.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := n.Close(context.Background()); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			n = openNode(t, cfg)
			if n.ID() != id {
				t.Fatal("node id changed")
			}
			if it, _ := n.Get(nil, b("k")); !it.Found || string(it.Values[0]) != "v" {
				t.Fatalf("after restart: %+v", it)
			}
			if it, _ := n.Get(b("cnt"), b("c")); it.Counter != 3 {
				t.Fatalf("counter after restart: %d", it.Counter)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := testConfig(t, storage.PersistenceNone)
	cfg.Namespaces["bad"] = "nosuch"
	if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) || !bytes.Contains(b(err.Error()), b("bad")) {
		t.Fatalf("unknown strategy: %v", err)
	}
	cfg = testConfig(t, storage.PersistenceNone)
	cfg.Namespaces["has space"] = "lww"
	if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("bad namespace name: %v", err)
	}
	cfg = testConfig(t, storage.PersistenceNone)
	cfg.Storage.MemoryLimit = 0
	if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) || !bytes.Contains(b(err.Error()), b("MemoryLimit")) {
		t.Fatalf("storage field: %v", err)
	}
}

// serveFrame runs one request through the protocol handler as the server
// would (fast path first) and decodes the response.
func serveFrame(t *testing.T, n *Node, s *netproto.Session, op netproto.Opcode, req netproto.Body, resp netproto.Body) (netproto.Header, *netproto.ErrorBody) {
	t.Helper()
	raw := netproto.AppendRequest(nil, op, 42, req)
	f, _, err := netproto.NewDecoder(netproto.DefaultLimits()).Next(raw)
	if err != nil {
		t.Fatal(err)
	}
	out, ok := n.ServeFast(s, f, nil)
	if !ok {
		out = n.Serve(context.Background(), s, f, nil)
	}
	rf, used, err := netproto.NewDecoder(netproto.DefaultLimits()).Next(out)
	if err != nil || used != len(out) {
		t.Fatalf("response frame: %v (%d of %d bytes)", err, used, len(out))
	}
	if rf.RequestID != 42 || rf.Opcode != op || !rf.IsResponse() {
		t.Fatalf("response header %+v", rf.Header)
	}
	if rf.IsError() {
		var e netproto.ErrorBody
		if err := e.DecodeBody(rf.Body); err != nil {
			t.Fatal(err)
		}
		return rf.Header, &e
	}
	if err := resp.DecodeBody(rf.Body); err != nil {
		t.Fatal(err)
	}
	return rf.Header, nil
}

func TestProtocolHandler(t *testing.T) {
	for _, p := range []storage.Persistence{storage.PersistenceNone, storage.PersistenceSync} {
		t.Run(p.String(), func(t *testing.T) {
			n := openNode(t, testConfig(t, p))
			s := &netproto.Session{}
			var wr netproto.WriteResponse
			if _, e := serveFrame(t, n, s, netproto.OpPut, &netproto.PutRequest{Namespace: b("default"), Key: b("k"), Value: b("v"), TTL: 60_000}, &wr); e != nil {
				t.Fatalf("PUT: %+v", e)
			}
			var gr netproto.GetResponse
			if _, e := serveFrame(t, n, s, netproto.OpGet, &netproto.GetRequest{Namespace: b("default"), Key: b("k")}, &gr); e != nil || gr.Status != netproto.CodeOK || string(gr.Values[0]) != "v" || gr.TTL <= 0 || !bytes.Equal(gr.Context, wr.Context) {
				t.Fatalf("GET: %+v %+v", gr, e)
			}
			var cr netproto.CounterResponse
			serveFrame(t, n, s, netproto.OpIncr, &netproto.CounterRequest{Namespace: b("cnt"), Key: b("c"), Delta: 4}, &cr)
			serveFrame(t, n, s, netproto.OpDecr, &netproto.CounterRequest{Namespace: b("cnt"), Key: b("c"), Delta: 1}, &cr)
			if cr.Value != 3 {
				t.Fatalf("counter %d", cr.Value)
			}
			var st netproto.StatusResponse
			serveFrame(t, n, s, netproto.OpSAdd, &netproto.SetRequest{Namespace: b("tags"), Key: b("s"), Members: [][]byte{b("m")}}, &st)
			var sm netproto.SMembersResponse
			if serveFrame(t, n, s, netproto.OpSMembers, &netproto.KeyRequest{Namespace: b("tags"), Key: b("s")}, &sm); len(sm.Members) != 1 {
				t.Fatalf("SMEMBERS %+v", sm)
			}
			var mg netproto.MGetResponse
			serveFrame(t, n, s, netproto.OpMGet, &netproto.MGetRequest{Namespace: b("default"), Keys: [][]byte{b("k"), b("absent"), make([]byte, 9000)}}, &mg)
			if len(mg.Results) != 3 || mg.Results[0].Status != netproto.CodeOK || mg.Results[1].Status != netproto.CodeNotFound || mg.Results[2].Status != netproto.CodeKeyTooLarge {
				t.Fatalf("MGET %+v", mg)
			}
			serveFrame(t, n, s, netproto.OpExpire, &netproto.ExpireRequest{Namespace: b("default"), Key: b("absent"), TTL: 1000}, &st)
			if st.Status != netproto.CodeNotFound {
				t.Fatalf("EXPIRE absent: %v", st.Status)
			}
			errCases := []struct {
				name string
				op   netproto.Opcode
				req  netproto.Body
				want netproto.Code
			}{
				{"wrong type", netproto.OpIncr, &netproto.CounterRequest{Namespace: b("tags"), Key: b("s"), Delta: 1}, netproto.CodeWrongType},
				{"GET on counter", netproto.OpGet, &netproto.GetRequest{Namespace: b("cnt"), Key: b("c")}, netproto.CodeWrongType},
				{"unknown namespace", netproto.OpGet, &netproto.GetRequest{Namespace: b("zzz"), Key: b("k")}, netproto.CodeUnknownNamespace},
				{"key too large", netproto.OpPut, &netproto.PutRequest{Key: make([]byte, 9000), Value: b("v")}, netproto.CodeKeyTooLarge},
				{"value too large", netproto.OpPut, &netproto.PutRequest{Key: b("k"), Value: make([]byte, 5<<20)}, netproto.CodeValueTooLarge},
				{"bad context", netproto.OpPut, &netproto.PutRequest{Key: b("k"), Value: b("v"), Context: b("\xff\xff")}, netproto.CodeMalformed},
				{"overflow", netproto.OpIncr, &netproto.CounterRequest{Namespace: b("cnt"), Key: b("c"), Delta: 1<<63 - 1}, netproto.CodeOverflow},
			}
			for _, c := range errCases {
				_, e := serveFrame(t, n, s, c.op, c.req, &netproto.StatusResponse{})
				if e == nil || e.Code != c.want {
					t.Errorf("%s: got %+v, want code %v", c.name, e, c.want)
				}
			}
			// A rejected write lost nothing.
			if _, e := serveFrame(t, n, s, netproto.OpGet, &netproto.GetRequest{Namespace: b("default"), Key: b("k")}, &gr); e != nil || string(gr.Values[0]) != "v" {
				t.Fatalf("after rejected writes: %+v %+v", gr, e)
			}
		})
	}
}

func TestPassword(t *testing.T) {
	cfg := testConfig(t, storage.PersistenceNone)
	cfg.Password = "s3cret"
	n := openNode(t, cfg)
	s := &netproto.Session{}
	var pong netproto.PingBody
	if _, e := serveFrame(t, n, s, netproto.OpPing, &netproto.PingBody{Payload: b("x")}, &pong); e != nil || string(pong.Payload) != "x" {
		t.Fatalf("PING before auth: %+v", e)
	}
	if _, e := serveFrame(t, n, s, netproto.OpGet, &netproto.GetRequest{Key: b("k")}, &netproto.GetResponse{}); e == nil || e.Code != netproto.CodeUnauthenticated {
		t.Fatalf("GET before auth: %+v", e)
	}
	if _, e := serveFrame(t, n, s, netproto.OpHello, &netproto.HelloRequest{Version: 1, Password: "wrong"}, &netproto.HelloResponse{}); e == nil || e.Code != netproto.CodeUnauthenticated {
		t.Fatalf("HELLO wrong password: %+v", e)
	}
	var hr netproto.HelloResponse
	if _, e := serveFrame(t, n, s, netproto.OpHello, &netproto.HelloRequest{Version: 1, Client: "test", Password: "s3cret"}, &hr); e != nil || hr.NodeID != uint64(n.ID()) || hr.Version != 1 {
		t.Fatalf("HELLO: %+v %+v", hr, e)
	}
	if _, e := serveFrame(t, n, s, netproto.OpGet, &netproto.GetRequest{Key: b("k")}, &netproto.GetResponse{}); e != nil {
		t.Fatalf("GET after auth: %+v", e)
	}
}

// TestEdgeCasesFromReview pins behaviours a review found wrong: each case
// failed before its fix.
func TestEdgeCasesFromReview(t *testing.T) {
	cfg := testConfig(t, storage.PersistenceNone)
	cfg.Limits.MaxFrameSize = 64 << 10
	cfg.Limits.MaxValueSize = 32 << 10
	n := openNode(t, cfg)
	s := &netproto.Session{}
	var wr netproto.WriteResponse
	serveFrame(t, n, s, netproto.OpPut, &netproto.PutRequest{Key: b("k"), Value: b("keep")}, &wr)

	// A TTL whose expiry would overflow the clock is refused, and the old
	// value survives.
	for _, ttl := range []int64{1<<63 - 1, 18446744073710, -5} {
		if _, e := serveFrame(t, n, s, netproto.OpPut, &netproto.PutRequest{Key: b("k"), Value: b("lost"), TTL: ttl}, &wr); e == nil || e.Code != netproto.CodeMalformed {
			t.Errorf("PUT ttl %d: %+v, want malformed", ttl, e)
		}
		if _, e := serveFrame(t, n, s, netproto.OpExpire, &netproto.ExpireRequest{Key: b("k"), TTL: ttl}, &netproto.StatusResponse{}); e == nil || e.Code != netproto.CodeMalformed {
			t.Errorf("EXPIRE ttl %d: %+v, want malformed", ttl, e)
		}
	}
	var gr netproto.GetResponse
	if serveFrame(t, n, s, netproto.OpGet, &netproto.GetRequest{Key: b("k")}, &gr); len(gr.Values) != 1 || string(gr.Values[0]) != "keep" || gr.TTL != 0 {
		t.Fatalf("after refused TTLs: %+v", gr)
	}

	// INCR 0 reads: it does not create the counter.
	var cr netproto.CounterResponse
	if _, e := serveFrame(t, n, s, netproto.OpIncr, &netproto.CounterRequest{Namespace: b("cnt"), Key: b("absent"), Delta: 0}, &cr); e != nil || cr.Value != 0 {
		t.Fatalf("INCR 0: %+v %+v", cr, e)
	}
	// No-op writes on absent keys store nothing.
	serveFrame(t, n, s, netproto.OpDel, &netproto.DelRequest{Namespace: b("cnt"), Key: b("absent2")}, &wr)
	serveFrame(t, n, s, netproto.OpSRem, &netproto.SetRequest{Namespace: b("tags"), Key: b("absent3"), Members: [][]byte{b("m")}}, &netproto.StatusResponse{})
	var tr netproto.TTLResponse
	for _, k := range []struct{ ns, key string }{{"cnt", "absent"}, {"cnt", "absent2"}, {"tags", "absent3"}} {
		if serveFrame(t, n, s, netproto.OpTTL, &netproto.KeyRequest{Namespace: b(k.ns), Key: b(k.key)}, &tr); tr.Status != netproto.CodeNotFound {
			t.Errorf("%s/%s exists after a no-op", k.ns, k.key)
		}
	}
	if st := n.Store().Stats(); st.MemoryEntries != 1 {
		t.Fatalf("%d objects stored, want only k", st.MemoryEntries)
	}

	// EXPIRE on a key with concurrent siblings answers status siblings and
	// changes nothing.
	serveFrame(t, n, s, netproto.OpPut, &netproto.PutRequest{Namespace: b("sib"), Key: b("d"), Value: b("a")}, &wr)
	serveFrame(t, n, s, netproto.OpPut, &netproto.PutRequest{Namespace: b("sib"), Key: b("d"), Value: b("b")}, &wr)
	var st netproto.StatusResponse
	if _, e := serveFrame(t, n, s, netproto.OpExpire, &netproto.ExpireRequest{Namespace: b("sib"), Key: b("d"), TTL: 1000}, &st); e != nil || st.Status != netproto.CodeSiblings {
		t.Fatalf("EXPIRE on siblings: %+v %+v", st, e)
	}

	// MPUT to a counter namespace is one wrong-type error.
	if _, e := serveFrame(t, n, s, netproto.OpMPut, &netproto.MPutRequest{Namespace: b("cnt"), Entries: []netproto.MPutEntry{{Key: b("x"), Value: b("1")}}}, &netproto.MPutResponse{}); e == nil || e.Code != netproto.CodeWrongType {
		t.Fatalf("MPUT on counter: %+v", e)
	}

	// An MGET whose response would pass the frame limit is refused whole.
	big := make([]byte, 8<<10)
	serveFrame(t, n, s, netproto.OpPut, &netproto.PutRequest{Key: b("big"), Value: big}, &wr)
	keys := make([][]byte, 20)
	for i := range keys {
		keys[i] = b("big")
	}
	if _, e := serveFrame(t, n, s, netproto.OpMGet, &netproto.MGetRequest{Keys: keys}, &netproto.MGetResponse{}); e == nil || e.Code != netproto.CodeValueTooLarge {
		t.Fatalf("oversized MGET: %+v", e)
	}
	var mg netproto.MGetResponse
	if _, e := serveFrame(t, n, s, netproto.OpMGet, &netproto.MGetRequest{Keys: keys[:4]}, &mg); e != nil || len(mg.Results) != 4 {
		t.Fatalf("MGET within the limit: %+v", e)
	}
}
