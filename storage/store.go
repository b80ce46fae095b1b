package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/ecachedb/ecache/storage/memtier"
	"github.com/ecachedb/ecache/vclock"
)

// recordFormat is the first byte of every stored record. A new encoding
// gets a new number; readers reject formats they do not know.
const recordFormat byte = 1

// stripes is the number of per-key lock stripes serialising read-modify-write.
const stripes = 4096

// stripe serialises writes to the keys that hash to it and counts them, so a
// read that fetched a record from disk can tell whether a write to one of
// those keys happened meanwhile and must not be overwritten by a promotion.
type stripe struct {
	mu      sync.Mutex
	version atomic.Uint64
	_       [40]byte // keep stripes on separate cache lines
}

// Store is the hybrid store of one node. It is safe for concurrent use.
type Store struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	dir    string
	nodeID vclock.NodeID

	mem *memtier.Cache
	db  *pebble.DB   // nil with PersistenceNone
	wb  *writeBehind // non-nil with PersistenceAsync
	sf  flightGroup
	// keys answers memory misses for keys never written (keyfilter.go);
	// nil with PersistenceNone.
	keys *keyFilter

	// diskReads counts Pebble point reads; testHookDiskGet, when set by a
	// test, runs before each.
	diskReads       atomic.Uint64
	testHookDiskGet func(kb []byte)

	stripes [stripes]stripe

	// failed holds the first write-path disk error; once set, writes are
	// refused with it.
	failed atomic.Pointer[error]

	closed    atomic.Bool
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	sweep   sweeper
	expired atomic.Uint64

	hints hintState // hinted handoff (hints.go)

	hot hotSets // large sets kept decoded (sets.go)
	// pidx lists each partition's keys of a memory-only store
	// (partindex.go).
	pidx partIndex
	// evicts are the memory tier's evictions not reported yet (evict.go).
	evicts evictions
}

// Open opens (creating if needed) the store in dir. With PersistenceNone dir
// is not touched and may be empty.
func Open(dir string, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, log: cfg.Logger, now: cfg.Now, dir: dir, stop: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	mcfg := memtier.Config{Capacity: cfg.MemoryLimit, Shards: cfg.MemoryShards}
	if cfg.OnEvict != nil && cfg.Persistence == PersistenceNone {
		mcfg.OnEvict = s.onMemEvict // evict.go
	}
	mem, err := memtier.New(mcfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	s.mem = mem
	if cfg.Persistence == PersistenceNone {
		s.nodeID = vclock.NewNodeID()
	} else {
		if dir == "" {
			return nil, fmt.Errorf("%w: a data directory is required with persistence %s", ErrInvalidConfig, cfg.Persistence)
		}
		fs := cfg.FS
		if fs == nil {
			fs = vfs.Default
		}
		if s.nodeID, err = loadOrCreateNodeID(fs, dir); err != nil {
			return nil, err
		}
		if err := s.openPebble(fs); err != nil {
			return nil, err
		}
		s.keys = newKeyFilter(filterFirstKeys) // keyfilter.go
		s.wg.Add(1)
		go s.loadKeyFilter(s.keys)
		if cfg.Persistence == PersistenceAsync {
			s.wb = newWriteBehind(cfg.MaxPendingBytes)
			s.wg.Add(1)
			go s.flushLoop()
			s.wg.Add(1)
			go s.settleLoop() // sets.go
		}
	}
	if cfg.ExpiryInterval > 0 {
		s.wg.Add(1)
		go s.sweepLoop()
	}
	s.log.Info("storage opened", "dir", dir, "persistence", cfg.Persistence, "node_id", s.nodeID, "memory_limit", cfg.MemoryLimit)
	return s, nil
}

// fatalError is what our Pebble logger panics with when Pebble reports an
// unrecoverable error. Pebble's default would exit the process; we turn it
// into an error on the write that hit it and stop accepting writes.
type fatalError struct {
	msg   string
	cause error // the first error among Fatalf's arguments, if any
}

func (e fatalError) Error() string { return e.msg }
func (e fatalError) Unwrap() error { return e.cause }

type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg, "component", "pebble", "fatal", true)
	fe := fatalError{msg: msg}
	for _, a := range args {
		if err, ok := a.(error); ok {
			fe.cause = err
			break
		}
	}
	panic(fe)
}

func (s *Store) openPebble(fs vfs.FS) error {
	cache := pebble.NewCache(s.cfg.PebbleCacheSize)
	defer cache.Unref()
	opts := &pebble.Options{
		FS:     fs,
		Cache:  cache,
		Logger: pebbleLogger{s.log},
	}
	opts.EnsureDefaults()
	var db *pebble.DB
	// Pebble reports some failures while creating a store by panicking
	// (through our logger's Fatalf, or directly with an error).
	err := guard(func() (err error) {
		db, err = pebble.Open(s.dir, opts)
		return err
	})
	if err != nil {
		return fmt.Errorf("%w: opening pebble in %s: %w", ErrDisk, s.dir, err)
	}
	s.db = db
	return nil
}

// NodeID returns the identity of the node owning this store.
func (s *Store) NodeID() vclock.NodeID { return s.nodeID }

// Config returns the configuration the store was opened with.
func (s *Store) Config() Config { return s.cfg }

// Persistent reports whether the store keeps data on disk.
func (s *Store) Persistent() bool { return s.db != nil }

func (s *Store) stripeFor(kb []byte) *stripe {
	return &s.stripes[xxhash.Sum64(kb)%stripes]
}

func (s *Store) checkKey(ns, key []byte) error {
	if len(ns) > 255 {
		return fmt.Errorf("%w: %d bytes", ErrNamespaceTooLong, len(ns))
	}
	if len(key) > s.cfg.MaxKeySize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrKeyTooLarge, len(key), s.cfg.MaxKeySize)
	}
	return nil
}

func (s *Store) writable() error {
	if s.closed.Load() {
		return ErrClosed
	}
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// fail records a write-path disk error; later writes return it.
func (s *Store) fail(err error) error {
	err = fmt.Errorf("%w: %w", ErrDisk, err)
	if s.failed.CompareAndSwap(nil, &err) {
		s.log.Error("storage: disk write failed; refusing further writes", "err", err)
	}
	return *s.failed.Load()
}

// guard runs a Pebble call, turning Pebble's ways of giving up — a fatal
// error through our logger's Fatalf, or a panic with an error value (as its
// commit path does once its WAL has failed) — into a returned error. Other
// panics are bugs and propagate.
func guard(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			switch v := r.(type) {
			case fatalError:
				err = v
			case error:
				err = fmt.Errorf("pebble panicked: %w", v)
			default:
				panic(r)
			}
		}
	}()
	return fn()
}

var keyPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// Get reads the object stored for (ns, key) into dst, reusing dst's slices.
// It reports false for an absent key and for one whose every sibling has
// expired. dst's values alias memory owned by the store, which is never
// modified: they stay valid after later writes.
func (s *Store) Get(ns, key []byte, dst *vclock.Object) (bool, error) {
	if err := s.checkKey(ns, key); err != nil {
		return false, err
	}
	if s.closed.Load() {
		return false, ErrClosed
	}
	kp := keyPool.Get().(*[]byte)
	kb := appendDataKey((*kp)[:0], PartitionOf(ns, key, s.cfg.Partitions), ns, key)
	rec, found, err := s.read(kb)
	*kp = kb
	keyPool.Put(kp)
	if err != nil || !found {
		return false, err
	}
	if err := decodeRecord(rec, dst); err != nil {
		return false, err
	}
	return !allExpired(dst, s.now().UnixNano()), nil
}

// GetCached is Get answered from memory alone; it never blocks on disk, so
// a server may call it on its network event loop. ok is false when the
// answer needs the disk (a memory miss in a persistent store); found and
// dst are meaningful only when ok.
func (s *Store) GetCached(ns, key []byte, dst *vclock.Object) (found, ok bool, err error) {
	if err := s.checkKey(ns, key); err != nil {
		return false, true, err
	}
	if s.closed.Load() {
		return false, true, ErrClosed
	}
	kp := keyPool.Get().(*[]byte)
	kb := appendDataKey((*kp)[:0], PartitionOf(ns, key, s.cfg.Partitions), ns, key)
	if err := s.settleKey(kb); err != nil { // sets.go
		keyPool.Put(kp)
		return false, true, err
	}
	rec, hit := s.mem.Get(kb)
	*kp = kb
	keyPool.Put(kp)
	if !hit {
		return false, s.db == nil, nil
	}
	if err := decodeRecord(rec, dst); err != nil {
		return false, true, err
	}
	return !allExpired(dst, s.now().UnixNano()), true, nil
}

// read returns the record for kb from memory, the write-behind queue or
// Pebble, promoting a disk hit into memory.
func (s *Store) read(kb []byte) ([]byte, bool, error) {
	if err := s.settleKey(kb); err != nil { // sets.go
		return nil, false, err
	}
	if rec, ok := s.mem.Get(kb); ok {
		return rec, true, nil
	}
	if s.db == nil || !s.keys.mayExist(kb) {
		return nil, false, nil
	}
	st := s.stripeFor(kb)
	// Load the version before looking anywhere else: a write persists
	// before it bumps the version, so if the version is unchanged when we
	// promote, nothing newer than what we read can exist.
	ver := st.version.Load()
	if s.wb != nil {
		if rec, del, ok := s.wb.get(kb); ok {
			return rec, !del, nil
		}
	}
	rec, err := s.sf.do(kb, ver, func() ([]byte, error) {
		rec, err := s.diskGet(kb)
		if err != nil || rec == nil {
			return rec, err
		}
		st.mu.Lock()
		if st.version.Load() == ver {
			if _, ok := s.mem.Get(kb); !ok {
				s.mem.Set(kb, rec)
			}
		}
		st.mu.Unlock()
		return rec, nil
	})
	if err != nil {
		return nil, false, err
	}
	return rec, rec != nil, nil
}

// diskGet returns a copy of Pebble's value for kb, nil when absent.
func (s *Store) diskGet(kb []byte) ([]byte, error) {
	if s.testHookDiskGet != nil {
		s.testHookDiskGet(kb)
	}
	s.diskReads.Add(1)
	var rec []byte
	err := guard(func() error {
		v, closer, err := s.db.Get(kb)
		if errors.Is(err, pebble.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		rec = bytes.Clone(v)
		if rec == nil {
			rec = []byte{}
		}
		return closer.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("%w: reading %x: %w", ErrDisk, kb, err)
	}
	return rec, nil
}

// UpdateFunc computes a key's new object from its current one. cur is the
// zero Object when found is false; expired objects are passed as found so
// their clocks keep superseding older versions. Returning an error aborts
// the update and is returned from Update unchanged.
type UpdateFunc func(cur vclock.Object, found bool) (vclock.Object, error)

// Update atomically replaces the object of (ns, key) with fn's result and
// returns it. It returns when the write is as durable as the persistence
// mode promises. If fn returns an object whose encoding equals the current
// one, nothing is written.
func (s *Store) Update(ns, key []byte, fn UpdateFunc) (vclock.Object, error) {
	if err := s.checkKey(ns, key); err != nil {
		return vclock.Object{}, err
	}
	if err := s.writable(); err != nil {
		return vclock.Object{}, err
	}
	part := PartitionOf(ns, key, s.cfg.Partitions)
	kb := appendDataKey(make([]byte, 0, keyHeader+len(ns)+len(key)), part, ns, key)
	defer s.reportEvictions() // evict.go: after the unlock below
	st := s.stripeFor(kb)
	st.mu.Lock()
	locked := true
	defer func() {
		if locked {
			st.mu.Unlock()
		}
	}()
	if err := s.dropHotLocked(kb); err != nil { // sets.go
		return vclock.Object{}, err
	}
	old, found, err := s.loadLocked(kb)
	if err != nil {
		return vclock.Object{}, err
	}
	var cur vclock.Object
	if found {
		if err := decodeRecord(old, &cur); err != nil {
			return vclock.Object{}, err
		}
	}
	next, err := fn(cur, found)
	if err != nil {
		return vclock.Object{}, err
	}
	if err := s.checkObject(&next); err != nil {
		return vclock.Object{}, err
	}
	rec := encodeRecord(make([]byte, 0, 1+next.EncodedSize()), &next)
	if len(rec) > s.cfg.MaxRecordSize {
		return vclock.Object{}, fmt.Errorf("%w: record of %d bytes, limit %d", ErrValueTooLarge, len(rec), s.cfg.MaxRecordSize)
	}
	if found && bytes.Equal(rec, old) || !found && next.IsZero() {
		return next, nil // nothing changed: write nothing
	}
	// Another writer may have hit a disk failure while fn ran; Pebble must
	// not see another write after that.
	if err := s.writable(); err != nil {
		return vclock.Object{}, err
	}
	// Persist first, then publish in memory, then bump the version (see read).
	if s.keys != nil {
		s.keys.add(kb) // before the record is visible anywhere (keyfilter.go)
	}
	var pending *pebble.Batch
	switch {
	case s.wb != nil:
		if err := s.wb.put(kb, rec, false); err != nil {
			return vclock.Object{}, s.fail(err)
		}
	case s.db != nil:
		b := s.db.NewBatch()
		if err := b.Set(kb, rec, nil); err != nil {
			b.Close()
			return vclock.Object{}, fmt.Errorf("%w: %w", ErrDisk, err)
		}
		if err := guard(func() error { return s.db.ApplyNoSyncWait(b, pebble.Sync) }); err != nil {
			return vclock.Object{}, s.fail(err)
		}
		pending = b
	}
	if !s.mem.Set(kb, rec) {
		s.mem.Delete(kb)
		if s.db == nil {
			return vclock.Object{}, fmt.Errorf("%w: record of %d bytes does not fit the memory tier", ErrValueTooLarge, len(rec))
		}
	} else {
		s.indexAdd(kb) // partindex.go
	}
	st.version.Add(1)
	if s.cfg.OnChange != nil {
		var prev *vclock.Object
		if found {
			prev = &cur
		}
		s.cfg.OnChange(part, ns, key, prev, &next)
	}
	st.mu.Unlock()
	locked = false
	if pending != nil {
		// Wait for the fsync outside the stripe lock so writers to other keys
		// of this stripe join the same group commit.
		err := pending.SyncWait()
		pending.Close()
		if err != nil {
			// Not acknowledged. Its outcome is indeterminate (Pebble's
			// memtable holds it until restart); at least stop serving it
			// from memory.
			st.mu.Lock()
			s.mem.Delete(kb)
			st.version.Add(1)
			st.mu.Unlock()
			return vclock.Object{}, s.fail(err)
		}
	}
	return next, nil
}

// loadLocked returns kb's current record; the stripe lock is held, so no
// promotion is needed or attempted.
func (s *Store) loadLocked(kb []byte) ([]byte, bool, error) {
	if rec, ok := s.mem.Get(kb); ok {
		return rec, true, nil
	}
	if s.db == nil || !s.keys.mayExist(kb) {
		return nil, false, nil
	}
	if s.wb != nil {
		if rec, del, ok := s.wb.get(kb); ok {
			return rec, !del, nil
		}
	}
	rec, err := s.diskGet(kb)
	return rec, rec != nil, err
}

func (s *Store) checkObject(o *vclock.Object) error {
	for i := range o.Siblings {
		if n := len(o.Siblings[i].Value); n > s.cfg.MaxValueSize {
			return fmt.Errorf("%w: %d bytes, limit %d", ErrValueTooLarge, n, s.cfg.MaxValueSize)
		}
	}
	return o.Validate()
}

// Forget removes (ns, key) entirely if its clock still equals expect. It is
// how tombstone and expiry collectors remove an object they judged
// collectable without racing a newer write. It reports whether it removed.
func (s *Store) Forget(ns, key []byte, expect vclock.VV) (bool, error) {
	if err := s.checkKey(ns, key); err != nil {
		return false, err
	}
	if err := s.writable(); err != nil {
		return false, err
	}
	kb := appendDataKey(nil, PartitionOf(ns, key, s.cfg.Partitions), ns, key)
	return s.forget(kb, func(o *vclock.Object) bool { return o.Clock.Compare(expect) == vclock.Equal })
}

func (s *Store) forget(kb []byte, ok func(*vclock.Object) bool) (bool, error) {
	st := s.stripeFor(kb)
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := s.dropHotLocked(kb); err != nil { // sets.go
		return false, err
	}
	old, found, err := s.loadLocked(kb)
	if err != nil || !found {
		return false, err
	}
	var cur vclock.Object
	if err := decodeRecord(old, &cur); err != nil {
		return false, err
	}
	if !ok(&cur) {
		return false, nil
	}
	switch {
	case s.wb != nil:
		if err := s.wb.put(kb, nil, true); err != nil {
			return false, s.fail(err)
		}
	case s.db != nil:
		if err := guard(func() error { return s.db.Delete(kb, pebble.Sync) }); err != nil {
			return false, s.fail(err)
		}
	}
	s.mem.Delete(kb)
	s.indexRemove(kb) // partindex.go
	st.version.Add(1)
	if s.cfg.OnChange != nil {
		p, ns, key, _ := splitDataKey(kb)
		s.cfg.OnChange(p, ns, key, &cur, nil)
	}
	return true, nil
}

// Entry is one stored object met by Scan.
type Entry struct {
	Partition uint32
	NS, Key   []byte
	Object    vclock.Object
}

// Scan calls fn for every object of partition p, in key order when
// persistent. Entries, including their byte slices, are valid only during
// the call. Writes that race the scan may or may not be seen. fn must not
// call Scan or DropPartition. Returning an error stops the scan with it.
func (s *Store) Scan(p uint32, fn func(e *Entry) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if p >= uint32(s.cfg.Partitions) {
		return fmt.Errorf("storage: partition %d out of range [0,%d)", p, s.cfg.Partitions)
	}
	if err := s.settlePartition(p); err != nil { // sets.go
		return err
	}
	lo, hi := partitionBounds(p)
	if s.indexed() {
		return s.scanIndexed(p, fn) // partindex.go
	}
	if s.db == nil {
		return s.scanMemory(func(k []byte) bool {
			return bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0
		}, fn)
	}
	if s.wb != nil {
		if err := s.flushQueue(); err != nil { // sets.go: Flush without settling every set
			return err
		}
	}
	return guard(func() error {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			return fmt.Errorf("%w: %w", ErrDisk, err)
		}
		var e Entry
		for ok := it.First(); ok; ok = it.Next() {
			if e.Partition, e.NS, e.Key, err = splitDataKey(it.Key()); err != nil {
				break
			}
			var v []byte
			if v, err = it.ValueAndErr(); err != nil {
				err = fmt.Errorf("%w: %w", ErrDisk, err)
				break
			}
			if err = decodeRecord(v, &e.Object); err != nil {
				break
			}
			if err = fn(&e); err != nil {
				break
			}
		}
		if err == nil {
			if err = it.Error(); err != nil {
				err = fmt.Errorf("%w: %w", ErrDisk, err)
			}
		}
		if cerr := it.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("%w: %w", ErrDisk, cerr)
		}
		return err
	})
}

// scanMemory calls fn for the memory-tier entries whose key match selects.
// It copies the matching records out first because the memory tier holds a
// shard lock while ranging.
func (s *Store) scanMemory(match func(k []byte) bool, fn func(e *Entry) error) error {
	type kv struct{ k, v []byte }
	var found []kv
	s.mem.Range(func(k, v []byte) bool {
		if match(k) {
			found = append(found, kv{bytes.Clone(k), v})
		}
		return true
	})
	var e Entry
	for _, f := range found {
		var err error
		if e.Partition, e.NS, e.Key, err = splitDataKey(f.k); err != nil {
			return err
		}
		if err := decodeRecord(f.v, &e.Object); err != nil {
			return err
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return nil
}

// DropPartition removes every object of partition p, on disk and in memory.
// Callers stop routing writes to p first; a write racing the drop may
// survive it.
func (s *Store) DropPartition(p uint32) error {
	if err := s.writable(); err != nil {
		return err
	}
	if p >= uint32(s.cfg.Partitions) {
		return fmt.Errorf("storage: partition %d out of range [0,%d)", p, s.cfg.Partitions)
	}
	s.dropHotPartition(p) // sets.go
	lo, hi := partitionBounds(p)
	if s.db != nil {
		if s.wb != nil {
			if err := s.Flush(); err != nil {
				return err
			}
		}
		if err := guard(func() error { return s.db.DeleteRange(lo, hi, pebble.Sync) }); err != nil {
			return s.fail(err)
		}
	}
	var keys [][]byte
	s.mem.Range(func(k, _ []byte) bool {
		if bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0 {
			keys = append(keys, bytes.Clone(k))
		}
		return true
	})
	for _, k := range keys {
		st := s.stripeFor(k)
		st.mu.Lock()
		s.mem.Delete(k)
		s.indexRemove(k) // partindex.go
		st.version.Add(1)
		st.mu.Unlock()
	}
	return nil
}

// CollectTombstones removes from partition p every object made only of
// tombstones for which stable returns true: the caller's judgement that
// every replica holds the tombstone. It returns how many it removed.
func (s *Store) CollectTombstones(p uint32, stable func(e *Entry) bool) (int, error) {
	var cands [][]byte
	err := s.Scan(p, func(e *Entry) error {
		if onlyTombstones(&e.Object) && stable(e) {
			cands = append(cands, appendDataKey(nil, e.Partition, e.NS, e.Key))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return s.forgetAll(cands, onlyTombstones)
}

func (s *Store) forgetAll(kbs [][]byte, ok func(*vclock.Object) bool) (int, error) {
	n := 0
	for _, kb := range kbs {
		done, err := s.forget(kb, ok)
		if err != nil {
			return n, err
		}
		if done {
			n++
		}
	}
	return n, nil
}

func onlyTombstones(o *vclock.Object) bool {
	for i := range o.Siblings {
		if !o.Siblings[i].Tombstone {
			return false
		}
	}
	return len(o.Siblings) > 0
}

// allExpired reports whether o has siblings and every one of them is an
// expired value (tombstones never expire).
func allExpired(o *vclock.Object, now int64) bool {
	for i := range o.Siblings {
		if sib := &o.Siblings[i]; sib.Tombstone || !sib.Expired(now) {
			return false
		}
	}
	return len(o.Siblings) > 0
}

// Flush commits the write-behind queue and waits for it to be fsynced. It
// is a no-op in the other persistence modes.
func (s *Store) Flush() error {
	if s.wb == nil {
		return nil
	}
	if p := s.failed.Load(); p != nil {
		return *p
	}
	if err := s.settleAll(); err != nil { // sets.go
		return err
	}
	return s.wb.flushAndWait(s.commit)
}

// commit writes a write-behind batch to Pebble with one fsync.
func (s *Store) commit(entries map[string]wbEntry) error {
	if p := s.failed.Load(); p != nil {
		return *p // Pebble must not see another write after a failure
	}
	b := s.db.NewBatch()
	defer b.Close()
	for k, e := range entries {
		var err error
		if e.del {
			err = b.Delete([]byte(k), nil)
		} else {
			err = b.Set([]byte(k), e.rec, nil)
		}
		if err != nil {
			return err
		}
	}
	if err := guard(func() error { return s.db.Apply(b, pebble.Sync) }); err != nil {
		return s.fail(err)
	}
	return nil
}

func (s *Store) flushLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.wb.kick:
		}
		if err := s.wb.flush(s.commit); err != nil && s.failed.Load() == nil {
			s.fail(err)
		}
	}
}

// Stats is a snapshot of the store's counters.
type Stats struct {
	Memory        memtier.Stats
	MemoryBytes   int64
	MemoryLimit   int64
	MemoryEntries int
	PendingBytes  int64
	Flushes       uint64
	Expired       uint64
	Failed        bool
}

// Stats returns a snapshot of the store's counters.
func (s *Store) Stats() Stats {
	st := Stats{
		Memory:        s.mem.Stats(),
		MemoryBytes:   s.mem.Bytes(),
		MemoryLimit:   s.mem.Capacity(),
		MemoryEntries: s.mem.Len(),
		Expired:       s.expired.Load(),
		Failed:        s.failed.Load() != nil,
	}
	if s.wb != nil {
		st.PendingBytes, st.Flushes = s.wb.stats()
	}
	return st
}

// PebbleMetrics returns Pebble's metrics, or nil without persistence.
func (s *Store) PebbleMetrics() *pebble.Metrics {
	if s.db == nil || s.closed.Load() {
		return nil
	}
	return s.db.Metrics()
}

// Close flushes pending writes, stops background work and closes Pebble.
// It is idempotent; later calls return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stop)
		s.wg.Wait()
		var errs []error
		if err := s.settleForClose(); err != nil { // sets.go
			errs = append(errs, err)
		}
		if s.wb != nil {
			if s.failed.Load() == nil {
				if err := s.wb.flush(s.commit); err != nil {
					errs = append(errs, err)
				}
			}
			s.wb.close()
		}
		if s.db != nil {
			if err := guard(s.db.Close); err != nil {
				errs = append(errs, fmt.Errorf("%w: closing pebble: %w", ErrDisk, err))
			}
		}
		s.closeErr = errors.Join(errs...)
		s.log.Info("storage closed", "dir", s.dir, "err", s.closeErr)
	})
	return s.closeErr
}

func encodeRecord(b []byte, o *vclock.Object) []byte {
	b = append(b, recordFormat)
	return o.AppendMsgpack(b)
}

func decodeRecord(rec []byte, dst *vclock.Object) error {
	if len(rec) == 0 || rec[0] != recordFormat {
		return fmt.Errorf("%w: unknown record format", ErrCorrupt)
	}
	if err := vclock.DecodeObject(rec[1:], dst); err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return nil
}

var _ io.Closer = (*Store)(nil)
