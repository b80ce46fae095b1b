package client

import (
	"log/slog"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leakOptions...)
}

// leakOptions ignore the goroutines that dependencies start at init: gnet
// (linked in through netproto's server) starts a default ants worker pool.
var leakOptions = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
	goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
}

// testLogger returns a logger writing to the test's output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startServer starts a fake server that the test's cleanup stops.
func startServer(t testing.TB, o fakeOptions) *fakeServer {
	t.Helper()
	fs, err := newFakeServer(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fs.Close)
	return fs
}

// startClient connects a client, with the test's logger, to addrs; edit
// adjusts the config. The test's cleanup closes it (before the servers).
func startClient(t testing.TB, edit func(*Config), addrs ...string) *Client {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addrs = addrs
	cfg.Logger = testLogger(t)
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
