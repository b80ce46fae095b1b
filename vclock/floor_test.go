package vclock_test

import (
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/ecachedb/ecache/vclock"
)

// TestKV679WithoutFloor shows the bug the counter floor prevents: a node
// that forgot a key restarts its counter at 1 and issues a dot a replica
// has seen already, which then drops the new write as old news.
func TestKV679WithoutFloor(t *testing.T) {
	const a vclock.NodeID = 1
	var replica vclock.Object
	for range 3 {
		replica, _ = replica.Update(replica.Clock, a, vclock.Sibling{Value: []byte("old")})
	}
	// a forgot the key; without a floor its next dot is a:1 again.
	fresh, d := vclock.Object{}.Update(nil, a, vclock.Sibling{Value: []byte("new")})
	if d.Counter != 1 || !replica.Clock.Covers(d) {
		t.Fatalf("dot %v: the unfloored counter should restart at 1", d)
	}
	if got := vclock.Join(replica, fresh); string(got.Siblings[0].Value) != "old" {
		t.Fatalf("without a floor the replica keeps %q, the bug is gone?", got.Siblings[0].Value)
	}
	// With a floor beyond every counter a issued, the new write wins.
	floored, d := vclock.Object{}.WithCounterFloor(a, 1000).Update(nil, a, vclock.Sibling{Value: []byte("new")})
	if d.Counter != 1000 || replica.Clock.Covers(d) {
		t.Fatalf("floored dot %v", d)
	}
	if got := vclock.Join(replica, floored); len(got.Siblings) != 1 || string(got.Siblings[0].Value) != "new" {
		t.Fatalf("with a floor the replica holds %+v, want only new", got.Siblings)
	}
}

func TestWithCounterFloor(t *testing.T) {
	o := vclock.Object{Clock: vclock.VV{{Node: 1, Counter: 5}, {Node: 2, Counter: 9}}, Siblings: []vclock.Sibling{{Dot: vclock.Dot{Node: 2, Counter: 9}}}}
	for _, tc := range []struct {
		node  vclock.NodeID
		floor uint64
		want  vclock.VV
	}{
		{1, 0, o.Clock},
		{1, 6, o.Clock}, // next is 6 already
		{1, 3, o.Clock},
		{1, 8, vclock.VV{{Node: 1, Counter: 7}, {Node: 2, Counter: 9}}},
		{3, 1, o.Clock},
		{3, 4, vclock.VV{{Node: 1, Counter: 5}, {Node: 2, Counter: 9}, {Node: 3, Counter: 3}}},
	} {
		got := o.WithCounterFloor(tc.node, tc.floor)
		if !slices.Equal(got.Clock, tc.want) || len(got.Siblings) != 1 {
			t.Errorf("WithCounterFloor(%v, %d) = %v, want %v", tc.node, tc.floor, got.Clock, tc.want)
		}
		if err := got.Validate(); err != nil {
			t.Error(err)
		}
	}
	if o.Clock[0].Counter != 5 || len(o.Clock) != 2 {
		t.Fatalf("argument modified: %v", o.Clock)
	}
}

// TestPropCounterFloor simulates coordinators that forget the key (eviction,
// tombstone collection) and issue dots over a floor that only grows, as a
// node's HLC does. Every new dot is one no state anywhere has seen, dots
// are never reused, and after a full sync exactly the writes no later write
// superseded survive — a write after forgetting supersedes only what its
// resulting clock covers without holding, which is never another node's
// unseen write.
func TestPropCounterFloor(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, len(simNodes)).Draw(t, "nodes")
		replicas := make([]vclock.Object, n)
		floors := make([]uint64, n)
		states := []vclock.Object{{}}
		contexts := []vclock.VV{nil}
		var writes []vclock.Dot
		superseded := map[vclock.Dot]bool{}
		for range rapid.IntRange(0, 40).Draw(t, "steps") {
			switch rapid.IntRange(0, 3).Draw(t, "op") {
			case 0:
				r := rapid.IntRange(0, n-1).Draw(t, "read from")
				contexts = append(contexts, replicas[r].Clock.Clone())
			case 1:
				c := rapid.IntRange(0, n-1).Draw(t, "coordinator")
				ctx := rapid.SampledFrom(contexts).Draw(t, "context")
				floors[c] += rapid.Uint64Range(1, 3).Draw(t, "tick")
				old := replicas[c]
				next, d := old.WithCounterFloor(simNodes[c], floors[c]).Update(ctx, simNodes[c], drawSibling(t))
				if err := next.Validate(); err != nil {
					t.Fatalf("invalid result: %v", err)
				}
				if d.Counter < floors[c] {
					t.Fatalf("dot %v under the floor %d", d, floors[c])
				}
				if seen := joinAll(states); seen.Clock.Covers(d) {
					t.Fatalf("dot %v was seen already (clock %v)", d, seen.Clock)
				}
				// Siblings kept are exactly those ctx does not cover.
				for _, s := range old.Siblings {
					if slices.Contains(dotsOf(next), s.Dot) == ctx.Covers(s.Dot) {
						t.Fatalf("sibling %v kept=%v with ctx %v", s.Dot, !ctx.Covers(s.Dot), ctx)
					}
				}
				for _, w := range writes {
					if next.Clock.Covers(w) && !slices.Contains(dotsOf(next), w) {
						if w.Node != simNodes[c] && !ctx.Covers(w) && !old.Clock.Covers(w) {
							t.Fatalf("write %v of another node superseded unseen", w)
						}
						superseded[w] = true
					}
				}
				writes = append(writes, d)
				replicas[c] = next
				states = append(states, next)
			case 2:
				i := rapid.IntRange(0, n-1).Draw(t, "to")
				j := rapid.IntRange(0, n-1).Draw(t, "from")
				replicas[i] = vclock.Join(replicas[i], replicas[j])
				states = append(states, replicas[i])
			case 3: // replica i forgets the key
				replicas[rapid.IntRange(0, n-1).Draw(t, "forgets")] = vclock.Object{}
			}
		}
		seen := map[vclock.Dot]bool{}
		var want []vclock.Dot
		for _, w := range writes {
			if seen[w] {
				t.Fatalf("dot %v issued twice", w)
			}
			seen[w] = true
			if !superseded[w] {
				want = append(want, w)
			}
		}
		slices.SortFunc(want, func(a, b vclock.Dot) int {
			if a.Less(b) {
				return -1
			}
			return 1
		})
		if got := dotsOf(joinAll(states)); !slices.Equal(got, want) {
			t.Fatalf("siblings after full sync = %v, want the unsuperseded writes %v", got, want)
		}
	})
}

// BenchmarkUpdateWithFloor is a cluster write's clock work, the floor then
// Update, against Update alone, on a three-node clock.
func BenchmarkUpdateWithFloor(b *testing.B) {
	o := vclock.Object{Clock: vclock.VV{{Node: 1, Counter: 1 << 50}, {Node: 2, Counter: 7}, {Node: 3, Counter: 9}},
		Siblings: []vclock.Sibling{{Dot: vclock.Dot{Node: 1, Counter: 1 << 50}, Value: []byte("v")}}}
	s := vclock.Sibling{Value: []byte("w")}
	b.Run("floor", func(b *testing.B) {
		b.ReportAllocs()
		floor := uint64(1 << 51)
		for b.Loop() {
			floor++
			o.WithCounterFloor(1, floor).Update(o.Clock, 1, s)
		}
	})
	b.Run("nofloor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			o.Update(o.Clock, 1, s)
		}
	})
}
