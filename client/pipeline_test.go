package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestPipeline(t *testing.T) {
	fs := startServer(t, fakeOptions{})
	c := startClient(t, func(cfg *Config) { cfg.ConnsPerNode = 1 }, fs.Addr())
	ctx := t.Context()
	p := c.Pipeline()
	const n = 20
	for i := range n {
		p.Put(fmt.Sprint("k", i), []byte(fmt.Sprint("v", i)))
	}
	if p.Len() != n {
		t.Fatalf("Len = %d, want %d", p.Len(), n)
	}
	if err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(p.Results()); got != n {
		t.Fatalf("%d results, want %d", got, n)
	}
	for i, r := range p.Results() {
		if r.Err != nil || len(r.Context) == 0 {
			t.Fatalf("put %d: %+v", i, r)
		}
	}

	// Reuse: GETs of every key and one absent key, mixed with a PUT.
	p.Reset()
	for i := range n {
		p.Get(fmt.Sprint("k", i))
	}
	p.Get("absent")
	p.Put("k0", []byte("new"), WithTTL(time.Minute))
	p.Get("k0", WithNamespace(DefaultNamespace))
	if err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	res := p.Results()
	for i := range n {
		want := fmt.Sprint("v", i)
		if r := res[i]; r.Err != nil || len(r.Values) != 1 || string(r.Values[0]) != want || len(r.Context) == 0 {
			t.Errorf("get k%d = %+v, want %s", i, r, want)
		}
	}
	if r := res[n]; !errors.Is(r.Err, ErrNotFound) || len(r.Values) != 0 {
		t.Errorf("get absent = %+v, want ErrNotFound", r)
	}
	if r := res[n+1]; r.Err != nil {
		t.Errorf("put k0 = %+v", r)
	}
	// One connection answers in order, so the GET after the PUT sees it.
	if r := res[n+2]; r.Err != nil || string(r.Values[0]) != "new" || r.TTL <= 0 {
		t.Errorf("get k0 after put = %+v", r)
	}
	if got := c.pendingCalls(); got != 0 {
		t.Errorf("%d calls pending after Exec", got)
	}

	// An empty pipeline sends nothing.
	p.Reset()
	before := fs.requests.Load()
	if err := p.Exec(ctx); err != nil || len(p.Results()) != 0 {
		t.Fatalf("empty Exec = %v, %d results", err, len(p.Results()))
	}
	if fs.requests.Load() != before {
		t.Fatal("empty Exec sent requests")
	}
}

func TestPipelineInvalid(t *testing.T) {
	fs := startServer(t, fakeOptions{})
	c := startClient(t, func(cfg *Config) {
		cfg.ConnsPerNode = 1
		cfg.Limits.MaxKeySize = 16
	}, fs.Addr())
	before := fs.requests.Load()
	p := c.Pipeline()
	p.Get("ok")
	p.Get(strings.Repeat("k", 17))
	p.Put("k", []byte("v"), WithTTL(-time.Second))
	err := p.Exec(t.Context())
	if !errors.Is(err, ErrKeyTooLarge) || !strings.Contains(err.Error(), "request 1") {
		t.Fatalf("Exec = %v, want ErrKeyTooLarge naming request 1", err)
	}
	if fs.requests.Load() != before {
		t.Fatal("an invalid pipeline sent requests")
	}
	p.Reset()
	p.Put("k", []byte("v"), WithTTL(-time.Second))
	if err := p.Exec(t.Context()); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Exec = %v, want ErrInvalidArgument", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	p.Reset()
	p.Get("ok")
	if err := p.Exec(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Exec with a cancelled context = %v", err)
	}
}

// A request the server withholds fails with the context's error; the
// others in the same pipeline succeed, and the connection survives.
func TestPipelineDeadline(t *testing.T) {
	fs := startServer(t, fakeOptions{})
	c := startClient(t, func(cfg *Config) { cfg.ConnsPerNode = 1; cfg.RequestTimeout = 50 * time.Millisecond }, fs.Addr())
	if _, err := c.Put(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	_, release := holdKey(fs, "slow")
	defer release()
	p := c.Pipeline()
	p.Get("k")
	p.Get("slow")
	// context.Background has no deadline: Config.RequestTimeout applies.
	if err := p.Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	res := p.Results()
	if res[0].Err != nil || string(res[0].Values[0]) != "v" {
		t.Errorf("get k = %+v", res[0])
	}
	if !errors.Is(res[1].Err, context.DeadlineExceeded) {
		t.Errorf("get slow = %v, want context.DeadlineExceeded", res[1].Err)
	}
	if got := c.pendingCalls(); got != 0 {
		t.Errorf("%d calls pending after Exec", got)
	}
	release()
	p.Reset()
	p.Get("slow")
	if err := p.Exec(t.Context()); err != nil || !errors.Is(p.Results()[0].Err, ErrNotFound) {
		t.Fatalf("Exec after release = %v, %+v", err, p.Results())
	}
	if n := fs.accepts.Load(); n != 1 {
		t.Fatalf("server accepted %d connections, want 1", n)
	}
}

func TestPipelineConnLost(t *testing.T) {
	fs := startServer(t, fakeOptions{})
	c := startClient(t, func(cfg *Config) { cfg.ConnsPerNode = 1 }, fs.Addr())
	_, release := holdKey(fs, "slow")
	defer release()
	p := c.Pipeline()
	for range 4 {
		p.Get("slow")
	}
	errc := make(chan error, 1)
	go func() { errc <- p.Exec(t.Context()) }()
	waitFor(t, "calls in flight", func() bool { return c.pendingCalls() == 4 })
	fs.dropConns()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for i, r := range p.Results() {
		if !errors.Is(r.Err, ErrConnLost) {
			t.Errorf("result %d = %v, want ErrConnLost", i, r.Err)
		}
	}
	release()
	p.Reset()
	p.Put("k", []byte("v"))
	if err := p.Exec(t.Context()); err != nil || p.Results()[0].Err != nil {
		t.Fatalf("Exec after redial = %v, %+v", err, p.Results())
	}
}

// Many pipelines at once over few connections: every answer reaches its
// own pipeline.
func TestPipelinesConcurrent(t *testing.T) {
	fs := startServer(t, fakeOptions{})
	c := startClient(t, func(cfg *Config) { cfg.ConnsPerNode = 2 }, fs.Addr())
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			p := c.Pipeline()
			for round := range 20 {
				p.Reset()
				for i := range 16 {
					p.Put(fmt.Sprint("g", g, "k", i), []byte(fmt.Sprint(g, ".", round, ".", i)))
					p.Get(fmt.Sprint("g", g, "k", i))
				}
				if err := p.Exec(t.Context()); err != nil {
					errc <- err
					return
				}
				for i := range 16 {
					want := fmt.Sprint(g, ".", round, ".", i)
					if r := p.Results()[2*i+1]; r.Err != nil || string(r.Values[0]) != want {
						errc <- fmt.Errorf("g%d round %d key %d: %+v, want %s", g, round, i, r, want)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

// BenchmarkPipelineGet measures GETs sent 16 at a time through a Pipeline
// against the fake server over one connection (compare BenchmarkGet's
// depth=16, one goroutine per request in flight).
func BenchmarkPipelineGet(b *testing.B) {
	fs := startServer(b, fakeOptions{})
	c := startClient(b, func(cfg *Config) {
		cfg.ConnsPerNode = 1
		cfg.Logger = slog.New(slog.DiscardHandler)
	}, fs.Addr())
	ctx := b.Context()
	if _, err := c.Put(ctx, "bench", make([]byte, 64)); err != nil {
		b.Fatal(err)
	}
	const batch = 16
	p := c.Pipeline()
	var left atomic.Int64
	left.Store(int64(b.N))
	b.ReportAllocs()
	b.ResetTimer()
	for left.Add(-batch) > -batch {
		p.Reset()
		for range batch {
			p.Get("bench")
		}
		if err := p.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
