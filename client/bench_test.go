package client

import (
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkGet measures a GET round trip against the fake server over one
// connection, with depth requests in flight at once.
func BenchmarkGet(b *testing.B) {
	for _, depth := range []int{1, 16} {
		b.Run("depth="+strconv.Itoa(depth), func(b *testing.B) {
			fs := startServer(b, fakeOptions{})
			c := startClient(b, func(cfg *Config) {
				cfg.ConnsPerNode = 1
				cfg.Logger = slog.New(slog.DiscardHandler)
			}, fs.Addr())
			ctx := b.Context()
			if _, err := c.Put(ctx, "bench", make([]byte, 64)); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			var left atomic.Int64
			left.Store(int64(b.N))
			var wg sync.WaitGroup
			for range depth {
				wg.Go(func() {
					for left.Add(-1) >= 0 {
						if _, err := c.Get(ctx, "bench"); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}
