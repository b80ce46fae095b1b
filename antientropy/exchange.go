package antientropy

import (
	"fmt"
	"math/bits"
	"slices"
	"time"

	"github.com/ecachedb/ecache/vclock"
)

// Replica is what an exchange needs from the replica of one partition it
// runs on: the seam between the protocol and the store.
type Replica interface {
	// ListLeaves calls fn for every object stored for a key whose leaf
	// (Shape.LeafOf) is in leaves, which are ascending and distinct,
	// including objects whose siblings all expired. obj and its slices are
	// valid only during the call.
	ListLeaves(leaves []uint32, fn func(ns, key []byte, obj *vclock.Object) error) error
	// Get returns the object stored for (ns, key), expired or not; found is
	// false when none is stored.
	Get(ns, key []byte) (obj vclock.Object, found bool, err error)
	// Merge folds obj, a peer's version of (ns, key), into the replica (the
	// store's Update with vclock.Join or the namespace's strategy) and
	// keeps the replica's tree up to date.
	Merge(ns, key []byte, obj vclock.Object) error
}

// Config configures exchanges. Start from DefaultConfig.
type Config struct {
	// Shape is the shape of the partition's trees; both sides must agree.
	Shape Shape
	// Timeout is how long the initiator waits for a response before
	// resending its request.
	Timeout time.Duration
	// MaxRetries is how many times a request is resent before the exchange
	// fails with ErrTimeout.
	MaxRetries int
	// NodesPerRequest bounds the nodes whose children one request asks for.
	NodesPerRequest int
	// LeavesPerRequest bounds the leaves one key-and-clock request lists.
	LeavesPerRequest int
	// ObjectsPerRequest bounds the keys one object request pushes and pulls.
	ObjectsPerRequest int
	// PushOnly makes the initiator only give: it pushes the objects the
	// peer lacks, holds an older version of, or holds a concurrent one of,
	// and never pulls — what the peer has that it lacks stays there. A node
	// filling a partition's new owner uses it: pulling would hand it back
	// keys it no longer owns. KeysDiffering then counts only what the
	// initiator pushes.
	PushOnly bool
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{
		Shape:             DefaultShape(),
		Timeout:           5 * time.Second,
		MaxRetries:        3,
		NodesPerRequest:   1024,
		LeavesPerRequest:  1024,
		ObjectsPerRequest: 512,
	}
}

// Validate checks c and names the bad field.
func (c Config) Validate() error {
	if err := c.Shape.Validate(); err != nil {
		return err
	}
	switch {
	case c.Timeout <= 0:
		return fmt.Errorf("%w: Timeout %v must be positive", ErrInvalidConfig, c.Timeout)
	case c.MaxRetries < 0:
		return fmt.Errorf("%w: MaxRetries %d is negative", ErrInvalidConfig, c.MaxRetries)
	case c.NodesPerRequest < 1:
		return fmt.Errorf("%w: NodesPerRequest %d must be positive", ErrInvalidConfig, c.NodesPerRequest)
	case c.LeavesPerRequest < 1:
		return fmt.Errorf("%w: LeavesPerRequest %d must be positive", ErrInvalidConfig, c.LeavesPerRequest)
	case c.ObjectsPerRequest < 1:
		return fmt.Errorf("%w: ObjectsPerRequest %d must be positive", ErrInvalidConfig, c.ObjectsPerRequest)
	}
	return nil
}

// Stats counts what an exchange did, for metrics and tests.
type Stats struct {
	// RootComparisons is 1 once the roots were compared.
	RootComparisons int
	// NodeHashes is the number of child hashes received.
	NodeHashes int
	// LeavesCompared is the number of leaves whose key lists were compared.
	LeavesCompared int
	// Entries is the number of key-and-clock entries received.
	Entries int
	// KeysDiffering is the number of keys the lists showed to differ.
	KeysDiffering int
	// KeysTransferred is the number of distinct keys with an object pushed
	// or pulled: the keys repaired.
	KeysTransferred int
	// ObjectsPushed and ObjectsPulled count objects sent and merged here.
	ObjectsPushed, ObjectsPulled int
	// Requests counts requests sent, resends included; Retries the resends.
	Requests, Retries int
	// Ghosts counts keys one side lacks but its tree shows it held with
	// the other side's version: evicted from a memory-only replica, and
	// not transferred (see ghostCands).
	Ghosts int
}

type phase uint8

const (
	phaseIdle phase = iota
	phaseRoot
	phaseNodes
	phaseKeys
	phaseObjects
	phaseDone
	phaseFailed
)

// diff is a key the lists showed to differ and which way it must travel.
type diff struct {
	ns, key    []byte
	push, pull bool
}

// Exchange is the initiator's side of one exchange of one partition with
// one peer. It is a state machine: Start, Step and Tick return the messages
// to send to the peer's Responder; it never blocks, sleeps or reads a clock.
// It is not safe for concurrent use.
type Exchange struct {
	cfg       Config
	session   uint64
	partition uint32
	tree      *Tree
	rep       Replica
	// now is the exchange's instant for judging expiry, fixed at Start.
	now int64

	phase phase
	err   error

	seq      uint64
	inflight Message
	sentAt   int64
	retries  int

	// Descent: nodes at depth level still to ask about, and the differing
	// nodes found one level down.
	level   int
	pending []uint32
	next    []uint32

	diffs []diff
	batch []diff

	stats Stats
	buf   []uint64
}

// NewExchange returns an exchange of partition's replica, described by tree
// and rep, with a peer. session names the exchange on the wire; the caller
// picks it unique among its exchanges in flight.
func NewExchange(cfg Config, session uint64, partition uint32, tree *Tree, rep Replica) (*Exchange, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if tree.Shape() != cfg.Shape {
		return nil, fmt.Errorf("%w: tree shape %v differs from Config.Shape %v", ErrInvalidConfig, tree.Shape(), cfg.Shape)
	}
	return &Exchange{cfg: cfg, session: session, partition: partition, tree: tree, rep: rep}, nil
}

// Start begins the exchange at now (Unix nanoseconds) by asking for the
// peer's root.
func (e *Exchange) Start(now int64) []Message {
	if e.phase != phaseIdle {
		return nil
	}
	e.now = now
	e.phase = phaseRoot
	return e.send(now, Message{Type: MsgRootReq})
}

// Done reports whether the exchange has finished, successfully or not.
func (e *Exchange) Done() bool { return e.phase == phaseDone || e.phase == phaseFailed }

// Err returns why the exchange failed, or nil.
func (e *Exchange) Err() error { return e.err }

// Stats returns what the exchange has done so far.
func (e *Exchange) Stats() Stats { return e.stats }

func (e *Exchange) send(now int64, m Message) []Message {
	e.seq++
	m.Session, m.Partition, m.Seq, m.Now, m.Shape = e.session, e.partition, e.seq, e.now, e.cfg.Shape
	e.inflight, e.sentAt, e.retries = m, now, 0
	e.stats.Requests++
	return []Message{m}
}

// fail ends the exchange with err and tells the peer.
func (e *Exchange) fail(err error) []Message {
	e.phase, e.err = phaseFailed, err
	return []Message{{Type: MsgAbort, Session: e.session, Partition: e.partition, Seq: e.seq, Error: err.Error()}}
}

func (e *Exchange) finish() []Message {
	e.phase = phaseDone
	return nil
}

// Tick advances time to now: a request unanswered for Timeout is resent, up
// to MaxRetries times, and then the exchange fails with ErrTimeout.
func (e *Exchange) Tick(now int64) []Message {
	if e.phase == phaseIdle || e.Done() || now-e.sentAt < int64(e.cfg.Timeout) {
		return nil
	}
	if e.retries >= e.cfg.MaxRetries {
		return e.fail(fmt.Errorf("%w: no answer to %v after %d tries", ErrTimeout, e.inflight.Type, e.retries+1))
	}
	e.retries++
	e.stats.Retries++
	e.stats.Requests++
	e.sentAt = now
	return []Message{e.inflight}
}

// Step processes a message from the peer at now and returns the messages to
// send. Messages of other sessions and stale responses are ignored.
func (e *Exchange) Step(now int64, m Message) []Message {
	if e.phase == phaseIdle || e.Done() || m.Session != e.session || m.Partition != e.partition {
		return nil
	}
	if m.Type == MsgAbort {
		e.phase, e.err = phaseFailed, fmt.Errorf("%w: %s", ErrAborted, m.Error)
		return nil
	}
	if m.Seq != e.inflight.Seq {
		return nil
	}
	if m.Type != e.inflight.Type+1 {
		return e.fail(fmt.Errorf("%w: %v in answer to %v", ErrMalformed, m.Type, e.inflight.Type))
	}
	switch m.Type {
	case MsgRootResp:
		return e.onRoot(now, m)
	case MsgNodesResp:
		return e.onNodes(now, m)
	case MsgKeysResp:
		return e.onKeys(now, m)
	case MsgObjectsResp:
		return e.onObjects(now, m)
	}
	return e.fail(fmt.Errorf("%w: unexpected %v", ErrMalformed, m.Type))
}

func (e *Exchange) onRoot(now int64, m Message) []Message {
	e.stats.RootComparisons++
	if m.Root == e.tree.Root() {
		return e.finish()
	}
	e.phase, e.level, e.pending, e.next = phaseNodes, 0, []uint32{0}, nil
	return e.sendNodes(now)
}

func (e *Exchange) sendNodes(now int64) []Message {
	n := min(len(e.pending), e.cfg.NodesPerRequest)
	batch := e.pending[:n:n]
	e.pending = e.pending[n:]
	return e.send(now, Message{Type: MsgNodesReq, Level: uint32(e.level), Nodes: batch})
}

func (e *Exchange) onNodes(now int64, m Message) []Message {
	w := e.cfg.Shape.Width
	req := e.inflight.Nodes
	if m.Level != e.inflight.Level || !slices.Equal(m.Nodes, req) || len(m.Hashes) != len(req)*w {
		return e.fail(fmt.Errorf("%w: nodes response does not match its request", ErrMalformed))
	}
	e.stats.NodeHashes += len(m.Hashes)
	for i, node := range req {
		e.buf = e.tree.Children(e.level, node, e.buf[:0])
		for j, h := range e.buf {
			if h != m.Hashes[i*w+j] {
				e.next = append(e.next, node*uint32(w)+uint32(j))
			}
		}
	}
	if len(e.pending) > 0 {
		return e.sendNodes(now)
	}
	e.level++
	e.pending, e.next = e.next, nil
	if len(e.pending) == 0 {
		// The roots differed but no child does now: the trees changed
		// under the exchange. The next exchange will look again.
		return e.finish()
	}
	if e.level < e.cfg.Shape.Depth {
		return e.sendNodes(now)
	}
	e.phase = phaseKeys
	return e.sendKeys(now)
}

func (e *Exchange) sendKeys(now int64) []Message {
	n := min(len(e.pending), e.cfg.LeavesPerRequest)
	batch := e.pending[:n:n]
	e.pending = e.pending[n:]
	return e.send(now, Message{Type: MsgKeysReq, Nodes: batch})
}

// localEntry is this replica's view of a key in a compared leaf.
type localEntry struct {
	ns, key []byte
	digest  uint64
	clock   vclock.VV
	seen    bool
}

func mapKey(ns, key []byte) string {
	b := make([]byte, 0, 1+len(ns)+len(key))
	b = append(b, byte(len(ns)))
	b = append(b, ns...)
	return string(append(b, key...))
}

func (e *Exchange) onKeys(now int64, m Message) []Message {
	leaves := e.inflight.Nodes
	if len(m.Ghosts) != 0 && len(m.Ghosts) != len(leaves) {
		return e.fail(fmt.Errorf("%w: %d ghosts for %d leaves", ErrMalformed, len(m.Ghosts), len(leaves)))
	}
	e.stats.LeavesCompared += len(leaves)
	e.stats.Entries += len(m.Entries)
	local := make(map[string]*localEntry)
	// ghosts[i] starts as leaf i's hash in this replica's tree; every listed
	// object is XORed out of it, so what remains is what the tree holds but
	// the store no longer does (see leafGhosts).
	ghosts := make([]uint64, len(leaves))
	for i, l := range leaves {
		ghosts[i] = e.tree.Node(e.cfg.Shape.Depth, l)
	}
	err := e.rep.ListLeaves(leaves, func(ns, key []byte, obj *vclock.Object) error {
		vd := VersionDigest(*obj)
		kh := keyHash(ns, key)
		if i, ok := slices.BinarySearch(leaves, e.cfg.Shape.leafOfHash(kh)); ok {
			ghosts[i] ^= entryHash(kh, vd)
		}
		d := vd
		if Digest(*obj, e.now) == 0 {
			d = 0
		}
		local[mapKey(ns, key)] = &localEntry{
			ns: slices.Clone(ns), key: slices.Clone(key),
			digest: d, clock: obj.Clock.Clone(),
		}
		return nil
	})
	if err != nil {
		return e.fail(fmt.Errorf("antientropy: listing leaves: %w", err))
	}
	start := len(e.diffs)
	// Keys absent on one side are candidates for ghosts of that side: per
	// leaf, the entry hash they would have there.
	var pulls, pushes ghostCands
	remoteSeen := make(map[string]bool, len(m.Entries))
	for i := range m.Entries {
		r := &m.Entries[i]
		kh := keyHash(r.NS, r.Key)
		li, ok := slices.BinarySearch(leaves, e.cfg.Shape.leafOfHash(kh))
		if !ok {
			return e.fail(fmt.Errorf("%w: listed key outside the requested leaves", ErrMalformed))
		}
		k := mapKey(r.NS, r.Key)
		if remoteSeen[k] {
			return e.fail(fmt.Errorf("%w: key listed twice", ErrMalformed))
		}
		remoteSeen[k] = true
		l := local[k]
		var ld uint64
		var lc vclock.VV
		if l != nil {
			l.seen = true
			ld, lc = l.digest, l.clock
		}
		if ld == r.Digest {
			continue
		}
		d := diff{ns: slices.Clone(r.NS), key: slices.Clone(r.Key)}
		if l == nil {
			if !e.cfg.PushOnly {
				d.pull = true
				pulls.add(li, entryHash(kh, r.Digest), d)
			}
			continue
		}
		switch lc.Compare(r.Clock) {
		case vclock.Before:
			d.pull = true
		case vclock.After:
			d.push = true
		default:
			// Equal clocks with different digests (corruption, or siblings
			// judged differently) or concurrent ones: Join both ways.
			d.push, d.pull = true, true
		}
		if e.cfg.PushOnly {
			if !d.push {
				continue
			}
			d.pull = false
		}
		e.diffs = append(e.diffs, d)
	}
	for _, l := range local {
		if !l.seen && l.digest != 0 {
			kh := keyHash(l.ns, l.key)
			li, _ := slices.BinarySearch(leaves, e.cfg.Shape.leafOfHash(kh))
			pushes.add(li, entryHash(kh, l.digest), diff{ns: l.ns, key: l.key, push: true})
		}
	}
	e.diffs = pulls.resolve(e.diffs, ghosts, &e.stats)
	e.diffs = pushes.resolve(e.diffs, m.Ghosts, &e.stats)
	added := e.diffs[start:]
	slices.SortFunc(added, func(a, b diff) int { return compareKeys(a.ns, a.key, b.ns, b.key) })
	e.stats.KeysDiffering += len(added)
	if len(e.pending) > 0 {
		return e.sendKeys(now)
	}
	e.phase = phaseObjects
	return e.sendObjects(now)
}

// ghostCands are the keys of the compared leaves that one side lacks, with
// the entry hash each would have in that side's tree had it held the
// other side's version and lost it.
//
// A memory-only replica evicts keys without telling its tree (an eviction
// is not a change of the data, only of what this cache holds), so its tree
// keeps matching replicas that still hold them, and exchanges leave them
// alone. When a leaf differs for another reason, though, the listing of
// that leaf lacks the evicted keys, which would look like keys to repair.
// The tree tells them apart: a leaf's ghost — its tree hash XOR the entry
// hashes of the objects listed — is the XOR of the entries the store lost.
// Candidates whose hashes XOR to the ghost are those entries: evicted with
// exactly the version the other side holds, so they are not transferred.
type ghostCands struct {
	leaf   []int
	hash   []uint64
	diffs  []diff
	byLeaf map[int][]int
}

func (g *ghostCands) add(leaf int, h uint64, d diff) {
	if g.byLeaf == nil {
		g.byLeaf = map[int][]int{}
	}
	g.byLeaf[leaf] = append(g.byLeaf[leaf], len(g.diffs))
	g.leaf = append(g.leaf, leaf)
	g.hash = append(g.hash, h)
	g.diffs = append(g.diffs, d)
}

// resolve appends to dst the candidates that the ghosts (one per leaf;
// nil means none) do not explain, and counts the others in st.Ghosts.
func (g *ghostCands) resolve(dst []diff, ghosts []uint64, st *Stats) []diff {
	skip := make([]bool, len(g.diffs))
	for leaf, idx := range g.byLeaf {
		if leaf >= len(ghosts) || ghosts[leaf] == 0 {
			continue
		}
		hs := make([]uint64, len(idx))
		for i, j := range idx {
			hs[i] = g.hash[j]
		}
		if mask, ok := explain(hs, ghosts[leaf]); ok {
			for i, j := range idx {
				if i < 64 && mask&(1<<i) != 0 {
					skip[j] = true
					st.Ghosts++
				}
			}
		}
	}
	for j, d := range g.diffs {
		if !skip[j] {
			dst = append(dst, d)
		}
	}
	return dst
}

// explain returns a set of cands (bit i for cands[i]; only the first 64 are
// considered) whose XOR is target, by Gaussian elimination over GF(2)^64;
// ok is false when no such set exists. Entry hashes are 64-bit random
// values, so among fewer than 64 of them the set is unique with
// overwhelming probability.
func explain(cands []uint64, target uint64) (mask uint64, ok bool) {
	var basis, combo [64]uint64
	for j := range min(len(cands), 64) {
		v, c := cands[j], uint64(1)<<j
		for v != 0 {
			p := 63 - bits.LeadingZeros64(v)
			if basis[p] == 0 {
				basis[p], combo[p] = v, c
				break
			}
			v ^= basis[p]
			c ^= combo[p]
		}
	}
	v := target
	for v != 0 {
		p := 63 - bits.LeadingZeros64(v)
		if basis[p] == 0 {
			return 0, false
		}
		v ^= basis[p]
		mask ^= combo[p]
	}
	return mask, true
}

func (e *Exchange) sendObjects(now int64) []Message {
	for len(e.diffs) > 0 {
		n := min(len(e.diffs), e.cfg.ObjectsPerRequest)
		e.batch = e.diffs[:n:n]
		e.diffs = e.diffs[n:]
		m := Message{Type: MsgObjectsReq}
		for i := range e.batch {
			d := &e.batch[i]
			if d.pull {
				m.Keys = append(m.Keys, KeyRef{NS: d.ns, Key: d.key})
			}
			if d.push {
				obj, found, err := e.rep.Get(d.ns, d.key)
				if err != nil {
					return e.fail(fmt.Errorf("antientropy: reading object to push: %w", err))
				}
				if !found {
					// Deleted from under the exchange (forgotten): nothing
					// to push.
					d.push = false
					continue
				}
				m.Objects = append(m.Objects, KeyObject{NS: d.ns, Key: d.key, Object: obj})
			}
		}
		if len(m.Keys) == 0 && len(m.Objects) == 0 {
			continue
		}
		return e.send(now, m)
	}
	return e.finish()
}

func (e *Exchange) onObjects(now int64, m Message) []Message {
	pulled := make(map[string]bool, len(e.inflight.Keys))
	for _, k := range e.inflight.Keys {
		pulled[mapKey(k.NS, k.Key)] = false
	}
	for i := range m.Objects {
		o := &m.Objects[i]
		k := mapKey(o.NS, o.Key)
		done, asked := pulled[k]
		if !asked || done {
			return e.fail(fmt.Errorf("%w: object not asked for", ErrMalformed))
		}
		pulled[k] = true
		if err := e.rep.Merge(o.NS, o.Key, o.Object); err != nil {
			return e.fail(fmt.Errorf("antientropy: merging pulled object: %w", err))
		}
		e.stats.ObjectsPulled++
	}
	e.stats.ObjectsPushed += len(e.inflight.Objects)
	for i := range e.batch {
		d := &e.batch[i]
		if d.push || pulled[mapKey(d.ns, d.key)] {
			e.stats.KeysTransferred++
		}
	}
	e.batch = nil
	return e.sendObjects(now)
}

// Responder answers a peer's exchanges of one partition. It keeps no state
// between messages, so a resent request is simply answered again (merging a
// pushed object twice is harmless: Join is idempotent). It is not safe for
// concurrent use.
type Responder struct {
	partition uint32
	tree      *Tree
	rep       Replica
	buf       []uint64
}

// NewResponder returns a responder for partition's replica described by
// tree and rep.
func NewResponder(partition uint32, tree *Tree, rep Replica) *Responder {
	return &Responder{partition: partition, tree: tree, rep: rep}
}

// maxHashesPerResponse bounds the answer to one nodes request.
const maxHashesPerResponse = 1 << 20

// Step answers one message. A request that does not fit this replica is
// answered with MsgAbort and reported as an error; a replica error likewise.
func (r *Responder) Step(m Message) ([]Message, error) {
	resp := Message{Type: m.Type + 1, Session: m.Session, Partition: m.Partition, Seq: m.Seq}
	abort := func(err error) ([]Message, error) {
		return []Message{{Type: MsgAbort, Session: m.Session, Partition: m.Partition, Seq: m.Seq, Error: err.Error()}}, err
	}
	switch m.Type {
	case MsgRootReq, MsgNodesReq, MsgKeysReq, MsgObjectsReq:
	default:
		return nil, nil // responses and aborts need no answer
	}
	s := r.tree.Shape()
	if m.Partition != r.partition {
		return abort(fmt.Errorf("%w: partition %d, this responder serves %d", ErrMalformed, m.Partition, r.partition))
	}
	if m.Shape != s {
		return abort(fmt.Errorf("%w: tree shape %v, this replica's is %v", ErrMalformed, m.Shape, s))
	}
	switch m.Type {
	case MsgRootReq:
		resp.Root = r.tree.Root()
	case MsgNodesReq:
		lvl := int(m.Level)
		if lvl >= s.Depth || len(m.Nodes)*s.Width > maxHashesPerResponse || !ascending(m.Nodes, s, lvl) {
			return abort(fmt.Errorf("%w: bad nodes request", ErrMalformed))
		}
		resp.Level, resp.Nodes = m.Level, m.Nodes
		resp.Hashes = make([]uint64, 0, len(m.Nodes)*s.Width)
		for _, n := range m.Nodes {
			resp.Hashes = r.tree.Children(lvl, n, resp.Hashes)
		}
	case MsgKeysReq:
		if !ascending(m.Nodes, s, s.Depth) {
			return abort(fmt.Errorf("%w: bad leaves request", ErrMalformed))
		}
		ghosts := make([]uint64, len(m.Nodes))
		for i, l := range m.Nodes {
			ghosts[i] = r.tree.Node(s.Depth, l)
		}
		err := r.rep.ListLeaves(m.Nodes, func(ns, key []byte, obj *vclock.Object) error {
			kh := keyHash(ns, key)
			if i, ok := slices.BinarySearch(m.Nodes, s.leafOfHash(kh)); ok {
				ghosts[i] ^= entryHash(kh, VersionDigest(*obj))
			}
			d := Digest(*obj, m.Now)
			if d == 0 && len(obj.Clock) == 0 {
				return nil
			}
			// An expired object is listed (digest 0) for its clock: it
			// still supersedes older live versions on the peer.
			resp.Entries = append(resp.Entries, KeyClock{
				NS: nilIfEmpty(slices.Clone(ns)), Key: nilIfEmpty(slices.Clone(key)),
				Digest: d, Clock: obj.Clock.Clone(),
			})
			return nil
		})
		if err != nil {
			return abort(fmt.Errorf("antientropy: listing leaves: %w", err))
		}
		if slices.ContainsFunc(ghosts, func(g uint64) bool { return g != 0 }) {
			resp.Ghosts = ghosts
		}
		slices.SortFunc(resp.Entries, func(a, b KeyClock) int { return compareKeys(a.NS, a.Key, b.NS, b.Key) })
	case MsgObjectsReq:
		for i := range m.Objects {
			o := &m.Objects[i]
			if err := r.rep.Merge(o.NS, o.Key, o.Object); err != nil {
				return abort(fmt.Errorf("antientropy: merging pushed object: %w", err))
			}
		}
		for _, k := range m.Keys {
			obj, found, err := r.rep.Get(k.NS, k.Key)
			if err != nil {
				return abort(fmt.Errorf("antientropy: reading pulled object: %w", err))
			}
			if found && !obj.IsZero() {
				resp.Objects = append(resp.Objects, KeyObject{NS: k.NS, Key: k.Key, Object: obj})
			}
		}
	}
	return []Message{resp}, nil
}

// ascending reports whether nodes are distinct, ascending and valid at
// depth level of s.
func ascending(nodes []uint32, s Shape, level int) bool {
	for i, n := range nodes {
		if !s.validNode(level, n) || (i > 0 && nodes[i-1] >= n) {
			return false
		}
	}
	return true
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
