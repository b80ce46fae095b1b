// Package nettest holds test helpers for the netproto servers and their
// scheduler: start a server for the length of a test, dial it over
// loopback, poll for a state, and drive benchmarks with pipelined round
// trips. Only tests import it.
package nettest

import (
	"bufio"
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// WaitFor is the deadline of every poll, shutdown and client connection.
const WaitFor = 5 * time.Second

// Server is what the servers have in common.
type Server interface {
	Start() error
	Shutdown(ctx context.Context) error
}

// Start starts s and shuts it down when the test ends.
func Start(t testing.TB, s Server) {
	t.Helper()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), WaitFor)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
}

// Dial connects to addr, with a deadline of d on every read and write of
// the connection; the connection closes when the test ends.
func Dial(t testing.TB, addr string, d time.Duration) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, WaitFor)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(d))
	return c
}

// Client is a raw client connection of a test.
type Client struct {
	T    testing.TB
	Conn net.Conn
	R    *bufio.Reader
}

// NewClient dials addr (see Dial).
func NewClient(t testing.TB, addr string, d time.Duration) *Client {
	t.Helper()
	c := Dial(t, addr, d)
	return &Client{T: t, Conn: c, R: bufio.NewReader(c)}
}

// Send writes s.
func (c *Client) Send(s string) {
	c.T.Helper()
	if _, err := io.WriteString(c.Conn, s); err != nil {
		c.T.Fatal(err)
	}
}

// Poll waits until cond holds, failing the test after WaitFor.
func Poll(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(WaitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling interval, not a wait for an event
	}
}
