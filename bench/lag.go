package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ecachedb/ecache/client"
	"github.com/ecachedb/ecache/gossip/ring"
	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/storage"
	"github.com/ecachedb/ecache/vclock"
)

// Replication lag (issue #7 item 2): write a fresh key through one node,
// then poll each of the key's replicas with local reads (GET with the local
// flag: that node's own store, no forwarding) until every one of them
// shows the value. A sample's lag is the time from the start of the write
// to the moment the last replica was seen holding it, so it includes the
// write's own round trip; the write's latency is reported beside it. The
// resolution is one local read's round trip (tens of µs on loopback).

// LagOptions configure a replication-lag run.
type LagOptions struct {
	// Target is the node writes go to: ecache://[:password@]HOST:PORT[?ns=NS].
	Target string
	// Replicas are the client addresses (HOST:PORT) polled for every key.
	// Empty: discovered from Target's cluster view (CLUSTER), each key's
	// replicas computed from the ring, so N below the cluster size works.
	Replicas []string
	// Samples is the number of writes measured; 0 means 1000.
	Samples int
	// ValueSize is the size of each written value; 0 means 100.
	ValueSize int
	// Timeout bounds one sample's wait for its replicas; 0 means 5s. A
	// sample that times out is counted, not measured.
	Timeout time.Duration
	// PollInterval is the pause between two local reads of one replica;
	// 0 polls back to back (the finest resolution, but the pollers then
	// compete with the nodes for CPU on a small machine).
	PollInterval time.Duration
	// Options are passed to every write (WithW, WithWQuorum, …).
	Options []client.Option
	// Seed makes the sample keys distinct across runs.
	Seed uint64
}

// LagReport is a replication-lag run's result.
type LagReport struct {
	Target   string   `json:"target"`
	Replicas []string `json:"replicas"` // every address polled
	Samples  int      `json:"samples"`  // samples measured
	Timeouts int      `json:"timeouts"` // samples some replica never showed in time
	Errors   int      `json:"errors"`   // writes or polls that failed
	// FirstError is the first failure, if any.
	FirstError string `json:"first_error,omitempty"`
	// Lag is write start to last replica visible; Write is the write's
	// own latency (start to acknowledgement). Microseconds.
	Lag   Latency `json:"lag_us"`
	Write Latency `json:"write_us"`
}

// lagTarget is a parsed ecache:// target.
type lagTarget struct {
	addr, password, ns string
}

func parseLagTarget(target string) (lagTarget, error) {
	u, err := url.Parse(target)
	if err != nil {
		return lagTarget{}, fmt.Errorf("target %q: %w", target, err)
	}
	if u.Scheme != "ecache" {
		return lagTarget{}, fmt.Errorf("target %q: replication lag needs an ecache:// target", target)
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return lagTarget{}, fmt.Errorf("target %q: want ecache://HOST:PORT: %w", target, err)
	}
	t := lagTarget{addr: u.Host, ns: u.Query().Get("ns")}
	if p, ok := u.User.Password(); ok {
		t.password = p
	} else if u.User != nil {
		t.password = u.User.Username()
	}
	if t.ns == "" {
		t.ns = client.DefaultNamespace
	}
	return t, nil
}

func dialLag(ctx context.Context, addr, password string) (*client.Client, error) {
	cfg := client.DefaultConfig()
	cfg.Addrs = []string{addr}
	cfg.Password = password
	cfg.ConnsPerNode = 1
	cfg.ClientName = "ecache-bench-lag"
	c, err := client.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	return c, nil
}

// lagView maps keys to the replicas to poll.
type lagView struct {
	fixed      []string                 // Replicas given: poll all of them
	partitions int                      // else: the cluster's ring
	ring       *ring.Ring               //
	addrs      map[vclock.NodeID]string //
}

func (v *lagView) replicas(ns, key string) []string {
	if v.fixed != nil {
		return v.fixed
	}
	var out []string
	for _, id := range v.ring.Owners(storage.PartitionOf([]byte(ns), []byte(key), v.partitions)) {
		out = append(out, v.addrs[id])
	}
	return out
}

// discover reads the target's cluster view.
func discover(ctx context.Context, c *client.Client) (*lagView, error) {
	var resp netproto.ClusterResponse
	if err := c.Do(ctx, netproto.OpCluster, &netproto.ClusterRequest{}, &resp); err != nil {
		return nil, fmt.Errorf("asking the target for its cluster: %w", err)
	}
	if resp.Partitions == 0 {
		return nil, errors.New("the target is not in a cluster: give the replicas' addresses")
	}
	v := &lagView{partitions: int(resp.Partitions), addrs: map[vclock.NodeID]string{}}
	var ids []vclock.NodeID
	for _, m := range resp.Members {
		if m.State == netproto.MemberAlive && m.ClientAddr != "" {
			ids = append(ids, vclock.NodeID(m.ID))
			v.addrs[vclock.NodeID(m.ID)] = m.ClientAddr
		}
	}
	r, err := ring.New(int(resp.Partitions), max(int(resp.Replicas), 1), ids)
	if err != nil {
		return nil, err
	}
	v.ring = r
	return v, nil
}

// RunLag measures replication lag. The report is returned with what was
// measured even when ctx ends early (with ctx's error).
func RunLag(ctx context.Context, o LagOptions) (*LagReport, error) {
	if o.Samples == 0 {
		o.Samples = 1000
	}
	if o.ValueSize == 0 {
		o.ValueSize = 100
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	switch {
	case o.Samples < 0, o.ValueSize < 0, o.Timeout < 0, o.PollInterval < 0:
		return nil, fmt.Errorf("samples %d, value size %d, timeout %v, poll interval %v: none may be negative", o.Samples, o.ValueSize, o.Timeout, o.PollInterval)
	}
	t, err := parseLagTarget(o.Target)
	if err != nil {
		return nil, err
	}
	w, err := dialLag(ctx, t.addr, t.password)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	view := &lagView{fixed: o.Replicas}
	if len(o.Replicas) == 0 {
		if view, err = discover(ctx, w); err != nil {
			return nil, err
		}
	}
	readers := map[string]*client.Client{}
	defer func() {
		for _, c := range readers {
			c.Close()
		}
	}()
	reader := func(addr string) (*client.Client, error) {
		if c := readers[addr]; c != nil {
			return c, nil
		}
		c, err := dialLag(ctx, addr, t.password)
		if err != nil {
			return nil, err
		}
		readers[addr] = c
		return c, nil
	}
	rep := &LagReport{Target: redact(o.Target)}
	polled := map[string]bool{}
	lag, wr := NewHistogram(), NewHistogram()
	fail := func(err error) {
		rep.Errors++
		if rep.FirstError == "" {
			rep.FirstError = err.Error()
		}
	}
	ns := client.WithNamespace(t.ns)
	wopts := append([]client.Option{ns}, o.Options...)
	pad := make([]byte, o.ValueSize)
	for i := 0; i < o.Samples && ctx.Err() == nil; i++ {
		key := "lag:" + strconv.FormatUint(o.Seed, 10) + ":" + strconv.Itoa(i)
		// The value starts with the sample's number, so an earlier
		// sample's or run's copy is never taken for this one.
		value := strconv.AppendInt(nil, int64(i), 10)
		value = append(value, ':')
		if len(value) < o.ValueSize {
			value = append(value, pad[:o.ValueSize-len(value)]...)
		}
		want := string(value)
		var cls []*client.Client
		for _, a := range view.replicas(t.ns, key) {
			c, err := reader(a)
			if err != nil {
				return rep, err
			}
			cls = append(cls, c)
			if !polled[a] {
				polled[a] = true
				rep.Replicas = append(rep.Replicas, a)
			}
		}
		start := time.Now()
		if _, err := w.Put(ctx, key, value, wopts...); err != nil {
			fail(err)
			continue
		}
		acked := time.Since(start)
		last, ok, err := waitVisible(ctx, cls, key, want, ns, o.PollInterval, start.Add(o.Timeout))
		switch {
		case err != nil:
			fail(err)
		case !ok:
			rep.Timeouts++
		default:
			rep.Samples++
			_ = lag.RecordValue(micros(last.Sub(start)))
			_ = wr.RecordValue(micros(acked))
		}
	}
	rep.Lag, rep.Write = Summarize(lag), Summarize(wr)
	return rep, ctx.Err()
}

// waitVisible polls every client (one goroutine each) with local reads of
// key until it returns want, and returns when the last one did. ok is false
// when deadline passed first.
func waitVisible(ctx context.Context, cls []*client.Client, key, want string, ns client.Option, every time.Duration, deadline time.Time) (last time.Time, ok bool, err error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	type seen struct {
		at  time.Time
		err error
	}
	out := make([]seen, len(cls))
	var wg sync.WaitGroup
	for i, c := range cls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				it, err := c.Get(ctx, key, ns, client.WithLocal())
				now := time.Now()
				switch {
				case err == nil && len(it.Values) == 1 && string(it.Values[0]) == want:
					out[i].at = now
					return
				case err != nil && !errors.Is(err, client.ErrNotFound) && ctx.Err() == nil:
					out[i].err = err
					return
				}
				if every > 0 {
					pause(ctx, every)
				}
			}
		}()
	}
	wg.Wait()
	for _, s := range out {
		if s.err != nil {
			return time.Time{}, false, s.err
		}
		if s.at.IsZero() {
			if ctx.Err() != nil && time.Now().Before(deadline) {
				return time.Time{}, false, ctx.Err()
			}
			return time.Time{}, false, nil
		}
		if s.at.After(last) {
			last = s.at
		}
	}
	return last, true, nil
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// WriteText prints the report.
func (r *LagReport) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, `replication lag: %s -> %d replicas (%s)
samples %d, timeouts %d, errors %d
lag (write start to last replica), µs:  p50 %d  p90 %d  p99 %d  p99.9 %d  max %d  mean %.0f
write (start to acknowledgement), µs:   p50 %d  p90 %d  p99 %d  p99.9 %d  max %d  mean %.0f
`, r.Target, len(r.Replicas), joinAddrs(r.Replicas), r.Samples, r.Timeouts, r.Errors,
		r.Lag.P50, r.Lag.P90, r.Lag.P99, r.Lag.P999, r.Lag.Max, r.Lag.Mean,
		r.Write.P50, r.Write.P90, r.Write.P99, r.Write.P999, r.Write.Max, r.Write.Mean)
	if err == nil && r.FirstError != "" {
		_, err = fmt.Fprintf(w, "first error: %s\n", r.FirstError)
	}
	return err
}

func joinAddrs(a []string) string { return strings.Join(a, ", ") }

// WriteJSON writes the report as indented JSON.
func (r *LagReport) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

// SaveJSON writes the report as JSON to path.
func (r *LagReport) SaveJSON(path string) error { return save(path, r.WriteJSON) }
