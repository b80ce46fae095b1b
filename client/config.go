package client

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/ecachedb/ecache/netproto"
)

// Version is this SDK's version, sent in HELLO as part of the default
// ClientName.
const Version = "0.1.0"

// Config configures a Client. Start from DefaultConfig; New treats a zero
// ConnsPerNode, DialTimeout, ClientName or Limits as the default.
type Config struct {
	// Addrs are the client addresses of the nodes ("127.0.0.1:7070"). At
	// least one is required; any node serves any key.
	Addrs []string
	// ConnsPerNode is the number of connections kept to each node. Each
	// connection pipelines any number of requests.
	ConnsPerNode int
	// DialTimeout bounds one connection attempt, HELLO included.
	DialTimeout time.Duration
	// RequestTimeout bounds a call whose context has no deadline (waiting
	// for a connection included). Zero means no timeout.
	RequestTimeout time.Duration
	// Password is sent in HELLO; empty when the server has none.
	Password string
	// ClientName is sent in HELLO, for the server's logs.
	ClientName string
	// Limits are checked before sending, so an oversized key or value fails
	// without a round trip. Keep them equal to the server's. MaxFrameSize
	// also bounds the responses the client accepts.
	Limits netproto.Limits
	// Logger receives connection events; nil discards them.
	Logger *slog.Logger
	// Routing sends each single-key request straight to one of the key's
	// replicas in a cluster (routing.go). Off by default.
	Routing RoutingConfig
	// Dialer, when set, opens the TCP connections instead of a net.Dialer:
	// a seam for tunnels and for tests that inject network faults.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
}

// DefaultConfig returns the defaults: two connections per node, 2s dials, a
// 5s request timeout, netproto.DefaultLimits. Addrs is left empty.
func DefaultConfig() Config {
	return Config{
		ConnsPerNode:   2,
		DialTimeout:    2 * time.Second,
		RequestTimeout: 5 * time.Second,
		ClientName:     "ecache-go/" + Version,
		Limits:         netproto.DefaultLimits(),
	}
}

// Validate reports the first unusable field.
func (c Config) Validate() error {
	if len(c.Addrs) == 0 {
		return fmt.Errorf("client: Config.Addrs is empty: at least one node address is required")
	}
	for i, a := range c.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("client: Config.Addrs[%d] %q: %w", i, a, err)
		}
	}
	switch {
	case c.ConnsPerNode < 0:
		return fmt.Errorf("client: Config.ConnsPerNode %d is negative", c.ConnsPerNode)
	case c.DialTimeout < 0:
		return fmt.Errorf("client: Config.DialTimeout %v is negative", c.DialTimeout)
	case c.RequestTimeout < 0:
		return fmt.Errorf("client: Config.RequestTimeout %v is negative", c.RequestTimeout)
	}
	if err := c.Routing.validate(); err != nil {
		return err
	}
	if c.Limits != (netproto.Limits{}) {
		if err := c.Limits.Validate(); err != nil {
			return fmt.Errorf("client: Config.Limits: %w", err)
		}
	}
	return nil
}

// withDefaults fills the zero fields that have defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.ConnsPerNode == 0 {
		c.ConnsPerNode = d.ConnsPerNode
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.ClientName == "" {
		c.ClientName = d.ClientName
	}
	if c.Limits == (netproto.Limits{}) {
		c.Limits = d.Limits
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Addrs = append([]string(nil), c.Addrs...)
	return c
}
