package node

import (
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"time"

	"github.com/ecachedb/ecache/gossip"
	"github.com/ecachedb/ecache/merge"
	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/netproto/server"
	"github.com/ecachedb/ecache/storage"
)

// DefaultNamespace is the namespace requests use when they name none; it is
// always configured (lww unless the configuration says otherwise).
const DefaultNamespace = "default"

// Config configures a Node. Start from DefaultConfig.
type Config struct {
	// DataDir holds the store (ignored with persistence none).
	DataDir string
	// Storage configures the hybrid store. Its key and value limits are
	// taken from Limits.
	Storage storage.Config
	// Listen is the client address of the binary protocol; "" serves
	// nothing (an embedded node driven through its methods).
	Listen string
	// Server configures the protocol server (its Addr and Limits are set
	// from Listen and Limits).
	Server server.Config
	// RESPListen is the address of the Redis-protocol listener; "" serves
	// none.
	RESPListen string
	// RESP configures the Redis-protocol listener and its namespaces.
	RESP RESPConfig
	// Limits bound frames, keys and values, on the wire and in storage.
	Limits netproto.Limits
	// Namespaces maps namespace names to strategy names.
	Namespaces map[string]string
	// Registry resolves strategy names; nil means merge.NewRegistry().
	Registry *merge.Registry
	// Password, when set, must be given in HELLO before data requests.
	Password string
	// MaxClockOffset bounds how far ahead of this node's wall clock a
	// timestamp from elsewhere may be.
	MaxClockOffset time.Duration
	// Version is reported in HELLO and metrics.
	Version string
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// Now is the wall clock (TTL, HLC); nil means time.Now.
	Now func() time.Time
	// Cluster, when set, makes the node a member of a cluster: gossip
	// membership, forwarding and replication (see ClusterConfig). nil is a
	// single node.
	Cluster *ClusterConfig
}

// DefaultConfig returns the configuration `ecache serve` starts from.
func DefaultConfig() Config {
	return Config{
		DataDir:        "ecache-data",
		Storage:        storage.DefaultConfig(),
		Listen:         "127.0.0.1:7070",
		Server:         server.DefaultConfig(),
		Limits:         netproto.DefaultLimits(),
		RESP:           DefaultRESPConfig(),
		Namespaces:     map[string]string{DefaultNamespace: merge.NameLWW},
		MaxClockOffset: 500 * time.Millisecond,
		Version:        "dev",
	}
}

var namespaceName = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("%w: Limits: %w", ErrInvalidConfig, err)
	}
	st := c.storageConfig()
	if err := st.Validate(); err != nil {
		return fmt.Errorf("%w: Storage: %w", ErrInvalidConfig, err)
	}
	reg := c.Registry
	if reg == nil {
		reg = merge.NewRegistry()
	}
	names := make([]string, 0, len(c.Namespaces))
	for ns := range c.Namespaces {
		names = append(names, ns)
	}
	sort.Strings(names)
	for _, ns := range names {
		if !namespaceName.MatchString(ns) {
			return fmt.Errorf("%w: Namespaces: name %q: want 1-64 of [A-Za-z0-9_.:-]", ErrInvalidConfig, ns)
		}
		if _, err := reg.Lookup(c.Namespaces[ns]); err != nil {
			return fmt.Errorf("%w: Namespaces: %s: %w", ErrInvalidConfig, ns, err)
		}
	}
	if c.RESPListen != "" {
		if err := c.RESP.validate(c.Namespaces, reg); err != nil {
			return err
		}
	}
	if c.MaxClockOffset < 0 {
		return fmt.Errorf("%w: MaxClockOffset %v: must not be negative", ErrInvalidConfig, c.MaxClockOffset)
	}
	if c.Cluster != nil {
		if err := c.Cluster.validate(c.Listen); err != nil {
			return err
		}
	}
	return nil
}

// frameEnvelope bounds what a frame body carries besides an object's
// record and key: MessagePack headers, the namespace (at most 64 bytes),
// status and flags.
const frameEnvelope = 256

// storageConfig is Storage with the limits, clock and logger that the node
// shares with it.
func (c *Config) storageConfig() storage.Config {
	st := c.Storage
	st.MaxKeySize = c.Limits.MaxKeySize
	st.MaxValueSize = c.Limits.MaxValueSize
	// Every object the store accepts must fit one frame whole: a GET's
	// answer (all its siblings), a FETCH, or a REPLICATE carrying it with
	// its namespace and key. A write that would grow an object past that
	// (siblings piling up) is refused as too large instead of making an
	// object that could never be read or replicated.
	if limit := c.Limits.MaxFrameSize - netproto.HeaderSize - c.Limits.MaxKeySize - frameEnvelope; st.MaxRecordSize > limit {
		st.MaxRecordSize = limit
	}
	if st.MaxRecordSize < st.MaxValueSize {
		st.MaxRecordSize = st.MaxValueSize
	}
	if c.Cluster != nil {
		// Anti-entropy and rebalancing scan partitions (partindex.go).
		st.PartitionIndex = true
	}
	if st.Logger == nil {
		st.Logger = c.Logger
	}
	if st.Now == nil {
		st.Now = c.Now
	}
	if c.Cluster != nil {
		// The store's partitions are the ring's: rebalancing scans and
		// hands them off one by one.
		st.Partitions = cmpOr(c.Cluster.Gossip.Partitions, gossip.DefaultPartitions)
	}
	return st
}
