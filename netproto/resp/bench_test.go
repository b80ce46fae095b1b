package resp

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ecachedb/ecache/netproto/internal/nettest"
)

// pingHandler answers PING with +PONG on the event loop; SLOW goes to the
// workers (and answers +PONG there too). It allocates nothing, so
// allocs/op is the server's.
type pingHandler struct{}

func (pingHandler) ServeFast(_ *Session, args [][]byte, dst []byte) ([]byte, bool) {
	if len(args[0]) == 4 && (args[0][0] == 'S' || args[0][0] == 's') {
		return dst, false
	}
	return append(dst, "+PONG\r\n"...), true
}

func (pingHandler) Serve(_ context.Context, _ *Session, _ [][]byte, dst []byte) []byte {
	return append(dst, "+PONG\r\n"...)
}

// BenchmarkServer measures the server's scheduling with a handler that does
// no work: PING is served on the event loop, SLOW by the workers.
func BenchmarkServer(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	s, err := New(cfg, pingHandler{})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			b.Error(err)
		}
	}()
	for _, command := range []string{"PING", "SLOW"} {
		for _, conns := range []int{1, 8} {
			for _, depth := range []int{1, 16} {
				b.Run(fmt.Sprintf("%s/conns=%d/depth=%d", command, conns, depth), func(b *testing.B) {
					req := strings.Repeat("*1\r\n$4\r\n"+command+"\r\n", depth)
					nettest.RoundTrips(b, s.Addr(), []byte(req), depth*len("+PONG\r\n"), depth, conns)
				})
			}
		}
	}
}
