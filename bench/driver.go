package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/ecachedb/ecache/client"
)

// Op is one request.
type Op struct {
	Get   bool
	Key   string
	Value []byte // SET only
}

// Result is one request's outcome.
type Result struct {
	Hit bool // a GET found the key
	Err error
}

// Driver sends requests to one target. Do is called concurrently by
// Workers goroutines, each with batches of at most Batch operations.
type Driver interface {
	// Do sends ops (in one pipeline when there are several) and fills res.
	Do(ctx context.Context, ops []Op, res []Result)
	// Workers is the number of concurrent callers of Do the driver wants.
	Workers() int
	// Batch is the number of operations per Do call.
	Batch() int
	Close() error
}

// Dial opens a driver for target: ecache://[:password@]HOST:PORT[?ns=NS]
// (native protocol via the Go SDK) or redis://… (RESP via go-redis; any
// go-redis URL). conns is the number of connections; pipeline the requests
// in flight per connection.
func Dial(ctx context.Context, target string, conns, pipeline int) (Driver, error) {
	if conns < 1 || pipeline < 1 {
		return nil, fmt.Errorf("conns %d, pipeline %d: both must be at least 1", conns, pipeline)
	}
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("target %q: %w", target, err)
	}
	switch u.Scheme {
	case "ecache":
		// ecache://HOST:PORT, or several nodes: ecache://H1:P1,H2:P2 (the
		// client spreads requests over them).
		addrs := strings.Split(u.Host, ",")
		for _, a := range addrs {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return nil, fmt.Errorf("target %q: want ecache://HOST:PORT[,HOST:PORT...]: %w", target, err)
			}
		}
		cfg := client.DefaultConfig()
		cfg.Addrs = addrs
		cfg.ConnsPerNode = conns
		cfg.ClientName = "ecache-bench"
		if p, ok := u.User.Password(); ok {
			cfg.Password = p
		} else if u.User != nil {
			cfg.Password = u.User.Username()
		}
		c, err := client.New(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("target %q: %w", target, err)
		}
		ns := u.Query().Get("ns")
		if ns == "" {
			ns = "default"
		}
		d := &sdkDriver{c: c, conns: conns, pipeline: pipeline}
		if ns != client.DefaultNamespace {
			// Options cost a closure call per request: none for the default.
			d.ns = []client.Option{client.WithNamespace(ns)}
		}
		return d, nil
	case "redis", "rediss":
		opt, err := redis.ParseURL(target)
		if err != nil {
			return nil, fmt.Errorf("target %q: %w", target, err)
		}
		opt.PoolSize = conns
		opt.MinIdleConns = conns
		opt.MaxIdleConns = conns
		opt.Protocol = 2
		opt.DisableIndentity = true
		opt.ContextTimeoutEnabled = true
		c := redis.NewClient(opt)
		if err := c.Ping(ctx).Err(); err != nil {
			c.Close()
			return nil, fmt.Errorf("target %q: %w", target, err)
		}
		return &redisDriver{c: c, conns: conns, pipeline: pipeline}, nil
	}
	return nil, fmt.Errorf("target %q: scheme must be ecache:// or redis://", target)
}

// sdkDriver runs conns goroutines over a client with conns connections,
// each sending batches of `pipeline` requests with the SDK's Pipeline (one
// write, one wake-up per batch), the same shape as the RESP driver.
type sdkDriver struct {
	c        *client.Client
	ns       []client.Option
	conns    int
	pipeline int
	// pipes holds idle *client.Pipeline, one per concurrent Do at most.
	pipes sync.Pool
}

func (d *sdkDriver) Workers() int { return d.conns }
func (d *sdkDriver) Batch() int   { return d.pipeline }
func (d *sdkDriver) Close() error { return d.c.Close() }

func (d *sdkDriver) Do(ctx context.Context, ops []Op, res []Result) {
	p, _ := d.pipes.Get().(*client.Pipeline)
	if p == nil {
		p = d.c.Pipeline()
	}
	defer d.pipes.Put(p)
	p.Reset()
	for i := range ops {
		if ops[i].Get {
			p.Get(ops[i].Key, d.ns...)
		} else {
			p.Put(ops[i].Key, ops[i].Value, d.ns...)
		}
	}
	if err := p.Exec(ctx); err != nil {
		for i := range res {
			res[i] = Result{Err: err}
		}
		return
	}
	for i, r := range p.Results() {
		switch {
		case r.Err == nil:
			res[i] = Result{Hit: ops[i].Get}
		case ops[i].Get && errors.Is(r.Err, client.ErrNotFound):
			res[i] = Result{}
		default:
			res[i] = Result{Err: r.Err}
		}
	}
}

// redisDriver runs conns goroutines over a pool of conns connections, each
// sending pipelines of `pipeline` commands.
type redisDriver struct {
	c               *redis.Client
	conns, pipeline int
}

func (d *redisDriver) Workers() int { return d.conns }
func (d *redisDriver) Batch() int   { return d.pipeline }
func (d *redisDriver) Close() error { return d.c.Close() }

func (d *redisDriver) Do(ctx context.Context, ops []Op, res []Result) {
	if len(ops) == 1 {
		res[0] = redisResult(ops[0], d.one(ctx, ops[0]))
		return
	}
	cmds := make([]redis.Cmder, len(ops))
	_, err := d.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, op := range ops {
			if op.Get {
				cmds[i] = p.Get(ctx, op.Key)
			} else {
				cmds[i] = p.Set(ctx, op.Key, op.Value, 0)
			}
		}
		return nil
	})
	for i, op := range ops {
		e := err
		if cmds[i] != nil {
			e = cmds[i].Err()
		}
		res[i] = redisResult(op, e)
	}
}

func (d *redisDriver) one(ctx context.Context, op Op) error {
	if op.Get {
		return d.c.Get(ctx, op.Key).Err()
	}
	return d.c.Set(ctx, op.Key, op.Value, 0).Err()
}

func redisResult(op Op, err error) Result {
	switch {
	case err == nil:
		return Result{Hit: op.Get}
	case op.Get && errors.Is(err, redis.Nil):
		return Result{}
	}
	return Result{Err: err}
}

// redact hides a password in a target URL for reports.
func redact(target string) string {
	u, err := url.Parse(target)
	if err != nil || u.User == nil {
		return target
	}
	u.User = url.User("xxx")
	return strings.Replace(u.String(), "xxx@", "***@", 1)
}
