package clustertest

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/ecachedb/ecache/netproto"
)

// faultConn is a peer data connection from node from to node to. It cuts
// the byte streams into frames and lets the network decide each frame's
// fate: requests it writes on the from → to link, responses it reads on
// to → from.
type faultConn struct {
	net.Conn
	nw       *Network
	from, to int

	closeOnce sync.Once
	closed    chan struct{} // closed by Close: ends delays

	// wmu guards wbuf and wraw; held for a whole Write.
	wmu  sync.Mutex
	wbuf []byte // the start of a frame not yet complete
	wraw bool   // not frames: pass bytes through

	// rmu guards the read side; held for a whole Read.
	rmu  sync.Mutex
	rin  []byte // read, not yet a whole frame
	rout []byte // judged, not yet returned
	rerr error  // the error behind rout
	rraw bool
}

func newFaultConn(nw *Network, c net.Conn, from, to int) *faultConn {
	return &faultConn{Conn: c, nw: nw, from: from, to: to, closed: make(chan struct{})}
}

func (c *faultConn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		close(c.closed)
		err = c.Conn.Close()
	})
	return err
}

// wait holds a delayed frame; false when the connection closed meanwhile.
func (c *faultConn) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.closed:
		return false
	}
}

// frameLen returns the length of the frame at the start of b: 0 when
// incomplete, -1 when b does not start with a frame header.
func frameLen(b []byte) (int, netproto.Opcode) {
	if len(b) < netproto.HeaderSize {
		return 0, 0
	}
	h, err := netproto.ParseHeader(b)
	if err != nil {
		return -1, 0
	}
	n := netproto.HeaderSize + int(h.BodyLen)
	if len(b) < n {
		return 0, h.Opcode
	}
	return n, h.Opcode
}

func (c *faultConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wraw {
		return c.Conn.Write(p)
	}
	c.wbuf = append(c.wbuf, p...)
	for {
		n, op := frameLen(c.wbuf)
		if n < 0 {
			c.wraw = true
			_, err := c.Conn.Write(c.wbuf)
			c.wbuf = nil
			return len(p), err
		}
		if n == 0 {
			return len(p), nil
		}
		d := c.nw.decide(c.from, c.to, PathData, op)
		if d.cut {
			c.Close()
			return 0, fmt.Errorf("%w: %d→%d", ErrCut, c.from, c.to)
		}
		if d.delay > 0 && !c.wait(d.delay) {
			return 0, net.ErrClosed
		}
		if !d.drop {
			copies := 1
			if d.dup {
				copies = 2
			}
			for range copies {
				if _, err := c.Conn.Write(c.wbuf[:n]); err != nil {
					return 0, err
				}
			}
		}
		c.wbuf = c.wbuf[:copy(c.wbuf, c.wbuf[n:])]
	}
}

func (c *faultConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	var buf [16 << 10]byte
	for len(c.rout) == 0 && c.rerr == nil {
		n, err := c.Conn.Read(buf[:])
		if c.rraw {
			return n, err
		}
		c.rin = append(c.rin, buf[:n]...)
		if jerr := c.judge(); jerr != nil {
			return 0, jerr
		}
		c.rerr = err
	}
	if len(c.rout) == 0 {
		return 0, c.rerr
	}
	n := copy(p, c.rout)
	c.rout = c.rout[:copy(c.rout, c.rout[n:])]
	return n, nil
}

// judge moves the whole frames of rin to rout, as the to → from link
// decides.
func (c *faultConn) judge() error {
	for {
		n, op := frameLen(c.rin)
		if n < 0 {
			c.rraw = true
			c.rout = append(c.rout, c.rin...)
			c.rin = nil
			return nil
		}
		if n == 0 {
			return nil
		}
		d := c.nw.decide(c.to, c.from, PathData, op)
		if d.cut {
			c.Close()
			return fmt.Errorf("%w: %d→%d", ErrCut, c.to, c.from)
		}
		if d.delay > 0 && !c.wait(d.delay) {
			return net.ErrClosed
		}
		if !d.drop {
			c.rout = append(c.rout, c.rin[:n]...)
			if d.dup {
				c.rout = append(c.rout, c.rin[:n]...)
			}
		}
		c.rin = c.rin[:copy(c.rin, c.rin[n:])]
	}
}
