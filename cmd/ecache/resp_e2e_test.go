package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// The other end-to-end tests do not ask for a RESP address; without this
// they would all listen on the default 127.0.0.1:6380 and collide with each
// other and with anything else on the machine. Flags beat the environment,
// so the tests below still choose their own.
func init() { os.Setenv("ECACHE_RESP_LISTEN", "127.0.0.1:0") }

var respRE = regexp.MustCompile(`msg="ecache serving".* resp=(\S+)`)

// startRESP runs `ecache serve` with the RESP listener on a free port and
// returns that port's address.
func startRESP(t *testing.T, args ...string) (addr string, stop func()) {
	t.Helper()
	all := append([]string{"serve", "--listen", "127.0.0.1:0", "--admin-listen", "off", "--data-dir", t.TempDir()}, args...)
	cmd := exec.Command(binPath, all...)
	cmd.Env = append(os.Environ(), "ECACHE_CONFIG=")
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		mu  sync.Mutex
		log bytes.Buffer
	)
	found := make(chan string, 1)
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := respRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	go func() { exited <- cmd.Wait(); pw.Close() }()
	logText := func() string { mu.Lock(); defer mu.Unlock(); return log.String() }
	stop = func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	}
	t.Cleanup(stop)
	select {
	case addr = <-found:
	case err := <-exited:
		t.Fatalf("ecache serve exited early: %v\n%s", err, logText())
	case <-time.After(20 * time.Second):
		t.Fatalf("ecache serve did not start:\n%s", logText())
	}
	return addr, stop
}

func hostPort(t *testing.T, addr string) (string, string) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		t.Fatalf("bad address %q", addr)
	}
	return addr[:i], addr[i+1:]
}

// redisCLISession is a redis-cli session fed on stdin and what redis-cli
// prints for it (without a terminal: raw replies, errors followed by an
// empty line, nil as an empty line).
const redisCLISession = `PING
SET greeting "hello world"
GET greeting
SET greeting x NX
INCR visits
INCRBY visits 9
GET visits
SADD tags b a c a
SMEMBERS tags
SISMEMBER tags a
SCARD tags
GET tags
EXPIRE greeting 100
TTL greeting
PERSIST greeting
TTL greeting
MSET k1 v1 k2 v2
MGET k1 nokey k2
EXISTS k1 k2 nokey
DEL k1 k2 nokey
DBSIZE
GETDEL greeting
SELECT 1
FOO bar
GET
CONFIG GET save
CLIENT SETNAME cli
CLIENT GETNAME
GET nokey
`

const redisCLIOutput = `PONG
OK
hello world

1
10
10
3
a
b
c
1
3
WRONGTYPE Operation against a key holding the wrong kind of value

1
100
1
-1
OK
v1

v2
2
2
3
hello world
ERR DB index is out of range

ERR unknown command 'FOO', with args beginning with: 'bar' 

ERR wrong number of arguments for 'get' command

save

OK
cli

`

// TestE2ERedisCLI runs a scripted redis-cli session against the real
// binary (persistent, so writes take the worker path).
func TestE2ERedisCLI(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		requireTool(t, "redis-cli")
	}
	addr, _ := startRESP(t, "--resp-listen", "127.0.0.1:0", "--persistence", "async")
	host, port := hostPort(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, "-h", host, "-p", port)
	cmd.Stdin = strings.NewReader(redisCLISession)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli: %v\n%s", err, out)
	}
	if string(out) != redisCLIOutput {
		t.Errorf("redis-cli output:\n%s\nwant:\n%s", out, redisCLIOutput)
	}
}

// TestE2ERedisBenchmark runs a short redis-benchmark (no timing checks):
// every command it sends must succeed.
func TestE2ERedisBenchmark(t *testing.T) {
	for _, persistence := range []string{"none", "async"} {
		addr, _ := startRESP(t, "--resp-listen", "127.0.0.1:0", "--persistence", persistence)
		host, port := hostPort(t, addr)
		runRedisBenchmark(t, persistence, host, port, 2*time.Minute, "-n", "2000", "-c", "10", "-P", "8", "-r", "1000")
	}
}

// runRedisBenchmark runs redis-benchmark's ping, set, get, incr, sadd and
// mset tests against host:port with args, within limit, and fails the test
// unless every test reports and none saw an error reply. It returns the
// CSV output.
func runRedisBenchmark(t *testing.T, what, host, port string, limit time.Duration, args ...string) string {
	t.Helper()
	bench, err := exec.LookPath("redis-benchmark")
	if err != nil {
		requireTool(t, "redis-benchmark")
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	all := append([]string{"-h", host, "-p", port, "-t", "ping,set,get,incr,sadd,mset", "--csv"}, args...)
	out, err := exec.CommandContext(ctx, bench, all...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-benchmark (%s): %v\n%s", what, err, out)
	}
	text := string(out)
	for _, test := range []string{"PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "SADD", "MSET"} {
		if !strings.Contains(text, `"`+test) {
			t.Errorf("redis-benchmark (%s) did not report %s:\n%s", what, test, text)
		}
	}
	if strings.Contains(strings.ToLower(text), "error") {
		t.Errorf("redis-benchmark (%s) reported errors:\n%s", what, text)
	}
	return text
}

// TestE2ERESPListenOff: --resp-listen off serves no RESP.
func TestE2ERESPListenOff(t *testing.T) {
	addr, _ := startRESP(t, "--resp-listen", "off")
	if addr != "off" {
		t.Errorf("resp address %q, want off", addr)
	}
}

// requireTool skips a test whose external tool is missing on a developer's
// machine, but fails it in CI, where .ci/run installs the tool: a CI run
// must never pass by skipping.
func requireTool(t *testing.T, name string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not on PATH in CI (.ci/run installs redis-tools)", name)
	}
	t.Skipf("%s not on PATH (apt-get install redis-tools)", name)
}
