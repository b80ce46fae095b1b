package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ecachedb/ecache/gossip"
	"github.com/ecachedb/ecache/gossip/ring"
	"github.com/ecachedb/ecache/node"
	"github.com/ecachedb/ecache/storage"
)

var serveOptions = []option{
	{name: "listen", def: "127.0.0.1:7070", usage: "client address of the binary protocol"},
	{name: "resp-listen", def: "127.0.0.1:6380", usage: "Redis-protocol (RESP) address for redis-cli and Redis clients; \"off\" disables"},
	{name: "resp-strings", def: "default", usage: "namespace of Redis string commands (lww or siblings)"},
	{name: "resp-counters", def: "counters", usage: "namespace of Redis INCR/DECR commands (counter; created when not configured)"},
	{name: "resp-sets", def: "sets", usage: "namespace of Redis set commands (set; created when not configured)"},
	{name: "admin-listen", def: "127.0.0.1:7071", usage: "admin HTTP address (/healthz, /readyz, /metrics, /debug/pprof); \"off\" disables"},
	{name: "data-dir", def: "./ecache-data", usage: "data directory"},
	{name: "persistence", def: "async", usage: "none | async | sync"},
	{name: "memory-limit", def: "512MiB", usage: "memory tier size, e.g. 512MiB, 2GB"},
	{name: "namespace", list: true, usage: "NAME=STRATEGY (lww, siblings, counter, set); repeatable; default=lww is always there"},
	{name: "password", usage: "password clients must give in HELLO"},
	{name: "max-key-size", def: "8KiB", usage: "largest key"},
	{name: "max-value-size", def: "4MiB", usage: "largest value or set member"},
	{name: "max-conns", def: "10000", usage: "most client connections"},
	{name: "idle-timeout", def: "0", usage: "close client connections idle this long (0 = never)"},
	{name: "drain-timeout", def: "10s", usage: "how long shutdown waits for requests in flight"},
	{name: "log-level", def: "info", usage: "debug | info | warn | error"},
	{name: "cluster", usage: "start a new cluster (of this one node until others join); also implied by --join or --cluster-key"},
	{name: "join", list: true, usage: "HOST:PORT of a cluster member's gossip address to join through; repeatable or comma-separated"},
	{name: "gossip-listen", def: gossip.DefaultBindAddr, usage: "gossip (memberlist) address, UDP and TCP, IP:port (port 0 picks one); cluster mode only"},
	{name: "node-name", usage: "this node's unique gossip name (default \"ecache-\" + its node ID)"},
	{name: "cluster-key", usage: "the cluster's shared secret: encrypts gossip and authenticates peers; required in cluster mode"},
	{name: "partitions", def: strconv.Itoa(gossip.DefaultPartitions), usage: "partition count, fixed at cluster creation; a node with a different one is refused"},
	{name: "replicas", def: strconv.Itoa(gossip.DefaultReplicas), usage: "N, replicas of each partition"},
	{name: "gossip-profile", def: gossip.ProfileLocal, usage: "gossip timers: local (memberlist's local config: fast failure detection, one host or rack) or lan"},
	{name: "leave-timeout", def: "30s", usage: "on shutdown, how long to hand partitions off to their next owners before leaving the cluster (0 = leave at once)"},
	{name: "ae-interval", def: "30s", usage: "anti-entropy: time between rounds exchanging every partition with its other replicas; 0 or \"off\" disables"},
	{name: "ae-rate-keys", def: "20000", usage: "anti-entropy: most keys repaired (pushed or pulled) per second; 0 = unlimited"},
	{name: "ae-rate-bytes", def: "32MiB", usage: "anti-entropy: most bytes of exchange messages per second; 0 = unlimited"},
	{name: "read-repair", def: "true", usage: "repair stale replicas met by R>1 reads (false: only anti-entropy repairs)"},
	{name: "hinted-handoff", def: "true", usage: "keep hints for replicas that are down and deliver them when they return (false: drop them)"},
}

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run an ecache node",
		Long: "Run an ecache node. Every flag can also be set with an ECACHE_* environment variable\n" +
			"(ECACHE_MEMORY_LIMIT=1GiB) or in a YAML file given with --config (memory-limit: 1GiB);\n" +
			"a flag beats the environment, which beats the file, which beats the default.",
		Args: cobra.NoArgs,
	}
	fs := cmd.Flags()
	fs.String("config", "", "YAML config file (env ECACHE_CONFIG)")
	for _, o := range serveOptions {
		if o.list {
			fs.StringArray(o.name, nil, o.usage)
		} else {
			fs.String(o.name, o.def, o.usage)
		}
	}
	fs.Lookup("cluster").NoOptDefVal = "true" // --cluster alone means --cluster=true
	fs.Lookup("read-repair").NoOptDefVal = "true"
	fs.Lookup("hinted-handoff").NoOptDefVal = "true"
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		path, _ := fs.GetString("config")
		if !fs.Changed("config") {
			path = os.Getenv("ECACHE_CONFIG")
		}
		vals, err := resolve(fs, serveOptions, path)
		if err != nil {
			return err
		}
		return serve(cmd.Context(), vals)
	}
	return cmd
}

func one(vals map[string][]string, name string) string {
	if v := vals[name]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

// nodeConfig turns resolved option values into a node configuration.
func nodeConfig(vals map[string][]string, logger *slog.Logger) (node.Config, error) {
	cfg := node.DefaultConfig()
	cfg.Logger = logger
	cfg.Version = version
	cfg.Listen = one(vals, "listen")
	if a := one(vals, "resp-listen"); a != "off" {
		cfg.RESPListen = a
	}
	cfg.RESP.Strings = one(vals, "resp-strings")
	cfg.RESP.Counters = one(vals, "resp-counters")
	cfg.RESP.Sets = one(vals, "resp-sets")
	cfg.DataDir = one(vals, "data-dir")
	cfg.Password = one(vals, "password")
	p, err := storage.ParsePersistence(one(vals, "persistence"))
	if err != nil {
		return cfg, fmt.Errorf("--persistence: %w", err)
	}
	cfg.Storage.Persistence = p
	if cfg.Storage.MemoryLimit, err = parseBytes(one(vals, "memory-limit")); err != nil {
		return cfg, fmt.Errorf("--memory-limit: %w", err)
	}
	ks, err := parseBytes(one(vals, "max-key-size"))
	if err != nil {
		return cfg, fmt.Errorf("--max-key-size: %w", err)
	}
	vs, err := parseBytes(one(vals, "max-value-size"))
	if err != nil {
		return cfg, fmt.Errorf("--max-value-size: %w", err)
	}
	cfg.Limits.MaxKeySize, cfg.Limits.MaxValueSize = int(ks), int(vs)
	if cfg.Limits.MaxFrameSize < int(vs)+int(ks)+4096 {
		cfg.Limits.MaxFrameSize = int(vs) + int(ks) + 4096
	}
	if cfg.Server.MaxConns, err = strconv.Atoi(one(vals, "max-conns")); err != nil {
		return cfg, fmt.Errorf("--max-conns: %w", err)
	}
	if cfg.Server.IdleTimeout, err = parseDuration(one(vals, "idle-timeout")); err != nil {
		return cfg, fmt.Errorf("--idle-timeout: %w", err)
	}
	cfg.RESP.Server.MaxConns = cfg.Server.MaxConns
	cfg.RESP.Server.IdleTimeout = cfg.Server.IdleTimeout
	for _, ns := range vals["namespace"] {
		name, strat, ok := strings.Cut(ns, "=")
		if !ok || name == "" || strat == "" {
			return cfg, fmt.Errorf("--namespace %q: want NAME=STRATEGY", ns)
		}
		cfg.Namespaces[name] = strat
	}
	cc, err := clusterConfig(vals)
	if err != nil {
		return cfg, err
	}
	cfg.Cluster = cc
	return cfg, cfg.Validate()
}

// clusterConfig returns the cluster configuration, nil for a single node.
// Cluster mode is on with --cluster, --join or --cluster-key.
func clusterConfig(vals map[string][]string) (*node.ClusterConfig, error) {
	on := false
	if v := one(vals, "cluster"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("--cluster: %q is not true or false", v)
		}
		on = b
	}
	var join []string
	for _, j := range vals["join"] {
		join = append(join, splitList(j)...)
	}
	key := one(vals, "cluster-key")
	if !on && len(join) == 0 && key == "" {
		return nil, nil
	}
	if key == "" {
		return nil, errors.New("cluster mode (--cluster or --join) needs --cluster-key (env ECACHE_CLUSTER_KEY): " +
			"the shared secret that encrypts gossip and authenticates peers; every node must use the same one")
	}
	parts, err := strconv.Atoi(one(vals, "partitions"))
	if err != nil || parts < 1 || parts > ring.MaxPartitions {
		return nil, fmt.Errorf("--partitions %q: want a whole number in [1, %d]", one(vals, "partitions"), ring.MaxPartitions)
	}
	reps, err := strconv.Atoi(one(vals, "replicas"))
	if err != nil || reps < 1 {
		return nil, fmt.Errorf("--replicas %q: want a whole number of at least 1", one(vals, "replicas"))
	}
	g := gossip.DefaultConfig()
	g.BindAddr = one(vals, "gossip-listen")
	g.NodeName = one(vals, "node-name")
	g.Join = join
	g.Partitions = parts
	g.Replicas = reps
	g.Profile = one(vals, "gossip-profile")
	if g.Profile != gossip.ProfileLocal && g.Profile != gossip.ProfileLAN {
		return nil, fmt.Errorf("--gossip-profile %q: want %s or %s", g.Profile, gossip.ProfileLocal, gossip.ProfileLAN)
	}
	leave, err := parseDuration(one(vals, "leave-timeout"))
	if err != nil || leave < 0 {
		return nil, fmt.Errorf("--leave-timeout %q: want a duration such as 30s (0 leaves at once)", one(vals, "leave-timeout"))
	}
	if leave == 0 {
		leave = -1 // node.ClusterConfig: negative is no handoff
	}
	cc := &node.ClusterConfig{Gossip: g, Replicas: reps, ClusterKey: key, LeaveTimeout: leave}
	if err := antiEntropyConfig(vals, cc); err != nil {
		return nil, err
	}
	return cc, nil
}

// antiEntropyConfig sets cc's anti-entropy options and switches.
func antiEntropyConfig(vals map[string][]string, cc *node.ClusterConfig) error {
	iv := one(vals, "ae-interval")
	if iv == "off" {
		iv = "0"
	}
	d, err := parseDuration(iv)
	if err != nil || d < 0 {
		return fmt.Errorf("--ae-interval %q: want a duration such as 30s, or 0/off", one(vals, "ae-interval"))
	}
	cc.AntiEntropy.Interval = d
	if d == 0 {
		cc.AntiEntropy.Interval = -1 // off
	}
	keys, err := strconv.Atoi(one(vals, "ae-rate-keys"))
	if err != nil || keys < 0 {
		return fmt.Errorf("--ae-rate-keys %q: want a whole number of keys per second, 0 for unlimited", one(vals, "ae-rate-keys"))
	}
	cc.AntiEntropy.RateKeys = cmpOr(keys, -1)
	bytes, err := parseBytes(one(vals, "ae-rate-bytes"))
	if err != nil || bytes < 0 {
		return fmt.Errorf("--ae-rate-bytes %q: want a size per second such as 32MiB, 0 for unlimited", one(vals, "ae-rate-bytes"))
	}
	cc.AntiEntropy.RateBytes = cmpOr(bytes, -1)
	for name, off := range map[string]*bool{"read-repair": &cc.NoReadRepair, "hinted-handoff": &cc.NoHintedHandoff} {
		on, err := strconv.ParseBool(one(vals, name))
		if err != nil {
			return fmt.Errorf("--%s: %q is not true or false", name, one(vals, name))
		}
		*off = !on
	}
	return nil
}

// cmpOr returns v, or def when v is zero.
func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func parseDuration(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	return time.ParseDuration(s)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}

func serve(ctx context.Context, vals map[string][]string) error {
	level, err := parseLevel(one(vals, "log-level"))
	if err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := nodeConfig(vals, logger)
	if err != nil {
		return err
	}
	drain, err := parseDuration(one(vals, "drain-timeout"))
	if err != nil {
		return fmt.Errorf("--drain-timeout: %w", err)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	n, err := node.Open(cfg)
	if err != nil {
		return err
	}
	var admin *node.AdminServer
	if a := one(vals, "admin-listen"); a != "" && a != "off" {
		if admin, err = node.StartAdmin(n, a); err != nil {
			n.Close(context.Background())
			return err
		}
	}
	adminAddr := "off"
	if admin != nil {
		adminAddr = admin.Addr()
	}
	gossipAddr := "off"
	if m := n.Membership(); m != nil {
		gossipAddr = m.Addr()
		if admin != nil {
			// Open joined before the admin server existed: advertise it now.
			mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := n.SetAdminAddr(mctx, adminAddr); err != nil {
				logger.Warn("advertising the admin address to the cluster", "err", err)
			}
			cancel()
		}
	}
	respAddr := "off"
	if a := n.RESPAddr(); a != "" {
		respAddr = a
	}
	logger.Info("ecache serving", "version", version, "listen", n.Addr(), "admin", adminAddr, "resp", respAddr,
		"data_dir", cfg.DataDir, "persistence", cfg.Storage.Persistence, "node_id", n.ID(), "gossip", gossipAddr)
	<-ctx.Done()
	logger.Info("shutting down: draining connections and flushing")
	if cfg.Cluster != nil && cfg.Cluster.LeaveTimeout > 0 {
		drain += cfg.Cluster.LeaveTimeout // Close hands partitions off first
	}
	dctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	// Close the node first: /readyz answers 503 while it drains.
	errs := []error{n.Close(dctx)}
	if admin != nil {
		errs = append(errs, admin.Close(dctx))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}
