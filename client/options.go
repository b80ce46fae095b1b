package client

import (
	"fmt"
	"math"
	"time"
)

// DefaultNamespace is the namespace calls use without WithNamespace.
const DefaultNamespace = "default"

// Option adjusts one call.
type Option func(*opts)

type opts struct {
	ns    string
	cc    []byte
	ttl   time.Duration
	w     int
	r     int
	local bool
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

// WithW sets how many replica acknowledgements a write waits for; 0 means
// the namespace's default. A single-node server ignores it.
func WithW(n int) Option { return func(o *opts) { o.w = n } }

// WithR sets how many replicas a Get reads (their answers are merged and
// stale replicas repaired); 0 and 1 mean one. A single-node server ignores
// it; over the replica count is ErrMalformed, too few answers ErrBusy.
func WithR(n int) Option { return func(o *opts) { o.r = n } }

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
	if r.w < 0 || r.w > math.MaxUint32 {
		return r, fmt.Errorf("%w: W %d", ErrInvalidArgument, r.w)
	}
	if r.r < 0 || r.r > math.MaxUint32 {
		return r, fmt.Errorf("%w: R %d", ErrInvalidArgument, r.r)
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
