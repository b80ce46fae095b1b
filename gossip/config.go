package gossip

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/ecachedb/ecache/gossip/ring"
	"github.com/ecachedb/ecache/vclock"
)

// Defaults.
const (
	DefaultBindAddr   = "127.0.0.1:7946"
	DefaultPartitions = 1024
	DefaultReplicas   = 3

	maxPartitions = ring.MaxPartitions
)

// Config configures a Membership.
type Config struct {
	// NodeID is this node's identity (vclock.NodeID, persisted with its
	// data). Required.
	NodeID vclock.NodeID
	// NodeName is the node's unique name in the gossip layer. Empty means
	// "ecache-" followed by the node ID in hex; it is never the host name,
	// so several nodes on one host do not collide.
	NodeName string
	// BindAddr is the IP:port memberlist listens on, UDP and TCP. Port 0
	// picks a free port (see Membership.Addr).
	BindAddr string
	// AdvertiseAddr is the IP:port other nodes reach this one at; empty
	// means the bound address.
	AdvertiseAddr string
	// Join lists host:port seeds. Open joins through any one that answers;
	// an empty list starts a new cluster.
	Join []string
	// ClusterKey, when not empty, turns on memberlist's encryption and
	// authentication of all gossip: the AES-256 key is the SHA-256 of this
	// passphrase. Nodes without the same key cannot join or talk.
	ClusterKey string
	// Partitions is the cluster's fixed partition count. A node whose count
	// differs from the cluster's is refused.
	Partitions int
	// Replicas is N, the length of each partition's preference list.
	Replicas int
	// Meta is advertised to the other nodes.
	Meta Meta
	// Logger receives memberlist's log lines and membership changes; nil
	// discards them.
	Logger *slog.Logger
	// Tuning overrides memberlist's timers; zero fields keep the values of
	// memberlist.DefaultLocalConfig. Tests shorten them.
	Tuning Tuning
	// WrapTransport, when set, wraps the transport memberlist sends and
	// receives through (a memberlist.NetTransport bound to BindAddr): a
	// seam for tests that inject network faults (internal/clustertest).
	// The wrapper's Shutdown must shut the inner transport down.
	WrapTransport func(inner memberlist.Transport) memberlist.Transport
	// Profile picks the base of memberlist's timers: ProfileLocal (the
	// default, memberlist.DefaultLocalConfig: loopback or one rack) or
	// ProfileLAN (memberlist.DefaultLANConfig: slower probes and syncs,
	// more tolerant of a busy network). Tuning overrides single timers.
	Profile string
}

// Gossip timing profiles (Config.Profile).
const (
	ProfileLocal = "local"
	ProfileLAN   = "lan"
)

// Tuning holds the failure-detector and gossip timers. Zero means the
// profile's value (ProfileLocal's in parentheses).
type Tuning struct {
	ProbeInterval    time.Duration // (1s) between failure probes
	ProbeTimeout     time.Duration // (200ms) to wait for a probe's ack
	GossipInterval   time.Duration // (100ms) between gossip rounds
	PushPullInterval time.Duration // (15s) between full state syncs
	TCPTimeout       time.Duration // (1s) for stream connections, joins included
	SuspicionMult    int           // (3) suspicion timeout multiplier
	// DeadRetention is how long Members keeps reporting a dead or left
	// node (default 1h).
	DeadRetention time.Duration
}

// DefaultConfig returns the defaults; NodeID must still be set.
func DefaultConfig() Config {
	return Config{
		BindAddr:   DefaultBindAddr,
		Partitions: DefaultPartitions,
		Replicas:   DefaultReplicas,
	}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	if c.NodeID == 0 {
		return fmt.Errorf("%w: NodeID is zero", ErrConfig)
	}
	if _, err := parseIPPort(c.BindAddr); err != nil {
		return fmt.Errorf("%w: BindAddr %q: %v", ErrConfig, c.BindAddr, err)
	}
	if c.AdvertiseAddr != "" {
		if ap, err := parseIPPort(c.AdvertiseAddr); err != nil || ap.Port() == 0 || ap.Addr().IsUnspecified() {
			return fmt.Errorf("%w: AdvertiseAddr %q: want a specific IP and a non-zero port", ErrConfig, c.AdvertiseAddr)
		}
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return fmt.Errorf("%w: Join address %q: %v", ErrConfig, j, err)
		}
	}
	switch c.Profile {
	case "", ProfileLocal, ProfileLAN:
	default:
		return fmt.Errorf("%w: Profile %q: want %q or %q", ErrConfig, c.Profile, ProfileLocal, ProfileLAN)
	}
	if c.Partitions < 1 || c.Partitions > maxPartitions {
		return fmt.Errorf("%w: Partitions %d not in [1, %d]", ErrConfig, c.Partitions, maxPartitions)
	}
	if c.Replicas < 1 {
		return fmt.Errorf("%w: Replicas %d < 1", ErrConfig, c.Replicas)
	}
	m := nodeMeta{ID: c.NodeID, Partitions: uint32(c.Partitions), Meta: c.Meta}
	if n := len(m.appendTo(nil)); n > memberlist.MetaMaxSize {
		return fmt.Errorf("%w: Meta encodes to %d bytes, over memberlist's %d", ErrConfig, n, memberlist.MetaMaxSize)
	}
	if len(c.NodeName) > 128 {
		return fmt.Errorf("%w: NodeName longer than 128 bytes", ErrConfig)
	}
	t := c.Tuning
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"ProbeInterval", t.ProbeInterval}, {"ProbeTimeout", t.ProbeTimeout}, {"GossipInterval", t.GossipInterval},
		{"PushPullInterval", t.PushPullInterval}, {"TCPTimeout", t.TCPTimeout}, {"DeadRetention", t.DeadRetention}} {
		if d.v < 0 {
			return fmt.Errorf("%w: Tuning.%s is negative", ErrConfig, d.name)
		}
	}
	if t.SuspicionMult < 0 {
		return fmt.Errorf("%w: Tuning.SuspicionMult is negative", ErrConfig)
	}
	return nil
}

// nodeName is NodeName or the name derived from NodeID.
func (c *Config) nodeName() string {
	if c.NodeName != "" {
		return c.NodeName
	}
	return "ecache-" + c.NodeID.String()
}

// parseIPPort parses an IP literal and port. Host names are refused:
// memberlist would silently listen on every interface for one it cannot
// parse as an IP.
func parseIPPort(s string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("host must be an IP address: %v", err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port %q", port)
	}
	return netip.AddrPortFrom(ip, uint16(p)), nil
}
