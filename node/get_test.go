package node

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/ecachedb/ecache/merge"
	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/storage"
	"github.com/ecachedb/ecache/vclock"
)

// TestGetViewMatchesRead: the GET handler, which serves one-sibling records
// without decoding them (getView), answers exactly what the strategy's Read
// of the decoded object gives (Node.Get): values, status, context and TTL,
// for lww and siblings namespaces, with concurrent siblings, deletions and
// expiries, from memory and from disk.
func TestGetViewMatchesRead(t *testing.T) {
	for _, p := range []storage.Persistence{storage.PersistenceNone, storage.PersistenceSync} {
		t.Run(p.String(), func(t *testing.T) {
			cfg := testConfig(t, p)
			n := openNode(t, cfg)
			s := &netproto.Session{}
			var keys [][2]string
			for _, ns := range []string{"default", "sib"} {
				for i := range 8 {
					key := fmt.Sprint("k", i)
					keys = append(keys, [2]string{ns, key})
					if i%2 == 1 {
						// Two writes without a context: siblings in "sib".
						if _, _, err := n.Apply(b(ns), b(key), merge.Op{Kind: merge.OpPut, Value: b("first")}); err != nil {
							t.Fatal(err)
						}
					}
					op := merge.Op{Kind: merge.OpPut, Value: b(fmt.Sprint("v", i))}
					if i%4 >= 2 {
						op.Expiry = time.Now().Add(time.Hour).UnixNano()
					}
					if _, _, err := n.Apply(b(ns), b(key), op); err != nil {
						t.Fatal(err)
					}
					if i == 6 {
						it, err := n.Get(b(ns), b(key))
						if err != nil {
							t.Fatal(err)
						}
						if _, _, err := n.Apply(b(ns), b(key), merge.Op{Kind: merge.OpDelete, Context: mustContext(t, it.Context)}); err != nil {
							t.Fatal(err)
						}
					}
				}
				keys = append(keys, [2]string{ns, "absent"})
			}
			check := func(where string) {
				for _, k := range keys {
					want, err := n.Get(b(k[0]), b(k[1]))
					if err != nil {
						t.Fatal(err)
					}
					var gr netproto.GetResponse
					if _, e := serveFrame(t, n, s, netproto.OpGet, &netproto.GetRequest{Namespace: b(k[0]), Key: b(k[1])}, &gr); e != nil {
						t.Fatalf("%s %v: %+v", where, k, e)
					}
					var wantResp netproto.GetResponse
					fillGet(&wantResp, want, false)
					if gr.Status != wantResp.Status || !bytes.Equal(gr.Context, wantResp.Context) ||
						len(gr.Values) != len(wantResp.Values) || (gr.TTL > 0) != (wantResp.TTL > 0) {
						t.Fatalf("%s %v: GET %+v, Read gives %+v", where, k, gr, wantResp)
					}
					for i := range gr.Values {
						if !bytes.Equal(gr.Values[i], wantResp.Values[i]) {
							t.Fatalf("%s %v: values %q, want %q", where, k, gr.Values, wantResp.Values)
						}
					}
					// NoValues: same answer without the values.
					if _, e := serveFrame(t, n, s, netproto.OpGet, &netproto.GetRequest{Namespace: b(k[0]), Key: b(k[1]), Flags: netproto.GetFlagNoValues}, &gr); e != nil || len(gr.Values) != 0 || gr.Status != wantResp.Status {
						t.Fatalf("%s %v: GET without values %+v %+v", where, k, gr, e)
					}
				}
			}
			check("memory")
			if p != storage.PersistenceNone {
				// Reopened, the memory tier is empty: every GET reads Pebble.
				n.Close(t.Context())
				n = openNode(t, cfg)
				check("disk")
			}
		})
	}
}

func mustContext(t *testing.T, cc []byte) vclock.VV {
	t.Helper()
	v, err := vclock.DecodeContext(cc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// BenchmarkServeGet: a GET of a 100-byte lww value answered by the handler
// on the event-loop path (ServeFast) from the memory tier, response
// encoded into a reused buffer. Goal: 0 allocations.
func BenchmarkServeGet(b *testing.B) {
	for _, p := range []storage.Persistence{storage.PersistenceNone, storage.PersistenceAsync} {
		b.Run(p.String(), func(b *testing.B) {
			n := openNode(b, testConfig(b, p))
			const keys = 1000
			frames := make([]netproto.Frame, keys)
			for i := range keys {
				key := []byte(fmt.Sprint("key:", i))
				if _, _, err := n.Apply([]byte("default"), key, merge.Op{Kind: merge.OpPut, Value: make([]byte, 100)}); err != nil {
					b.Fatal(err)
				}
				raw := netproto.AppendRequest(nil, netproto.OpGet, 1, &netproto.GetRequest{Namespace: []byte("default"), Key: key})
				f, _, err := netproto.NewDecoder(netproto.DefaultLimits()).Next(raw)
				if err != nil {
					b.Fatal(err)
				}
				frames[i] = f
			}
			s := &netproto.Session{}
			out := make([]byte, 0, 4096)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				var ok bool
				out, ok = n.ServeFast(s, frames[i%keys], out[:0])
				if !ok || len(out) < 100 {
					b.Fatal("not served on the fast path")
				}
			}
		})
	}
}
