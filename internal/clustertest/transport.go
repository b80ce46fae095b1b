package clustertest

import (
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// WrapTransport returns node from's gossip transport wrapper
// (gossip.Config.WrapTransport): memberlist's own transport underneath,
// the network's faults on the packets node from sends and on the streams
// it dials.
func (nw *Network) WrapTransport(from int) func(memberlist.Transport) memberlist.Transport {
	return func(inner memberlist.Transport) memberlist.Transport {
		t := &transport{Transport: inner, nw: nw, from: from, stop: make(chan struct{})}
		if nt, ok := inner.(*memberlist.NetTransport); ok {
			nw.Register(from, net.JoinHostPort("127.0.0.1", fmt.Sprint(nt.GetAutoBindPort())))
		}
		return t
	}
}

// transport is a memberlist transport with faults on what it sends.
type transport struct {
	memberlist.Transport
	nw   *Network
	from int

	// mu guards stopped; delayed sends are counted in wg under it.
	mu      sync.Mutex
	stopped bool
	stop    chan struct{}
	wg      sync.WaitGroup
}

func (t *transport) WriteTo(b []byte, addr string) (time.Time, error) {
	to, known := t.nw.nodeOf(addr)
	if !known {
		return t.Transport.WriteTo(b, addr)
	}
	d := t.nw.decide(t.from, to, PathGossip, 0)
	now := time.Now()
	switch {
	case d.cut, d.drop:
		return now, nil // lost on the way, as UDP loses it
	case d.delay > 0:
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.stopped {
			return now, nil
		}
		b = slices.Clone(b)
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			tm := time.NewTimer(d.delay)
			defer tm.Stop()
			select {
			case <-tm.C:
			case <-t.stop:
				return
			}
			for range 1 + btoi(d.dup) {
				_, _ = t.Transport.WriteTo(b, addr)
			}
		}()
		return now, nil
	}
	for range btoi(d.dup) {
		_, _ = t.Transport.WriteTo(b, addr)
	}
	return t.Transport.WriteTo(b, addr)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (t *transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if to, known := t.nw.nodeOf(addr); known && t.nw.refuses(t.from, to, PathGossip) {
		return nil, fmt.Errorf("%w: gossip dial %d→%d (%s)", ErrCut, t.from, to, addr)
	}
	return t.Transport.DialTimeout(addr, timeout)
}

// Shutdown drops the delayed packets not yet sent, then shuts the inner
// transport down.
func (t *transport) Shutdown() error {
	t.mu.Lock()
	if !t.stopped {
		t.stopped = true
		close(t.stop)
	}
	t.mu.Unlock()
	t.wg.Wait()
	return t.Transport.Shutdown()
}
