package node

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecachedb/ecache/client"
	"github.com/ecachedb/ecache/storage"
)

// BenchmarkSDKThroughput: a node serving real TCP on loopback, driven by the
// Go SDK from the same process: conns connections with depth requests in
// flight on each (depth goroutines per connection sharing it). Reports
// operations per second. Both sides share the machine's 2 cores, so this is
// a first single-node figure, not a comparison (issue #7 measures against
// Redis with a load generator of its own).
func BenchmarkSDKThroughput(b *testing.B) {
	for _, p := range []storage.Persistence{storage.PersistenceNone, storage.PersistenceAsync} {
		for _, op := range []string{"get", "put"} {
			for _, depth := range []int{1, 16} {
				b.Run(fmt.Sprintf("%s/%s/conns=4/depth=%d", p, op, depth), func(b *testing.B) {
					benchSDK(b, p, op, 4, depth)
				})
			}
		}
	}
}

func benchSDK(b *testing.B, p storage.Persistence, op string, conns, depth int) {
	cfg := testConfig(b, p)
	cfg.Listen = "127.0.0.1:0"
	cfg.Storage.MemoryLimit = 256 << 20
	n := openNode(b, cfg)
	ccfg := client.DefaultConfig()
	ccfg.Addrs = []string{n.Addr()}
	ccfg.ConnsPerNode = conns
	c, err := client.New(context.Background(), ccfg)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const keys = 10000
	val := make([]byte, 100)
	ctx := context.Background()
	for i := range keys {
		if _, err := c.Put(ctx, fmt.Sprint("key:", i), val); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range conns * depth {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				key := fmt.Sprint("key:", i%keys)
				var err error
				if op == "get" {
					_, err = c.Get(ctx, key)
				} else {
					_, err = c.Put(ctx, key, val)
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}
