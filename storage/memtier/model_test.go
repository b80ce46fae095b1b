package memtier

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/cespare/xxhash/v2"
	"pgregory.net/rapid"
)

// TestModel checks the cache against a naive map. OnEvict tells the model
// which entries left, so the check is exact: a Get hits if and only if the
// model holds the key, and then returns the latest value Set for it; Bytes
// and Len match the model after every step.
func TestModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		shards := rapid.SampledFrom([]int{1, 2, 4}).Draw(t, "shards")
		perShard := rapid.Int64Range(EntryOverhead+1, 8*(EntryOverhead+40)).Draw(t, "perShard")
		model := map[string][]byte{}
		c, err := New(Config{Capacity: perShard * int64(shards), Shards: shards, OnEvict: func(k, v []byte) {
			if m, ok := model[string(k)]; !ok || !bytes.Equal(m, v) {
				t.Fatalf("OnEvict(%q, %q), model has %q, %v", k, v, m, ok)
			}
			delete(model, string(k))
		}})
		if err != nil {
			t.Fatal(err)
		}
		// Few keys of varied lengths, including one a prefix of another,
		// so that replacements, ghost hits and evictions all happen.
		keyGen := rapid.SampledFrom([]string{"", "a", "ab", "key-3", "key-4", "a-much-longer-key-5", "k6", "k7", "k8", "k9"})
		valGen := rapid.SliceOfN(rapid.Byte(), 0, 60)
		var lastVal uint64

		t.Repeat(map[string]func(*rapid.T){
			"Set": func(t *rapid.T) {
				k, v := keyGen.Draw(t, "key"), valGen.Draw(t, "val")
				// Make every value distinct so a stale one cannot pass
				// as current by coincidence.
				lastVal++
				v = fmt.Appendf(v, "#%d", lastVal)
				fits := entrySize([]byte(k), v) <= c.shardFor(xxhash.Sum64String(k)).capacity
				// Evictions the Set causes are reported before it
				// returns, so record the write first.
				if fits {
					model[k] = v
				} else {
					delete(model, k)
				}
				if got := c.Set([]byte(k), v); got != fits {
					t.Fatalf("Set(%q, %d bytes) = %v, want %v", k, len(v), got, fits)
				}
			},
			"Get": func(t *rapid.T) {
				k := keyGen.Draw(t, "key")
				got, ok := c.Get([]byte(k))
				want, wantOK := model[k]
				if ok != wantOK || !bytes.Equal(got, want) {
					t.Fatalf("Get(%q) = %q, %v; model %q, %v", k, got, ok, want, wantOK)
				}
			},
			"Delete": func(t *rapid.T) {
				k := keyGen.Draw(t, "key")
				_, want := model[k]
				delete(model, k)
				if got := c.Delete([]byte(k)); got != want {
					t.Fatalf("Delete(%q) = %v, want %v", k, got, want)
				}
			},
			"Range": func(t *rapid.T) {
				got := map[string][]byte{}
				c.Range(func(k, v []byte) bool {
					if _, dup := got[string(k)]; dup {
						t.Fatalf("Range visited %q twice", k)
					}
					got[string(k)] = v
					return true
				})
				if !maps.EqualFunc(got, model, bytes.Equal) {
					t.Fatalf("Range = %v, model %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(model)))
				}
			},
			"Clear": func(t *rapid.T) {
				if rapid.IntRange(0, 9).Draw(t, "clear") == 0 { // keep it rare
					c.Clear()
					clear(model)
				}
			},
			"": func(t *rapid.T) {
				var sum int64
				for k, v := range model {
					sum += entrySize([]byte(k), v)
				}
				if c.Bytes() != sum || c.Len() != len(model) {
					t.Fatalf("Bytes %d Len %d; model bytes %d len %d", c.Bytes(), c.Len(), sum, len(model))
				}
				if c.Bytes() > c.Capacity() {
					t.Fatalf("Bytes %d > Capacity %d", c.Bytes(), c.Capacity())
				}
				checkInvariants(t, c)
			},
		})
	})
}
