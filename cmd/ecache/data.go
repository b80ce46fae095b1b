package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/ecachedb/ecache/client"
)

// dataFlags are the flags every data command shares.
type dataFlags struct {
	addr     string
	ns       string
	password string
	timeout  time.Duration
	ttl      time.Duration
	context  string
	show     bool
	w        string // --w on writes: acknowledgements to wait for: N, quorum or all
	r        string // --r on get: replicas to read: N, quorum or all
	local    bool   // --local on get: this node's store only
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func (f *dataFlags) register(cmd *cobra.Command, withTTL, withContext bool) {
	fs := cmd.Flags()
	fs.StringVar(&f.addr, "addr", envOr("ECACHE_ADDR", "127.0.0.1:7070"), "node address (env ECACHE_ADDR)")
	fs.StringVar(&f.ns, "ns", envOr("ECACHE_NS", "default"), "namespace (env ECACHE_NS)")
	fs.StringVar(&f.password, "password", os.Getenv("ECACHE_PASSWORD"), "server password (env ECACHE_PASSWORD)")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Second, "request timeout")
	if withTTL {
		fs.DurationVar(&f.ttl, "ttl", 0, "time to live, e.g. 30s (0 = none)")
	}
	if withContext {
		fs.StringVar(&f.context, "context", "", "causal context (hex) from a previous get --show-context")
	}
}

// run dials the node, runs fn with a deadline, and closes the client.
func (f *dataFlags) run(cmd *cobra.Command, fn func(ctx context.Context, c *client.Client) error) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	cfg := client.DefaultConfig()
	cfg.Addrs = []string{f.addr}
	cfg.Password = f.password
	cfg.ConnsPerNode = 1
	c, err := client.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(ctx, c)
}

func (f *dataFlags) opts() ([]client.Option, error) {
	o := []client.Option{client.WithNamespace(f.ns)}
	if f.ttl > 0 {
		o = append(o, client.WithTTL(f.ttl))
	}
	for _, l := range []struct {
		name, v     string
		n           func(int) client.Option
		quorum, all client.Option
	}{
		{"--w", f.w, client.WithW, client.WithWQuorum(), client.WithWAll()},
		{"--r", f.r, client.WithR, client.WithRQuorum(), client.WithRAll()},
	} {
		opt, err := levelOption(l.name, l.v, l.n, l.quorum, l.all)
		if err != nil {
			return nil, err
		}
		if opt != nil {
			o = append(o, opt)
		}
	}
	if f.local {
		o = append(o, client.WithLocal())
	}
	if f.context != "" {
		cc, err := hex.DecodeString(f.context)
		if err != nil {
			return nil, fmt.Errorf("--context: not hex: %w", err)
		}
		o = append(o, client.WithCausalContext(cc))
	}
	return o, nil
}

func newDataCmds() []*cobra.Command {
	var cmds []*cobra.Command
	add := func(use, short string, args cobra.PositionalArgs, withTTL, withContext bool,
		fn func(cmd *cobra.Command, f *dataFlags, ctx context.Context, c *client.Client, args []string) error) (*cobra.Command, *dataFlags) {
		f := &dataFlags{}
		cmd := &cobra.Command{Use: use, Short: short, Args: args}
		f.register(cmd, withTTL, withContext)
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			err := f.run(cmd, func(ctx context.Context, c *client.Client) error { return fn(cmd, f, ctx, c, args) })
			if err != nil {
				return fmt.Errorf("%s %s: %w", cmd.Name(), args[0], err)
			}
			return nil
		}
		cmds = append(cmds, cmd)
		return cmd, f
	}
	out := func(cmd *cobra.Command, s string) { fmt.Fprintln(cmd.OutOrStdout(), s) }
	withW := func(cmd *cobra.Command, f *dataFlags) {
		cmd.Flags().StringVar(&f.w, "w", "", "replica acknowledgements to wait for in a cluster: N, quorum or all (default: the namespace's)")
	}

	get, getFlags := add("get KEY", "Print a key's value (each sibling on its own line)", cobra.ExactArgs(1), false, false,
		func(cmd *cobra.Command, f *dataFlags, ctx context.Context, c *client.Client, args []string) error {
			o, err := f.opts()
			if err != nil {
				return err
			}
			it, err := c.Get(ctx, args[0], o...)
			if f.show && it != nil && len(it.Context) > 0 {
				defer out(cmd, "context: "+hex.EncodeToString(it.Context))
			}
			if err != nil {
				return err
			}
			for _, v := range it.Values {
				out(cmd, string(v))
			}
			return nil
		})
	get.Flags().BoolVar(&getFlags.show, "show-context", false, "also print the causal context (hex) to pass to put/del --context")
	get.Flags().StringVar(&getFlags.r, "r", "", "replicas to read and merge in a cluster: N, quorum or all (default one); stale ones are repaired")
	get.Flags().BoolVar(&getFlags.local, "local", false, "read only the addressed node's own store (no forwarding), to check one replica")

	putCmd, putCmdFlags := add("put KEY VALUE", "Write a value", cobra.ExactArgs(2), true, true,
		func(cmd *cobra.Command, f *dataFlags, ctx context.Context, c *client.Client, args []string) error {
			o, err := f.opts()
			if err != nil {
				return err
			}
			_, err = c.Put(ctx, args[0], []byte(args[1]), o...)
			return err
		})
	withW(putCmd, putCmdFlags)
	delCmd, delCmdFlags := add("del KEY", "Delete a key", cobra.ExactArgs(1), false, true,
		func(cmd *cobra.Command, f *dataFlags, ctx context.Context, c *client.Client, args []string) error {
			o, err := f.opts()
			if err != nil {
				return err
			}
			_, err = c.Del(ctx, args[0], o...)
			return err
		})
	withW(delCmd, delCmdFlags)
	counter := func(use string, sign int64) {
		c, cf := add(use+" KEY [DELTA]", use+" a counter and print its new value (DELTA 0 reads it)", cobra.RangeArgs(1, 2), false, false,
			func(cmd *cobra.Command, f *dataFlags, ctx context.Context, c *client.Client, args []string) error {
				delta := int64(1)
				if len(args) == 2 {
					d, err := strconv.ParseInt(args[1], 10, 64)
					if err != nil {
						return fmt.Errorf("DELTA %q: not an integer", args[1])
					}
					delta = d
				}
				o, err := f.opts()
				if err != nil {
					return err
				}
				var v int64
				if sign > 0 {
					v, err = c.Incr(ctx, args[0], delta, o...)
				} else {
					v, err = c.Decr(ctx, args[0], delta, o...)
				}
				if err != nil {
					return err
				}
				out(cmd, strconv.FormatInt(v, 10))
				return nil
			})
		withW(c, cf)
		c.Example = "  ecache " + use + " hits 5 --ns counters\n  ecache " + use + " hits --ns counters -- -5   # a negative DELTA goes after --"
	}
	counter("incr", 1)
	counter("decr", -1)
	members := func(args []string) [][]byte {
		m := make([][]byte, len(args))
		for i, a := range args {
			m[i] = []byte(a)
		}
		return m
	}
	saddCmd, saddCmdFlags := add("sadd KEY MEMBER...", "Add members to a set", cobra.MinimumNArgs(2), false, false,
		func(cmd *cobra.Command, f *dataFlags, ctx context.Context, c *client.Client, args []string) error {
			o, err := f.opts()
			if err != nil {
				return err
			}
			return c.SAdd(ctx, args[0], members(args[1:]), o...)
		})
	withW(saddCmd, saddCmdFlags)
	sremCmd, sremCmdFlags := add("srem KEY MEMBER...", "Remove members from a set", cobra.MinimumNArgs(2), false, false,
		func(cmd *cobra.Command, f *dataFlags, ctx context.Context, c *client.Client, args []string) error {
			o, err := f.opts()
			if err != nil {
				return err
			}
			return c.SRem(ctx, args[0], members(args[1:]), o...)
		})
	withW(sremCmd, sremCmdFlags)
	_, _ = add("smembers KEY", "Print a set's members, one per line", cobra.ExactArgs(1), false, false,
		func(cmd *cobra.Command, f *dataFlags, ctx context.Context, c *client.Client, args []string) error {
			o, err := f.opts()
			if err != nil {
				return err
			}
			ms, err := c.SMembers(ctx, args[0], o...)
			if err != nil {
				return err
			}
			for _, m := range ms {
				out(cmd, string(m))
			}
			return nil
		})
	expireCmd, expireCmdFlags := add("expire KEY TTL", "Set a key's time to live (e.g. 30s; 0 removes it)", cobra.ExactArgs(2), false, false,
		func(cmd *cobra.Command, f *dataFlags, ctx context.Context, c *client.Client, args []string) error {
			d, err := parseTTL(args[1])
			if err != nil {
				return err
			}
			o, err := f.opts()
			if err != nil {
				return err
			}
			return c.Expire(ctx, args[0], d, o...)
		})
	withW(expireCmd, expireCmdFlags)
	_, _ = add("ttl KEY", "Print a key's remaining time to live (\"none\" without expiry)", cobra.ExactArgs(1), false, false,
		func(cmd *cobra.Command, f *dataFlags, ctx context.Context, c *client.Client, args []string) error {
			o, err := f.opts()
			if err != nil {
				return err
			}
			d, err := c.TTL(ctx, args[0], o...)
			if err != nil {
				return err
			}
			if d == 0 {
				out(cmd, "none")
			} else {
				out(cmd, d.Round(time.Millisecond).String())
			}
			return nil
		})
	return cmds
}

// levelOption parses a --w or --r value: a replica count, quorum or all;
// nil for "" and 0 (the namespace's default).
func levelOption(name, v string, n func(int) client.Option, quorum, all client.Option) (client.Option, error) {
	switch v {
	case "", "0":
		return nil, nil
	case "quorum":
		return quorum, nil
	case "all":
		return all, nil
	}
	c, err := strconv.Atoi(v)
	if err != nil || c < 0 {
		return nil, fmt.Errorf("%s %q: want a replica count, quorum or all", name, v)
	}
	return n(c), nil
}

// parseTTL accepts a Go duration (30s, 1h) or a whole number of seconds.
func parseTTL(s string) (time.Duration, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return 0, errors.New("TTL must not be negative")
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("TTL %q: want a duration like 30s or whole seconds", s)
	}
	return d, nil
}
