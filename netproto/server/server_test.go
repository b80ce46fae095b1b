package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/netproto/internal/gnetx"
	"github.com/ecachedb/ecache/netproto/internal/nettest"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	"go.uber.org/goleak"
)

// gnet starts the goroutines of its package-level ants pool when the
// package initializes; they live as long as the process.
var leakOpts = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
	goleak.IgnoreAnyFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
}

const waitFor = 5 * time.Second // deadline for every poll and read

// fakeHandler answers PING on the fast path, GET of a key starting with
// "fast" on the fast path and every other GET through Serve, where it blocks
// until gate is closed (or ctx ends). GET "close-fast"/"close-slow" also
// ask to close the connection. Other opcodes get `unknown opcode` from
// Serve. It fails the test if calls for one session overlap.
type fakeHandler struct {
	t       testing.TB
	gate    chan struct{}
	entered chan uint32 // request IDs of slow GETs as they start; may be nil
	check   bool        // check that calls for a session do not overlap
	active  sync.Map    // *netproto.Session -> *atomic.Int32
}

func newFakeHandler(t testing.TB) *fakeHandler {
	return &fakeHandler{t: t, gate: make(chan struct{}), entered: make(chan uint32, 1024), check: true}
}

func (h *fakeHandler) enter(s *netproto.Session) func() {
	if !h.check {
		return func() {}
	}
	v, ok := h.active.Load(s)
	if !ok {
		v, _ = h.active.LoadOrStore(s, new(atomic.Int32))
	}
	n := v.(*atomic.Int32)
	if n.Add(1) != 1 {
		h.t.Errorf("session %d: overlapping handler calls", s.ID)
	}
	return func() { n.Add(-1) }
}

// echo answers a PING with its own body, without decoding it.
func echo(dst []byte, f netproto.Frame) []byte {
	dst = netproto.AppendHeader(dst, netproto.Header{Opcode: f.Opcode, Flags: netproto.FlagResponse, RequestID: f.RequestID, BodyLen: uint32(len(f.Body))})
	return append(dst, f.Body...)
}

func getResponse(dst []byte, f netproto.Frame, key []byte) []byte {
	return netproto.AppendResponse(dst, netproto.OpGet, f.RequestID, &netproto.GetResponse{Status: netproto.CodeOK, Values: [][]byte{key}, Context: []byte{}})
}

func (h *fakeHandler) ServeFast(s *netproto.Session, f netproto.Frame, dst []byte) ([]byte, bool) {
	defer h.enter(s)()
	switch f.Opcode {
	case netproto.OpPing:
		return echo(dst, f), true
	case netproto.OpGet:
		var req netproto.GetRequest
		if err := req.DecodeBody(f.Body); err != nil {
			return netproto.AppendError(dst, f.Opcode, f.RequestID, netproto.CodeOf(err), err.Error()), true
		}
		if bytes.HasPrefix(req.Key, []byte("fast")) || string(req.Key) == "close-fast" {
			if string(req.Key) == "close-fast" {
				s.CloseAfterReply()
			}
			return getResponse(dst, f, req.Key), true
		}
	}
	return dst, false
}

func (h *fakeHandler) Serve(ctx context.Context, s *netproto.Session, f netproto.Frame, dst []byte) []byte {
	defer h.enter(s)()
	switch f.Opcode {
	case netproto.OpPing:
		return echo(dst, f)
	case netproto.OpGet:
		var req netproto.GetRequest
		if err := req.DecodeBody(f.Body); err != nil {
			return netproto.AppendError(dst, f.Opcode, f.RequestID, netproto.CodeOf(err), err.Error())
		}
		if !bytes.HasPrefix(req.Key, []byte("fast")) {
			select {
			case h.entered <- f.RequestID:
			default:
			}
			select {
			case <-h.gate:
			case <-ctx.Done():
				return netproto.AppendError(dst, f.Opcode, f.RequestID, netproto.CodeInternal, "shutting down")
			}
		}
		if string(req.Key) == "close-slow" {
			s.CloseAfterReply()
		}
		return getResponse(dst, f, req.Key)
	}
	return netproto.AppendError(dst, f.Opcode, f.RequestID, netproto.CodeUnknownOpcode, fmt.Sprintf("unknown opcode %d", f.Opcode))
}

// testLogger routes logs to t.Log until the test ends (gnet keeps the last
// logger it was given in a package variable).
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.done.Store(true) })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct {
	t    testing.TB
	done atomic.Bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func testConfig(t testing.TB) Config {
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.EventLoops = 2
	cfg.Workers = 4
	cfg.Logger = testLogger(t)
	return cfg
}

func startServer(t testing.TB, cfg Config, h netproto.Handler) *Server {
	t.Helper()
	s, err := New(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return s
}

func shutdown(t testing.TB, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// client is a raw protocol client.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (c *client) close() { _ = c.conn.Close() }

func (c *client) send(b []byte) {
	c.t.Helper()
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next frame, its body copied.
func (c *client) read() (netproto.Frame, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(waitFor))
	var hdr [netproto.HeaderSize]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return netproto.Frame{}, err
	}
	h, err := netproto.ParseHeader(hdr[:])
	if err != nil {
		return netproto.Frame{}, err
	}
	body := make([]byte, h.BodyLen)
	if _, err := io.ReadFull(c.r, body); err != nil {
		return netproto.Frame{}, err
	}
	return netproto.Frame{Header: h, Body: body}, nil
}

func (c *client) mustRead() netproto.Frame {
	c.t.Helper()
	f, err := c.read()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return f
}

// expectEOF reads until the server closes the connection.
func (c *client) expectEOF() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(waitFor))
	extra, err := io.ReadAll(c.r)
	if err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		c.t.Fatalf("waiting for EOF: %v", err)
	}
	if len(extra) > 0 {
		c.t.Fatalf("%d unexpected bytes before EOF: % x", len(extra), extra)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && strings.Contains(op.Err.Error(), "reset")
}

func pingReq(b []byte, id uint32, payload string) []byte {
	return netproto.AppendRequest(b, netproto.OpPing, id, &netproto.PingBody{Payload: []byte(payload)})
}

func getReq(b []byte, id uint32, key string) []byte {
	return netproto.AppendRequest(b, netproto.OpGet, id, &netproto.GetRequest{Namespace: []byte("users"), Key: []byte(key)})
}

// want describes an expected response.
type want struct {
	op      netproto.Opcode
	id      uint32
	payload string        // PING payload or GET value
	code    netproto.Code // error code when err
	err     bool
}

func (w want) check(f netproto.Frame) error {
	if f.Opcode != w.op || f.RequestID != w.id || !f.IsResponse() || f.IsError() != w.err {
		return fmt.Errorf("got %v id %d flags %02x, want %v id %d error=%v (body % x)",
			f.Opcode, f.RequestID, f.Flags, w.op, w.id, w.err, f.Body)
	}
	if w.err {
		var e netproto.ErrorBody
		if err := e.DecodeBody(f.Body); err != nil {
			return err
		}
		if e.Code != w.code {
			return fmt.Errorf("id %d: code %v (%q), want %v", w.id, e.Code, e.Message, w.code)
		}
		return nil
	}
	var got string
	switch w.op {
	case netproto.OpPing:
		var p netproto.PingBody
		if err := p.DecodeBody(f.Body); err != nil {
			return err
		}
		got = string(p.Payload)
	case netproto.OpGet:
		var g netproto.GetResponse
		if err := g.DecodeBody(f.Body); err != nil {
			return err
		}
		if len(g.Values) != 1 {
			return fmt.Errorf("id %d: %d values", w.id, len(g.Values))
		}
		got = string(g.Values[0])
	}
	if got != w.payload {
		return fmt.Errorf("id %d: payload %q, want %q", w.id, got, w.payload)
	}
	return nil
}

func (c *client) expect(ws ...want) {
	c.t.Helper()
	for _, w := range ws {
		f, err := c.read()
		if err != nil {
			c.t.Fatalf("reading response to id %d: %v", w.id, err)
		}
		if err := w.check(f); err != nil {
			c.t.Fatal(err)
		}
	}
}

// mixedPipeline returns n requests mixing the fast path, the slow path and
// an opcode the handler does not know, with IDs from base, and the
// responses they should get, in order.
func mixedPipeline(base uint32, n int) ([]byte, []want) {
	var req []byte
	ws := make([]want, 0, n)
	for i := range n {
		id := base + uint32(i)
		switch {
		case i%50 == 49:
			req = netproto.AppendHeader(req, netproto.Header{Opcode: 200, RequestID: id})
			ws = append(ws, want{op: 200, id: id, err: true, code: netproto.CodeUnknownOpcode})
		case i%3 == 0:
			p := fmt.Sprintf("p%d", id)
			req = pingReq(req, id, p)
			ws = append(ws, want{op: netproto.OpPing, id: id, payload: p})
		case i%3 == 1:
			k := fmt.Sprintf("fast%d", id)
			req = getReq(req, id, k)
			ws = append(ws, want{op: netproto.OpGet, id: id, payload: k})
		default:
			k := fmt.Sprintf("slow%d", id)
			req = getReq(req, id, k)
			ws = append(ws, want{op: netproto.OpGet, id: id, payload: k})
		}
	}
	return req, ws
}

func TestServerPipelineOneConn(t *testing.T) {
	defer goleak.VerifyNone(t, leakOpts...)
	h := newFakeHandler(t)
	s := startServer(t, testConfig(t), h)
	defer shutdown(t, s)

	c := dial(t, s.Addr())
	defer c.close()
	req, ws := mixedPipeline(1, 1000)
	c.send(req) // one write; slow GETs block until the gate opens
	<-h.entered
	close(h.gate)
	var got int
	for _, w := range ws {
		f := c.mustRead()
		if err := w.check(f); err != nil {
			t.Fatal(err)
		}
		got += netproto.HeaderSize + len(f.Body)
	}
	nettest.Poll(t, "stats", func() bool {
		st := s.Stats()
		return st.BytesOut == uint64(got) && st.BytesIn == uint64(len(req))
	})
	st := s.Stats()
	if st.Frames != 1000 || st.Conns != 1 || st.Accepted != 1 || st.Errors != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestServerPipelineConcurrentConns(t *testing.T) {
	defer goleak.VerifyNone(t, leakOpts...)
	h := newFakeHandler(t)
	s := startServer(t, testConfig(t), h)
	defer shutdown(t, s)

	const conns = 8
	clients := make([]*client, conns)
	wants := make([][]want, conns)
	for i := range clients {
		clients[i] = dial(t, s.Addr())
		defer clients[i].close()
	}
	var sent sync.WaitGroup
	for i, c := range clients {
		req, ws := mixedPipeline(uint32(i)<<20, 1000)
		wants[i] = ws
		sent.Go(func() { _, _ = c.conn.Write(req) })
	}
	sent.Wait()
	close(h.gate)
	var read sync.WaitGroup
	for i, c := range clients {
		read.Go(func() {
			for _, w := range wants[i] {
				f, err := c.read()
				if err != nil {
					t.Errorf("conn %d, id %d: %v", i, w.id, err)
					return
				}
				if err := w.check(f); err != nil {
					t.Errorf("conn %d: %v", i, err)
					return
				}
			}
		})
	}
	read.Wait()
	if st := s.Stats(); st.Frames != conns*1000 {
		t.Fatalf("stats %+v", st)
	}
}

// steadyClient does request/response round trips, alternating PING and a
// slow-path GET, until stopped; it fails the test on any wrong reply.
func steadyClient(t *testing.T, addr string) (stop func()) {
	c := dial(t, addr)
	quit := make(chan struct{})
	done := make(chan struct{})
	var trips int
	go func() {
		defer close(done)
		var req []byte
		for id := uint32(1); ; id++ {
			select {
			case <-quit:
				return
			default:
			}
			var w want
			if id%2 == 0 {
				req = pingReq(req[:0], id, "steady")
				w = want{op: netproto.OpPing, id: id, payload: "steady"}
			} else {
				req = getReq(req[:0], id, "steady")
				w = want{op: netproto.OpGet, id: id, payload: "steady"}
			}
			if _, err := c.conn.Write(req); err != nil {
				t.Errorf("steady client: %v", err)
				return
			}
			f, err := c.read()
			if err != nil {
				t.Errorf("steady client, id %d: %v", id, err)
				return
			}
			if err := w.check(f); err != nil {
				t.Errorf("steady client: %v", err)
				return
			}
			trips++
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-done
			c.close()
			if trips == 0 {
				t.Errorf("steady client made no round trips")
			}
			t.Logf("steady client: %d round trips", trips)
		})
	}
}

func TestServerBadInput(t *testing.T) {
	defer goleak.VerifyNone(t, leakOpts...)
	h := newFakeHandler(t)
	close(h.gate)
	cfg := testConfig(t)
	cfg.Limits = netproto.Limits{MaxFrameSize: 4096, MaxKeySize: 256, MaxValueSize: 2048}
	cfg.IdleTimeout = 200 * time.Millisecond
	s := startServer(t, cfg, h)
	defer shutdown(t, s)
	stop := steadyClient(t, s.Addr())
	defer stop()

	header := func(mod func(b []byte)) []byte {
		b := netproto.AppendHeader(nil, netproto.Header{Opcode: netproto.OpPing, RequestID: 9})
		mod(b)
		return b
	}
	for _, tc := range []struct {
		name string
		in   []byte
		code netproto.Code
	}{
		{"bad magic", []byte("GARBAGE-GARBAGE-GARBAGE-GARBAGE"), netproto.CodeMalformed},
		{"bad version", header(func(b []byte) { b[2] = 2 }), netproto.CodeUnsupportedVersion},
		{"reserved byte", header(func(b []byte) { b[6] = 1 }), netproto.CodeMalformed},
		{"reserved flag", header(func(b []byte) { b[4] = 0x80 }), netproto.CodeMalformed},
		{"error flag on request", header(func(b []byte) { b[4] = byte(netproto.FlagError) }), netproto.CodeMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, s.Addr())
			defer c.close()
			c.send(tc.in)
			c.expect(want{op: 0, id: 0, err: true, code: tc.code})
			c.expectEOF()
		})
	}

	t.Run("frame too large, before the body", func(t *testing.T) {
		c := dial(t, s.Addr())
		defer c.close()
		c.send(netproto.AppendHeader(nil, netproto.Header{Opcode: netproto.OpGet, RequestID: 77, BodyLen: 1 << 20}))
		c.expect(want{op: netproto.OpGet, id: 77, err: true, code: netproto.CodeFrameTooLarge})
		c.expectEOF()
	})

	t.Run("error after good frames", func(t *testing.T) {
		// The frames before the bad header are answered, in order, the
		// slow one included, and only then the error.
		c := dial(t, s.Addr())
		defer c.close()
		req := pingReq(nil, 1, "a")
		req = getReq(req, 2, "slow")
		req = pingReq(req, 3, "b")
		req = append(req, "GARBAGE-GARBAGE-GARBAGE"...)
		c.send(req)
		c.expect(
			want{op: netproto.OpPing, id: 1, payload: "a"},
			want{op: netproto.OpGet, id: 2, payload: "slow"},
			want{op: netproto.OpPing, id: 3, payload: "b"},
			want{op: 0, id: 0, err: true, code: netproto.CodeMalformed},
		)
		c.expectEOF()
	})

	t.Run("truncated frame then client close", func(t *testing.T) {
		before := s.Stats().Conns
		c := dial(t, s.Addr())
		req := getReq(nil, 5, "fast")
		c.send(req[:len(req)-3])
		nettest.Poll(t, "the server to see the connection", func() bool { return s.Stats().Conns == before+1 })
		c.close()
		nettest.Poll(t, "the server to drop the connection", func() bool { return s.Stats().Conns == before })
	})

	t.Run("slow partial frames", func(t *testing.T) {
		c := dial(t, s.Addr())
		defer c.close()
		req := getReq(nil, 6, "slow-bytes")
		req = pingReq(req, 7, "bytes")
		for i := range req {
			c.send(req[i : i+1])
		}
		c.expect(want{op: netproto.OpGet, id: 6, payload: "slow-bytes"}, want{op: netproto.OpPing, id: 7, payload: "bytes"})
	})

	t.Run("idle with a partial frame", func(t *testing.T) {
		c := dial(t, s.Addr())
		defer c.close()
		start := time.Now()
		c.send(pingReq(nil, 8, "idle")[:5])
		c.expectEOF()
		if el := time.Since(start); el < cfg.IdleTimeout {
			t.Fatalf("closed after %v, before IdleTimeout %v", el, cfg.IdleTimeout)
		}
	})

	stop()
	if st := s.Stats(); st.Errors != 7 {
		t.Errorf("Errors = %d, want 7 (one per bad connection)", st.Errors)
	}
}

func TestServerMaxConns(t *testing.T) {
	defer goleak.VerifyNone(t, leakOpts...)
	h := newFakeHandler(t)
	cfg := testConfig(t)
	cfg.MaxConns = 2
	s := startServer(t, cfg, h)
	defer shutdown(t, s)

	c1, c2 := dial(t, s.Addr()), dial(t, s.Addr())
	defer c1.close()
	defer c2.close()
	for _, c := range []*client{c1, c2} {
		c.send(pingReq(nil, 1, "x"))
		c.expect(want{op: netproto.OpPing, id: 1, payload: "x"})
	}
	c3 := dial(t, s.Addr())
	defer c3.close()
	c3.expect(want{op: 0, id: 0, err: true, code: netproto.CodeBusy})
	c3.expectEOF()
	if st := s.Stats(); st.Conns != 2 || st.Accepted != 2 || st.Rejected != 1 {
		t.Fatalf("stats %+v", st)
	}

	c1.close()
	nettest.Poll(t, "a free slot", func() bool { return s.Stats().Conns == 1 })
	c4 := dial(t, s.Addr())
	defer c4.close()
	c4.send(pingReq(nil, 2, "y"))
	c4.expect(want{op: netproto.OpPing, id: 2, payload: "y"})
}

func TestServerQueueFull(t *testing.T) {
	defer goleak.VerifyNone(t, leakOpts...)
	h := newFakeHandler(t)
	cfg := testConfig(t)
	cfg.Workers = 1
	cfg.QueueDepth = 1
	s := startServer(t, cfg, h)
	defer shutdown(t, s)

	a, b := dial(t, s.Addr()), dial(t, s.Addr())
	defer a.close()
	defer b.close()
	a.send(getReq(nil, 1, "slow"))
	if id := <-h.entered; id != 1 {
		t.Fatalf("entered %d", id)
	}
	// The queue is full: b's slow request is answered busy at once, and
	// its fast one still served.
	b.send(pingReq(getReq(nil, 2, "slow"), 3, "ok"))
	b.expect(want{op: netproto.OpGet, id: 2, err: true, code: netproto.CodeBusy}, want{op: netproto.OpPing, id: 3, payload: "ok"})
	// a is running: its next batch cannot be queued either, and is
	// answered busy after the response it waits behind.
	a.send(pingReq(getReq(nil, 4, "slow"), 5, "late"))
	nettest.Poll(t, "a's second batch", func() bool { return s.Stats().Frames == 5 })
	close(h.gate)
	a.expect(
		want{op: netproto.OpGet, id: 1, payload: "slow"},
		want{op: netproto.OpGet, id: 4, err: true, code: netproto.CodeBusy},
		want{op: netproto.OpPing, id: 5, err: true, code: netproto.CodeBusy},
	)
	// Once a's work is written, the queue has room again.
	a.send(getReq(nil, 6, "slow"))
	a.expect(want{op: netproto.OpGet, id: 6, payload: "slow"})
	if st := s.Stats(); st.Errors != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestServerCloseAfterReply(t *testing.T) {
	defer goleak.VerifyNone(t, leakOpts...)
	h := newFakeHandler(t)
	close(h.gate)
	s := startServer(t, testConfig(t), h)
	defer shutdown(t, s)

	t.Run("fast", func(t *testing.T) {
		c := dial(t, s.Addr())
		defer c.close()
		req := pingReq(nil, 1, "a")
		req = getReq(req, 2, "close-fast")
		req = pingReq(req, 3, "never")
		c.send(req)
		c.expect(want{op: netproto.OpPing, id: 1, payload: "a"}, want{op: netproto.OpGet, id: 2, payload: "close-fast"})
		c.expectEOF()
	})
	t.Run("slow", func(t *testing.T) {
		c := dial(t, s.Addr())
		defer c.close()
		req := getReq(nil, 1, "slow")
		req = getReq(req, 2, "close-slow")
		req = pingReq(req, 3, "never")
		c.send(req)
		c.expect(want{op: netproto.OpGet, id: 1, payload: "slow"}, want{op: netproto.OpGet, id: 2, payload: "close-slow"})
		c.expectEOF()
	})
	nettest.Poll(t, "connections to close", func() bool { return s.Stats().Conns == 0 })
}

// TestServerCloseFlushesOutput checks that a connection closed for a
// framing error still gets every response queued before the error, even
// when the client reads slowly and gnet holds megabytes of unsent output.
func TestServerCloseFlushesOutput(t *testing.T) {
	defer goleak.VerifyNone(t, leakOpts...)
	h := newFakeHandler(t)
	s := startServer(t, testConfig(t), h)
	defer shutdown(t, s)

	c := dial(t, s.Addr())
	defer c.close()
	// More output than the kernel buffers hold (a send buffer of at most
	// 4 MiB here, a receive buffer of 256 KiB): the rest waits in gnet's
	// outbound buffer.
	if err := c.conn.(*net.TCPConn).SetReadBuffer(256 << 10); err != nil {
		t.Fatal(err)
	}
	const frames = 160
	payload := strings.Repeat("x", 64<<10)
	var req []byte
	ws := make([]want, 0, frames+1)
	for i := range uint32(frames) {
		req = pingReq(req, i, payload)
		ws = append(ws, want{op: netproto.OpPing, id: i, payload: payload})
	}
	req = append(req, "GARBAGE-GARBAGE-GARBAGE"...)
	ws = append(ws, want{op: 0, id: 0, err: true, code: netproto.CodeMalformed})
	c.send(req)
	c.expect(ws...)
	c.expectEOF()
}

// TestServerRejectOverflow checks that a client that keeps pipelining
// while its requests are answered busy is eventually disconnected, after
// every queued request has been answered in order.
func TestServerRejectOverflow(t *testing.T) {
	defer goleak.VerifyNone(t, leakOpts...)
	h := newFakeHandler(t)
	cfg := testConfig(t)
	cfg.Workers = 1
	cfg.QueueDepth = 1
	s := startServer(t, cfg, h)
	defer shutdown(t, s)

	c := dial(t, s.Addr())
	defer c.close()
	c.send(getReq(nil, 1, "slow"))
	<-h.entered
	// Busy answers for these are queued behind request 1 as 16-byte
	// headers, more than maxRejectBacklog of them.
	n := maxRejectBacklog/netproto.HeaderSize + 5000
	var req []byte
	for i := range n {
		req = pingReq(req, uint32(2+i), "")
	}
	sent := s.Stats().BytesIn + uint64(len(req))
	c.send(req)
	nettest.Poll(t, "the server to read the pipeline", func() bool { return s.Stats().BytesIn == sent })
	close(h.gate)
	c.expect(want{op: netproto.OpGet, id: 1, payload: "slow"})
	next := uint32(2)
	for {
		f := c.mustRead()
		if f.RequestID == 0 {
			if err := (want{op: 0, id: 0, err: true, code: netproto.CodeBusy}).check(f); err != nil {
				t.Fatal(err)
			}
			break
		}
		if err := (want{op: netproto.OpPing, id: next, err: true, code: netproto.CodeBusy}).check(f); err != nil {
			t.Fatal(err)
		}
		next++
	}
	c.expectEOF()
	if answered := int(next - 2); answered < maxRejectBacklog/netproto.HeaderSize || answered >= n {
		t.Fatalf("%d of %d requests answered busy before the close", answered, n)
	}
}

func TestServerShutdownDrains(t *testing.T) {
	defer goleak.VerifyNone(t, leakOpts...)
	h := newFakeHandler(t)
	cfg := testConfig(t)
	cfg.Workers = 2
	s := startServer(t, cfg, h)

	a, b := dial(t, s.Addr()), dial(t, s.Addr())
	defer a.close()
	defer b.close()
	req := pingReq(nil, 1, "first")
	req = getReq(req, 2, "slow-a")
	req = getReq(req, 3, "fast-a")
	req = getReq(req, 4, "slow-a2")
	a.send(req)
	b.send(getReq(nil, 10, "slow-b"))
	a.expect(want{op: netproto.OpPing, id: 1, payload: "first"})
	seen := map[uint32]bool{<-h.entered: true, <-h.entered: true}
	if !seen[2] || !seen[10] {
		t.Fatalf("in flight: %v", seen)
	}

	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	nettest.Poll(t, "drain to start", s.sched.Draining)
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with requests in flight", err)
	default:
	}
	// A connection made now is refused.
	late := dial(t, s.Addr())
	defer late.close()
	late.expect(want{op: 0, id: 0, err: true, code: netproto.CodeBusy})
	late.expectEOF()

	close(h.gate)
	a.expect(
		want{op: netproto.OpGet, id: 2, payload: "slow-a"},
		want{op: netproto.OpGet, id: 3, payload: "fast-a"},
		want{op: netproto.OpGet, id: 4, payload: "slow-a2"},
	)
	b.expect(want{op: netproto.OpGet, id: 10, payload: "slow-b"})
	a.expectEOF()
	b.expectEOF()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if err := s.Start(); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Start after Shutdown: %v", err)
	}
}

func TestServerShutdownDeadline(t *testing.T) {
	defer goleak.VerifyNone(t, leakOpts...)
	h := newFakeHandler(t) // the gate never opens
	s := startServer(t, testConfig(t), h)

	c := dial(t, s.Addr())
	defer c.close()
	c.send(getReq(nil, 1, "slow"))
	<-h.entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := s.Shutdown(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Shutdown: %v", err)
	}
	// The blocked Serve saw its ctx end; whatever it answered, the
	// connection is closed.
	_ = c.conn.SetReadDeadline(time.Now().Add(waitFor))
	if _, err := io.ReadAll(c.r); err != nil && !isReset(err) {
		t.Fatalf("want EOF, got %v", err)
	}
}

func TestServerShutdownBeforeStart(t *testing.T) {
	defer goleak.VerifyNone(t, leakOpts...)
	s, err := New(testConfig(t), newFakeHandler(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Start after Shutdown: %v", err)
	}
}

func TestServerStartError(t *testing.T) {
	defer goleak.VerifyNone(t, leakOpts...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig(t)
	cfg.Addr = ln.Addr().String()
	s, err := New(cfg, newFakeHandler(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Fatal("Start on a used port succeeded")
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestServerConfigValidate(t *testing.T) {
	defer goleak.VerifyNone(t, leakOpts...)
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for _, tc := range []struct {
		field string
		mod   func(c *Config)
	}{
		{"Addr", func(c *Config) { c.Addr = "" }},
		{"Addr", func(c *Config) { c.Addr = "localhost" }},
		{"EventLoops", func(c *Config) { c.EventLoops = -1 }},
		{"Workers", func(c *Config) { c.Workers = -1 }},
		{"QueueDepth", func(c *Config) { c.QueueDepth = -1 }},
		{"MaxConns", func(c *Config) { c.MaxConns = -1 }},
		{"IdleTimeout", func(c *Config) { c.IdleTimeout = -time.Second }},
		{"netproto.Limits", func(c *Config) { c.Limits.MaxFrameSize = 3 }},
	} {
		cfg := DefaultConfig()
		tc.mod(&cfg)
		err := cfg.Validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: got %v", tc.field, err)
		}
		if _, err := New(cfg, newFakeHandler(t)); err == nil {
			t.Errorf("%s: New accepted the config", tc.field)
		}
	}
}

// benchPings measures PING round trips at pipeline depth over conns
// connections; the server's allocations count in allocs/op.
func benchPings(b *testing.B, addr string, depth, conns int) {
	b.Helper()
	var req []byte
	for i := range depth {
		req = pingReq(req, uint32(i), "0123456789abcdef")
	}
	// A PING response is the request echoed.
	nettest.RoundTrips(b, addr, req, len(req), depth, conns)
}

func BenchmarkServerPing(b *testing.B) {
	h := newFakeHandler(b)
	h.check = false
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Logger = nil
	s := startServer(b, cfg, h)
	defer shutdown(b, s)
	for _, conns := range []int{1, 8} {
		for _, depth := range []int{1, 16} {
			b.Run(fmt.Sprintf("conns=%d/depth=%d", conns, depth), func(b *testing.B) {
				benchPings(b, s.Addr(), depth, conns)
			})
		}
	}
}

// naiveServer is the baseline the Server must beat: gnet with default
// options answering each PING with its own allocation and Write.
type naiveServer struct {
	gnet.BuiltinEventEngine
	dec    *netproto.Decoder
	eng    gnet.Engine
	addr   string
	booted chan struct{}
}

func (n *naiveServer) OnBoot(eng gnet.Engine) gnet.Action {
	n.eng = eng
	n.addr, _ = gnetx.ListenAddr(eng)
	close(n.booted)
	return gnet.None
}

func (n *naiveServer) OnTraffic(c gnet.Conn) gnet.Action {
	for {
		buf, _ := c.Peek(-1)
		f, m, err := n.dec.Next(buf)
		if err != nil {
			return gnet.Close
		}
		if m == 0 {
			return gnet.None
		}
		resp := f.AppendTo(nil)
		resp[4] |= byte(netproto.FlagResponse)
		_, _ = c.Write(resp)
		_, _ = c.Discard(m)
	}
}

func BenchmarkNaiveGnetPing(b *testing.B) {
	n := &naiveServer{dec: netproto.NewDecoder(netproto.DefaultLimits()), booted: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		done <- gnet.Run(n, "tcp://127.0.0.1:0", gnet.WithMulticore(true),
			gnet.WithLogger(gnetx.Logger{L: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}))
	}()
	select {
	case <-n.booted:
	case err := <-done:
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = n.eng.Stop(ctx)
		<-done
	}()
	for _, conns := range []int{1, 8} {
		for _, depth := range []int{1, 16} {
			b.Run(fmt.Sprintf("conns=%d/depth=%d", conns, depth), func(b *testing.B) {
				benchPings(b, n.addr, depth, conns)
			})
		}
	}
}

// TestFrameErrorIDs pins which framing errors echo the request ID.
func TestFrameErrorIDs(t *testing.T) {
	defer goleak.VerifyNone(t, leakOpts...)
	big := netproto.AppendHeader(nil, netproto.Header{Opcode: netproto.OpGet, RequestID: 5, BodyLen: 1 << 30})
	_, _, err := netproto.NewDecoder(netproto.DefaultLimits()).Next(big)
	f := appendFrameError(nil, err, big)
	if id := binary.LittleEndian.Uint32(f[8:12]); id != 5 || netproto.Opcode(f[3]) != netproto.OpGet {
		t.Fatalf("too large: id %d op %v", id, netproto.Opcode(f[3]))
	}
	bad := append([]byte(nil), big...)
	bad[2] = 9
	_, _, err = netproto.NewDecoder(netproto.DefaultLimits()).Next(bad)
	f = appendFrameError(nil, err, bad)
	if id := binary.LittleEndian.Uint32(f[8:12]); id != 0 || f[3] != 0 {
		t.Fatalf("bad version: id %d op %d", id, f[3])
	}
}
