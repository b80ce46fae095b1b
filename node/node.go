package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecachedb/ecache/merge"
	"github.com/ecachedb/ecache/netproto/resp"
	"github.com/ecachedb/ecache/netproto/server"
	"github.com/ecachedb/ecache/storage"
	"github.com/ecachedb/ecache/vclock"
)

// Node is one ecache server node.
type Node struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	store *storage.Store
	hlc   *vclock.HLC
	// namespaces resolves a namespace name to its strategy; read-only
	// after Open.
	namespaces map[string]merge.Strategy
	server     *server.Server
	resp       *resp.Server
	redis      atomic.Pointer[redisHandler] // the RESP mapping, nil when RESP is off (or not up yet)
	metrics    *metrics
	// cluster is nil for a single node.
	cluster *cluster
	// rebalance moves partitions whose owners change (rebalance.go); nil
	// for a single node. It exists before the store opens: onChange feeds it.
	rebalance *rebalancer
	// ae is the node's anti-entropy (antientropy.go); nil for a single
	// node. It exists before the store opens: onChange keeps its trees.
	ae *antiEntropy

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Open opens the node's store and, when cfg.Listen is set, starts serving
// the binary protocol.
func Open(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger, now: cfg.Now, namespaces: make(map[string]merge.Strategy)}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	if n.now == nil {
		n.now = time.Now
	}
	reg := cfg.Registry
	if reg == nil {
		reg = merge.NewRegistry()
	}
	for ns, name := range cfg.Namespaces {
		s, err := reg.Lookup(name)
		if err != nil {
			return nil, fmt.Errorf("%w: Namespaces: %s: %w", ErrInvalidConfig, ns, err)
		}
		n.namespaces[ns] = s
	}
	if _, ok := n.namespaces[DefaultNamespace]; !ok {
		n.namespaces[DefaultNamespace], _ = reg.Lookup(merge.NameLWW)
	}
	n.hlc = vclock.NewHLC(n.now, cfg.MaxClockOffset)
	if cfg.Cluster != nil {
		n.rebalance = newRebalancer(cfg.Cluster)
		ae, err := newAntiEntropy(n, cfg.Cluster.AntiEntropy, cfg.storageConfig().Partitions)
		if err != nil {
			return nil, err
		}
		n.ae = ae
	}
	scfg := cfg.storageConfig()
	scfg.OnChange = n.onChange
	if n.ae != nil || scfg.OnEvict != nil {
		scfg.OnEvict = n.onEvict
	}
	st, err := storage.Open(cfg.DataDir, scfg)
	if err != nil {
		return nil, err
	}
	n.store = st
	if n.ae != nil && !st.Persistent() {
		// A memory-only store starts empty, and so do its trees — ready
		// before the node serves, so no write reaches a tree not built
		// yet (which would skip it).
		n.ae.resetAll()
	}
	n.metrics = newMetrics(n)
	if cfg.Cluster != nil {
		// Set before serving: requests see it (and route locally until the
		// node has joined).
		n.cluster = newCluster(n, *cfg.Cluster)
	}
	if cfg.RESPListen != "" {
		n.addRESPNamespaces(reg) // before any listener serves
	}
	if cfg.Listen != "" {
		scfg := cfg.Server
		scfg.Addr = cfg.Listen
		scfg.Workers = n.workers(scfg.Workers)
		scfg.Limits = cfg.Limits
		if scfg.Logger == nil {
			scfg.Logger = n.log
		}
		srv, err := server.New(scfg, n)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("%w: Server: %w", ErrInvalidConfig, err)
		}
		// Set before Start: requests (STATS) read it as soon as it serves.
		n.server = srv
		if err := srv.Start(); err != nil {
			st.Close()
			return nil, fmt.Errorf("node: listening on %s: %w", cfg.Listen, err)
		}
	}
	if cfg.RESPListen != "" {
		if err := n.startRESP(); err != nil {
			if n.server != nil {
				_ = n.server.Shutdown(context.Background())
			}
			st.Close()
			return nil, err
		}
	}
	if n.cluster != nil {
		if err := n.cluster.open(); err != nil {
			if n.server != nil {
				_ = n.server.Shutdown(context.Background())
			}
			if n.resp != nil {
				_ = n.resp.Shutdown(context.Background())
			}
			n.cluster.close()
			st.Close()
			return nil, fmt.Errorf("node: joining the cluster: %w", err)
		}
		n.ae.start()
	}
	n.log.Info("node open", "node_id", st.NodeID(), "listen", n.Addr(), "persistence", st.Config().Persistence)
	return n, nil
}

// onChange is the store's one OnChange hook (storage.Config.OnChange: under
// the key's lock, fast, no calls back into the store); every part of the
// node that follows store changes is called from here.
// onEvict is the store's OnEvict hook (memory-only stores): anti-entropy
// keeps counting what the memory tier evicts, then the embedder's hook.
func (n *Node) onEvict(p uint32, ns, key []byte, obj *vclock.Object, present bool) {
	if n.ae != nil {
		n.ae.trees.OnEvict(p, ns, key, obj, present)
	}
	if h := n.cfg.Storage.OnEvict; h != nil {
		h(p, ns, key, obj, present)
	}
}

func (n *Node) onChange(p uint32, ns, key []byte, prev, next *vclock.Object) {
	if n.rebalance != nil {
		n.rebalance.changed(p, next)
	}
	if n.ae != nil {
		n.ae.trees.OnChange(p, ns, key, prev, next)
	}
	if h := n.cfg.Storage.OnChange; h != nil {
		h(p, ns, key, prev, next)
	}
}

// ID returns the node's identity.
func (n *Node) ID() vclock.NodeID { return n.store.NodeID() }

// Addr returns the address the binary protocol is served on, "" if none.
func (n *Node) Addr() string {
	if n.server == nil {
		return ""
	}
	return n.server.Addr()
}

// Store returns the node's store.
func (n *Node) Store() *storage.Store { return n.store }

// Namespaces returns the configured namespace names and their strategies.
func (n *Node) Namespaces() map[string]string {
	out := make(map[string]string, len(n.namespaces))
	for ns, s := range n.namespaces {
		out[ns] = s.Name()
	}
	return out
}

// Close stops serving — letting requests in flight finish and their replies
// go out, within ctx — then flushes and closes the store. It is idempotent.
func (n *Node) Close(ctx context.Context) error {
	n.closeOnce.Do(func() {
		n.closed.Store(true)
		var errs []error
		if n.ae != nil {
			// Stop exchanging before leaving; AntiEntropyExchange still
			// works until the store closes.
			n.ae.close()
		}
		if n.cluster != nil {
			// Leave first, so the others stop routing here while this node
			// still answers.
			if err := n.cluster.leave(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if n.server != nil {
			if err := n.server.Shutdown(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if n.cluster != nil {
			n.cluster.close()
		}
		if n.resp != nil {
			if err := n.resp.Shutdown(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if err := n.store.Close(); err != nil {
			errs = append(errs, err)
		}
		n.closeErr = errors.Join(errs...)
		n.log.Info("node closed", "err", n.closeErr)
	})
	return n.closeErr
}

func (n *Node) strategy(ns []byte) (merge.Strategy, error) {
	if len(ns) == 0 {
		ns = []byte(DefaultNamespace)
	}
	s, ok := n.namespaces[string(ns)]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownNamespace, ns)
	}
	return s, nil
}

// nsName returns the storage name of a namespace (the default for empty).
func nsName(ns []byte) []byte {
	if len(ns) == 0 {
		return []byte(DefaultNamespace)
	}
	return ns
}

// Item is what a read returns.
type Item struct {
	// Result is the strategy's view of the object.
	merge.Result
	// Context is the causal context to send back with the next write; it
	// may be non-empty when Found is false (a deletion's).
	Context []byte
	// TTL is the time left before expiry; zero means none.
	TTL time.Duration
}

// Read returns the object of (ns, key) as its namespace's strategy resolves
// it. With cachedOnly it never blocks on disk and reports ok=false when the
// memory tier cannot answer. dst is reused scratch space; the Item's byte
// slices alias store memory that is never modified.
func (n *Node) read(ns, key []byte, cachedOnly bool, dst *vclock.Object) (item Item, ok bool, err error) {
	s, err := n.strategy(ns)
	if err != nil {
		return Item{}, true, err
	}
	var found bool
	if cachedOnly {
		found, ok, err = n.store.GetCached(nsName(ns), key, dst)
		if !ok || err != nil {
			return Item{}, ok, err
		}
	} else {
		found, err = n.store.Get(nsName(ns), key, dst)
		if err != nil {
			return Item{}, true, err
		}
	}
	if !found {
		return Item{}, true, nil
	}
	now := n.now()
	item.Result = s.Read(*dst, now.UnixNano())
	item.Context = vclock.EncodeContext(dst.Clock)
	if item.Found && item.Expiry != 0 {
		item.TTL = max(time.Duration(item.Expiry-now.UnixNano()), time.Millisecond)
	}
	return item, true, nil
}

// Get reads (ns, key).
func (n *Node) Get(ns, key []byte) (Item, error) {
	if n.closed.Load() {
		return Item{}, ErrClosed
	}
	var o vclock.Object
	it, _, err := n.read(ns, key, false, &o)
	return it, err
}

// Apply coordinates one write of (ns, key) at this node: the strategy
// applies op to the stored object, issuing exactly one new dot, under the
// store's per-key lock. It returns the new object and what a reader now
// sees.
func (n *Node) Apply(ns, key []byte, op merge.Op) (vclock.Object, Item, error) {
	if n.closed.Load() {
		return vclock.Object{}, Item{}, ErrClosed
	}
	s, err := n.strategy(ns)
	if err != nil {
		return vclock.Object{}, Item{}, err
	}
	obj, err := n.store.Update(nsName(ns), key, func(cur vclock.Object, _ bool) (vclock.Object, error) {
		at := n.coordinator(s, &cur) // floors cur's clock, so before Apply reads cur
		return s.Apply(cur, op, at)
	})
	if err != nil {
		return vclock.Object{}, Item{}, err
	}
	now := n.now()
	it := Item{Result: s.Read(obj, now.UnixNano()), Context: vclock.EncodeContext(obj.Clock)}
	if it.Found && it.Expiry != 0 {
		it.TTL = max(time.Duration(it.Expiry-now.UnixNano()), time.Millisecond)
	}
	return obj, it, nil
}

// errTTL rejects a TTL that is negative or so large that the expiry would
// overflow the clock.
var errTTL = errors.New("node: ttl out of range")

// coordinator returns who applies a write to cur and when: this node, at
// an HLC reading that orders after every version cur holds, even when this
// node's wall clock is behind the clocks that wrote them.
//
// In a cluster it also floors the dot the write will get at that reading
// (see vclock.Object.WithCounterFloor): the HLC only grows, so the node
// never issues a dot for a key that other replicas have seen, even after it
// forgot the key (eviction, tombstone collection) — Riak's kv679.
func (n *Node) coordinator(s merge.Strategy, cur *vclock.Object) merge.Coordinator {
	ts := n.hlc.Now()
	if m := cur.MaxHLC(); m >= ts {
		if t, err := n.hlc.Observe(m); err == nil {
			ts = t
		}
	}
	// A counter or set object is absent or has one sibling, so a forgotten
	// one cannot carry a floored clock alone (and stays unfloored).
	if n.cluster != nil && (s.Type() == merge.TypeValue || len(cur.Siblings) > 0) {
		*cur = cur.WithCounterFloor(n.store.NodeID(), uint64(ts))
	}
	return merge.Coordinator{Node: n.store.NodeID(), HLC: ts}
}

// expiryFor converts a relative TTL in milliseconds to an absolute expiry
// in Unix nanoseconds (zero for none).
func (n *Node) expiryFor(ttlMS int64) (int64, error) {
	if ttlMS == 0 {
		return 0, nil
	}
	now := n.now().UnixNano()
	if ttlMS < 0 || ttlMS > (math.MaxInt64-now)/int64(time.Millisecond) {
		return 0, fmt.Errorf("%w: %d ms", errTTL, ttlMS)
	}
	return now + ttlMS*int64(time.Millisecond), nil
}
