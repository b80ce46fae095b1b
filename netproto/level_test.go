package netproto

import "testing"

func TestResolveLevel(t *testing.T) {
	tests := []struct {
		v    uint32
		n    int
		want int
		ok   bool
	}{
		{0, 3, 0, true},
		{1, 3, 1, true},
		{3, 3, 3, true},
		{4, 3, 0, false},
		{LevelQuorum, 1, 1, true},
		{LevelQuorum, 2, 2, true},
		{LevelQuorum, 3, 2, true},
		{LevelQuorum, 4, 3, true},
		{LevelQuorum, 5, 3, true},
		{LevelAll, 1, 1, true},
		{LevelAll, 3, 3, true},
		{LevelAll, 5, 5, true},
		{LevelQuorum - 1, 5, 0, false},
	}
	for _, tt := range tests {
		got, ok := ResolveLevel(tt.v, tt.n)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ResolveLevel(%#x, %d) = %d, %v; want %d, %v", tt.v, tt.n, got, ok, tt.want, tt.ok)
		}
	}
}

// TestLevelsDecode: the reserved values survive every request that
// carries a w or an r.
func TestLevelsDecode(t *testing.T) {
	for _, v := range []uint32{LevelQuorum, LevelAll} {
		roundTrip(t, OpPut, 0, &PutRequest{Namespace: []byte("n"), Key: []byte("k"), W: v})
		roundTrip(t, OpDel, 0, &DelRequest{Namespace: []byte("n"), Key: []byte("k"), W: v})
		roundTrip(t, OpIncr, 0, &CounterRequest{Namespace: []byte("n"), Key: []byte("k"), Delta: 1, W: v})
		roundTrip(t, OpSAdd, 0, &SetRequest{Namespace: []byte("n"), Key: []byte("k"), W: v})
		roundTrip(t, OpExpire, 0, &ExpireRequest{Namespace: []byte("n"), Key: []byte("k"), W: v})
		roundTrip(t, OpMPut, 0, &MPutRequest{Namespace: []byte("n"), W: v})
		var g GetRequest
		if err := g.DecodeBody((&GetRequest{Key: []byte("k"), R: v}).AppendBody(nil)); err != nil || g.R != v {
			t.Fatalf("GET r %#x decoded as %#x, %v", v, g.R, err)
		}
	}
}

func TestClusterResponseEmpty(t *testing.T) {
	roundTrip(t, OpCluster, FlagResponse, &ClusterResponse{})
	var r ClusterResponse
	// A member array shorter than three fields is malformed.
	bad := []byte{0x93, 0x01, 0x01, 0x91, 0x92, 0x01, 0xa0}
	if err := r.DecodeBody(bad); err == nil {
		t.Fatalf("a two-field member decoded: %+v", r)
	}
}
