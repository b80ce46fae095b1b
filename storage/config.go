package storage

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/ecachedb/ecache/vclock"
)

// Persistence says when a write reaches disk.
type Persistence uint8

const (
	// PersistenceAsync queues writes and commits them in fsynced batches.
	PersistenceAsync Persistence = iota
	// PersistenceSync fsyncs every write before acknowledging it.
	PersistenceSync
	// PersistenceNone keeps data in memory only.
	PersistenceNone
)

func (p Persistence) String() string {
	switch p {
	case PersistenceAsync:
		return "async"
	case PersistenceSync:
		return "sync"
	case PersistenceNone:
		return "none"
	}
	return fmt.Sprintf("Persistence(%d)", uint8(p))
}

// ParsePersistence parses "none", "async" or "sync".
func ParsePersistence(s string) (Persistence, error) {
	switch strings.ToLower(s) {
	case "async":
		return PersistenceAsync, nil
	case "sync":
		return PersistenceSync, nil
	case "none":
		return PersistenceNone, nil
	}
	return 0, fmt.Errorf("%w: persistence %q: want none, async or sync", ErrInvalidConfig, s)
}

// MarshalText makes Persistence usable in flag, env and YAML configuration.
func (p Persistence) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses the forms ParsePersistence accepts.
func (p *Persistence) UnmarshalText(b []byte) error {
	v, err := ParsePersistence(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Config configures a Store. Start from DefaultConfig.
type Config struct {
	// Persistence is when writes reach disk.
	Persistence Persistence
	// MemoryLimit bounds the memory tier in bytes (keys, records and
	// per-entry overhead).
	MemoryLimit int64
	// OnEvict, when set on a memory-only store, is called for each object
	// the memory tier evicts to make room, under that key's lock, after
	// the write that caused it; present reports that the key was written
	// again meanwhile (that write's OnChange had prev nil). Anti-entropy
	// keeps counting an evicted object, so an eviction never looks like a
	// difference to repair. It must be fast and must not call back into
	// the Store.
	OnEvict func(partition uint32, ns, key []byte, obj *vclock.Object, present bool)
	// PartitionIndex makes a memory-only store keep the keys of each
	// partition in an index (partindex.go), so Scan of one partition
	// visits that partition's keys instead of walking the whole memory
	// tier. It costs about the key's length plus 40 bytes per key, outside
	// MemoryLimit; a node sets it in a cluster, where anti-entropy and
	// rebalancing scan partitions. Persistent stores scan Pebble and ignore
	// it.
	PartitionIndex bool
	// MemoryShards is the number of independently locked memory-tier shards,
	// a power of two.
	MemoryShards int
	// Partitions is the number of key-space partitions, fixed for the life
	// of the data directory. At most 65536.
	Partitions int
	// MaxKeySize bounds a key's length in bytes.
	MaxKeySize int
	// MaxValueSize bounds one sibling's value in bytes.
	MaxValueSize int
	// MaxRecordSize bounds a whole encoded object (all its siblings).
	MaxRecordSize int
	// FlushInterval is how often the write-behind queue is committed in
	// PersistenceAsync: the bound of the crash loss window.
	FlushInterval time.Duration
	// MaxPendingBytes bounds the write-behind queue; writers wait for the
	// flusher beyond it, so a slow disk slows writes instead of growing memory.
	MaxPendingBytes int
	// ExpiryInterval is how often the background sweep visits a slice of the
	// partitions looking for long-expired objects. Zero disables the sweep.
	ExpiryInterval time.Duration
	// ExpiryGrace is how long an object whose every sibling expired is kept
	// before the sweep removes it. Until then it reads as absent but still
	// supersedes older versions that a late replica might send.
	ExpiryGrace time.Duration
	// PebbleCacheSize is Pebble's block cache in bytes.
	PebbleCacheSize int64
	// FS is the file system Pebble and the node-ID file use; nil means the
	// operating system's. Tests pass vfs.NewMem() or an errorfs wrapper.
	FS vfs.FS
	// OnChange, when set, is called after every change to a stored object —
	// a write, or a removal (Forget, tombstone collection, the expiry
	// sweep; next is nil then) — under that key's lock, so calls for one key
	// arrive in the order the changes were made. prev is nil for a new key.
	// Anti-entropy keeps its Merkle trees current with it. It must be fast
	// and must not call back into the Store. DropPartition does not call it
	// per key: whoever drops a partition drops its tree too.
	OnChange func(partition uint32, ns, key []byte, prev, next *vclock.Object)
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// Now is the wall clock that decides expiry; nil means time.Now.
	Now func() time.Time
}

// DefaultConfig returns the configuration `ecache serve` starts with.
func DefaultConfig() Config {
	return Config{
		Persistence:     PersistenceAsync,
		MemoryLimit:     512 << 20,
		MemoryShards:    64,
		Partitions:      1024,
		MaxKeySize:      8 << 10,
		MaxValueSize:    4 << 20,
		MaxRecordSize:   16 << 20,
		FlushInterval:   100 * time.Millisecond,
		MaxPendingBytes: 64 << 20,
		ExpiryInterval:  time.Second,
		ExpiryGrace:     time.Hour,
		PebbleCacheSize: 64 << 20,
	}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	bad := func(field, why string, v any) error {
		return fmt.Errorf("%w: %s %v: %s", ErrInvalidConfig, field, v, why)
	}
	switch {
	case c.Persistence > PersistenceNone:
		return bad("Persistence", "want none, async or sync", c.Persistence)
	case c.MemoryLimit <= 0:
		return bad("MemoryLimit", "must be positive", c.MemoryLimit)
	case c.MemoryShards <= 0 || c.MemoryShards&(c.MemoryShards-1) != 0:
		return bad("MemoryShards", "must be a positive power of two", c.MemoryShards)
	case c.Partitions <= 0 || c.Partitions > 1<<16:
		return bad("Partitions", "must be in 1..65536", c.Partitions)
	case c.MaxKeySize <= 0 || c.MaxKeySize > 1<<20:
		return bad("MaxKeySize", "must be in 1..1MiB", c.MaxKeySize)
	case c.MaxValueSize <= 0:
		return bad("MaxValueSize", "must be positive", c.MaxValueSize)
	case c.MaxRecordSize < c.MaxValueSize:
		return bad("MaxRecordSize", "must be at least MaxValueSize", c.MaxRecordSize)
	case c.Persistence == PersistenceAsync && c.FlushInterval <= 0:
		return bad("FlushInterval", "must be positive with async persistence", c.FlushInterval)
	case c.Persistence == PersistenceAsync && c.MaxPendingBytes <= 0:
		return bad("MaxPendingBytes", "must be positive with async persistence", c.MaxPendingBytes)
	case c.ExpiryInterval < 0:
		return bad("ExpiryInterval", "must not be negative", c.ExpiryInterval)
	case c.ExpiryGrace < 0:
		return bad("ExpiryGrace", "must not be negative", c.ExpiryGrace)
	case c.PebbleCacheSize < 0:
		return bad("PebbleCacheSize", "must not be negative", c.PebbleCacheSize)
	}
	return nil
}
