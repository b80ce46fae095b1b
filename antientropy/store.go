package antientropy

import (
	"slices"

	"github.com/ecachedb/ecache/storage"
	"github.com/ecachedb/ecache/vclock"
)

// MergeFunc folds in, a peer's version of (ns, key), into cur, the stored
// object (zero when absent): the namespace strategy's Merge, or
// vclock.Join.
type MergeFunc func(ns, key []byte, cur, in vclock.Object) (vclock.Object, error)

// StoreReplica is the Replica of one partition of a storage.Store. Its
// tree is kept current by the store's OnChange hook (see Trees), so Merge
// only writes to the store.
type StoreReplica struct {
	st    *storage.Store
	p     uint32
	shape Shape
	merge MergeFunc
}

// NewStoreReplica returns partition p of st as a Replica whose trees have
// shape s; merge folds peers' objects in (nil means vclock.Join).
func NewStoreReplica(st *storage.Store, p uint32, s Shape, merge MergeFunc) *StoreReplica {
	if merge == nil {
		merge = func(_, _ []byte, cur, in vclock.Object) (vclock.Object, error) { return vclock.Join(cur, in), nil }
	}
	return &StoreReplica{st: st, p: p, shape: s, merge: merge}
}

// ListLeaves scans the partition and reports the objects in leaves. The
// cost is a scan of the partition per call, whatever the number of leaves:
// fine for partitions of a few thousand keys, which is what exchanges
// (LeavesPerRequest leaves at a time) ask of it.
func (r *StoreReplica) ListLeaves(leaves []uint32, fn func(ns, key []byte, obj *vclock.Object) error) error {
	return r.st.Scan(r.p, func(e *storage.Entry) error {
		if _, ok := slices.BinarySearch(leaves, r.shape.LeafOf(e.NS, e.Key)); !ok {
			return nil
		}
		return fn(e.NS, e.Key, &e.Object)
	})
}

// Get returns the stored object, expired or not.
func (r *StoreReplica) Get(ns, key []byte) (vclock.Object, bool, error) {
	var o vclock.Object
	found, err := r.st.Get(ns, key, &o)
	if err != nil {
		return vclock.Object{}, false, err
	}
	// Store.Get reports an object whose siblings all expired as not found
	// but still decodes it.
	if !found && len(o.Siblings) == 0 {
		return vclock.Object{}, false, nil
	}
	return o.Clone(), true, nil
}

// Merge folds obj into the stored object with the MergeFunc.
func (r *StoreReplica) Merge(ns, key []byte, obj vclock.Object) error {
	if err := obj.Validate(); err != nil {
		return err
	}
	_, err := r.st.Update(ns, key, func(cur vclock.Object, _ bool) (vclock.Object, error) {
		return r.merge(ns, key, cur, obj)
	})
	return err
}
