package connsched

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ecachedb/ecache/internal/testutil"
	"github.com/ecachedb/ecache/netproto/internal/nettest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testutil.LeakOptions()...) }

var errBadLine = errors.New("bad line")

// lineProto is a toy protocol: a request is a line. "slow ..." is declined
// on the event loop and served by a worker once gate is closed, "quit"
// closes after its reply, a line starting with '!' is a protocol error,
// an empty line is no request. The reply to a line is the line.
type lineProto struct {
	gate    chan struct{}
	entered chan string // slow lines as a worker starts them
}

func newLineProto() *lineProto {
	return &lineProto{gate: make(chan struct{}), entered: make(chan string, 64)}
}

func (p *lineProto) Open(uint64, string) Handler { return &lineConn{p: p} }

func (p *lineProto) RefusalReply(shuttingDown bool) []byte {
	if shuttingDown {
		return []byte("shutting down\n")
	}
	return []byte("full\n")
}

func (p *lineProto) ErrorReply(err error, _ []byte) []byte {
	return []byte("error: " + err.Error() + "\n")
}

func (p *lineProto) OverflowReply() []byte { return []byte("overflow\n") }

func (p *lineProto) AppendBusy(dst, req []byte) []byte {
	return append(append(append(dst, "busy "...), bytes.TrimSuffix(req, []byte("\n"))...), '\n')
}

func (p *lineProto) AppendStubs(dst, reqs []byte) []byte { return append(dst, reqs...) }

func (p *lineProto) AppendBusyStubs(dst, stubs []byte) ([]byte, int) {
	n := 0
	for line := range bytes.Lines(stubs) {
		if len(line) > 1 {
			dst = p.AppendBusy(dst, line)
			n++
		}
	}
	return dst, n
}

type lineConn struct {
	p     *lineProto
	line  []byte
	close atomic.Bool
}

func (c *lineConn) Next(buf []byte) (n, need int, req bool, err error) {
	i := bytes.IndexByte(buf, '\n')
	switch {
	case len(buf) > 0 && buf[0] == '!':
		return 0, 0, false, errBadLine
	case i < 0:
		return 0, len(buf) + 1, false, nil
	}
	c.line = buf[:i]
	return i + 1, 0, i > 0, nil
}

func (c *lineConn) reply(dst, line []byte) []byte {
	if string(line) == "quit" {
		c.close.Store(true)
	}
	return append(append(dst, line...), '\n')
}

func (c *lineConn) ServeFast(dst []byte) ([]byte, bool) {
	if bytes.HasPrefix(c.line, []byte("slow")) {
		return append(dst, "dropped"...), false
	}
	return c.reply(dst, c.line), true
}

func (c *lineConn) Serve(ctx context.Context, reqs, dst []byte) ([]byte, int) {
	i := bytes.IndexByte(reqs, '\n')
	line := reqs[:i]
	if len(line) == 0 {
		return dst, 1 // no request
	}
	if bytes.HasPrefix(line, []byte("slow")) {
		c.p.entered <- string(line)
		select {
		case <-c.p.gate:
		case <-ctx.Done():
			return append(dst, "cancelled\n"...), i + 1
		}
	}
	return c.reply(dst, line), i + 1
}

func (c *lineConn) CloseRequested() bool { return c.close.Load() }
func (c *lineConn) Release()             { c.line = nil }

// testLogger routes the server's logs to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func start(t *testing.T, p Protocol, edit func(*Config)) *Server {
	t.Helper()
	cfg := Config{Name: "test", Addr: "127.0.0.1:0", EventLoops: 2, Workers: 2, MinRequest: 1, Logger: testLogger(t)}
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	nettest.Start(t, s)
	return s
}

// client reads the replies of the protocol under test.
type client struct{ *nettest.Client }

func dial(t *testing.T, s *Server) client {
	return client{nettest.NewClient(t, s.Addr(), nettest.WaitFor)}
}

func (c client) want(lines ...string) {
	c.T.Helper()
	for _, want := range lines {
		got, err := c.R.ReadString('\n')
		if err != nil || got != want+"\n" {
			c.T.Fatalf("read %q, %v; want %q", got, err, want)
		}
	}
}

func (c client) wantEOF() {
	c.T.Helper()
	if got, err := c.R.ReadString('\n'); err == nil {
		c.T.Fatalf("read %q; want the connection closed", got)
	}
}

// TestOrderAndClose: replies leave in request order whichever party serves
// each request, and a close (requested or for a protocol error) comes after
// the replies before it.
func TestOrderAndClose(t *testing.T) {
	p := newLineProto()
	close(p.gate)
	s := start(t, p, nil)
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"quit fast", "a\n\nb\nquit\nnever\n", []string{"a", "b", "quit"}},
		{"quit slow", "a\nslow b\nc\n\nquit\nnever\n", []string{"a", "slow b", "c", "quit"}},
		{"error fast", "a\n!x\nnever\n", []string{"a", "error: bad line"}},
		{"error slow", "a\nslow b\n!x\nnever\n", []string{"a", "slow b", "error: bad line"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, s)
			c.Send(tc.in)
			c.want(tc.want...)
			c.wantEOF()
		})
	}
	nettest.Poll(t, "connections to close", func() bool { return s.Stats().Conns == 0 })
	if st := s.Stats(); st.ProtocolErrors != 2 || st.Accepted != 4 || st.BytesOut == 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestQueueFull: past QueueDepth, a declined request on an idle connection
// is answered busy at once, and a running connection's batch is answered
// busy by the worker, in order.
func TestQueueFull(t *testing.T) {
	p := newLineProto()
	s := start(t, p, func(c *Config) { c.Workers, c.QueueDepth = 1, 1 })
	a, b := dial(t, s), dial(t, s)
	a.Send("slow 1\n")
	if got := <-p.entered; got != "slow 1" {
		t.Fatalf("entered %q", got)
	}
	b.Send("slow 2\nx\n")
	b.want("busy slow 2", "x")
	a.Send("slow 3\ny\n")
	nettest.Poll(t, "a's second batch", func() bool { return s.Stats().Requests == 5 })
	close(p.gate)
	a.want("slow 1", "busy slow 3", "busy y")
	a.Send("slow 4\n")
	a.want("slow 4")
	if st := s.Stats(); st.Busy != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// TestOverflow: a client that pipelines past MaxBacklog (or MaxRejected)
// while its requests wait gets the overflow reply after what is queued,
// and is closed.
func TestOverflow(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want []string
	}{
		{"backlog", func(c *Config) { c.MaxBacklog = 16 }, []string{"slow 1", "overflow"}},
		{"rejected", func(c *Config) { c.Workers, c.QueueDepth, c.MaxRejected = 1, 1, 4 }, []string{"slow 1", "busy slow 22", "busy slow 333", "overflow"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newLineProto()
			s := start(t, p, tc.edit)
			c := dial(t, s)
			c.Send("slow 1\n")
			<-p.entered
			c.Send("slow 22\nslow 333\n")
			nettest.Poll(t, "the overflow", func() bool { return s.Stats().Overflows == 1 })
			close(p.gate)
			c.want(tc.want...)
			c.wantEOF()
		})
	}
}

// TestShutdownDrains: Shutdown refuses new connections, waits for the
// requests in flight and writes their replies before closing.
func TestShutdownDrains(t *testing.T) {
	p := newLineProto()
	s := start(t, p, nil)
	c := dial(t, s)
	c.Send("a\nslow b\nc\n")
	c.want("a")
	<-p.entered
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	nettest.Poll(t, "the drain", s.Draining)
	late := dial(t, s)
	late.want("shutting down")
	late.wantEOF()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	default:
	}
	close(p.gate)
	c.want("slow b", "c")
	c.wantEOF()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Shutdown: %v", err)
	}
}

func TestMaxConns(t *testing.T) {
	s := start(t, newLineProto(), func(c *Config) { c.MaxConns = 1 })
	a := dial(t, s)
	a.Send("x\n")
	a.want("x")
	b := dial(t, s)
	b.want("full")
	b.wantEOF()
	if st := s.Stats(); st.Rejected != 1 || st.Accepted != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestIdleTimeout: a connection that sends no complete request for
// IdleTimeout is closed; a partial request does not count.
func TestIdleTimeout(t *testing.T) {
	s := start(t, newLineProto(), func(c *Config) { c.IdleTimeout = 20 * time.Millisecond })
	a := dial(t, s)
	a.Send("x\n")
	a.want("x")
	a.Send("partial")
	a.wantEOF()
}

func TestConfig(t *testing.T) {
	sentinel := errors.New("mine")
	for _, tc := range []struct {
		field string
		edit  func(*Config)
	}{
		{"Addr", func(c *Config) { c.Addr = "" }},
		{"Addr", func(c *Config) { c.Addr = "nohost" }},
		{"EventLoops", func(c *Config) { c.EventLoops = -1 }},
		{"Workers", func(c *Config) { c.Workers = -1 }},
		{"MinRequest", func(c *Config) { c.MinRequest = 0 }},
		{"QueueDepth", func(c *Config) { c.QueueDepth = -1 }},
		{"MaxRejected", func(c *Config) { c.MaxRejected = -1 }},
		{"MaxBacklog", func(c *Config) { c.MaxBacklog = -1 }},
		{"MaxConns", func(c *Config) { c.MaxConns = -1 }},
		{"IdleTimeout", func(c *Config) { c.IdleTimeout = -1 }},
	} {
		cfg := Config{Addr: "127.0.0.1:0", MinRequest: 1}
		tc.edit(&cfg)
		if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v", tc.field, err)
		}
		cfg.ErrInvalid = sentinel
		if _, err := New(cfg, newLineProto()); !errors.Is(err, sentinel) {
			t.Errorf("%s: New: %v", tc.field, err)
		}
	}
	// A bounded queue needs a Protocol that can answer busy.
	noBusy := struct{ Protocol }{newLineProto()}
	if _, err := New(Config{Addr: "127.0.0.1:0", MinRequest: 1, QueueDepth: 1}, noBusy); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("QueueDepth without a Rejecter: %v", err)
	}
}
