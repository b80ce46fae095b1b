package nettest

import (
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
)

// RoundTrips measures round trips of req, which holds depth requests and
// gets respLen bytes of replies, over conns connections to addr. b.N counts
// round trips; the req/s metric counts requests. The server's allocations
// show in allocs/op when it runs in the benchmark's process.
func RoundTrips(b *testing.B, addr string, req []byte, respLen, depth, conns int) {
	b.Helper()
	var mu sync.Mutex
	var clients []net.Conn
	dialOne := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		mu.Lock()
		clients = append(clients, c)
		mu.Unlock()
		return c
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	roundTrip := func(c net.Conn, resp []byte) {
		if _, err := c.Write(req); err != nil {
			b.Error(err)
			return
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			b.Error(err)
		}
	}
	b.ReportAllocs()
	if conns == 1 {
		c := dialOne()
		resp := make([]byte, respLen)
		roundTrip(c, resp) // warm up
		b.ResetTimer()
		for b.Loop() {
			roundTrip(c, resp)
		}
	} else {
		procs := runtime.GOMAXPROCS(0)
		b.SetParallelism((conns + procs - 1) / procs)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			c := dialOne()
			resp := make([]byte, respLen)
			for pb.Next() {
				roundTrip(c, resp)
			}
		})
	}
	b.ReportMetric(float64(b.N*depth)/b.Elapsed().Seconds(), "req/s")
}
