package ring_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/ecachedb/ecache/gossip/ring"
	"github.com/ecachedb/ecache/vclock"
)

// naive is the model: every node sorted by decreasing weight, ties by ID.
func naive(p uint32, nodes []vclock.NodeID, n int) []vclock.NodeID {
	ns := slices.Clone(nodes)
	slices.Sort(ns)
	ns = slices.Compact(ns)
	slices.SortFunc(ns, func(a, b vclock.NodeID) int {
		wa, wb := ring.Weight(p, a), ring.Weight(p, b)
		switch {
		case wa > wb:
			return -1
		case wa < wb:
			return 1
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	})
	return ns[:min(n, len(ns))]
}

func without(s []vclock.NodeID, x vclock.NodeID) []vclock.NodeID {
	return slices.DeleteFunc(slices.Clone(s), func(v vclock.NodeID) bool { return v == x })
}

// genNodes draws a set of distinct non-zero node IDs. Small IDs collide
// often, which exercises duplicate handling.
func genNodes(t *rapid.T, label string, minLen, maxLen int) []vclock.NodeID {
	ids := rapid.SliceOfNDistinct(rapid.OneOf(rapid.Uint64Range(1, 40), rapid.Uint64Min(1)), minLen, maxLen, rapid.ID[uint64]).Draw(t, label)
	out := make([]vclock.NodeID, len(ids))
	for i, v := range ids {
		out[i] = vclock.NodeID(v)
	}
	return out
}

type params struct {
	partitions, replicas, n int
}

func genParams(t *rapid.T) params {
	return params{
		partitions: rapid.IntRange(1, 64).Draw(t, "partitions"),
		replicas:   rapid.IntRange(1, 5).Draw(t, "replicas"),
		n:          rapid.IntRange(1, 8).Draw(t, "n"),
	}
}

func TestPreferenceMatchesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		pr := genParams(t)
		nodes := genNodes(t, "nodes", 0, 12)
		r := ring.MustNew(pr.partitions, pr.replicas, nodes)
		for p := range uint32(pr.partitions) {
			got := r.Preference(p, pr.n)
			want := naive(p, nodes, pr.n)
			if len(want) == 0 {
				want = nil
			}
			if !slices.Equal(got, want) {
				t.Fatalf("partition %d: Preference=%v, model=%v", p, got, want)
			}
			if len(got) != min(pr.n, len(nodes)) {
				t.Fatalf("partition %d: %d nodes, want %d", p, len(got), min(pr.n, len(nodes)))
			}
			if c := slices.Compact(slices.Sorted(slices.Values(got))); len(c) != len(got) {
				t.Fatalf("partition %d: duplicate nodes in %v", p, got)
			}
			owners := r.Owners(p)
			if want := naive(p, nodes, pr.replicas); !slices.Equal(owners, want) {
				t.Fatalf("partition %d: Owners=%v, model=%v", p, owners, want)
			}
		}
		if r.Preference(uint32(pr.partitions), 1) != nil || r.Owners(uint32(pr.partitions)) != nil {
			t.Fatalf("out-of-range partition has owners")
		}
	})
}

func TestDeterministic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		pr := genParams(t)
		nodes := genNodes(t, "nodes", 0, 12)
		// Same set, another order, with duplicates and zeros mixed in.
		other := rapid.Permutation(append(slices.Clone(nodes), 0)).Draw(t, "perm")
		if len(nodes) > 0 {
			other = append(other, nodes[rapid.IntRange(0, len(nodes)-1).Draw(t, "dup")])
		}
		a := ring.MustNew(pr.partitions, pr.replicas, nodes)
		b := ring.MustNew(pr.partitions, pr.replicas, other)
		if !a.Equal(b) {
			t.Fatalf("rings differ: %v vs %v", a.Nodes(), b.Nodes())
		}
		for p := range uint32(pr.partitions) {
			if !slices.Equal(a.Owners(p), b.Owners(p)) || !slices.Equal(a.Preference(p, pr.n), b.Preference(p, pr.n)) {
				t.Fatalf("partition %d: %v vs %v", p, a.Owners(p), b.Owners(p))
			}
		}
	})
}

// TestAddNodeMinimalMovement checks the exact property of rendezvous
// hashing on a join of x: removing x from the new list gives the old list
// cut to the new list's length minus one if x entered it (the old last
// entry is pushed out), else the old list unchanged. So x is the only node
// that can enter a list, at most one node leaves it, and every other node
// keeps its relative order.
func TestAddNodeMinimalMovement(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		pr := genParams(t)
		all := genNodes(t, "nodes", 1, 13)
		x, nodes := all[0], all[1:]
		before := ring.MustNew(pr.partitions, pr.replicas, nodes)
		after := ring.MustNew(pr.partitions, pr.replicas, append(slices.Clone(nodes), x))
		for p := range uint32(pr.partitions) {
			old, cur := before.Preference(p, pr.n), after.Preference(p, pr.n)
			keep := len(cur)
			if slices.Contains(cur, x) {
				keep--
			} else if !slices.Equal(old, cur) {
				t.Fatalf("partition %d: list changed without %v entering: %v -> %v", p, x, old, cur)
			}
			if got := without(cur, x); !slices.Equal(got, old[:keep]) {
				t.Fatalf("partition %d: adding %v: %v -> %v", p, x, old, cur)
			}
			if left := len(old) - keep; left > 1 {
				t.Fatalf("partition %d: %d nodes left the list", p, left)
			}
		}
	})
}

// TestRemoveNodeMinimalMovement checks the converse for a leave of y: the
// old list without y is a prefix of the new list, and the new list has at
// most one more node, one that was not in the old list.
func TestRemoveNodeMinimalMovement(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		pr := genParams(t)
		nodes := genNodes(t, "nodes", 1, 13)
		y := nodes[rapid.IntRange(0, len(nodes)-1).Draw(t, "y")]
		before := ring.MustNew(pr.partitions, pr.replicas, nodes)
		after := ring.MustNew(pr.partitions, pr.replicas, without(nodes, y))
		for p := range uint32(pr.partitions) {
			old, cur := before.Preference(p, pr.n), after.Preference(p, pr.n)
			rest := without(old, y)
			if len(cur) < len(rest) || !slices.Equal(cur[:len(rest)], rest) {
				t.Fatalf("partition %d: removing %v: %v -> %v", p, y, old, cur)
			}
			extra := cur[len(rest):]
			if len(extra) > 1 || (len(extra) == 1 && (slices.Contains(old, extra[0]) || !slices.Contains(old, y))) {
				t.Fatalf("partition %d: removing %v: %v -> %v", p, y, old, cur)
			}
		}
	})
}

func TestPartitionsOf(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		pr := genParams(t)
		nodes := genNodes(t, "nodes", 0, 10)
		r := ring.MustNew(pr.partitions, pr.replicas, nodes)
		total := 0
		for _, n := range nodes {
			ps := r.PartitionsOf(n)
			total += len(ps)
			if !slices.IsSorted(ps) {
				t.Fatalf("PartitionsOf(%v) unsorted: %v", n, ps)
			}
			for _, p := range ps {
				if !r.IsOwner(p, n) {
					t.Fatalf("PartitionsOf(%v) has %d, not owned", n, p)
				}
			}
		}
		if want := pr.partitions * min(pr.replicas, len(nodes)); total != want {
			t.Fatalf("partitions owned in all: %d, want %d", total, want)
		}
		if len(r.PartitionsOf(0)) != 0 {
			t.Fatalf("node 0 owns partitions")
		}
	})
}

// TestBalance is a statistical check on fixed seeds: with 1024 partitions
// and 3 replicas, every node's share (as primary and as replica) stays
// within five binomial standard deviations of the mean (for 10 nodes:
// primary of 102 +- 48 partitions), so it fails only on a broken hash.
func TestBalance(t *testing.T) {
	const partitions, replicas = 1024, 3
	for _, size := range []int{3, 5, 10, 20} {
		for seed := range uint64(5) {
			rng := rand.New(rand.NewPCG(seed, uint64(size)))
			nodes := make([]vclock.NodeID, size)
			for i := range nodes {
				nodes[i] = vclock.NodeID(rng.Uint64() | 1)
			}
			r := ring.MustNew(partitions, replicas, nodes)
			primaries := map[vclock.NodeID]int{}
			for p := range uint32(partitions) {
				primaries[r.Primary(p)]++
			}
			pPrimary := 1 / float64(size)
			pOwned := float64(min(replicas, size)) / float64(size)
			meanPrimary, sdPrimary := partitions*pPrimary, math.Sqrt(partitions*pPrimary*(1-pPrimary))
			meanOwned, sdOwned := partitions*pOwned, math.Sqrt(partitions*pOwned*(1-pOwned))
			for _, n := range nodes {
				pc, oc := float64(primaries[n]), float64(len(r.PartitionsOf(n)))
				if math.Abs(pc-meanPrimary) > 5*sdPrimary {
					t.Errorf("size %d seed %d: node %v is primary of %v partitions, mean %.1f", size, seed, n, pc, meanPrimary)
				}
				if math.Abs(oc-meanOwned) > 5*sdOwned+0.5 {
					t.Errorf("size %d seed %d: node %v owns %v partitions, mean %.1f", size, seed, n, oc, meanOwned)
				}
			}
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, c := range []struct{ partitions, replicas int }{{0, 3}, {ring.MaxPartitions + 1, 3}, {1024, 0}} {
		if _, err := ring.New(c.partitions, c.replicas, nil); err == nil {
			t.Errorf("New(%d, %d) succeeded", c.partitions, c.replicas)
		}
	}
	r := ring.MustNew(16, 3, nil)
	if r.Owners(0) == nil || len(r.Owners(0)) != 0 || r.Primary(0) != 0 || r.Preference(0, 3) != nil {
		t.Fatalf("empty ring has owners")
	}
}

func BenchmarkNew(b *testing.B) {
	nodes := make([]vclock.NodeID, 20)
	for i := range nodes {
		nodes[i] = vclock.NewNodeID()
	}
	b.ReportAllocs()
	for b.Loop() {
		ring.MustNew(1024, 3, nodes)
	}
}

func BenchmarkOwners(b *testing.B) {
	nodes := make([]vclock.NodeID, 20)
	for i := range nodes {
		nodes[i] = vclock.NewNodeID()
	}
	r := ring.MustNew(1024, 3, nodes)
	b.ReportAllocs()
	var p uint32
	for b.Loop() {
		_ = r.Owners(p % 1024)
		p++
	}
}
