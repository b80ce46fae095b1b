package clustertest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/ecachedb/ecache/netproto"
)

// ErrCut reports a message or a dial over a cut link.
var ErrCut = errors.New("clustertest: link cut")

// Path is which of a node's networks a fault applies to.
type Path uint8

// Paths. The zero Path is both.
const (
	PathBoth   Path = iota
	PathData        // the peer data path (binary protocol)
	PathGossip      // memberlist packets and streams
)

// Faults is what a directed link does to the messages it carries.
type Faults struct {
	// Cut drops every message and refuses new connections; data
	// connections break at their next message.
	Cut bool
	// Drop is the probability that a message is lost.
	Drop float64
	// Duplicate is the probability that a message is delivered twice.
	Duplicate float64
	// Delay, when positive, holds each message for a duration drawn
	// uniformly from [0, Delay). On the data path a delayed frame delays
	// the frames behind it on its connection, as TCP would.
	Delay time.Duration
	// Path limits the faults to one path; zero means both.
	Path Path
	// Ops limits Drop, Duplicate and Delay on the data path to frames of
	// these opcodes (requests and their responses); empty means all. Cut
	// ignores it.
	Ops []netproto.Opcode
}

func (f *Faults) applies(p Path, op netproto.Opcode) bool {
	if f.Path != PathBoth && f.Path != p {
		return false
	}
	return p != PathData || len(f.Ops) == 0 || slices.Contains(f.Ops, op)
}

// LinkStats count what a link did, per path.
type LinkStats struct {
	Messages   uint64 // messages offered to the link
	Dropped    uint64 // lost, cut links included
	Duplicated uint64
	Delayed    uint64
	Refused    uint64 // dials refused by a cut
}

// Network is a seeded network between the nodes of one test. Nodes are
// known by their index; Register tells it which addresses belong to which.
// It is safe for concurrent use.
type Network struct {
	seed uint64

	// mu guards the fields below.
	mu     sync.Mutex
	addrs  map[string]int // address → node index
	faults map[link]Faults
	links  map[stream]*linkState
}

type link struct{ from, to int }

// stream is one sequence of messages: a link on one path, one direction
// of its connections.
type stream struct {
	link
	path Path
}

type linkState struct {
	rng   *rand.Rand // the stream's draws, one triple per message
	stats LinkStats
}

// NewNetwork returns a network whose faults are drawn from seed, with
// every link healthy.
func NewNetwork(seed uint64) *Network {
	return &Network{seed: seed, addrs: map[string]int{}, faults: map[link]Faults{}, links: map[stream]*linkState{}}
}

// Register maps addresses (host:port, as peers dial them or memberlist
// sends to them) to node index i. Messages to unregistered addresses pass
// untouched.
func (nw *Network) Register(i int, addrs ...string) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	for _, a := range addrs {
		nw.addrs[a] = i
	}
}

func (nw *Network) nodeOf(addr string) (int, bool) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	i, ok := nw.addrs[addr]
	return i, ok
}

// SetLink sets the faults of the directed link from → to.
func (nw *Network) SetLink(from, to int, f Faults) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	f.Ops = slices.Clone(f.Ops)
	nw.faults[link{from, to}] = f
}

// Cut cuts the links between a and b in both directions on path p.
func (nw *Network) Cut(a, b int, p Path) {
	nw.SetLink(a, b, Faults{Cut: true, Path: p})
	nw.SetLink(b, a, Faults{Cut: true, Path: p})
}

// Isolate cuts every link between node i and the nodes in others, both
// ways, on path p.
func (nw *Network) Isolate(i int, p Path, others ...int) {
	for _, o := range others {
		if o != i {
			nw.Cut(i, o, p)
		}
	}
}

// Heal makes the links between a and b healthy again, both ways.
func (nw *Network) Heal(a, b int) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	delete(nw.faults, link{a, b})
	delete(nw.faults, link{b, a})
}

// HealAll makes every link healthy.
func (nw *Network) HealAll() {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	clear(nw.faults)
}

// Stats returns what the link from → to did on path p (PathData or
// PathGossip).
func (nw *Network) Stats(from, to int, p Path) LinkStats {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if ls := nw.links[stream{link{from, to}, p}]; ls != nil {
		return ls.stats
	}
	return LinkStats{}
}

// decision is what happens to one message.
type decision struct {
	cut, drop, dup bool
	delay          time.Duration
}

// decide draws the fate of the next message on from → to over path p.
// Every message consumes the same three draws whatever the faults, so the
// k-th message of a stream meets the same numbers in every run.
func (nw *Network) decide(from, to int, p Path, op netproto.Opcode) decision {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	ls := nw.streamLocked(from, to, p)
	rDrop, rDup, rDelay := ls.rng.Float64(), ls.rng.Float64(), ls.rng.Float64()
	ls.stats.Messages++
	f, ok := nw.faults[link{from, to}]
	var d decision
	switch {
	case !ok || (f.Path != PathBoth && f.Path != p):
	case f.Cut:
		d.cut = true
	case f.applies(p, op):
		d.drop = rDrop < f.Drop
		d.dup = !d.drop && rDup < f.Duplicate
		if f.Delay > 0 && !d.drop {
			d.delay = time.Duration(rDelay * float64(f.Delay))
		}
	}
	switch {
	case d.cut, d.drop:
		ls.stats.Dropped++
	case d.dup:
		ls.stats.Duplicated++
	}
	if d.delay > 0 {
		ls.stats.Delayed++
	}
	return d
}

// refuses reports whether a new connection from → to on path p is refused,
// counting it.
func (nw *Network) refuses(from, to int, p Path) bool {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	f, ok := nw.faults[link{from, to}]
	if !ok || !f.Cut || (f.Path != PathBoth && f.Path != p) {
		return false
	}
	nw.streamLocked(from, to, p).stats.Refused++
	return true
}

func (nw *Network) streamLocked(from, to int, p Path) *linkState {
	s := stream{link{from, to}, p}
	ls := nw.links[s]
	if ls == nil {
		ls = &linkState{rng: rand.New(rand.NewPCG(nw.seed, streamSeed(s)))}
		nw.links[s] = ls
	}
	return ls
}

// streamSeed derives a stream's second PCG seed from its identity, the same
// in every run (splitmix64 of the packed identity).
func streamSeed(s stream) uint64 {
	z := uint64(uint32(s.from))<<32 ^ uint64(uint32(s.to))<<4 ^ uint64(s.path) + 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// Dialer returns the dial function of node from's peer client
// (node.ClusterConfig.PeerDialer).
func (nw *Network) Dialer(from int) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		to, known := nw.nodeOf(addr)
		if known && nw.refuses(from, to, PathData) {
			return nil, fmt.Errorf("%w: dial %d→%d (%s)", ErrCut, from, to, addr)
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil || !known {
			return c, err
		}
		return newFaultConn(nw, c, from, to), nil
	}
}
