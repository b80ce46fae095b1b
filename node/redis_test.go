package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ecachedb/ecache/merge"
	"github.com/ecachedb/ecache/storage"
)

// openRESP opens a node serving RESP on a free loopback port.
func openRESP(t *testing.T, p storage.Persistence, edit func(*Config)) *Node {
	t.Helper()
	cfg := testConfig(t, p)
	cfg.RESPListen = "127.0.0.1:0"
	cfg.RESP.Server.EventLoops = 2
	cfg.RESP.Server.Workers = 4
	if edit != nil {
		edit(&cfg)
	}
	return openNode(t, cfg)
}

func newRedis(t *testing.T, n *Node, proto int, password string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr: n.RESPAddr(), Protocol: proto, Password: password,
		PoolSize: 4, DisableIndentity: true, MaxRetries: -1,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// wantErr checks a Redis error reply's exact text.
func wantErr(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil || err.Error() != want {
		t.Errorf("%s: error %v, want %q", what, err, want)
	}
}

func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

func check[T comparable](t *testing.T, what string, got T, err error, want T) {
	t.Helper()
	if err != nil || got != want {
		t.Errorf("%s = %v, %v; want %v", what, got, err, want)
	}
}

// TestRedisConformance drives every supported command through go-redis,
// over RESP2 and RESP3, on a memory-only node (served on the event loop)
// and a persistent one (writes served by the worker pool).
func TestRedisConformance(t *testing.T) {
	for _, p := range []storage.Persistence{storage.PersistenceNone, storage.PersistenceAsync} {
		for _, proto := range []int{2, 3} {
			t.Run(fmt.Sprintf("%v/RESP%d", p, proto), func(t *testing.T) {
				n := openRESP(t, p, nil)
				testCommands(t, newRedis(t, n, proto, ""))
			})
		}
	}
}

func testCommands(t *testing.T, c *redis.Client) {
	ctx := context.Background()
	s := func(v string, err error) string { t.Helper(); return must[string](t, "")(v, err) }

	// Connection commands.
	check(t, "PING", s(c.Ping(ctx).Result()), nil, "PONG")
	check(t, "PING msg", s(c.Do(ctx, "PING", "hi").Text()), nil, "hi")
	check(t, "ECHO", s(c.Echo(ctx, "x\r\ny").Result()), nil, "x\r\ny")
	check(t, "SELECT 0", s(c.Do(ctx, "SELECT", 0).Text()), nil, "OK")
	wantErr(t, "SELECT 1", c.Do(ctx, "SELECT", 1).Err(), "ERR DB index is out of range")
	wantErr(t, "SELECT x", c.Do(ctx, "SELECT", "x").Err(), "ERR value is not an integer or out of range")
	wantErr(t, "unknown", c.Do(ctx, "FOO", "a", "b").Err(), "ERR unknown command 'FOO', with args beginning with: 'a' 'b' ")
	wantErr(t, "arity", c.Do(ctx, "GET").Err(), "ERR wrong number of arguments for 'get' command")
	wantErr(t, "AUTH without password", c.Do(ctx, "AUTH", "x").Err(), errNoPassword)
	wantErr(t, "HELLO 4", c.Do(ctx, "HELLO", 4).Err(), "NOPROTO unsupported protocol version")
	hello, err := c.Do(ctx, "HELLO").Result()
	if err != nil || !strings.Contains(fmt.Sprint(hello), "ecache") {
		t.Errorf("HELLO = %v, %v", hello, err)
	}
	check(t, "CLIENT SETNAME", s(c.Do(ctx, "CLIENT", "SETNAME", "me").Text()), nil, "OK")
	check(t, "CLIENT GETNAME", s(c.Do(ctx, "CLIENT", "GETNAME").Text()), nil, "me")
	if id, err := c.ClientID(ctx).Result(); err != nil || id <= 0 {
		t.Errorf("CLIENT ID = %d, %v", id, err)
	}
	wantErr(t, "CLIENT bad", c.Do(ctx, "CLIENT", "KILL").Err(), "ERR unknown subcommand 'KILL'. Try CLIENT HELP.")
	cfg, err := c.ConfigGet(ctx, "save").Result()
	if err != nil || len(cfg) != 1 || cfg["save"] != "" {
		t.Errorf("CONFIG GET save = %v, %v", cfg, err)
	}
	if cfg, err = c.ConfigGet(ctx, "appendonly").Result(); err != nil || len(cfg) != 1 {
		t.Errorf("CONFIG GET appendonly = %v, %v", cfg, err)
	}
	if v, err := c.Do(ctx, "COMMAND", "COUNT").Int(); err != nil || v != len(commandTable) {
		t.Errorf("COMMAND COUNT = %d, %v", v, err)
	}
	if cmds, err := c.Command(ctx).Result(); err != nil || cmds["get"] == nil || cmds["get"].Arity != 2 {
		t.Errorf("COMMAND = %v, %v", cmds["get"], err)
	}
	if err := c.Do(ctx, "COMMAND", "DOCS").Err(); err != nil {
		t.Errorf("COMMAND DOCS: %v", err)
	}

	// Strings.
	if err := c.Get(ctx, "s").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("GET missing: %v", err)
	}
	check(t, "SET", s(c.Set(ctx, "s", "v1", 0).Result()), nil, "OK")
	check(t, "GET", s(c.Get(ctx, "s").Result()), nil, "v1")
	if err := c.Do(ctx, "SET", "s", "v2", "NX").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("SET NX existing: %v", err)
	}
	if ok, err := c.SetNX(ctx, "s", "v2", 0).Result(); err != nil || ok {
		t.Errorf("SETNX existing = %v, %v", ok, err)
	}
	if ok, err := c.SetXX(ctx, "nx", "v", 0).Result(); err != nil || ok {
		t.Errorf("SET XX missing = %v, %v", ok, err)
	}
	if ok, err := c.SetXX(ctx, "s", "v2", 0).Result(); err != nil || !ok {
		t.Errorf("SET XX existing = %v, %v", ok, err)
	}
	check(t, "SET GET", s(c.SetArgs(ctx, "s", "v3", redis.SetArgs{Get: true}).Result()), nil, "v2")
	if err := c.SetArgs(ctx, "new", "v", redis.SetArgs{Get: true}).Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("SET GET on a missing key: %v", err)
	}
	wantErr(t, "SET NX XX", c.Do(ctx, "SET", "s", "v", "NX", "XX").Err(), "ERR syntax error")
	wantErr(t, "SET EX PX", c.Do(ctx, "SET", "s", "v", "EX", 1, "PX", 1).Err(), "ERR syntax error")
	wantErr(t, "SET bogus", c.Do(ctx, "SET", "s", "v", "BOGUS").Err(), "ERR syntax error")
	wantErr(t, "SET EX x", c.Do(ctx, "SET", "s", "v", "EX", "x").Err(), "ERR value is not an integer or out of range")
	wantErr(t, "SET EX 0", c.Do(ctx, "SET", "s", "v", "EX", 0).Err(), "ERR invalid expire time in 'set' command")
	check(t, "SET EX", s(c.Set(ctx, "e", "v", 100*time.Second).Result()), nil, "OK")
	check(t, "TTL", must[time.Duration](t, "TTL")(c.TTL(ctx, "e").Result()), nil, 100*time.Second)
	if d, err := c.PTTL(ctx, "e").Result(); err != nil || d <= 99*time.Second || d > 100*time.Second {
		t.Errorf("PTTL = %v, %v", d, err)
	}
	check(t, "SET KEEPTTL", s(c.SetArgs(ctx, "e", "w", redis.SetArgs{KeepTTL: true}).Result()), nil, "OK")
	if d, _ := c.TTL(ctx, "e").Result(); d < 99*time.Second {
		t.Errorf("TTL after KEEPTTL = %v", d)
	}
	check(t, "SET PX", s(c.Do(ctx, "SET", "e", "v", "PX", 50000).Text()), nil, "OK")
	if d, _ := c.TTL(ctx, "e").Result(); d != 50*time.Second {
		t.Errorf("TTL after PX = %v", d)
	}
	at := time.Now().Add(time.Hour)
	check(t, "SET EXAT", s(c.Do(ctx, "SET", "e", "v", "EXAT", at.Unix()).Text()), nil, "OK")
	if d, _ := c.TTL(ctx, "e").Result(); d < 59*time.Minute || d > time.Hour {
		t.Errorf("TTL after EXAT = %v", d)
	}
	check(t, "SET PXAT", s(c.Do(ctx, "SET", "e", "v", "PXAT", at.UnixMilli()).Text()), nil, "OK")
	check(t, "plain SET clears TTL", s(c.Set(ctx, "e", "v", 0).Result()), nil, "OK")
	check(t, "TTL none", must[time.Duration](t, "TTL")(c.TTL(ctx, "e").Result()), nil, time.Duration(-1))
	check(t, "TTL missing", must[time.Duration](t, "TTL")(c.TTL(ctx, "missing").Result()), nil, time.Duration(-2))
	check(t, "SETEX", s(c.SetEx(ctx, "x", "v", 20*time.Second).Result()), nil, "OK")
	if d, _ := c.TTL(ctx, "x").Result(); d != 20*time.Second {
		t.Errorf("TTL after SETEX = %v", d)
	}
	wantErr(t, "SETEX 0", c.Do(ctx, "SETEX", "x", 0, "v").Err(), "ERR invalid expire time in 'setex' command")
	check(t, "GETDEL", s(c.GetDel(ctx, "x").Result()), nil, "v")
	if err := c.GetDel(ctx, "x").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("GETDEL again: %v", err)
	}
	check(t, "MSET", s(c.MSet(ctx, "m1", "a", "m2", "b").Result()), nil, "OK")
	wantErr(t, "MSET odd", c.Do(ctx, "MSET", "m1", "a", "m2").Err(), "ERR wrong number of arguments for 'mset' command")
	if v, err := c.MGet(ctx, "m1", "nope", "m2").Result(); err != nil || fmt.Sprint(v) != "[a <nil> b]" {
		t.Errorf("MGET = %v, %v", v, err)
	}
	check(t, "EXISTS", must[int64](t, "EXISTS")(c.Exists(ctx, "m1", "m2", "nope", "m1").Result()), nil, int64(3))
	check(t, "DEL", must[int64](t, "DEL")(c.Del(ctx, "m1", "nope").Result()), nil, int64(1))
	check(t, "UNLINK", must[int64](t, "UNLINK")(c.Unlink(ctx, "m2", "m1").Result()), nil, int64(1))
	check(t, "EXISTS after DEL", must[int64](t, "EXISTS")(c.Exists(ctx, "m1", "m2").Result()), nil, int64(0))

	// Expiry.
	check(t, "EXPIRE missing", must[bool](t, "EXPIRE")(c.Expire(ctx, "nope", time.Minute).Result()), nil, false)
	check(t, "EXPIRE", must[bool](t, "EXPIRE")(c.Expire(ctx, "s", time.Minute).Result()), nil, true)
	check(t, "TTL after EXPIRE", must[time.Duration](t, "TTL")(c.TTL(ctx, "s").Result()), nil, time.Minute)
	check(t, "PEXPIRE", must[bool](t, "PEXPIRE")(c.PExpire(ctx, "s", 30*time.Second).Result()), nil, true)
	check(t, "TTL after PEXPIRE", must[time.Duration](t, "TTL")(c.TTL(ctx, "s").Result()), nil, 30*time.Second)
	check(t, "PERSIST", must[bool](t, "PERSIST")(c.Persist(ctx, "s").Result()), nil, true)
	check(t, "PERSIST again", must[bool](t, "PERSIST")(c.Persist(ctx, "s").Result()), nil, false)
	wantErr(t, "EXPIRE x", c.Do(ctx, "EXPIRE", "s", "x").Err(), "ERR value is not an integer or out of range")
	check(t, "PEXPIRE short", must[bool](t, "PEXPIRE")(c.PExpire(ctx, "s", 20*time.Millisecond).Result()), nil, true)
	deadline := time.Now().Add(5 * time.Second)
	for c.Exists(ctx, "s").Val() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.Get(ctx, "s").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("GET after expiry: %v", err)
	}
	c.Set(ctx, "gone", "v", 0)
	check(t, "EXPIRE 0 deletes", must[bool](t, "EXPIRE")(c.Expire(ctx, "gone", 0).Result()), nil, true)
	check(t, "EXISTS after EXPIRE 0", must[int64](t, "EXISTS")(c.Exists(ctx, "gone").Result()), nil, int64(0))

	// Counters.
	check(t, "INCR", must[int64](t, "INCR")(c.Incr(ctx, "n").Result()), nil, int64(1))
	check(t, "INCRBY", must[int64](t, "INCRBY")(c.IncrBy(ctx, "n", 10).Result()), nil, int64(11))
	check(t, "DECR", must[int64](t, "DECR")(c.Decr(ctx, "n").Result()), nil, int64(10))
	check(t, "DECRBY", must[int64](t, "DECRBY")(c.DecrBy(ctx, "n", 15).Result()), nil, int64(-5))
	check(t, "GET counter", s(c.Get(ctx, "n").Result()), nil, "-5")
	wantErr(t, "INCRBY x", c.Do(ctx, "INCRBY", "n", "x").Err(), "ERR value is not an integer or out of range")
	c.IncrBy(ctx, "big", 1<<62)
	wantErr(t, "INCRBY overflow", c.IncrBy(ctx, "big", 1<<62).Err(), "ERR increment or decrement would overflow")
	c.Set(ctx, "str", "41", 0)
	check(t, "INCR integer string", must[int64](t, "INCR")(c.Incr(ctx, "str").Result()), nil, int64(42))
	check(t, "GET after INCR", s(c.Get(ctx, "str").Result()), nil, "42")
	c.Set(ctx, "word", "abc", 0)
	wantErr(t, "INCR word", c.Incr(ctx, "word").Err(), "ERR value is not an integer or out of range")
	check(t, "SET over counter", s(c.Set(ctx, "n", "text", 0).Result()), nil, "OK")
	check(t, "GET after SET over counter", s(c.Get(ctx, "n").Result()), nil, "text")
	c.SAdd(ctx, "shadow", "m")
	check(t, "SET over set", s(c.Set(ctx, "shadow", "v", 0).Result()), nil, "OK")
	wantErr(t, "SMEMBERS after SET over set", c.SMembers(ctx, "shadow").Err(), errWrongType)
	check(t, "GET after SET over set", s(c.Get(ctx, "shadow").Result()), nil, "v")
	check(t, "DEL shadow", must[int64](t, "DEL")(c.Del(ctx, "shadow").Result()), nil, int64(1))
	check(t, "TTL counter", must[time.Duration](t, "TTL")(c.TTL(ctx, "str").Result()), nil, time.Duration(-1))
	check(t, "GETDEL counter", s(c.GetDel(ctx, "str").Result()), nil, "42")

	// Sets.
	check(t, "SADD", must[int64](t, "SADD")(c.SAdd(ctx, "set", "a", "b", "a").Result()), nil, int64(2))
	check(t, "SADD again", must[int64](t, "SADD")(c.SAdd(ctx, "set", "b", "c").Result()), nil, int64(1))
	if m, err := c.SMembers(ctx, "set").Result(); err != nil || fmt.Sprint(m) != "[a b c]" {
		t.Errorf("SMEMBERS = %v, %v", m, err)
	}
	check(t, "SISMEMBER", must[bool](t, "SISMEMBER")(c.SIsMember(ctx, "set", "b").Result()), nil, true)
	check(t, "SISMEMBER no", must[bool](t, "SISMEMBER")(c.SIsMember(ctx, "set", "z").Result()), nil, false)
	check(t, "SCARD", must[int64](t, "SCARD")(c.SCard(ctx, "set").Result()), nil, int64(3))
	check(t, "SREM", must[int64](t, "SREM")(c.SRem(ctx, "set", "a", "z").Result()), nil, int64(1))
	check(t, "SCARD missing", must[int64](t, "SCARD")(c.SCard(ctx, "nope").Result()), nil, int64(0))
	if m, err := c.SMembers(ctx, "nope").Result(); err != nil || len(m) != 0 {
		t.Errorf("SMEMBERS missing = %v, %v", m, err)
	}
	wantErr(t, "GET set", c.Get(ctx, "set").Err(), errWrongType)
	wantErr(t, "INCR set", c.Incr(ctx, "set").Err(), errWrongType)
	wantErr(t, "SADD string", c.SAdd(ctx, "word", "x").Err(), errWrongType)
	wantErr(t, "SMEMBERS string", c.SMembers(ctx, "word").Err(), errWrongType)
	wantErr(t, "SET GET on set", c.SetArgs(ctx, "set", "v", redis.SetArgs{Get: true}).Err(), errWrongType)
	check(t, "EXPIRE set", must[bool](t, "EXPIRE")(c.Expire(ctx, "set", time.Minute).Result()), nil, true)
	check(t, "TTL set", must[time.Duration](t, "TTL")(c.TTL(ctx, "set").Result()), nil, time.Minute)

	// Keyspace.
	c.FlushDB(ctx) // not supported: an error, and nothing changes
	keys := must[int64](t, "DBSIZE")(c.DBSize(ctx).Result())
	var want int64
	for _, k := range []string{"s", "e", "new", "n", "big", "word", "set", "nx", "x", "m1", "m2", "str", "gone", "missing", "nope"} {
		want += c.Exists(ctx, k).Val()
	}
	if keys != want || keys == 0 {
		t.Errorf("DBSIZE = %d, want %d", keys, want)
	}
	info := s(c.Info(ctx).Result())
	for _, w := range []string{"# Server", "redis_version:", "# Clients", "connected_clients:", "# Memory", "used_memory:",
		"# Stats", "total_commands_processed:", "# Keyspace", fmt.Sprintf("db0:keys=%d,", keys)} {
		if !strings.Contains(info, w) {
			t.Errorf("INFO lacks %q:\n%s", w, info)
		}
	}
	if sec := s(c.Info(ctx, "stats").Result()); strings.Contains(sec, "# Server") || !strings.Contains(sec, "keyspace_hits:") {
		t.Errorf("INFO stats:\n%s", sec)
	}
}

func TestRedisAuth(t *testing.T) {
	n := openRESP(t, storage.PersistenceNone, func(c *Config) { c.Password = "sekret" })
	ctx := context.Background()
	anon := newRedis(t, n, 2, "")
	wantErr(t, "GET unauthenticated", anon.Get(ctx, "k").Err(), errNoAuth)
	wantErr(t, "PING unauthenticated", anon.Ping(ctx).Err(), errNoAuth)
	wantErr(t, "AUTH wrong", anon.Do(ctx, "AUTH", "nope").Err(), errWrongPass)
	wantErr(t, "AUTH wrong user", anon.Do(ctx, "AUTH", "bob", "sekret").Err(), errWrongPass)
	wantErr(t, "HELLO without AUTH", anon.Do(ctx, "HELLO", 3).Err(),
		"NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
	for _, proto := range []int{2, 3} { // RESP3 authenticates with HELLO 3 AUTH, RESP2 with AUTH
		c := newRedis(t, n, proto, "sekret")
		check(t, "SET authenticated", must[string](t, "SET")(c.Set(ctx, "k", "v", 0).Result()), nil, "OK")
		check(t, "GET authenticated", must[string](t, "GET")(c.Get(ctx, "k").Result()), nil, "v")
	}
}

// TestRedisSetNXAtomic races SET NX on one key: exactly one wins.
func TestRedisSetNXAtomic(t *testing.T) {
	for _, p := range []storage.Persistence{storage.PersistenceNone, storage.PersistenceAsync} {
		n := openRESP(t, p, nil)
		c := newRedis(t, n, 2, "")
		ctx := context.Background()
		for round := range 20 {
			key := fmt.Sprintf("k%d", round)
			var wins atomic.Int32
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if ok, err := c.SetNX(ctx, key, i, 0).Result(); err == nil && ok {
						wins.Add(1)
					}
				}()
			}
			wg.Wait()
			if w := wins.Load(); w != 1 {
				t.Fatalf("%v round %d: %d SET NX won, want 1", p, round, w)
			}
		}
	}
}

// TestRedisSiblings: a strings namespace keeping siblings shows the
// latest-written sibling, counts the read, and SET resolves them.
func TestRedisSiblings(t *testing.T) {
	n := openRESP(t, storage.PersistenceNone, func(c *Config) { c.RESP.Strings = "sib" })
	ctx := context.Background()
	c := newRedis(t, n, 3, "")
	for _, v := range []string{"first", "second"} { // blind writes: concurrent siblings
		if _, _, err := n.Apply(b("sib"), b("k"), merge.Op{Kind: merge.OpPut, Value: b(v)}); err != nil {
			t.Fatal(err)
		}
	}
	check(t, "GET siblings", must[string](t, "GET")(c.Get(ctx, "k").Result()), nil, "second")
	if info := c.Info(ctx, "stats").Val(); !strings.Contains(info, "ecache_sibling_reads:1") {
		t.Errorf("INFO stats:\n%s", info)
	}
	c.Set(ctx, "k", "resolved", 0)
	it, err := n.Get(b("sib"), b("k"))
	if err != nil || len(it.Values) != 1 || string(it.Values[0]) != "resolved" {
		t.Errorf("after SET: %q, %v", it.Values, err)
	}
}

func TestRedisConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"strings not value", func(c *Config) { c.RESP.Strings = "cnt" }, "RESP.Strings"},
		{"strings unknown", func(c *Config) { c.RESP.Strings = "nope" }, "RESP.Strings"},
		{"counters not counter", func(c *Config) { c.RESP.Counters = "tags" }, "RESP.Counters"},
		{"sets not set", func(c *Config) { c.RESP.Sets = "sib" }, "RESP.Sets"},
		{"same namespace", func(c *Config) { c.RESP.Sets = c.RESP.Counters }, "must differ"},
	} {
		cfg := testConfig(t, storage.PersistenceNone)
		cfg.RESPListen = "127.0.0.1:0"
		tc.edit(&cfg)
		if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want %s", tc.name, err, tc.want)
		}
	}
}

// TestRedisLimits: a value over the node's limit is an error reply, not a
// closed connection; a bulk over the parser's limit closes only that
// connection.
func TestRedisLimits(t *testing.T) {
	n := openRESP(t, storage.PersistenceNone, func(c *Config) {
		c.Limits.MaxValueSize = 1 << 10
		c.Limits.MaxKeySize = 64
		c.Limits.MaxFrameSize = 64 << 10
	})
	ctx := context.Background()
	c := newRedis(t, n, 2, "")
	if err := c.Set(ctx, "k", strings.Repeat("x", 1<<10+1), 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "ERR ") {
		t.Errorf("SET oversized value: %v", err)
	}
	if err := c.Set(ctx, strings.Repeat("k", 65), "v", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "ERR ") {
		t.Errorf("SET oversized key: %v", err)
	}
	conn, err := net.Dial("tcp", n.RESPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n", 1<<20)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 256)
	nr, _ := conn.Read(buf)
	if !strings.HasPrefix(string(buf[:nr]), "-ERR Protocol error: invalid bulk length") {
		t.Errorf("oversized bulk: %q", buf[:nr])
	}
	if _, err := conn.Read(buf); err == nil {
		t.Error("connection still open after a protocol error")
	}
	check(t, "healthy client", must[string](t, "PING")(c.Ping(ctx).Result()), nil, "PONG")
}
