package vclock_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/ecachedb/ecache/vclock"
)

// vv builds a version vector from node, counter pairs, in the order given and
// without validating it, so tests can also build broken vectors.
func vv(pairs ...uint64) vclock.VV {
	if len(pairs)%2 != 0 {
		panic("vv: odd number of arguments")
	}
	if len(pairs) == 0 {
		return nil
	}
	v := make(vclock.VV, 0, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		v = append(v, vclock.Entry{Node: vclock.NodeID(pairs[i]), Counter: pairs[i+1]})
	}
	return v
}

func dot(node, counter uint64) vclock.Dot {
	return vclock.Dot{Node: vclock.NodeID(node), Counter: counter}
}

func TestVVGet(t *testing.T) {
	v := vv(2, 5, 4, 1, 9, 7)
	tests := []struct {
		name string
		v    vclock.VV
		node vclock.NodeID
		want uint64
	}{
		{"nil vector", nil, 2, 0},
		{"first", v, 2, 5},
		{"middle", v, 4, 1},
		{"last", v, 9, 7},
		{"absent below all", v, 1, 0},
		{"absent between", v, 3, 0},
		{"absent above all", v, 10, 0},
		{"zero node", v, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.v.Get(tt.node); got != tt.want {
				t.Errorf("%v.Get(%d) = %d, want %d", tt.v, tt.node, got, tt.want)
			}
		})
	}
}

func TestVVCovers(t *testing.T) {
	v := vv(2, 5, 4, 1)
	tests := []struct {
		name string
		v    vclock.VV
		d    vclock.Dot
		want bool
	}{
		{"below counter", v, dot(2, 3), true},
		{"at counter", v, dot(2, 5), true},
		{"above counter", v, dot(2, 6), false},
		{"absent node", v, dot(3, 1), false},
		{"zero counter never covered", v, dot(2, 0), false},
		{"zero counter of absent node", v, dot(3, 0), false},
		{"nil vector", nil, dot(2, 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.v.Covers(tt.d); got != tt.want {
				t.Errorf("%v.Covers(%v) = %v, want %v", tt.v, tt.d, got, tt.want)
			}
		})
	}
}

func TestVVCompare(t *testing.T) {
	tests := []struct {
		name string
		a, b vclock.VV
		want vclock.Ordering
	}{
		{"both nil", nil, nil, vclock.Equal},
		{"nil and empty", nil, vclock.VV{}, vclock.Equal},
		{"same entries", vv(1, 3, 2, 4), vv(1, 3, 2, 4), vclock.Equal},
		{"nil before anything", nil, vv(1, 1), vclock.Before},
		{"anything after nil", vv(1, 1), nil, vclock.After},
		{"smaller counter", vv(1, 2, 2, 4), vv(1, 3, 2, 4), vclock.Before},
		{"missing node", vv(1, 3), vv(1, 3, 2, 4), vclock.Before},
		{"missing first node", vv(2, 4), vv(1, 3, 2, 4), vclock.Before},
		{"larger counter", vv(1, 3, 2, 5), vv(1, 3, 2, 4), vclock.After},
		{"extra last node", vv(1, 3, 2, 4, 7, 1), vv(1, 3, 2, 4), vclock.After},
		{"counters cross", vv(1, 3, 2, 4), vv(1, 4, 2, 3), vclock.Concurrent},
		{"disjoint nodes", vv(1, 1), vv(2, 1), vclock.Concurrent},
		{"extra node each", vv(1, 1, 3, 1), vv(1, 1, 2, 1), vclock.Concurrent},
		{"ahead on one, missing other", vv(1, 5), vv(1, 4, 2, 1), vclock.Concurrent},
	}
	reverse := map[vclock.Ordering]vclock.Ordering{
		vclock.Equal:      vclock.Equal,
		vclock.Before:     vclock.After,
		vclock.After:      vclock.Before,
		vclock.Concurrent: vclock.Concurrent,
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Compare(tt.b); got != tt.want {
				t.Errorf("%v.Compare(%v) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
			if got, want := tt.b.Compare(tt.a), reverse[tt.want]; got != want {
				t.Errorf("%v.Compare(%v) = %v, want %v", tt.b, tt.a, got, want)
			}
			wantDescends := tt.want == vclock.Equal || tt.want == vclock.After
			if got := tt.a.Descends(tt.b); got != wantDescends {
				t.Errorf("%v.Descends(%v) = %v, want %v", tt.a, tt.b, got, wantDescends)
			}
		})
	}
}

func TestVVDescends(t *testing.T) {
	tests := []struct {
		name string
		a, b vclock.VV
		want bool
	}{
		{"nil descends nil", nil, nil, true},
		{"anything descends nil", vv(1, 1), nil, true},
		{"nil does not descend something", nil, vv(1, 1), false},
		{"equal", vv(1, 2), vv(1, 2), true},
		{"strictly greater", vv(1, 2, 3, 1), vv(1, 2), true},
		{"strictly smaller", vv(1, 1), vv(1, 2), false},
		{"concurrent", vv(1, 2), vv(2, 2), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Descends(tt.b); got != tt.want {
				t.Errorf("%v.Descends(%v) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

func TestVVJoin(t *testing.T) {
	tests := []struct {
		name string
		a, b vclock.VV
		want vclock.VV
	}{
		{"both nil", nil, nil, nil},
		{"nil left", nil, vv(1, 2), vv(1, 2)},
		{"nil right", vv(1, 2), nil, vv(1, 2)},
		{"same", vv(1, 2, 3, 4), vv(1, 2, 3, 4), vv(1, 2, 3, 4)},
		{"pointwise max", vv(1, 5, 3, 1), vv(1, 2, 3, 4), vv(1, 5, 3, 4)},
		{"disjoint interleaved", vv(1, 1, 5, 5), vv(2, 2, 9, 9), vv(1, 1, 2, 2, 5, 5, 9, 9)},
		{"prefix and suffix", vv(1, 1, 2, 2), vv(2, 3, 3, 3), vv(1, 1, 2, 3, 3, 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := tt.a.Clone(), tt.b.Clone()
			got := tt.a.Join(tt.b)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("%v.Join(%v) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("join result %v invalid: %v", got, err)
			}
			// The result must not alias either argument.
			for i := range got {
				got[i].Counter += 100
			}
			if !slices.Equal(a, tt.a) || !slices.Equal(b, tt.b) {
				t.Errorf("writing to the join result changed its arguments: %v %v, were %v %v", tt.a, tt.b, a, b)
			}
		})
	}
}

func TestVVWith(t *testing.T) {
	tests := []struct {
		name string
		v    vclock.VV
		d    vclock.Dot
		want vclock.VV
	}{
		{"into nil", nil, dot(3, 1), vv(3, 1)},
		{"zero counter into nil", nil, dot(3, 0), vclock.VV{}},
		{"at front", vv(5, 1, 7, 1), dot(2, 4), vv(2, 4, 5, 1, 7, 1)},
		{"in middle", vv(5, 1, 7, 1), dot(6, 4), vv(5, 1, 6, 4, 7, 1)},
		{"at end", vv(5, 1, 7, 1), dot(8, 4), vv(5, 1, 7, 1, 8, 4)},
		{"raises existing", vv(5, 1, 7, 1), dot(7, 4), vv(5, 1, 7, 4)},
		{"never lowers existing", vv(5, 3, 7, 1), dot(5, 2), vv(5, 3, 7, 1)},
		{"zero counter adds no entry", vv(5, 1, 7, 1), dot(6, 0), vv(5, 1, 7, 1)},
		{"zero counter at end adds no entry", vv(5, 1), dot(6, 0), vv(5, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.v.Clone()
			got := tt.v.With(tt.d)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("%v.With(%v) = %v, want %v", tt.v, tt.d, got, tt.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("result %v invalid: %v", got, err)
			}
			if !slices.Equal(tt.v, before) {
				t.Errorf("With modified its receiver: %v, was %v", tt.v, before)
			}
		})
	}
}

func TestVVClone(t *testing.T) {
	if c := vclock.VV(nil).Clone(); c != nil {
		t.Errorf("nil.Clone() = %#v, want nil", c)
	}
	v := vv(1, 1, 2, 2)
	c := v.Clone()
	c[0].Counter = 9
	if v[0].Counter != 1 {
		t.Errorf("Clone shares memory with the original")
	}
}

func TestVVValidate(t *testing.T) {
	tests := []struct {
		name    string
		v       vclock.VV
		wantErr bool
	}{
		{"nil", nil, false},
		{"empty", vclock.VV{}, false},
		{"one entry", vv(1, 1), false},
		{"sorted", vv(1, 1, 2, 9, 1<<63, 1<<64-1), false},
		{"zero node", vv(0, 1), true},
		{"zero counter", vv(1, 0), true},
		{"zero counter later", vv(1, 1, 2, 0), true},
		{"unsorted", vv(2, 1, 1, 1), true},
		{"duplicate node", vv(1, 1, 1, 2), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.v.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("%v.Validate() = %v, want error %v", tt.v, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, vclock.ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
}

func TestVVString(t *testing.T) {
	tests := []struct {
		v    vclock.VV
		want string
	}{
		{nil, "{}"},
		{vv(1, 3), "{0000000000000001:3}"},
		{vv(0xab, 1, 1<<64-1, 18446744073709551615), "{00000000000000ab:1,ffffffffffffffff:18446744073709551615}"},
	}
	for _, tt := range tests {
		if got := tt.v.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestOrderingString(t *testing.T) {
	tests := []struct {
		o    vclock.Ordering
		want string
	}{
		{vclock.Equal, "equal"},
		{vclock.Before, "before"},
		{vclock.After, "after"},
		{vclock.Concurrent, "concurrent"},
		{vclock.Ordering(9), "Ordering(9)"},
	}
	for _, tt := range tests {
		if got := tt.o.String(); got != tt.want {
			t.Errorf("Ordering(%d).String() = %q, want %q", tt.o, got, tt.want)
		}
	}
}

func TestNodeIDString(t *testing.T) {
	tests := []struct {
		id   vclock.NodeID
		want string
	}{
		{1, "0000000000000001"},
		{0xdeadbeef, "00000000deadbeef"},
		{1 << 63, "8000000000000000"},
		{1<<64 - 1, "ffffffffffffffff"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			s := tt.id.String()
			if s != tt.want {
				t.Fatalf("NodeID(%#x).String() = %q, want %q", uint64(tt.id), s, tt.want)
			}
			got, err := vclock.ParseNodeID(s)
			if err != nil || got != tt.id {
				t.Errorf("ParseNodeID(%q) = %v, %v; want %v", s, got, err, tt.id)
			}
		})
	}
}

func TestNodeIDRoundTripRandom(t *testing.T) {
	seen := make(map[vclock.NodeID]bool)
	for range 1000 {
		id := vclock.NewNodeID()
		if id == 0 {
			t.Fatal("NewNodeID returned zero")
		}
		seen[id] = true
		s := id.String()
		if len(s) != 16 {
			t.Fatalf("%#x.String() = %q, want 16 digits", uint64(id), s)
		}
		got, err := vclock.ParseNodeID(s)
		if err != nil || got != id {
			t.Fatalf("ParseNodeID(%q) = %v, %v; want %v", s, got, err, id)
		}
	}
	if len(seen) < 1000 {
		t.Errorf("1000 random node ids hold only %d distinct values", len(seen))
	}
}

func TestParseNodeIDRejects(t *testing.T) {
	for _, s := range []string{
		"",
		"0",
		"0000000000000000",
		"g000000000000001",
		"-000000000000001",
		"+000000000000001",
		"0x00000000000001",
		" 000000000000001",
		"000000000000001 ",
		"10000000000000000", // 2^64 overflows
		"0000000000000001:1",
	} {
		t.Run(s, func(t *testing.T) {
			id, err := vclock.ParseNodeID(s)
			if err == nil {
				t.Fatalf("ParseNodeID(%q) = %v, want error", s, id)
			}
			if !errors.Is(err, vclock.ErrMalformed) {
				t.Errorf("ParseNodeID(%q) error %v does not wrap ErrMalformed", s, err)
			}
			if id != 0 {
				t.Errorf("ParseNodeID(%q) returned %v with its error, want 0", s, id)
			}
		})
	}
}

func TestDot(t *testing.T) {
	tests := []struct {
		a, b vclock.Dot
		less bool
	}{
		{dot(1, 5), dot(2, 1), true},
		{dot(2, 1), dot(1, 5), false},
		{dot(1, 1), dot(1, 2), true},
		{dot(1, 2), dot(1, 1), false},
		{dot(1, 1), dot(1, 1), false},
	}
	for _, tt := range tests {
		if got := tt.a.Less(tt.b); got != tt.less {
			t.Errorf("%v.Less(%v) = %v, want %v", tt.a, tt.b, got, tt.less)
		}
	}
	if got, want := dot(0x1f, 42).String(), "000000000000001f:42"; got != want {
		t.Errorf("Dot.String() = %q, want %q", got, want)
	}
}
