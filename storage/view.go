package storage

import (
	"github.com/ecachedb/ecache/internal/msgp"
	"github.com/ecachedb/ecache/vclock"
)

// View is a read answered from the encoded record, for the common case of
// an object with one sibling (every lww object, and a siblings object
// without concurrent writes): the hot GET path needs that sibling and the
// object's context, not a decoded vclock.Object. Its slices alias store
// memory that is never modified.
type View struct {
	// Context is the encoding of the object's clock, byte for byte what
	// vclock.EncodeContext returns for it (the encoding is deterministic).
	Context []byte
	// Single reports that the object has exactly one sibling, in Sibling.
	// Otherwise the object was decoded into GetView's dst.
	Single  bool
	Sibling vclock.Sibling
}

// GetView reads (ns, key) like Get, or like GetCached when cachedOnly, but
// without decoding a one-sibling record: v.Single is then true and dst is
// untouched. Any other record (several siblings, fields from a newer
// version, anything the quick parse does not accept) is decoded into dst as
// Get would, with the same errors. found and ok mean what they mean for
// Get and GetCached (ok is always true without cachedOnly).
func (s *Store) GetView(ns, key []byte, cachedOnly bool, dst *vclock.Object) (v View, found, ok bool, err error) {
	if err := s.checkKey(ns, key); err != nil {
		return View{}, false, true, err
	}
	if s.closed.Load() {
		return View{}, false, true, ErrClosed
	}
	kp := keyPool.Get().(*[]byte)
	kb := appendDataKey((*kp)[:0], PartitionOf(ns, key, s.cfg.Partitions), ns, key)
	var rec []byte
	if cachedOnly {
		if err := s.settleKey(kb); err != nil { // sets.go: a hot set's record may be stale
			keyPool.Put(kp)
			return View{}, false, true, err
		}
		rec, found = s.mem.Get(kb)
		if !found && s.db != nil {
			*kp = kb
			keyPool.Put(kp)
			return View{}, false, false, nil
		}
	} else {
		rec, found, err = s.read(kb)
	}
	*kp = kb
	keyPool.Put(kp)
	if err != nil || !found {
		return View{}, false, true, err
	}
	if viewRecord(rec, &v) {
		// Reading the clock costs as much as the parse: only for expiries.
		return v, v.Sibling.Expiry == 0 || !v.Sibling.Expired(s.now().UnixNano()), true, nil
	}
	if err := decodeRecord(rec, dst); err != nil {
		return View{}, false, true, err
	}
	v = View{Context: clockBytes(rec)}
	return v, !allExpired(dst, s.now().UnixNano()), true, nil
}

// viewRecord parses a record holding one sibling into v, checking what
// vclock.Object.Validate checks. It reports false for any other record,
// which the caller decodes in full (and so reports errors in full).
func viewRecord(rec []byte, v *View) bool {
	if len(rec) == 0 || rec[0] != recordFormat {
		return false
	}
	r := msgp.NewReader(rec[1:])
	if n, err := r.ArrayHeader(); err != nil || n != 2 {
		return false
	}
	start := r.Offset()
	return checkClock(&r) && fillSingle(rec, start, &r, v)
}

// checkClock reads over an encoded clock, checking it as
// vclock.VV.Validate does.
func checkClock(r *msgp.Reader) bool {
	n, err := r.ArrayHeader()
	if err != nil || n%2 != 0 {
		return false
	}
	var prev uint64
	for i := range n / 2 {
		node, err := r.Uint()
		if err != nil || node == 0 || (i > 0 && node <= prev) {
			return false
		}
		c, err := r.Uint()
		if err != nil || c == 0 {
			return false
		}
		prev = node
	}
	return true
}

// fillSingle reads the sibling list after the clock (which starts at
// clockStart in rec[1:]) and fills v when it holds one valid sibling.
func fillSingle(rec []byte, clockStart int, r *msgp.Reader, v *View) bool {
	clockEnd := r.Offset()
	if ns, err := r.ArrayHeader(); err != nil || ns != 1 {
		return false
	}
	if n, err := r.ArrayHeader(); err != nil || n != 6 {
		return false
	}
	var s vclock.Sibling
	node, err := r.Uint()
	if err != nil || node == 0 {
		return false
	}
	if s.Dot.Counter, err = r.Uint(); err != nil {
		return false
	}
	s.Dot.Node = vclock.NodeID(node)
	hlc, err := r.Uint()
	if err != nil {
		return false
	}
	s.HLC = vclock.Timestamp(hlc)
	if s.Expiry, err = r.Int(); err != nil || s.Expiry < 0 {
		return false
	}
	if s.Tombstone, err = r.Bool(); err != nil {
		return false
	}
	if s.Value, err = r.Bytes(); err != nil || (s.Tombstone && len(s.Value) != 0) {
		return false
	}
	if r.Len() != 0 {
		return false
	}
	clock := rec[1+clockStart : 1+clockEnd]
	if !covers(clock, s.Dot) {
		return false
	}
	v.Context, v.Single, v.Sibling = clock, true, s
	return true
}

// covers reports whether the encoded (and already checked) clock covers d.
func covers(clock []byte, d vclock.Dot) bool {
	r := msgp.NewReader(clock)
	n, _ := r.ArrayHeader()
	for range n / 2 {
		node, _ := r.Uint()
		c, _ := r.Uint()
		if vclock.NodeID(node) == d.Node {
			return d.Counter <= c
		}
	}
	return false
}

// clockBytes returns the encoded clock of a record that decoded.
func clockBytes(rec []byte) []byte {
	r := msgp.NewReader(rec[1:])
	r.ArrayHeader()
	start := r.Offset()
	r.Skip()
	return rec[1+start : 1+r.Offset()]
}
