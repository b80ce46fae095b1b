package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ecachedb/ecache/client"
	"github.com/ecachedb/ecache/storage"
)

// TestRecordFitsAFrame: siblings cannot grow an object past what one frame
// carries. Blind writes to a siblings namespace pile up until the next one
// is refused as too large; the object is still read whole (and so could be
// fetched or replicated whole).
func TestRecordFitsAFrame(t *testing.T) {
	for _, p := range []storage.Persistence{storage.PersistenceNone, storage.PersistenceSync} {
		t.Run(p.String(), func(t *testing.T) {
			cfg := testConfig(t, p)
			cfg.Listen = "127.0.0.1:0"
			cfg.Limits.MaxFrameSize = 64 << 10
			cfg.Limits.MaxValueSize = 16 << 10
			if got, limit := cfg.storageConfig().MaxRecordSize, 64<<10; got >= limit {
				t.Fatalf("MaxRecordSize %d, want below the %d-byte frame", got, limit)
			}
			n := openNode(t, cfg)
			ccfg := client.DefaultConfig()
			ccfg.Addrs = []string{n.Addr()}
			ccfg.Limits = cfg.Limits
			c, err := client.New(t.Context(), ccfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			value := bytes.Repeat([]byte("v"), 15<<10)
			written := 0
			for i := range 10 {
				value[0] = byte('a' + i)
				_, err = c.Put(ctx, "k", value, client.WithNamespace("sib"))
				if err != nil {
					break
				}
				written++
			}
			if !errors.Is(err, client.ErrValueTooLarge) {
				t.Fatalf("after %d siblings: %v, want value too large", written, err)
			}
			if written < 2 {
				t.Fatalf("only %d siblings fit: the limit is too tight", written)
			}
			it, err := c.Get(ctx, "k", client.WithNamespace("sib"))
			if err != nil || len(it.Values) != written {
				t.Fatalf("GET: %d values, %v; want %d siblings", len(it.Values), err, written)
			}
			for i, v := range it.Values {
				if len(v) != len(value) {
					t.Fatalf("sibling %d: %s bytes", i, fmt.Sprint(len(v)))
				}
			}
		})
	}
}
