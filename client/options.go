package client

import (
	"fmt"
	"math"
	"time"

	"github.com/ecachedb/ecache/netproto"
)

// DefaultNamespace is the namespace calls use without WithNamespace.
const DefaultNamespace = "default"

// Option adjusts one call.
type Option func(*opts)

type opts struct {
	ns  string
	cc  []byte
	ttl time.Duration
	// w and r are the wire values: a count, or netproto.LevelQuorum or
	// netproto.LevelAll.
	w, r  uint32
	local bool
	// bad is the first invalid option.
	bad error
}

// WithNamespace sets the namespace (default "default"). Namespaces are
// configured on the server; an unknown one fails with ErrUnknownNamespace.
func WithNamespace(ns string) Option { return func(o *opts) { o.ns = ns } }

// WithCausalContext passes the context a read (or the previous write)
// returned, so a Put or Del replaces exactly the versions it covers. Without
// it a write is blind: in a siblings namespace it adds a sibling. Get and
// the counter and set operations ignore it; MPut takes contexts per Entry.
func WithCausalContext(cc []byte) Option { return func(o *opts) { o.cc = cc } }

// WithTTL gives a Put (or the MPut entries without their own TTL) a time to
// live, rounded up to a millisecond. Zero means no expiry.
func WithTTL(d time.Duration) Option { return func(o *opts) { o.ttl = d } }

// WithW sets how many replica acknowledgements a write waits for (the
// coordinating replica's own included); 0 means the namespace's default. A
// single-node server ignores it; over the replica count N is ErrMalformed,
// too few acknowledgements in time ErrBusy (the write is applied at the
// replicas that got it, and still replicated in the background).
// WithWQuorum and WithWAll name levels instead of counts.
func WithW(n int) Option { return func(o *opts) { o.w, o.bad = count("W", n, o.bad) } }

// WithWQuorum makes a write wait for a quorum of the key's replicas
// (N/2+1, resolved by the coordinating replica against the namespace's N).
func WithWQuorum() Option { return func(o *opts) { o.w = netproto.LevelQuorum } }

// WithWAll makes a write wait for every one of the key's N replicas: it
// fails with ErrBusy while one of them is down.
func WithWAll() Option { return func(o *opts) { o.w = netproto.LevelAll } }

// WithR sets how many replicas a Get reads (their answers are merged and
// stale replicas repaired); 0 and 1 mean one. A single-node server ignores
// it; over the replica count is ErrMalformed, too few answers ErrBusy.
// WithRQuorum and WithRAll name levels instead of counts.
func WithR(n int) Option { return func(o *opts) { o.r, o.bad = count("R", n, o.bad) } }

// WithRQuorum makes a Get read a quorum of the key's replicas (N/2+1).
// With WithWQuorum, every read overlaps every acknowledged write.
func WithRQuorum() Option { return func(o *opts) { o.r = netproto.LevelQuorum } }

// WithRAll makes a Get read every one of the key's N replicas: it fails
// with ErrBusy while one of them is down.
func WithRAll() Option { return func(o *opts) { o.r = netproto.LevelAll } }

// count checks a W or R count: it must be below the reserved level values.
func count(name string, n int, bad error) (uint32, error) {
	if n < 0 || int64(n) >= int64(netproto.LevelQuorum) {
		if bad == nil {
			bad = fmt.Errorf("%w: %s %d", ErrInvalidArgument, name, n)
		}
		return 0, bad
	}
	return uint32(n), bad
}

// WithLocal makes a Get read only the addressed node's own store: never
// forwarded to a replica, never merged with others. For operators checking
// one replica; a node that does not hold the key answers ErrNotFound.
func WithLocal() Option { return func(o *opts) { o.local = true } }

// applyOpts folds o over the defaults and checks the result.
func applyOpts(o []Option) (opts, error) {
	if len(o) == 0 {
		return opts{ns: DefaultNamespace}, nil
	}
	return applySome(o)
}

// applySome is applyOpts for a call with options; the opts it builds
// escape to the heap through the option functions.
func applySome(o []Option) (opts, error) {
	r := opts{ns: DefaultNamespace}
	for _, f := range o {
		f(&r)
	}
	if r.bad != nil {
		return r, r.bad
	}
	if r.ttl < 0 {
		return r, fmt.Errorf("%w: negative TTL %v", ErrInvalidArgument, r.ttl)
	}
	return r, nil
}

// Item is what Get returns.
type Item struct {
	// Values holds one value, or several concurrent siblings (from a
	// siblings namespace): resolve them and Put the result with Context.
	// It is empty when the key is not found.
	Values [][]byte
	// Context is the causal context to send with the next write of the key
	// (WithCausalContext). It may be set even when the key is not found: a
	// deletion's context, which a write supersedes.
	Context []byte
	// TTL is the remaining time to live; zero means no expiry.
	TTL time.Duration
}

// Entry is one write of an MPut.
type Entry struct {
	Key     string
	Value   []byte
	Context []byte        // as WithCausalContext; nil is a blind write
	TTL     time.Duration // zero: the call's WithTTL, else no expiry
}

// millis converts a TTL to the wire's milliseconds, rounding up so a short
// positive TTL never reads as "no expiry".
func millis(d time.Duration) (int64, error) {
	if d < 0 {
		return 0, fmt.Errorf("%w: negative TTL %v", ErrInvalidArgument, d)
	}
	ms := int64(d / time.Millisecond)
	if d%time.Millisecond != 0 {
		ms++
	}
	return ms, nil
}

// duration converts a TTL from the wire.
func duration(ms int64) time.Duration {
	if ms <= 0 {
		return 0
	}
	if ms > math.MaxInt64/int64(time.Millisecond) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(ms) * time.Millisecond
}
