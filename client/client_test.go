package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecachedb/ecache/netproto"
	"go.uber.org/goleak"
)

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.Addrs = []string{"127.0.0.1:7070"}
	tests := []struct {
		name  string
		edit  func(*Config)
		field string // in the error; "" for a valid config
	}{
		{"default", func(*Config) {}, ""},
		{"zero fields take defaults", func(c *Config) { *c = Config{Addrs: c.Addrs} }, ""},
		{"no addrs", func(c *Config) { c.Addrs = nil }, "Addrs"},
		{"bad addr", func(c *Config) { c.Addrs = []string{"localhost"} }, "Addrs[0]"},
		{"negative conns", func(c *Config) { c.ConnsPerNode = -1 }, "ConnsPerNode"},
		{"negative dial timeout", func(c *Config) { c.DialTimeout = -time.Second }, "DialTimeout"},
		{"negative request timeout", func(c *Config) { c.RequestTimeout = -time.Second }, "RequestTimeout"},
		{"bad limits", func(c *Config) { c.Limits.MaxKeySize = 0 }, "Limits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			cfg.Addrs = append([]string(nil), ok.Addrs...)
			tt.edit(&cfg)
			err := cfg.Validate()
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.field != "" && (err == nil || !strings.Contains(err.Error(), tt.field)):
				t.Fatalf("Validate() = %v, want an error naming %s", err, tt.field)
			}
		})
	}
}

func TestMethods(t *testing.T) {
	fs := startServer(t, fakeOptions{})
	c := startClient(t, nil, fs.Addr())
	ctx := t.Context()

	t.Run("PutGet", func(t *testing.T) {
		cc, err := c.Put(ctx, "k", []byte("v1"), WithTTL(time.Minute))
		if err != nil || len(cc) == 0 {
			t.Fatalf("Put = %x, %v", cc, err)
		}
		it, err := c.Get(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		if len(it.Values) != 1 || string(it.Values[0]) != "v1" || !bytes.Equal(it.Context, cc) {
			t.Fatalf("Get = %q ctx %x, want [v1] ctx %x", it.Values, it.Context, cc)
		}
		if it.TTL <= 0 || it.TTL > time.Minute {
			t.Fatalf("TTL %v, want in (0, 1m]", it.TTL)
		}
	})
	t.Run("GetMissing", func(t *testing.T) {
		it, err := c.Get(ctx, "missing")
		if !errors.Is(err, ErrNotFound) || it == nil || len(it.Values) != 0 {
			t.Fatalf("Get = %+v, %v; want an empty item and ErrNotFound", it, err)
		}
	})
	t.Run("Del", func(t *testing.T) {
		if _, err := c.Put(ctx, "d", []byte("x")); err != nil {
			t.Fatal(err)
		}
		cc, err := c.Del(ctx, "d")
		if err != nil || len(cc) == 0 {
			t.Fatalf("Del = %x, %v", cc, err)
		}
		// A deletion is not found but keeps its context, which a write may
		// supersede.
		it, err := c.Get(ctx, "d")
		if !errors.Is(err, ErrNotFound) || it == nil || !bytes.Equal(it.Context, cc) {
			t.Fatalf("Get after Del = %+v, %v; want ErrNotFound with context %x", it, err, cc)
		}
		if _, err := c.Put(ctx, "d", []byte("back"), WithCausalContext(it.Context)); err != nil {
			t.Fatal(err)
		}
		if it, err := c.Get(ctx, "d"); err != nil || string(it.Values[0]) != "back" {
			t.Fatalf("Get = %+v, %v", it, err)
		}
	})
	t.Run("MPutMGet", func(t *testing.T) {
		ctxs, errs, err := c.MPut(ctx, []Entry{{Key: "a", Value: []byte("x")}, {Key: "b", Value: []byte("y"), TTL: time.Hour}})
		if err != nil || errs[0] != nil || errs[1] != nil || len(ctxs[0]) == 0 || len(ctxs[1]) == 0 {
			t.Fatalf("MPut = %x, %v, %v", ctxs, errs, err)
		}
		items, errs, err := c.MGet(ctx, []string{"a", "nope", "b"})
		if err != nil {
			t.Fatal(err)
		}
		if errs[0] != nil || string(items[0].Values[0]) != "x" || items[0].TTL != 0 {
			t.Fatalf("a: %+v, %v", items[0], errs[0])
		}
		if !errors.Is(errs[1], ErrNotFound) || items[1] == nil {
			t.Fatalf("nope: %+v, %v", items[1], errs[1])
		}
		if errs[2] != nil || string(items[2].Values[0]) != "y" || items[2].TTL <= 0 || !bytes.Equal(items[2].Context, ctxs[1]) {
			t.Fatalf("b: %+v, %v", items[2], errs[2])
		}
	})
	t.Run("IncrDecr", func(t *testing.T) {
		ns := WithNamespace("counters")
		if v, err := c.Incr(ctx, "hits", 5, ns); err != nil || v != 5 {
			t.Fatalf("Incr = %d, %v", v, err)
		}
		if v, err := c.Decr(ctx, "hits", 2, ns); err != nil || v != 3 {
			t.Fatalf("Decr = %d, %v", v, err)
		}
		if v, err := c.Incr(ctx, "hits", 0, ns); err != nil || v != 3 {
			t.Fatalf("Incr 0 = %d, %v", v, err)
		}
	})
	t.Run("Sets", func(t *testing.T) {
		ns := WithNamespace("sets")
		if err := c.SAdd(ctx, "tags", [][]byte{[]byte("red"), []byte("blue"), []byte("green")}, ns); err != nil {
			t.Fatal(err)
		}
		if err := c.SRem(ctx, "tags", [][]byte{[]byte("green")}, ns); err != nil {
			t.Fatal(err)
		}
		m, err := c.SMembers(ctx, "tags", ns)
		if err != nil || fmt.Sprintf("%s", m) != "[blue red]" {
			t.Fatalf("SMembers = %s, %v", m, err)
		}
		if m, err := c.SMembers(ctx, "none", ns); err != nil || len(m) != 0 {
			t.Fatalf("SMembers of an absent set = %s, %v; want none, nil", m, err)
		}
	})
	t.Run("ExpireTTL", func(t *testing.T) {
		if _, err := c.Put(ctx, "e", []byte("x")); err != nil {
			t.Fatal(err)
		}
		if d, err := c.TTL(ctx, "e"); err != nil || d != 0 {
			t.Fatalf("TTL = %v, %v; want 0 (no expiry)", d, err)
		}
		if err := c.Expire(ctx, "e", 30*time.Second); err != nil {
			t.Fatal(err)
		}
		if d, err := c.TTL(ctx, "e"); err != nil || d <= 0 || d > 30*time.Second {
			t.Fatalf("TTL = %v, %v; want in (0, 30s]", d, err)
		}
		if err := c.Expire(ctx, "absent", time.Second); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Expire(absent) = %v, want ErrNotFound", err)
		}
		if _, err := c.TTL(ctx, "absent"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("TTL(absent) = %v, want ErrNotFound", err)
		}
	})
	t.Run("PingStats", func(t *testing.T) {
		if err := c.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		st, err := c.Stats(ctx)
		if err != nil || st["keys"] == 0 || st["conns"] == 0 {
			t.Fatalf("Stats = %v, %v", st, err)
		}
	})
}

func TestSiblings(t *testing.T) {
	fs := startServer(t, fakeOptions{})
	c := startClient(t, nil, fs.Addr())
	ctx, ns := t.Context(), WithNamespace("siblings")

	// Two blind writes are concurrent: both are kept.
	for _, v := range []string{"apple", "pear"} {
		if _, err := c.Put(ctx, "cart", []byte(v), ns); err != nil {
			t.Fatal(err)
		}
	}
	it, err := c.Get(ctx, "cart", ns)
	if err != nil || fmt.Sprintf("%s", it.Values) != "[apple pear]" {
		t.Fatalf("Get = %+v, %v; want two siblings", it, err)
	}
	// Writing back with the context replaces both.
	if _, err := c.Put(ctx, "cart", []byte("apple,pear"), ns, WithCausalContext(it.Context)); err != nil {
		t.Fatal(err)
	}
	it, err = c.Get(ctx, "cart", ns)
	if err != nil || fmt.Sprintf("%s", it.Values) != "[apple,pear]" {
		t.Fatalf("Get = %+v, %v; want one resolved value", it, err)
	}
	// Values are the caller's: appending to one does not touch another.
	it.Values[0] = append(it.Values[0], '!')
	if len(it.Context) == 0 {
		t.Fatal("resolved value lost its context")
	}
}

func TestServerErrors(t *testing.T) {
	fs := startServer(t, fakeOptions{limits: netproto.Limits{MaxFrameSize: 1 << 20, MaxKeySize: 16, MaxValueSize: 64}})
	c := startClient(t, nil, fs.Addr())
	ctx := t.Context()

	_, err := c.Get(ctx, "k", WithNamespace("counters"))
	if !errors.Is(err, ErrWrongType) {
		t.Fatalf("GET on a counter namespace = %v, want ErrWrongType", err)
	}
	var se *ServerError
	if !errors.As(err, &se) || se.Code != netproto.CodeWrongType || se.Message == "" {
		t.Fatalf("error %v is not a *ServerError with code and message", err)
	}
	if errors.Is(err, ErrUnknownNamespace) {
		t.Fatal("wrong type error matches ErrUnknownNamespace")
	}
	if _, err := c.Incr(ctx, "k", 1); !errors.Is(err, ErrWrongType) {
		t.Fatalf("INCR on a value namespace = %v, want ErrWrongType", err)
	}
	if _, err := c.Put(ctx, "k", []byte("v"), WithNamespace("nope")); !errors.Is(err, ErrUnknownNamespace) || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("PUT to an unknown namespace = %v, want ErrUnknownNamespace naming it", err)
	}

	// The server's limits are smaller than the client's: it reports
	// per-key failures in MGET and MPUT results, and errors for the rest.
	long := strings.Repeat("k", 20)
	if _, err := c.Put(ctx, long, []byte("v")); !errors.Is(err, ErrKeyTooLarge) {
		t.Fatalf("PUT with a long key = %v, want ErrKeyTooLarge", err)
	}
	_, errs, err := c.MPut(ctx, []Entry{{Key: "ok", Value: []byte("v")}, {Key: "big", Value: make([]byte, 100)}})
	if err != nil || errs[0] != nil || !errors.Is(errs[1], ErrValueTooLarge) {
		t.Fatalf("MPUT = %v, %v; want [nil, ErrValueTooLarge]", errs, err)
	}
	items, errs, err := c.MGet(ctx, []string{long, "ok"})
	if err != nil || !errors.Is(errs[0], ErrKeyTooLarge) || items[0] != nil || errs[1] != nil || string(items[1].Values[0]) != "v" {
		t.Fatalf("MGET = %v, %v, %v", items, errs, err)
	}

	// Injected codes, including ones the client cannot produce itself.
	for code, want := range map[netproto.Code]error{
		netproto.CodeBusy:          ErrBusy,
		netproto.CodeInternal:      ErrInternal,
		netproto.CodeUnknownOpcode: ErrUnknownOpcode,
		netproto.CodeOverflow:      ErrOverflow,
	} {
		fs.setHook(func(op netproto.Opcode, key string) fakeAction {
			if key == "inject" {
				return fakeAction{code: code}
			}
			return fakeAction{}
		})
		if _, err := c.Get(ctx, "inject"); !errors.Is(err, want) {
			t.Errorf("code %v: Get = %v, want %v", code, err, want)
		}
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("connection unusable after error responses: %v", err)
	}
}

// TestPipelining runs 1000 GETs from 50 goroutines at once on two
// connections.
func TestPipelining(t *testing.T) {
	fs := startServer(t, fakeOptions{})
	c := startClient(t, func(cfg *Config) { cfg.ConnsPerNode = 2 }, fs.Addr())
	ctx := t.Context()
	waitFor(t, "both connections", func() bool {
		return c.pool.slots[0].healthy() != nil && c.pool.slots[1].healthy() != nil
	})
	const keys, goroutines = 1000, 50
	entries := make([]Entry, keys)
	for i := range entries {
		entries[i] = Entry{Key: fmt.Sprint("k", i), Value: []byte(fmt.Sprint("v", i))}
	}
	if _, errs, err := c.MPut(ctx, entries); err != nil || errors.Join(errs...) != nil {
		t.Fatal(err, errors.Join(errs...))
	}

	var wg sync.WaitGroup
	errc := make(chan error, keys)
	for g := range goroutines {
		wg.Go(func() {
			for i := g; i < keys; i += goroutines {
				it, err := c.Get(ctx, entries[i].Key)
				if err != nil {
					errc <- err
					continue
				}
				if want := fmt.Sprint("v", i); len(it.Values) != 1 || string(it.Values[0]) != want {
					errc <- fmt.Errorf("Get(%s) = %q, want %s", entries[i].Key, it.Values, want)
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if n := fs.accepts.Load(); n != 2 {
		t.Errorf("server accepted %d connections, want 2", n)
	}
}

// holdKey makes the server withhold its reply to requests for key until
// the returned release is called; arrived gets a token as each arrives.
func holdKey(fs *fakeServer, key string) (arrived <-chan struct{}, release func()) {
	arr := make(chan struct{}, 1)
	gate := make(chan struct{})
	fs.setHook(func(_ netproto.Opcode, k string) fakeAction {
		if k == key {
			return fakeAction{arrived: arr, wait: gate}
		}
		return fakeAction{}
	})
	var once sync.Once
	return arr, func() { once.Do(func() { close(gate) }) }
}

func TestDeadlineWhileServerWithholdsReply(t *testing.T) {
	fs := startServer(t, fakeOptions{})
	c := startClient(t, func(cfg *Config) { cfg.ConnsPerNode = 1 }, fs.Addr())
	if _, err := c.Put(t.Context(), "slow", []byte("late")); err != nil {
		t.Fatal(err)
	}
	_, release := holdKey(fs, "slow")
	defer release()

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err := c.Get(ctx, "slow")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get = %v, want context.DeadlineExceeded", err)
	}
	// The reply comes after the caller gave up: it is discarded, and the
	// same connection serves the next calls.
	release()
	for range 3 {
		if _, err := c.Put(t.Context(), "after", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if it, err := c.Get(t.Context(), "slow"); err != nil || string(it.Values[0]) != "late" {
		t.Fatalf("Get = %+v, %v", it, err)
	}
	if n := fs.accepts.Load(); n != 1 {
		t.Fatalf("server accepted %d connections, want 1 (the connection should survive)", n)
	}
}

func TestRequestTimeout(t *testing.T) {
	fs := startServer(t, fakeOptions{})
	c := startClient(t, func(cfg *Config) { cfg.ConnsPerNode = 1; cfg.RequestTimeout = 20 * time.Millisecond }, fs.Addr())
	_, release := holdKey(fs, "slow")
	defer release()
	// context.Background has no deadline: Config.RequestTimeout applies.
	if _, err := c.Get(context.Background(), "slow"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get = %v, want context.DeadlineExceeded", err)
	}
	release()
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestCancel(t *testing.T) {
	fs := startServer(t, fakeOptions{})
	c := startClient(t, func(cfg *Config) { cfg.ConnsPerNode = 1 }, fs.Addr())
	arrived, release := holdKey(fs, "slow")
	defer release()

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Get(ctx, "slow")
		errc <- err
	}()
	<-arrived
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Get = %v, want context.Canceled", err)
	}
	// A call with a context already done does not send anything.
	before := fs.requests.Load()
	if _, err := c.Get(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with a cancelled context = %v", err)
	}
	release()
	if err := c.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := fs.requests.Load() - before; n != 1 {
		t.Fatalf("server got %d requests, want 1 (the PING)", n)
	}
}

// waitFor polls cond until it holds, failing the test after a while.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (c *Client) pendingCalls() int {
	n := 0
	for _, s := range c.pool.slots {
		if cn := s.conn.Load(); cn != nil {
			cn.mu.Lock()
			n += len(cn.pending)
			cn.mu.Unlock()
		}
	}
	return n
}

func TestServerDropsConnectionMidCall(t *testing.T) {
	fs := startServer(t, fakeOptions{})
	c := startClient(t, func(cfg *Config) { cfg.ConnsPerNode = 1 }, fs.Addr())
	_, release := holdKey(fs, "slow")
	defer release()

	const calls = 5
	errc := make(chan error, calls)
	for range calls {
		go func() {
			_, err := c.Get(t.Context(), "slow")
			errc <- err
		}()
	}
	waitFor(t, "calls in flight", func() bool { return c.pendingCalls() == calls })
	fs.dropConns()
	for range calls {
		if err := <-errc; !errors.Is(err, ErrConnLost) {
			t.Fatalf("pending Get = %v, want ErrConnLost", err)
		}
	}
	release()
	// The next call redials.
	if _, err := c.Put(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if n := fs.accepts.Load(); n != 2 {
		t.Fatalf("server accepted %d connections, want 2", n)
	}

	// So does one after the server closes the connection on receiving it.
	fs.setHook(func(_ netproto.Opcode, k string) fakeAction { return fakeAction{drop: k == "drop"} })
	if _, err := c.Get(t.Context(), "drop"); !errors.Is(err, ErrConnLost) {
		t.Fatalf("Get = %v, want ErrConnLost", err)
	}
	if _, err := c.Get(t.Context(), "k"); err != nil {
		t.Fatal(err)
	}
}

func TestGarbageResponse(t *testing.T) {
	fs := startServer(t, fakeOptions{})
	c := startClient(t, func(cfg *Config) { cfg.ConnsPerNode = 1 }, fs.Addr())
	fs.setHook(func(_ netproto.Opcode, k string) fakeAction { return fakeAction{garbage: k == "bad"} })
	_, err := c.Get(t.Context(), "bad")
	if !errors.Is(err, ErrConnLost) || !errors.Is(err, ErrMalformed) {
		t.Fatalf("Get = %v, want ErrConnLost and ErrMalformed", err)
	}
	if err := c.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestNodeDown(t *testing.T) {
	a := startServer(t, fakeOptions{})
	b := startServer(t, fakeOptions{})
	c := startClient(t, func(cfg *Config) { cfg.ConnsPerNode = 1 }, a.Addr(), b.Addr())
	slotA := c.pool.slots[0]
	if slotA.addr != a.Addr() {
		t.Fatalf("slot 0 is for %s, want %s", slotA.addr, a.Addr())
	}
	waitFor(t, "both connections", func() bool {
		return slotA.healthy() != nil && c.pool.slots[1].healthy() != nil
	})
	a.Close()
	waitFor(t, "the connection to a to break", func() bool { return slotA.healthy() == nil })
	before := b.requests.Load()
	for i := range 20 {
		if _, err := c.Put(t.Context(), fmt.Sprint("k", i), []byte("v")); err != nil {
			t.Fatalf("Put %d with one node down: %v", i, err)
		}
	}
	if n := b.requests.Load() - before; n != 20 {
		t.Fatalf("b served %d requests, want 20", n)
	}
}

func TestNodeRestart(t *testing.T) {
	fs := startServer(t, fakeOptions{})
	addr := fs.Addr()
	c := startClient(t, func(cfg *Config) { cfg.ConnsPerNode = 1 }, addr)
	fs.Close()
	// Every call fails while the only node is down, quickly: dials back off.
	waitFor(t, "ErrNoNodes", func() bool {
		err := c.Ping(t.Context())
		if err != nil && !errors.Is(err, ErrNoNodes) && !errors.Is(err, ErrConnLost) {
			t.Fatalf("Ping = %v", err)
		}
		return errors.Is(err, ErrNoNodes)
	})
	err := c.Ping(t.Context())
	if !errors.Is(err, ErrNoNodes) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Ping = %v, want ErrNoNodes naming %s", err, addr)
	}
	// Once the node is back, a call after the backoff redials.
	startServer(t, fakeOptions{addr: addr})
	waitFor(t, "the client to reconnect", func() bool { return c.Ping(t.Context()) == nil })
}

func TestNewUnreachable(t *testing.T) {
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		ln.Close()
	}
	cfg := DefaultConfig()
	cfg.Addrs = addrs
	cfg.Logger = testLogger(t)
	_, err := New(t.Context(), cfg)
	if !errors.Is(err, ErrNoNodes) {
		t.Fatalf("New = %v, want ErrNoNodes", err)
	}
	t.Log(err)
	for _, a := range addrs {
		if !strings.Contains(err.Error(), a) {
			t.Errorf("error %q does not name %s", err, a)
		}
	}

	// One reachable node is enough.
	fs := startServer(t, fakeOptions{})
	cfg.Addrs = append(addrs, fs.Addr())
	c, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestHelloPassword(t *testing.T) {
	fs := startServer(t, fakeOptions{password: "s3cret"})
	c := startClient(t, func(cfg *Config) { cfg.Password = "s3cret" }, fs.Addr())
	if _, err := c.Put(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"", "wrong"} {
		cfg := DefaultConfig()
		cfg.Addrs, cfg.Password, cfg.Logger = []string{fs.Addr()}, pw, testLogger(t)
		_, err := New(t.Context(), cfg)
		if !errors.Is(err, ErrUnauthenticated) || !errors.Is(err, ErrNoNodes) {
			t.Fatalf("New with password %q = %v, want ErrUnauthenticated", pw, err)
		}
	}
}

func TestLimits(t *testing.T) {
	fs := startServer(t, fakeOptions{})
	c := startClient(t, func(cfg *Config) {
		cfg.ConnsPerNode = 1
		cfg.Limits = netproto.Limits{MaxFrameSize: 1024, MaxKeySize: 16, MaxValueSize: 512}
	}, fs.Addr())
	ctx := t.Context()
	long, big := strings.Repeat("k", 17), make([]byte, 513)
	before := fs.requests.Load()

	check := func(what string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s = %v, want %v", what, err, want)
		}
	}
	_, err := c.Get(ctx, long)
	check("Get(long key)", err, ErrKeyTooLarge)
	_, err = c.Put(ctx, "k", big)
	check("Put(big value)", err, ErrValueTooLarge)
	_, err = c.Put(ctx, long, nil)
	check("Put(long key)", err, ErrKeyTooLarge)
	_, err = c.Del(ctx, long)
	check("Del(long key)", err, ErrKeyTooLarge)
	_, err = c.Incr(ctx, long, 1)
	check("Incr(long key)", err, ErrKeyTooLarge)
	check("SAdd(big member)", c.SAdd(ctx, "s", [][]byte{[]byte("ok"), big}), ErrValueTooLarge)
	_, err = c.Put(ctx, "k", nil, WithTTL(-time.Second))
	check("Put(negative TTL)", err, ErrInvalidArgument)
	_, err = c.Put(ctx, "k", nil, WithW(-1))
	check("Put(negative W)", err, ErrInvalidArgument)
	_, err = c.Get(ctx, "k", WithR(-1))
	check("Get(negative R)", err, ErrInvalidArgument)
	check("Expire(negative TTL)", c.Expire(ctx, "k", -time.Second), ErrInvalidArgument)
	// Two values that fit alone do not fit one frame together.
	_, _, err = c.MPut(ctx, []Entry{{Key: "a", Value: make([]byte, 500)}, {Key: "b", Value: make([]byte, 500)}})
	check("MPut(over the frame size)", err, ErrFrameTooLarge)
	_, _, err = c.MPut(ctx, []Entry{{Key: "a", Value: make([]byte, 500)}, {Key: "b", Value: make([]byte, 490)}})
	check("MPut(frame size just over after encoding)", err, ErrFrameTooLarge)
	check("SAdd(over the frame size)", c.SAdd(ctx, "s", [][]byte{make([]byte, 500), make([]byte, 500)}), ErrFrameTooLarge)
	_, errs, err := c.MPut(ctx, []Entry{{Key: long}, {Key: "b", Value: big}})
	check("MPut(all entries over limits)", errors.Join(err, errs[0]), ErrKeyTooLarge)
	check("MPut(all entries over limits)", errs[1], ErrValueTooLarge)
	if n := fs.requests.Load() - before; n != 0 {
		t.Fatalf("server got %d requests, want none", n)
	}

	// In MGET and MPUT, entries over the limits fail alone.
	_, errs, err = c.MPut(ctx, []Entry{{Key: long}, {Key: "ok", Value: []byte("v")}})
	if err != nil || !errors.Is(errs[0], ErrKeyTooLarge) || errs[1] != nil {
		t.Fatalf("MPut = %v, %v", errs, err)
	}
	items, errs, err := c.MGet(ctx, []string{"ok", long})
	if err != nil || errs[0] != nil || string(items[0].Values[0]) != "v" || !errors.Is(errs[1], ErrKeyTooLarge) || items[1] != nil {
		t.Fatalf("MGet = %v, %v, %v", items, errs, err)
	}
	// The connection survived the refused frame.
	if n := fs.accepts.Load(); n != 1 {
		t.Fatalf("server accepted %d connections, want 1", n)
	}
}

func TestClose(t *testing.T) {
	fs := startServer(t, fakeOptions{})
	c := startClient(t, nil, fs.Addr())
	arrived, release := holdKey(fs, "slow")
	defer release()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Get(t.Context(), "slow")
		errc <- err
	}()
	<-arrived
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("pending Get = %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if _, err := c.Get(t.Context(), "k"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close = %v, want ErrClosed", err)
	}
	release()
	fs.Close()
	goleak.VerifyNone(t, leakOptions...)
}

func TestConcurrentClose(t *testing.T) {
	fs := startServer(t, fakeOptions{})
	c := startClient(t, nil, fs.Addr())
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				_, err := c.Put(t.Context(), fmt.Sprint(g, "/", i), []byte("v"))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Put = %v", err)
					return
				}
			}
		})
	}
	waitFor(t, "some traffic", func() bool { return fs.requests.Load() > 200 })
	for range 3 {
		wg.Go(func() { c.Close() })
	}
	wg.Wait()
}

// TestDo sends raw requests through the exported call path.
func TestDo(t *testing.T) {
	fs := startServer(t, fakeOptions{})
	c := startClient(t, nil, fs.Addr())
	ctx := t.Context()
	var resp netproto.PingBody
	if err := c.Do(ctx, netproto.OpPing, &netproto.PingBody{Payload: []byte("raw")}, &resp); err != nil {
		t.Fatal(err)
	}
	if string(resp.Payload) != "raw" {
		t.Fatalf("PING echoed %q, want raw", resp.Payload)
	}
	// The response is the caller's: later calls do not overwrite it.
	var resp2 netproto.PingBody
	if err := c.Do(ctx, netproto.OpPing, &netproto.PingBody{Payload: []byte("two")}, &resp2); err != nil || string(resp.Payload) != "raw" || string(resp2.Payload) != "two" {
		t.Fatalf("second PING: %q %q %v", resp.Payload, resp2.Payload, err)
	}
	// Error responses come back as *ServerError matching the sentinels.
	fs.setHook(func(op netproto.Opcode, key string) fakeAction {
		if op == netproto.OpPing {
			return fakeAction{code: netproto.CodeBusy}
		}
		return fakeAction{}
	})
	err := c.Do(ctx, netproto.OpPing, &netproto.PingBody{}, &resp)
	var se *ServerError
	if !errors.Is(err, ErrBusy) || !errors.As(err, &se) || se.Code != netproto.CodeBusy {
		t.Fatalf("Do with an injected error = %v, want a *ServerError matching ErrBusy", err)
	}
	if err := c.Do(ctx, netproto.OpPing, nil, &resp); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Do(nil request) = %v, want ErrInvalidArgument", err)
	}
}

// TestBatchArrayLimit: a batch over the protocol's per-body array limit is
// refused before anything is sent (the server would answer malformed).
func TestBatchArrayLimit(t *testing.T) {
	fs := startServer(t, fakeOptions{})
	c := startClient(t, nil, fs.Addr())
	keys := make([]string, netproto.MaxArrayLen+1)
	for i := range keys {
		keys[i] = "k"
	}
	if _, _, err := c.MGet(t.Context(), keys); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("MGet of %d keys: %v, want ErrInvalidArgument", len(keys), err)
	}
	entries := make([]Entry, netproto.MaxArrayLen+1)
	for i := range entries {
		entries[i] = Entry{Key: "k", Value: []byte("v")}
	}
	if _, _, err := c.MPut(t.Context(), entries); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("MPut of %d entries: %v, want ErrInvalidArgument", len(entries), err)
	}
	if _, _, err := c.MGet(t.Context(), keys[:3]); err != nil {
		t.Fatalf("small MGet after refused batches: %v", err)
	}
}
