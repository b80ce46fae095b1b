package vclock_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/ecachedb/ecache/vclock"
)

// sib returns a live sibling with dot (node, counter) whose value names it.
func sib(node, counter uint64) vclock.Sibling {
	d := dot(node, counter)
	return vclock.Sibling{Dot: d, HLC: vclock.Timestamp(counter << 16), Value: []byte("v" + d.String())}
}

func obj(clock vclock.VV, sibs ...vclock.Sibling) vclock.Object {
	return vclock.Object{Clock: clock, Siblings: sibs}
}

func dotsOf(o vclock.Object) []vclock.Dot {
	var ds []vclock.Dot
	for _, s := range o.Siblings {
		ds = append(ds, s.Dot)
	}
	return ds
}

func TestObjectUpdate(t *testing.T) {
	two := obj(vv(1, 1, 2, 1), sib(1, 1), sib(2, 1))
	tests := []struct {
		name      string
		o         vclock.Object
		ctx       vclock.VV
		node      vclock.NodeID
		wantDot   vclock.Dot
		wantClock vclock.VV
		wantDots  []vclock.Dot
	}{
		{
			name:      "first write",
			o:         vclock.Object{},
			node:      1,
			wantDot:   dot(1, 1),
			wantClock: vv(1, 1),
			wantDots:  []vclock.Dot{dot(1, 1)},
		},
		{
			name:      "blind write keeps every sibling",
			o:         two,
			node:      1,
			wantDot:   dot(1, 2),
			wantClock: vv(1, 2, 2, 1),
			wantDots:  []vclock.Dot{dot(1, 1), dot(1, 2), dot(2, 1)},
		},
		{
			name:      "context covering one sibling drops only it",
			o:         two,
			ctx:       vv(2, 1),
			node:      1,
			wantDot:   dot(1, 2),
			wantClock: vv(1, 2, 2, 1),
			wantDots:  []vclock.Dot{dot(1, 1), dot(1, 2)},
		},
		{
			name:      "context covering both siblings",
			o:         two,
			ctx:       vv(1, 1, 2, 1),
			node:      2,
			wantDot:   dot(2, 2),
			wantClock: vv(1, 1, 2, 2),
			wantDots:  []vclock.Dot{dot(2, 2)},
		},
		{
			name:      "stale context drops nothing newer",
			o:         obj(vv(1, 3), sib(1, 3)),
			ctx:       vv(1, 2),
			node:      1,
			wantDot:   dot(1, 4),
			wantClock: vv(1, 4),
			wantDots:  []vclock.Dot{dot(1, 3), dot(1, 4)},
		},
		{
			name:      "context ahead of the clock raises the dot",
			o:         obj(vv(1, 2), sib(1, 2)),
			ctx:       vv(1, 5, 3, 2),
			node:      1,
			wantDot:   dot(1, 6),
			wantClock: vv(1, 6, 3, 2),
			wantDots:  []vclock.Dot{dot(1, 6)},
		},
		{
			name:      "new node gets counter one",
			o:         obj(vv(1, 3), sib(1, 3)),
			ctx:       vv(1, 3),
			node:      2,
			wantDot:   dot(2, 1),
			wantClock: vv(1, 3, 2, 1),
			wantDots:  []vclock.Dot{dot(2, 1)},
		},
		{
			name:      "new sibling sorted before existing ones",
			o:         obj(vv(5, 1, 9, 2), sib(5, 1), sib(9, 2)),
			node:      3,
			wantDot:   dot(3, 1),
			wantClock: vv(3, 1, 5, 1, 9, 2),
			wantDots:  []vclock.Dot{dot(3, 1), dot(5, 1), dot(9, 2)},
		},
		{
			name:      "new sibling sorted between existing ones",
			o:         obj(vv(5, 1, 9, 2), sib(5, 1), sib(9, 2)),
			node:      7,
			wantDot:   dot(7, 1),
			wantClock: vv(5, 1, 7, 1, 9, 2),
			wantDots:  []vclock.Dot{dot(5, 1), dot(7, 1), dot(9, 2)},
		},
		{
			name:      "write over a tombstone",
			o:         obj(vv(1, 1), vclock.Sibling{Dot: dot(1, 1), Tombstone: true}),
			ctx:       vv(1, 1),
			node:      1,
			wantDot:   dot(1, 2),
			wantClock: vv(1, 2),
			wantDots:  []vclock.Dot{dot(1, 2)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.o.Clone()
			ctxBefore := tt.ctx.Clone()
			s := vclock.Sibling{Dot: dot(99, 99), HLC: 12345, Expiry: 777, Value: []byte("new")}
			got, d := tt.o.Update(tt.ctx, tt.node, s)
			if d != tt.wantDot {
				t.Errorf("dot = %v, want %v", d, tt.wantDot)
			}
			if !slices.Equal(got.Clock, tt.wantClock) {
				t.Errorf("clock = %v, want %v", got.Clock, tt.wantClock)
			}
			if ds := dotsOf(got); !slices.Equal(ds, tt.wantDots) {
				t.Errorf("siblings = %v, want %v", ds, tt.wantDots)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("result invalid: %v", err)
			}
			// The new sibling carries the issued dot and the given fields.
			i := slices.IndexFunc(got.Siblings, func(x vclock.Sibling) bool { return x.Dot == d })
			if i < 0 {
				t.Fatalf("new dot %v not among siblings", d)
			}
			if n := got.Siblings[i]; n.HLC != s.HLC || n.Expiry != s.Expiry || string(n.Value) != "new" {
				t.Errorf("new sibling = %+v, want the written one with dot %v", n, d)
			}
			if !vclock.ObjectsEqual(tt.o, before) || !slices.Equal(tt.ctx, ctxBefore) {
				t.Errorf("Update modified its arguments")
			}
		})
	}
}

func TestJoin(t *testing.T) {
	tests := []struct {
		name      string
		a, b      vclock.Object
		wantClock vclock.VV
		wantDots  []vclock.Dot
	}{
		{
			name:      "both zero",
			wantClock: nil,
			wantDots:  nil,
		},
		{
			name:      "zero is the identity",
			a:         obj(vv(1, 2, 2, 1), sib(1, 2), sib(2, 1)),
			wantClock: vv(1, 2, 2, 1),
			wantDots:  []vclock.Dot{dot(1, 2), dot(2, 1)},
		},
		{
			name:      "same dot kept once",
			a:         obj(vv(1, 1), sib(1, 1)),
			b:         obj(vv(1, 1), sib(1, 1)),
			wantClock: vv(1, 1),
			wantDots:  []vclock.Dot{dot(1, 1)},
		},
		{
			name:      "superseded sibling dropped",
			a:         obj(vv(1, 1), sib(1, 1)),
			b:         obj(vv(1, 2), sib(1, 2)),
			wantClock: vv(1, 2),
			wantDots:  []vclock.Dot{dot(1, 2)},
		},
		{
			name:      "superseded by another node's write",
			a:         obj(vv(1, 1), sib(1, 1)),
			b:         obj(vv(1, 1, 2, 1), sib(2, 1)),
			wantClock: vv(1, 1, 2, 1),
			wantDots:  []vclock.Dot{dot(2, 1)},
		},
		{
			name:      "concurrent siblings kept",
			a:         obj(vv(1, 1), sib(1, 1)),
			b:         obj(vv(2, 1), sib(2, 1)),
			wantClock: vv(1, 1, 2, 1),
			wantDots:  []vclock.Dot{dot(1, 1), dot(2, 1)},
		},
		{
			name:      "mixed: shared, superseded and concurrent",
			a:         obj(vv(1, 2, 2, 1), sib(1, 2), sib(2, 1)),
			b:         obj(vv(1, 2, 2, 1, 3, 1), sib(1, 2), sib(3, 1)),
			wantClock: vv(1, 2, 2, 1, 3, 1),
			wantDots:  []vclock.Dot{dot(1, 2), dot(3, 1)},
		},
		{
			name:      "everything superseded by a delete",
			a:         obj(vv(1, 1, 2, 1), sib(1, 1), sib(2, 1)),
			b:         obj(vv(1, 2, 2, 1), vclock.Sibling{Dot: dot(1, 2), Tombstone: true}),
			wantClock: vv(1, 2, 2, 1),
			wantDots:  []vclock.Dot{dot(1, 2)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := tt.a.Clone(), tt.b.Clone()
			ab := vclock.Join(tt.a, tt.b)
			ba := vclock.Join(tt.b, tt.a)
			if !slices.Equal(ab.Clock, tt.wantClock) {
				t.Errorf("clock = %v, want %v", ab.Clock, tt.wantClock)
			}
			if ds := dotsOf(ab); !slices.Equal(ds, tt.wantDots) {
				t.Errorf("siblings = %v, want %v", ds, tt.wantDots)
			}
			if !vclock.ObjectsEqual(ab, ba) {
				t.Errorf("Join not commutative: %v vs %v", dotsOf(ab), dotsOf(ba))
			}
			if err := ab.Validate(); err != nil {
				t.Errorf("result invalid: %v", err)
			}
			if !vclock.ObjectsEqual(tt.a, a) || !vclock.ObjectsEqual(tt.b, b) {
				t.Errorf("Join modified its arguments")
			}
		})
	}
}

// Two replicas holding different contents under one dot can only come from
// corruption, but Join must still be commutative then.
func TestJoinSameDotDifferentContents(t *testing.T) {
	variants := []vclock.Sibling{
		{Dot: dot(1, 1), HLC: 1, Value: []byte("a")},
		{Dot: dot(1, 1), HLC: 2, Value: []byte("a")},
		{Dot: dot(1, 1), HLC: 1, Expiry: 5, Value: []byte("a")},
		{Dot: dot(1, 1), HLC: 1, Value: []byte("b")},
		{Dot: dot(1, 1), HLC: 1, Tombstone: true},
	}
	for i, x := range variants {
		for j, y := range variants {
			a, b := obj(vv(1, 1), x), obj(vv(1, 1), y)
			ab, ba := vclock.Join(a, b), vclock.Join(b, a)
			if !vclock.ObjectsEqual(ab, ba) {
				t.Errorf("variants %d, %d: Join not commutative", i, j)
			}
			if len(ab.Siblings) != 1 {
				t.Errorf("variants %d, %d: got %d siblings, want 1", i, j, len(ab.Siblings))
			}
		}
	}
}

func TestObjectValidate(t *testing.T) {
	tomb := vclock.Sibling{Dot: dot(1, 1), Tombstone: true}
	tests := []struct {
		name    string
		o       vclock.Object
		wantErr bool
	}{
		{"zero object", vclock.Object{}, false},
		{"clock without siblings", obj(vv(1, 3)), false},
		{"one sibling", obj(vv(1, 3), sib(1, 2)), false},
		{"siblings of several nodes", obj(vv(1, 3, 2, 2), sib(1, 2), sib(1, 3), sib(2, 1)), false},
		{"tombstone without value", obj(vv(1, 1), tomb), false},
		{"tombstone with empty non-nil value", obj(vv(1, 1), vclock.Sibling{Dot: dot(1, 1), Tombstone: true, Value: []byte{}}), false},
		{"expiry set", obj(vv(1, 1), vclock.Sibling{Dot: dot(1, 1), Expiry: 1}), false},

		{"clock unsorted", obj(vv(2, 1, 1, 1), sib(1, 1)), true},
		{"clock duplicate node", obj(vv(1, 1, 1, 2), sib(1, 1)), true},
		{"clock zero counter", obj(vv(1, 0)), true},
		{"clock zero node", obj(vv(0, 1)), true},
		{"sibling not covered: counter above clock", obj(vv(1, 1), sib(1, 2)), true},
		{"sibling not covered: node absent", obj(vv(1, 1), sib(2, 1)), true},
		{"sibling with zero counter", obj(vv(1, 1), sib(1, 0)), true},
		{"sibling with zero node", obj(vv(1, 1), sib(0, 1)), true},
		{"siblings without clock", obj(nil, sib(1, 1)), true},
		{"siblings unsorted by counter", obj(vv(1, 2), sib(1, 2), sib(1, 1)), true},
		{"siblings unsorted by node", obj(vv(1, 1, 2, 1), sib(2, 1), sib(1, 1)), true},
		{"duplicate dot", obj(vv(1, 1), sib(1, 1), sib(1, 1)), true},
		{"tombstone carries value", obj(vv(1, 1), vclock.Sibling{Dot: dot(1, 1), Tombstone: true, Value: []byte("x")}), true},
		{"negative expiry", obj(vv(1, 1), vclock.Sibling{Dot: dot(1, 1), Expiry: -1}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, vclock.ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
}

func TestObjectsEqual(t *testing.T) {
	base := obj(vv(1, 2, 2, 1), sib(1, 2), sib(2, 1))
	mod := func(f func(o *vclock.Object)) vclock.Object {
		o := base.Clone()
		f(&o)
		return o
	}
	tests := []struct {
		name string
		o    vclock.Object
		want bool
	}{
		{"clone", base.Clone(), true},
		{"clock differs", mod(func(o *vclock.Object) { o.Clock = vv(1, 3, 2, 1) }), false},
		{"sibling missing", mod(func(o *vclock.Object) { o.Siblings = o.Siblings[:1] }), false},
		{"dot differs", mod(func(o *vclock.Object) { o.Siblings[0].Dot.Counter = 1 }), false},
		{"hlc differs", mod(func(o *vclock.Object) { o.Siblings[0].HLC++ }), false},
		{"expiry differs", mod(func(o *vclock.Object) { o.Siblings[1].Expiry = 9 }), false},
		{"tombstone differs", mod(func(o *vclock.Object) { o.Siblings[1].Tombstone = true }), false},
		{"value differs", mod(func(o *vclock.Object) { o.Siblings[1].Value = []byte("other") }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := vclock.ObjectsEqual(tt.o, base); got != tt.want {
				t.Errorf("ObjectsEqual = %v, want %v", got, tt.want)
			}
			if got := vclock.ObjectsEqual(base, tt.o); got != tt.want {
				t.Errorf("ObjectsEqual (swapped) = %v, want %v", got, tt.want)
			}
		})
	}

	// A nil and an empty value are the same value: both encode identically.
	a := obj(vv(1, 1), vclock.Sibling{Dot: dot(1, 1), Value: nil})
	b := obj(vv(1, 1), vclock.Sibling{Dot: dot(1, 1), Value: []byte{}})
	if !vclock.ObjectsEqual(a, b) {
		t.Error("nil and empty values compare unequal")
	}
}

func TestObjectClone(t *testing.T) {
	o := obj(vv(1, 2), sib(1, 2))
	c := o.Clone()
	c.Siblings[0].Value[0] = 'X'
	c.Clock[0].Counter = 7
	c.Siblings[0].HLC = 1
	if o.Siblings[0].Value[0] == 'X' || o.Clock[0].Counter != 2 || o.Siblings[0].HLC == 1 {
		t.Errorf("Clone shares memory with the original")
	}
	if z := (vclock.Object{}).Clone(); z.Clock != nil || z.Siblings != nil || !z.IsZero() {
		t.Errorf("zero.Clone() = %+v, want zero", z)
	}
}

func TestObjectIsZeroAndMaxHLC(t *testing.T) {
	var z vclock.Object
	if !z.IsZero() {
		t.Error("zero Object not IsZero")
	}
	if z.MaxHLC() != 0 {
		t.Errorf("zero Object MaxHLC = %v, want 0", z.MaxHLC())
	}
	o := obj(vv(1, 3), vclock.Sibling{Dot: dot(1, 1), HLC: 5}, vclock.Sibling{Dot: dot(1, 2), HLC: 9}, vclock.Sibling{Dot: dot(1, 3), HLC: 7})
	if o.IsZero() {
		t.Error("written Object IsZero")
	}
	if got := o.MaxHLC(); got != 9 {
		t.Errorf("MaxHLC = %d, want 9", got)
	}
	if deleted := obj(vv(1, 1)); deleted.IsZero() {
		t.Error("Object with a clock but no siblings IsZero")
	}
}

func TestSiblingLiveExpired(t *testing.T) {
	tests := []struct {
		name    string
		s       vclock.Sibling
		now     int64
		expired bool
		live    bool
	}{
		{name: "no expiry", s: vclock.Sibling{}, now: 1 << 62, expired: false, live: true},
		{name: "before deadline", s: vclock.Sibling{Expiry: 100}, now: 99, expired: false, live: true},
		{name: "at deadline", s: vclock.Sibling{Expiry: 100}, now: 100, expired: true, live: false},
		{name: "after deadline", s: vclock.Sibling{Expiry: 100}, now: 101, expired: true, live: false},
		{name: "tombstone", s: vclock.Sibling{Tombstone: true}, now: 0, expired: false, live: false},
		{name: "expired tombstone", s: vclock.Sibling{Tombstone: true, Expiry: 1}, now: 2, expired: true, live: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Expired(tt.now); got != tt.expired {
				t.Errorf("Expired(%d) = %v, want %v", tt.now, got, tt.expired)
			}
			if got := tt.s.Live(tt.now); got != tt.live {
				t.Errorf("Live(%d) = %v, want %v", tt.now, got, tt.live)
			}
		})
	}
}
