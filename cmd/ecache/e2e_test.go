package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecachedb/ecache/client"
)

// binPath is the ecache binary built once for the end-to-end tests.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ecache-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "ecache")
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building ecache:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running `ecache serve`.
type proc struct {
	cmd       *exec.Cmd
	addr      string
	adminAddr string
	dataDir   string
	stderr    *bytes.Buffer
	exited    chan error
	scanned   chan struct{} // closed once stderr is read to its end: stderr is safe to read then
}

var listenRE = regexp.MustCompile(`msg="ecache serving".* listen=(\S+) admin=(\S+)`)

// startServe runs `ecache serve` on free ports with the given extra
// arguments and waits until it reports its addresses.
func startServe(t *testing.T, dataDir string, args ...string) *proc {
	t.Helper()
	all := append([]string{"serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data-dir", dataDir}, args...)
	cmd := exec.Command(binPath, all...)
	cmd.Env = append(os.Environ(), "ECACHE_CONFIG=")
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, dataDir: dataDir, stderr: &bytes.Buffer{}, exited: make(chan error, 1), scanned: make(chan struct{})}
	found := make(chan [2]string, 1)
	go func() {
		defer close(p.scanned)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			p.stderr.WriteString(line + "\n")
			if m := listenRE.FindStringSubmatch(line); m != nil {
				select {
				case found <- [2]string{m[1], m[2]}:
				default:
				}
			}
		}
	}()
	go func() { p.exited <- cmd.Wait(); pw.Close() }()
	t.Cleanup(func() { p.kill() })
	select {
	case a := <-found:
		p.addr, p.adminAddr = a[0], a[1]
	case err := <-p.exited:
		t.Fatalf("ecache serve exited early: %v\n%s", err, p.stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("ecache serve did not start:\n%s", p.stderr.String())
	}
	return p
}

func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("ecache serve exited with %v\n%s", err, p.stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("ecache serve did not stop on SIGTERM")
	}
}

// cli runs an ecache data command against p and returns stdout, stderr and
// the exit code.
func cli(t *testing.T, p *proc, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binPath, append(args, "--addr", p.addr)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func mustCLI(t *testing.T, p *proc, want string, args ...string) {
	t.Helper()
	out, errs, code := cli(t, p, args...)
	if code != 0 || out != want {
		t.Fatalf("ecache %s: exit %d, stdout %q (want %q), stderr %q", strings.Join(args, " "), code, out, want, errs)
	}
}

func newClient(t *testing.T, p *proc) *client.Client {
	t.Helper()
	cfg := client.DefaultConfig()
	cfg.Addrs = []string{p.addr}
	c, err := client.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var nsArgs = []string{"--namespace", "sib=siblings", "--namespace", "cnt=counter", "--namespace", "tags=set"}

func TestE2EEveryOperation(t *testing.T) {
	p := startServe(t, t.TempDir(), nsArgs...)
	ctx := context.Background()
	c := newClient(t, p)

	// CLI and SDK see each other's writes.
	mustCLI(t, p, "", "put", "greeting", "hello")
	it, err := c.Get(ctx, "greeting")
	if err != nil || len(it.Values) != 1 || string(it.Values[0]) != "hello" {
		t.Fatalf("SDK get after CLI put: %+v %v", it, err)
	}
	if _, err := c.Put(ctx, "k2", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, p, "v2\n", "get", "k2")
	mustCLI(t, p, "", "del", "k2")
	if _, err := c.Get(ctx, "k2"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("get after del: %v", err)
	}
	_, errs, code := cli(t, p, "get", "k2")
	if code == 0 || strings.Count(strings.TrimSpace(errs), "\n") != 0 || !strings.Contains(errs, "not found") {
		t.Fatalf("CLI get of a deleted key: exit %d stderr %q", code, errs)
	}

	// Counters.
	mustCLI(t, p, "5\n", "incr", "hits", "5", "--ns", "cnt")
	mustCLI(t, p, "4\n", "decr", "hits", "--ns", "cnt")
	if v, err := c.Incr(ctx, "hits", 10, client.WithNamespace("cnt")); err != nil || v != 14 {
		t.Fatalf("SDK incr: %d %v", v, err)
	}
	// Sets.
	mustCLI(t, p, "", "sadd", "colors", "red", "green", "blue", "--ns", "tags")
	mustCLI(t, p, "", "srem", "colors", "green", "--ns", "tags")
	mustCLI(t, p, "blue\nred\n", "smembers", "colors", "--ns", "tags")
	if ms, err := c.SMembers(ctx, "colors", client.WithNamespace("tags")); err != nil || len(ms) != 2 {
		t.Fatalf("SDK smembers: %q %v", ms, err)
	}
	// Wrong type is a clear error.
	_, errs, code = cli(t, p, "incr", "colors", "--ns", "tags")
	if code == 0 || !strings.Contains(errs, "wrong type") {
		t.Fatalf("incr on a set: exit %d stderr %q", code, errs)
	}
	if err := c.SAdd(ctx, "hits", [][]byte{[]byte("x")}, client.WithNamespace("cnt")); !errors.Is(err, client.ErrWrongType) {
		t.Fatalf("SDK sadd on a counter: %v", err)
	}
	_, errs, code = cli(t, p, "get", "k", "--ns", "nosuch")
	if code == 0 || !strings.Contains(errs, "unknown namespace") {
		t.Fatalf("unknown namespace: exit %d stderr %q", code, errs)
	}
	// Expire and TTL.
	mustCLI(t, p, "none\n", "ttl", "greeting")
	mustCLI(t, p, "", "expire", "greeting", "300")
	out, _, _ := cli(t, p, "ttl", "greeting")
	if d, err := time.ParseDuration(strings.TrimSpace(out)); err != nil || d <= 290*time.Second || d > 300*time.Second {
		t.Fatalf("ttl after expire 300: %q", out)
	}
	if d, err := c.TTL(ctx, "greeting"); err != nil || d <= 290*time.Second {
		t.Fatalf("SDK ttl: %v %v", d, err)
	}
	// MGet/MPut through the SDK.
	if _, errs, err := c.MPut(ctx, []client.Entry{{Key: "m1", Value: []byte("1")}, {Key: "m2", Value: []byte("2")}}); err != nil || errs[0] != nil || errs[1] != nil {
		t.Fatalf("MPut: %v %v", errs, err)
	}
	items, ierrs, err := c.MGet(ctx, []string{"m1", "m2", "m3"})
	if err != nil || string(items[0].Values[0]) != "1" || string(items[1].Values[0]) != "2" || !errors.Is(ierrs[2], client.ErrNotFound) {
		t.Fatalf("MGet: %+v %v %v", items, ierrs, err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Stats(ctx); err != nil || st["memory_entries"] == 0 {
		t.Fatalf("stats: %v %v", st, err)
	}
	if out, err := exec.Command(binPath, "version").Output(); err != nil || string(out) != "ecache dev\n" {
		t.Fatalf("ecache version: %q %v", out, err)
	}
}

func TestE2ESiblingsResolvedWithContext(t *testing.T) {
	p := startServe(t, t.TempDir(), nsArgs...)
	ctx := context.Background()
	a, b := newClient(t, p), newClient(t, p)
	// Two writers without context: both values survive as siblings.
	if _, err := a.Put(ctx, "doc", []byte("from-a"), client.WithNamespace("sib")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, "doc", []byte("from-b"), client.WithNamespace("sib")); err != nil {
		t.Fatal(err)
	}
	it, err := a.Get(ctx, "doc", client.WithNamespace("sib"))
	if err != nil || len(it.Values) != 2 {
		t.Fatalf("want 2 siblings: %+v %v", it, err)
	}
	mustCLI(t, p, "from-a\nfrom-b\n", "get", "doc", "--ns", "sib")
	if err := a.Expire(ctx, "doc", time.Minute, client.WithNamespace("sib")); !errors.Is(err, client.ErrSiblings) {
		t.Fatalf("expire on siblings: %v, want ErrSiblings", err)
	}
	// Resolve with the merged context: one value remains.
	if _, err := a.Put(ctx, "doc", []byte("merged"), client.WithNamespace("sib"), client.WithCausalContext(it.Context)); err != nil {
		t.Fatal(err)
	}
	it, err = b.Get(ctx, "doc", client.WithNamespace("sib"))
	if err != nil || len(it.Values) != 1 || string(it.Values[0]) != "merged" {
		t.Fatalf("after resolving: %+v %v", it, err)
	}
	// The CLI can do the same round trip with --show-context / --context.
	b.Put(ctx, "doc", []byte("again"), client.WithNamespace("sib"))
	out, _, _ := cli(t, p, "get", "doc", "--ns", "sib", "--show-context")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	ctxHex := strings.TrimPrefix(lines[len(lines)-1], "context: ")
	if len(lines) != 3 || ctxHex == lines[len(lines)-1] {
		t.Fatalf("get --show-context: %q", out)
	}
	mustCLI(t, p, "", "put", "doc", "final", "--ns", "sib", "--context", ctxHex)
	mustCLI(t, p, "final\n", "get", "doc", "--ns", "sib")
}

func TestE2ETTLExpiry(t *testing.T) {
	p := startServe(t, t.TempDir())
	mustCLI(t, p, "", "put", "short", "lived", "--ttl", "1s")
	mustCLI(t, p, "lived\n", "get", "short")
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, errs, code := cli(t, p, "get", "short")
		if code != 0 && strings.Contains(errs, "not found") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("key with a 1s TTL still readable after 10s")
		}
		time.Sleep(100 * time.Millisecond) // polling a condition with a deadline
	}
}

func TestE2ERestartKeepsData(t *testing.T) {
	cases := []struct {
		persistence string
		kill        bool // SIGKILL instead of a clean SIGTERM
	}{
		{"sync", true},
		{"async", false},
	}
	for _, tc := range cases {
		t.Run(tc.persistence, func(t *testing.T) {
			dir := t.TempDir()
			p := startServe(t, dir, append([]string{"--persistence", tc.persistence}, nsArgs...)...)
			for i := range 20 {
				mustCLI(t, p, "", "put", fmt.Sprint("key", i), fmt.Sprint("value", i))
			}
			mustCLI(t, p, "7\n", "incr", "c", "7", "--ns", "cnt")
			if tc.kill {
				p.kill()
			} else {
				p.stop(t)
			}
			p = startServe(t, dir, append([]string{"--persistence", tc.persistence}, nsArgs...)...)
			for i := range 20 {
				mustCLI(t, p, fmt.Sprint("value", i, "\n"), "get", fmt.Sprint("key", i))
			}
			mustCLI(t, p, "7\n", "incr", "c", "0", "--ns", "cnt")
		})
	}
}

func TestE2EAdminEndpoints(t *testing.T) {
	p := startServe(t, t.TempDir())
	mustCLI(t, p, "", "put", "k", "v")
	mustCLI(t, p, "v\n", "get", "k")
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + p.adminAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz: %d", code)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("/readyz: %d", code)
	}
	code, body := get("/metrics")
	for _, want := range []string{
		`ecache_requests_total{code="ok",op="GET"} 1`,
		`ecache_requests_total{code="ok",op="PUT"} 1`,
		"ecache_request_duration_seconds_bucket",
		"ecache_memory_bytes", "ecache_memory_hits_total", "ecache_connections",
		"ecache_pebble_disk_usage_bytes",
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Fatalf("/metrics lacks %q (status %d)", want, code)
		}
	}
	if code, _ := get("/debug/pprof/"); code != 200 {
		t.Fatalf("/debug/pprof/: %d", code)
	}
}
