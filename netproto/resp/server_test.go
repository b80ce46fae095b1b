package resp

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ecachedb/ecache/internal/testutil"
	"github.com/ecachedb/ecache/netproto/internal/nettest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testutil.LeakOptions()...) }

// echoHandler replies to each command with its arguments joined by
// spaces. SLOW is declined on the event loop (and served by a worker),
// QUIT closes.
type echoHandler struct{}

func (echoHandler) ServeFast(s *Session, args [][]byte, dst []byte) ([]byte, bool) {
	if strings.EqualFold(string(args[0]), "SLOW") {
		dst = append(dst, "garbage"...) // must be dropped by the server
		return dst, false
	}
	return echoHandler{}.Serve(context.Background(), s, args, dst), true
}

func (echoHandler) Serve(_ context.Context, s *Session, args [][]byte, dst []byte) []byte {
	if strings.EqualFold(string(args[0]), "QUIT") {
		s.CloseAfterReply()
		return AppendOK(dst)
	}
	if strings.EqualFold(string(args[0]), "SLOW") {
		time.Sleep(time.Millisecond)
	}
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = string(a)
	}
	return AppendBulkString(dst, strings.Join(parts, " "))
}

func startServer(t *testing.T, edit func(*Config)) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.EventLoops = 2
	cfg.Workers = 2
	cfg.Limits = Limits{MaxArgs: 8, MaxBulk: 1 << 10, MaxRequest: 4 << 10, MaxInline: 1 << 10}
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(cfg, echoHandler{})
	if err != nil {
		t.Fatal(err)
	}
	nettest.Start(t, s)
	return s
}

// client reads the replies of the protocol under test.
type client struct{ *nettest.Client }

func dial(t *testing.T, s *Server) client {
	return client{nettest.NewClient(t, s.Addr(), 10*time.Second)}
}

func cmd(args ...string) string {
	s := fmt.Sprintf("*%d\r\n", len(args))
	for _, a := range args {
		s += fmt.Sprintf("$%d\r\n%s\r\n", len(a), a)
	}
	return s
}

// reply reads one reply (simple, error or bulk) as text.
func (c client) reply() (string, error) {
	line, err := c.R.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line[0] != '$' {
		return line, nil
	}
	var n int
	fmt.Sscanf(line[1:], "%d", &n)
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(c.R, buf); err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func (c client) want(want string) {
	c.T.Helper()
	got, err := c.reply()
	if err != nil || got != want {
		c.T.Fatalf("reply %q, %v; want %q", got, err, want)
	}
}

func (c client) wantClosed() {
	c.T.Helper()
	if got, err := c.reply(); err == nil {
		c.T.Fatalf("connection open, got %q", got)
	}
}

// TestPipelineOrder: replies leave in command order whichever party
// serves each command.
func TestPipelineOrder(t *testing.T) {
	s := startServer(t, nil)
	c := dial(t, s)
	var b strings.Builder
	for i := range 200 {
		name := "FAST"
		if i%7 == 3 {
			name = "SLOW"
		}
		b.WriteString(cmd(name, fmt.Sprint(i)))
		if i%50 == 0 {
			b.WriteString(fmt.Sprintf("INLINE %d\r\n", i))
		}
	}
	c.Send(b.String())
	for i := range 200 {
		name := "FAST"
		if i%7 == 3 {
			name = "SLOW"
		}
		c.want(fmt.Sprintf("%s %d", name, i))
		if i%50 == 0 {
			c.want(fmt.Sprintf("INLINE %d", i))
		}
	}
	// A command split across writes.
	whole := cmd("SLOW", "split")
	c.Send(whole[:7])
	time.Sleep(time.Millisecond)
	c.Send(whole[7:])
	c.want("SLOW split")
}

// TestBadRequestClosesOnlyItsConnection: a malformed or oversized request
// gets an error after the replies before it, and closes its connection,
// while a concurrent healthy connection keeps being served.
func TestBadRequestClosesOnlyItsConnection(t *testing.T) {
	s := startServer(t, nil)
	healthy := dial(t, s)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			healthy.Send(cmd("SLOW", fmt.Sprint(i)) + cmd("FAST", fmt.Sprint(i)))
			for _, want := range []string{"SLOW", "FAST"} {
				if got, err := healthy.reply(); err != nil || got != fmt.Sprintf("%s %d", want, i) {
					t.Errorf("healthy connection: %q, %v", got, err)
					return
				}
			}
		}
	}()
	for _, tc := range []struct{ name, req, want string }{
		{"huge bulk", "*2\r\n$3\r\nSET\r\n$999999\r\n", "-ERR Protocol error: invalid bulk length 999999 (limit 1024 bytes)"},
		{"too many args", "*9\r\n", "-ERR Protocol error: invalid multibulk length 9 (limit 8 arguments)"},
		{"not a bulk", "*1\r\n:1\r\n", "-ERR Protocol error: expected '$', got ':'"},
		{"bad length", "*1\r\n$x\r\n", "-ERR Protocol error: invalid bulk length"},
		{"huge inline", strings.Repeat("a", 2000), "-ERR Protocol error: too big inline request"},
		{"too many inline args", "a b c d e f g h i\r\n", "-ERR Protocol error: too many arguments (limit 8)"},
		{"unbalanced quotes", "ECHO \"x\r\n", "-ERR Protocol error: unbalanced quotes in request"},
	} {
		for _, before := range []string{"FAST", "SLOW"} {
			c := dial(t, s)
			c.Send(cmd(before, "1") + tc.req + cmd("FAST", "after"))
			c.want(before + " 1")
			c.want(tc.want)
			c.wantClosed()
		}
	}
	close(stop)
	wg.Wait()
	if st := s.Stats(); st.ProtocolErrors != 14 {
		t.Errorf("ProtocolErrors = %d, want 14", st.ProtocolErrors)
	}
}

func TestQuit(t *testing.T) {
	s := startServer(t, nil)
	for _, before := range []string{"FAST", "SLOW"} {
		c := dial(t, s)
		c.Send(cmd(before, "x") + cmd("QUIT") + cmd("FAST", "ignored"))
		c.want(before + " x")
		c.want("+OK")
		c.wantClosed()
	}
}

func TestMaxConns(t *testing.T) {
	s := startServer(t, func(c *Config) { c.MaxConns = 1 })
	a := dial(t, s)
	a.Send(cmd("FAST", "a"))
	a.want("FAST a")
	b := dial(t, s)
	b.want("-" + msgTooManyConns)
	b.wantClosed()
}

// TestBacklogLimit: a client pipelining past the backlog while its
// commands wait for workers is closed after an error.
func TestBacklogLimit(t *testing.T) {
	s := startServer(t, func(c *Config) { c.MaxBacklog = 4 << 10 })
	c := dial(t, s)
	var b strings.Builder
	for b.Len() < 64<<10 {
		b.WriteString(cmd("SLOW", "x"))
	}
	go io.WriteString(c.Conn, b.String())
	for {
		got, err := c.reply()
		if err != nil {
			t.Fatalf("closed without the backlog error: %v", err)
		}
		if got == "-"+msgBacklog {
			break
		}
		if got != "SLOW x" {
			t.Fatalf("reply %q", got)
		}
	}
	c.wantClosed()
}

func TestConfigValidate(t *testing.T) {
	for _, edit := range []func(*Config){
		func(c *Config) { c.Addr = "" },
		func(c *Config) { c.Addr = "nohost" },
		func(c *Config) { c.Workers = -1 },
		func(c *Config) { c.Limits.MaxArgs = 0 },
		func(c *Config) { c.Limits.MaxRequest = c.Limits.MaxBulk - 1 },
	} {
		cfg := DefaultConfig()
		edit(&cfg)
		if _, err := New(cfg, echoHandler{}); err == nil {
			t.Errorf("New accepted %+v", cfg)
		}
	}
}
