package node

// This file is the Redis-protocol (RESP) front end of a node: it maps
// Redis commands onto the same node operations, limits and password as the
// binary protocol (handler.go). docs/redis-compat.md is the user-facing
// description of the mapping; keep the two in step.
//
// Keyspace. Redis has one flat keyspace of typed keys; ecache has
// namespaces, each with one strategy. RESP commands use three namespaces:
// string commands RESPConfig.Strings (lww or siblings), the INCR family
// RESPConfig.Counters (counter) and set commands RESPConfig.Sets (set). A
// key's Redis type is the first of those three in which it is live (lookup);
// a value in a later namespace is shadowed. Writes keep one type per key the
// way Redis does: SET replaces any type (and deletes the shadowed values the
// memory tier holds), INCR of a key holding an integer string moves it to
// the counter namespace, and commands of one type on a key live as another
// answer WRONGTYPE. Each single-namespace step is atomic (the store's
// per-key Update); steps across namespaces are not.

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ecachedb/ecache/merge"
	"github.com/ecachedb/ecache/netproto"
	"github.com/ecachedb/ecache/netproto/resp"
	"github.com/ecachedb/ecache/storage"
	"github.com/ecachedb/ecache/vclock"
)

// RESPConfig configures the Redis-protocol listener.
type RESPConfig struct {
	// Strings is the namespace of string commands (GET, SET, ...); it must
	// be configured as lww or siblings.
	Strings string
	// Counters is the namespace of INCR, INCRBY, DECR and DECRBY; it is
	// configured as counter when absent from Namespaces.
	Counters string
	// Sets is the namespace of SADD, SREM, SMEMBERS, SISMEMBER and SCARD;
	// it is configured as set when absent from Namespaces.
	Sets string
	// Server configures the RESP server; its Addr comes from
	// Config.RESPListen and its key and value limits from Config.Limits.
	Server resp.Config
}

// DefaultRESPConfig returns the RESP settings `ecache serve` starts from.
func DefaultRESPConfig() RESPConfig {
	return RESPConfig{Strings: DefaultNamespace, Counters: "counters", Sets: "sets", Server: resp.DefaultConfig()}
}

// validate checks the RESP namespaces against the configured ones.
func (c RESPConfig) validate(namespaces map[string]string, reg *merge.Registry) error {
	names := map[string]string{"Strings": c.Strings, "Counters": c.Counters, "Sets": c.Sets}
	for _, field := range []string{"Strings", "Counters", "Sets"} {
		if !namespaceName.MatchString(names[field]) {
			return fmt.Errorf("%w: RESP.%s: namespace name %q: want 1-64 of [A-Za-z0-9_.:-]", ErrInvalidConfig, field, names[field])
		}
	}
	if c.Strings == c.Counters || c.Strings == c.Sets || c.Counters == c.Sets {
		return fmt.Errorf("%w: RESP: the strings, counters and sets namespaces must differ (%q, %q, %q)", ErrInvalidConfig, c.Strings, c.Counters, c.Sets)
	}
	want := []struct {
		field, ns string
		typ       merge.Type
		optional  bool
	}{
		{"Strings", c.Strings, merge.TypeValue, c.Strings == DefaultNamespace},
		{"Counters", c.Counters, merge.TypeCounter, true},
		{"Sets", c.Sets, merge.TypeSet, true},
	}
	for _, w := range want {
		name, ok := namespaces[w.ns]
		if !ok {
			if w.optional {
				continue
			}
			return fmt.Errorf("%w: RESP.%s: namespace %q is not configured", ErrInvalidConfig, w.field, w.ns)
		}
		s, err := reg.Lookup(name)
		if err != nil {
			return fmt.Errorf("%w: RESP.%s: %w", ErrInvalidConfig, w.field, err)
		}
		if s.Type() != w.typ {
			return fmt.Errorf("%w: RESP.%s: namespace %q is %s (a %v strategy); want a %v strategy", ErrInvalidConfig, w.field, w.ns, name, s.Type(), w.typ)
		}
	}
	return nil
}

// respLimits derives the RESP parser's limits from the node's, as the
// binary protocol does: an argument or a command larger than a frame is a
// protocol error that closes the connection; a key or value over its own
// limit but within a frame gets an error reply.
func respLimits(base resp.Limits, l netproto.Limits) resp.Limits {
	base.MaxBulk = l.MaxFrameSize
	base.MaxRequest = l.MaxFrameSize
	if base.MaxArgs == 0 {
		base.MaxArgs = resp.DefaultLimits().MaxArgs
	}
	if base.MaxInline == 0 {
		base.MaxInline = resp.DefaultLimits().MaxInline
	}
	return base
}

// addRESPNamespaces adds the RESP counter and set namespaces to the
// node's (unless configured already). It runs before any listener serves:
// requests read n.namespaces without a lock.
func (n *Node) addRESPNamespaces(reg *merge.Registry) {
	c := n.cfg.RESP
	if _, ok := n.namespaces[c.Counters]; !ok {
		n.namespaces[c.Counters], _ = reg.Lookup(merge.NameCounter)
	}
	if _, ok := n.namespaces[c.Sets]; !ok {
		n.namespaces[c.Sets], _ = reg.Lookup(merge.NameSet)
	}
}

// startRESP starts the RESP listener (addRESPNamespaces ran before).
func (n *Node) startRESP() error {
	c := n.cfg.RESP
	h := &redisHandler{
		n:        n,
		strings:  []byte(c.Strings),
		counters: []byte(c.Counters),
		sets:     []byte(c.Sets),
		start:    n.now(),
	}
	h.siblings = n.namespaces[c.Strings].Name() != merge.NameLWW
	scfg := c.Server
	scfg.Addr = n.cfg.RESPListen
	scfg.Workers = n.workers(scfg.Workers)
	scfg.Limits = respLimits(scfg.Limits, n.cfg.Limits)
	if scfg.Logger == nil {
		scfg.Logger = n.log
	}
	srv, err := resp.New(scfg, h)
	if err != nil {
		return fmt.Errorf("%w: RESP.Server: %w", ErrInvalidConfig, err)
	}
	n.resp, h.srv = srv, srv
	n.redis.Store(h)
	if err := srv.Start(); err != nil {
		return fmt.Errorf("node: RESP listening on %s: %w", n.cfg.RESPListen, err)
	}
	return nil
}

// RESPAddr returns the address the Redis protocol is served on, "" if none.
func (n *Node) RESPAddr() string {
	if n.resp == nil {
		return ""
	}
	return n.resp.Addr()
}

// applyIf performs, atomically under the store's per-key lock, the write
// decide chooses after seeing what a reader sees now and the stored
// object (whose Clock is the causal context that supersedes it); decide returning ok=false writes nothing. It reports
// whether a write happened.
func (n *Node) applyIf(ns, key []byte, decide func(cur merge.Result, obj *vclock.Object) (merge.Op, bool, error)) (bool, error) {
	if n.closed.Load() {
		return false, ErrClosed
	}
	s, err := n.strategy(ns)
	if err != nil {
		return false, err
	}
	applied := false
	obj, err := n.store.Update(nsName(ns), key, func(cur vclock.Object, _ bool) (vclock.Object, error) {
		op, ok, err := decide(s.Read(cur, n.now().UnixNano()), &cur)
		if err != nil || !ok {
			return cur, err
		}
		applied = true
		at := n.coordinator(s, &cur) // floors cur's clock, so before Apply reads cur
		return s.Apply(cur, op, at)
	})
	if applied && err == nil && n.cluster != nil {
		// W=1: the other replicas get the object in the background (or
		// as hints); this never waits on the network.
		err = n.cluster.replicate(context.Background(), ns, key, obj, n.cluster.owners(ns, key), 0)
	}
	return applied && err == nil, err
}

// keyType is a key's Redis type.
type keyType uint8

const (
	typeNone keyType = iota
	typeString
	typeCounter
	typeSet
)

// redisHandler serves RESP commands for a node.
type redisHandler struct {
	n                       *Node
	srv                     *resp.Server
	strings, counters, sets []byte
	siblings                bool // the strings namespace keeps siblings
	start                   time.Time

	hits, misses, siblingReads atomic.Uint64
}

var _ resp.Handler = (*redisHandler)(nil)

// ServeFast answers on the event loop what needs no disk: connection
// commands, reads the memory tier answers, and every data command of a
// memory-only node. Commands that scan the keyspace always go to Serve.
func (h *redisHandler) ServeFast(s *resp.Session, args [][]byte, dst []byte) ([]byte, bool) {
	return h.exec(s, args, dst, true)
}

// Serve answers any command; it may block on disk.
func (h *redisHandler) Serve(_ context.Context, s *resp.Session, args [][]byte, dst []byte) []byte {
	out, _ := h.exec(s, args, dst, false)
	return out
}

// cmdInfo describes a command for arity checks and COMMAND.
type cmdInfo struct {
	name        string // lower case
	arity       int    // Redis convention: n exact, -n at least n
	flags       []string
	first, last int // key positions (last -1: to the end)
	step        int
	write       bool // changes data: never on the event loop of a persistent node
	scan        bool // scans the keyspace: never on the event loop
}

// commandTable lists the supported commands. It is read-only.
var commandTable = func() map[string]*cmdInfo {
	ro, wr, fast := "readonly", "write", "fast"
	list := []cmdInfo{
		{name: "ping", arity: -1, flags: []string{fast}},
		{name: "echo", arity: 2, flags: []string{fast}},
		{name: "hello", arity: -1, flags: []string{"noauth", fast}},
		{name: "auth", arity: -2, flags: []string{"noauth", fast}},
		{name: "select", arity: 2, flags: []string{fast}},
		{name: "quit", arity: -1, flags: []string{"noauth", fast}},
		{name: "get", arity: 2, flags: []string{ro, fast}, first: 1, last: 1, step: 1},
		{name: "set", arity: -3, flags: []string{wr}, first: 1, last: 1, step: 1, write: true},
		{name: "setnx", arity: 3, flags: []string{wr, fast}, first: 1, last: 1, step: 1, write: true},
		{name: "setex", arity: 4, flags: []string{wr}, first: 1, last: 1, step: 1, write: true},
		{name: "getdel", arity: 2, flags: []string{wr, fast}, first: 1, last: 1, step: 1, write: true},
		{name: "mget", arity: -2, flags: []string{ro, fast}, first: 1, last: -1, step: 1},
		{name: "mset", arity: -3, flags: []string{wr}, first: 1, last: -1, step: 2, write: true},
		{name: "del", arity: -2, flags: []string{wr}, first: 1, last: -1, step: 1, write: true},
		{name: "unlink", arity: -2, flags: []string{wr, fast}, first: 1, last: -1, step: 1, write: true},
		{name: "exists", arity: -2, flags: []string{ro, fast}, first: 1, last: -1, step: 1},
		{name: "expire", arity: 3, flags: []string{wr, fast}, first: 1, last: 1, step: 1, write: true},
		{name: "pexpire", arity: 3, flags: []string{wr, fast}, first: 1, last: 1, step: 1, write: true},
		{name: "persist", arity: 2, flags: []string{wr, fast}, first: 1, last: 1, step: 1, write: true},
		{name: "ttl", arity: 2, flags: []string{ro, fast}, first: 1, last: 1, step: 1},
		{name: "pttl", arity: 2, flags: []string{ro, fast}, first: 1, last: 1, step: 1},
		{name: "incr", arity: 2, flags: []string{wr, fast}, first: 1, last: 1, step: 1, write: true},
		{name: "incrby", arity: 3, flags: []string{wr, fast}, first: 1, last: 1, step: 1, write: true},
		{name: "decr", arity: 2, flags: []string{wr, fast}, first: 1, last: 1, step: 1, write: true},
		{name: "decrby", arity: 3, flags: []string{wr, fast}, first: 1, last: 1, step: 1, write: true},
		{name: "sadd", arity: -3, flags: []string{wr, fast}, first: 1, last: 1, step: 1, write: true},
		{name: "srem", arity: -3, flags: []string{wr, fast}, first: 1, last: 1, step: 1, write: true},
		{name: "smembers", arity: 2, flags: []string{ro}, first: 1, last: 1, step: 1},
		{name: "sismember", arity: 3, flags: []string{ro, fast}, first: 1, last: 1, step: 1},
		{name: "scard", arity: 2, flags: []string{ro, fast}, first: 1, last: 1, step: 1},
		{name: "dbsize", arity: 1, flags: []string{ro}, scan: true},
		{name: "info", arity: -1, flags: []string{"loading", "stale"}, scan: true},
		{name: "command", arity: -1, flags: []string{"loading", "stale"}},
		{name: "config", arity: -2, flags: []string{"admin", "noscript"}},
		{name: "client", arity: -2, flags: []string{"noscript"}},
	}
	m := make(map[string]*cmdInfo, len(list))
	for i := range list {
		m[strings.ToUpper(list[i].name)] = &list[i]
	}
	return m
}()

// Redis's error replies, verbatim.
const (
	errSyntax     = "ERR syntax error"
	errNotInt     = "ERR value is not an integer or out of range"
	errWrongType  = "WRONGTYPE Operation against a key holding the wrong kind of value"
	errNoAuth     = "NOAUTH Authentication required."
	errWrongPass  = "WRONGPASS invalid username-password pair or user is disabled."
	errNoPassword = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
	errOverflow   = "ERR increment or decrement would overflow"
	errSiblings   = "ERR the key has concurrent versions (siblings); GET it and SET it to resolve them first"
)

// exec runs one command. fast means the event loop calls: it must not
// block on disk, and returns ok=false to hand the command to a worker.
func (h *redisHandler) exec(s *resp.Session, args [][]byte, dst []byte, fast bool) ([]byte, bool) {
	info, errReply := lookupCommand(args)
	if info == nil {
		return resp.AppendError(dst, errReply), true
	}
	if h.n.cfg.Password != "" && !s.Authenticated && info.name != "auth" && info.name != "hello" && info.name != "quit" {
		return resp.AppendError(dst, errNoAuth), true
	}
	if out, handled, ok := h.route(s, info, args, dst, fast); handled {
		return out, ok
	}
	persistent := h.n.store.Persistent()
	if fast && (info.scan || info.write && persistent) {
		return dst, false
	}
	cachedOnly := fast && persistent
	out, ok, err := h.run(s, info, args, dst, cachedOnly)
	if !ok {
		return dst, false
	}
	if err != nil {
		return resp.AppendError(dst, h.errorReply(info.name, err)), true
	}
	return out, true
}

// lookupCommand finds a command and checks its arity; a nil info comes
// with the error reply.
func lookupCommand(args [][]byte) (*cmdInfo, string) {
	var nameBuf [16]byte
	name := nameBuf[:0]
	if len(args[0]) <= len(nameBuf) {
		for _, c := range args[0] {
			if c >= 'a' && c <= 'z' {
				c -= 'a' - 'A'
			}
			name = append(name, c)
		}
	}
	info := commandTable[string(name)]
	if info == nil {
		return nil, unknownCommand(args)
	}
	if info.arity > 0 && len(args) != info.arity || info.arity < 0 && len(args) < -info.arity {
		return nil, "ERR wrong number of arguments for '" + info.name + "' command"
	}
	return info, ""
}

// unknownCommand is Redis's reply to a command it does not know.
func unknownCommand(args [][]byte) string {
	var b strings.Builder
	b.WriteString("ERR unknown command '")
	b.Write(args[0][:min(len(args[0]), 128)])
	b.WriteString("', with args beginning with: ")
	for _, a := range args[1:] {
		if b.Len() > 256 {
			break
		}
		b.WriteByte('\'')
		b.Write(a[:min(len(a), 128)])
		b.WriteString("' ")
	}
	return b.String()
}

// replyError is an error whose text is the RESP error reply.
type replyError string

func (e replyError) Error() string { return string(e) }

// errorReply maps an error to the text of a RESP error reply.
func (h *redisHandler) errorReply(cmd string, err error) string {
	var re replyError
	switch {
	case errors.As(err, &re):
		return string(re)
	case errors.Is(err, merge.ErrWrongType):
		return errWrongType
	case errors.Is(err, merge.ErrOverflow):
		return errOverflow
	case errors.Is(err, merge.ErrSiblings):
		return errSiblings
	case errors.Is(err, errTTL):
		return "ERR invalid expire time in '" + cmd + "' command"
	case errors.Is(err, storage.ErrKeyTooLarge), errors.Is(err, storage.ErrValueTooLarge),
		errors.Is(err, netproto.ErrKeyTooLarge), errors.Is(err, netproto.ErrValueTooLarge):
		return "ERR " + err.Error()
	case errors.Is(err, ErrClosed), errors.Is(err, storage.ErrClosed):
		return "ERR server is shutting down"
	}
	h.n.log.Error("redis command failed", "cmd", cmd, "err", err)
	return "ERR internal error: " + err.Error()
}

// run executes a command whose name and arity were checked. ok=false
// (only with cachedOnly) means the memory tier could not answer a read.
func (h *redisHandler) run(s *resp.Session, info *cmdInfo, args [][]byte, dst []byte, cachedOnly bool) (out []byte, ok bool, err error) {
	for i := info.first; i > 0 && i < len(args); i += info.step {
		if err := h.n.checkKey(args[i]); err != nil {
			return nil, true, err
		}
		if info.last > 0 && i >= info.last {
			break
		}
	}
	switch info.name {
	case "ping":
		switch len(args) {
		case 1:
			return resp.AppendSimple(dst, "PONG"), true, nil
		case 2:
			return resp.AppendBulk(dst, args[1]), true, nil
		}
		return nil, true, replyError("ERR wrong number of arguments for 'ping' command")
	case "echo":
		return resp.AppendBulk(dst, args[1]), true, nil
	case "hello":
		return h.hello(s, args, dst)
	case "auth":
		if len(args) > 3 {
			return nil, true, replyError(errSyntax)
		}
		if h.n.cfg.Password == "" {
			return nil, true, replyError(errNoPassword)
		}
		user, pass := []byte("default"), args[1]
		if len(args) == 3 {
			user, pass = args[1], args[2]
		}
		if !h.checkPassword(user, pass) {
			return nil, true, replyError(errWrongPass)
		}
		s.Authenticated = true
		return resp.AppendOK(dst), true, nil
	case "select":
		v, ok := resp.ParseInt(args[1])
		if !ok {
			return nil, true, replyError(errNotInt)
		}
		if v != 0 {
			return nil, true, replyError("ERR DB index is out of range")
		}
		return resp.AppendOK(dst), true, nil
	case "quit":
		s.CloseAfterReply()
		return resp.AppendOK(dst), true, nil
	case "get":
		return h.get(s, args[1], dst, cachedOnly)
	case "mget":
		dst = resp.AppendArray(dst, len(args)-1)
		for _, key := range args[1:] {
			var o vclock.Object
			v, typ, ok, err := h.stringValue(key, cachedOnly, &o)
			if !ok || err != nil {
				return nil, ok, err
			}
			if typ == typeString || typ == typeCounter {
				dst = resp.AppendBulk(dst, v)
			} else {
				dst = resp.AppendNull(dst, s)
			}
		}
		return dst, true, nil
	case "set":
		return h.set(s, args, dst)
	case "setnx":
		if err := h.n.cfg.Limits.CheckValue(args[2]); err != nil {
			return nil, true, err
		}
		applied, _, _, err := h.putString(args[1], args[2], setOpts{nx: true})
		if err != nil {
			return nil, true, err
		}
		return resp.AppendInt(dst, int64(boolInt(applied))), true, nil
	case "setex":
		if err := h.n.cfg.Limits.CheckValue(args[3]); err != nil {
			return nil, true, err
		}
		secs, ok := resp.ParseInt(args[2])
		if !ok {
			return nil, true, replyError(errNotInt)
		}
		if secs <= 0 || secs > math.MaxInt64/1000 {
			return nil, true, replyError("ERR invalid expire time in 'setex' command")
		}
		exp, err := h.n.expiryFor(secs * 1000)
		if err != nil {
			return nil, true, err
		}
		if _, _, _, err := h.putString(args[1], args[3], setOpts{expiry: exp}); err != nil {
			return nil, true, err
		}
		return resp.AppendOK(dst), true, nil
	case "mset":
		if len(args)%2 != 1 {
			return nil, true, replyError("ERR wrong number of arguments for 'mset' command")
		}
		for i := 1; i < len(args); i += 2 {
			if err := h.n.cfg.Limits.CheckValue(args[i+1]); err != nil {
				return nil, true, err
			}
		}
		for i := 1; i < len(args); i += 2 {
			if _, _, _, err := h.putString(args[i], args[i+1], setOpts{}); err != nil {
				return nil, true, err
			}
		}
		return resp.AppendOK(dst), true, nil
	case "getdel":
		return h.getdel(s, args[1], dst)
	case "del", "unlink":
		var count int64
		for _, key := range args[1:] {
			deleted, err := h.del(key)
			if err != nil {
				return nil, true, err
			}
			if deleted {
				count++
			}
		}
		return resp.AppendInt(dst, count), true, nil
	case "exists":
		var count int64
		for _, key := range args[1:] {
			var o vclock.Object
			typ, _, ok, err := h.lookup(key, cachedOnly, &o)
			if !ok || err != nil {
				return nil, ok, err
			}
			if typ != typeNone {
				count++
			}
		}
		return resp.AppendInt(dst, count), true, nil
	case "expire", "pexpire":
		v, ok := resp.ParseInt(args[2])
		if !ok {
			return nil, true, replyError(errNotInt)
		}
		ms := v
		if info.name == "expire" {
			if v > math.MaxInt64/1000 || v < math.MinInt64/1000 {
				return nil, true, replyError("ERR invalid expire time in 'expire' command")
			}
			ms = v * 1000
		}
		return h.expire(info.name, args[1], ms, dst)
	case "persist":
		return h.persist(args[1], dst)
	case "ttl", "pttl":
		var o vclock.Object
		typ, it, ok, err := h.lookup(args[1], cachedOnly, &o)
		if !ok || err != nil {
			return nil, ok, err
		}
		switch {
		case typ == typeNone:
			return resp.AppendInt(dst, -2), true, nil
		case it.TTL == 0:
			return resp.AppendInt(dst, -1), true, nil
		case info.name == "ttl":
			return resp.AppendInt(dst, (it.TTL.Milliseconds()+500)/1000), true, nil
		}
		return resp.AppendInt(dst, it.TTL.Milliseconds()), true, nil
	case "incr", "decr", "incrby", "decrby":
		delta := int64(1)
		if len(args) == 3 {
			v, ok := resp.ParseInt(args[2])
			if !ok {
				return nil, true, replyError(errNotInt)
			}
			delta = v
		}
		if info.name[0] == 'd' {
			if delta == math.MinInt64 {
				return nil, true, replyError("ERR decrement would overflow")
			}
			delta = -delta
		}
		v, err := h.incr(args[1], delta)
		if err != nil {
			return nil, true, err
		}
		return resp.AppendInt(dst, v), true, nil
	case "sadd", "srem":
		for _, m := range args[2:] {
			if err := h.n.cfg.Limits.CheckValue(m); err != nil {
				return nil, true, err
			}
		}
		v, err := h.setWrite(info.name == "sadd", args[1], args[2:])
		if err != nil {
			return nil, true, err
		}
		return resp.AppendInt(dst, v), true, nil
	case "smembers", "sismember", "scard":
		var o vclock.Object
		members, ok, err := h.members(args[1], cachedOnly, &o)
		if !ok || err != nil {
			return nil, ok, err
		}
		switch info.name {
		case "scard":
			return resp.AppendInt(dst, int64(len(members))), true, nil
		case "sismember":
			_, found := slices.BinarySearchFunc(members, args[2], bytes.Compare)
			return resp.AppendInt(dst, int64(boolInt(found))), true, nil
		}
		dst = resp.AppendSet(dst, s, len(members))
		for _, m := range members {
			dst = resp.AppendBulk(dst, m)
		}
		return dst, true, nil
	case "dbsize":
		keys, _, err := h.count()
		if err != nil {
			return nil, true, err
		}
		return resp.AppendInt(dst, keys), true, nil
	case "info":
		text, err := h.info(args[1:])
		if err != nil {
			return nil, true, err
		}
		return resp.AppendVerbatim(dst, s, text), true, nil
	case "command":
		return h.command(s, args, dst)
	case "config":
		return h.config(s, args, dst)
	case "client":
		return h.client(s, args, dst)
	}
	return nil, true, replyError(unknownCommand(args))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (h *redisHandler) checkPassword(user, pass []byte) bool {
	okUser := subtle.ConstantTimeCompare(user, []byte("default")) == 1
	okPass := subtle.ConstantTimeCompare(pass, []byte(h.n.cfg.Password)) == 1
	return okUser && okPass
}

// hello serves HELLO [protover [AUTH user pass] [SETNAME name]].
func (h *redisHandler) hello(s *resp.Session, args [][]byte, dst []byte) ([]byte, bool, error) {
	proto := s.Proto
	if len(args) > 1 {
		v, ok := resp.ParseInt(args[1])
		if !ok {
			return nil, true, replyError("ERR Protocol version is not an integer or out of range")
		}
		if v != 2 && v != 3 {
			return nil, true, replyError("NOPROTO unsupported protocol version")
		}
		proto = int(v)
	}
	auth, name := false, ""
	setName := false
	for i := 2; i < len(args); i++ {
		switch opt := strings.ToUpper(string(args[i])); {
		case opt == "AUTH" && i+2 < len(args):
			if h.n.cfg.Password == "" {
				return nil, true, replyError(errNoPassword)
			}
			if !h.checkPassword(args[i+1], args[i+2]) {
				return nil, true, replyError(errWrongPass)
			}
			auth = true
			i += 2
		case opt == "SETNAME" && i+1 < len(args):
			name, setName = string(args[i+1]), true
			if strings.ContainsAny(name, " \n") {
				return nil, true, replyError("ERR Client names cannot contain spaces, newlines or special characters.")
			}
			i++
		default:
			return nil, true, replyError("ERR Syntax error in HELLO option '" + string(args[i]) + "'")
		}
	}
	if h.n.cfg.Password != "" && !s.Authenticated && !auth {
		return nil, true, replyError("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
	}
	if auth {
		s.Authenticated = true
	}
	if setName {
		s.Name = name
	}
	s.Proto = proto
	dst = resp.AppendMap(dst, s, 7)
	dst = resp.AppendBulkString(dst, "server")
	dst = resp.AppendBulkString(dst, "ecache")
	dst = resp.AppendBulkString(dst, "version")
	dst = resp.AppendBulkString(dst, redisVersion)
	dst = resp.AppendBulkString(dst, "proto")
	dst = resp.AppendInt(dst, int64(proto))
	dst = resp.AppendBulkString(dst, "id")
	dst = resp.AppendInt(dst, int64(s.ID))
	dst = resp.AppendBulkString(dst, "mode")
	dst = resp.AppendBulkString(dst, "standalone")
	dst = resp.AppendBulkString(dst, "role")
	dst = resp.AppendBulkString(dst, "master")
	dst = resp.AppendBulkString(dst, "modules")
	dst = resp.AppendArray(dst, 0)
	return dst, true, nil
}

// redisVersion is the Redis version whose command subset the listener
// speaks; clients that check versions see it.
const redisVersion = "7.0.0"

// read reads (ns, key) for the RESP commands.
func (h *redisHandler) read(ns, key []byte, cachedOnly bool, o *vclock.Object) (Item, bool, error) {
	it, ok, err := h.n.read(ns, key, cachedOnly, o)
	return it, ok, err
}

// lookup returns key's Redis type and its item in the namespace of that
// type.
func (h *redisHandler) lookup(key []byte, cachedOnly bool, o *vclock.Object) (keyType, Item, bool, error) {
	for _, c := range []struct {
		ns  []byte
		typ keyType
	}{{h.strings, typeString}, {h.counters, typeCounter}, {h.sets, typeSet}} {
		it, ok, err := h.read(c.ns, key, cachedOnly, o)
		if !ok || err != nil {
			return typeNone, Item{}, ok, err
		}
		if it.Found {
			return c.typ, it, true, nil
		}
	}
	return typeNone, Item{}, true, nil
}

// pickSibling returns the value a Redis client sees for a string: the
// only one, or among concurrent siblings the one written last by the
// hybrid logical clock (ties broken by node ID).
func (h *redisHandler) pickSibling(it Item, o *vclock.Object) []byte {
	if len(it.Values) <= 1 {
		if len(it.Values) == 0 {
			return nil
		}
		return it.Values[0]
	}
	h.siblingReads.Add(1)
	now := h.n.now().UnixNano()
	var best *vclock.Sibling
	for i := range o.Siblings {
		sb := &o.Siblings[i]
		if sb.Tombstone || sb.Expiry != 0 && sb.Expiry <= now {
			continue
		}
		if best == nil || sb.HLC > best.HLC || sb.HLC == best.HLC && sb.Dot.Node > best.Dot.Node {
			best = sb
		}
	}
	if best == nil {
		return it.Values[len(it.Values)-1]
	}
	return best.Value
}

// stringValue returns what GET returns for key: a string's value, or a
// counter's in decimal. typ is typeSet for a set (WRONGTYPE for GET).
func (h *redisHandler) stringValue(key []byte, cachedOnly bool, o *vclock.Object) ([]byte, keyType, bool, error) {
	typ, it, ok, err := h.lookup(key, cachedOnly, o)
	if !ok || err != nil {
		return nil, typeNone, ok, err
	}
	switch typ {
	case typeString:
		return h.pickSibling(it, o), typ, true, nil
	case typeCounter:
		return strconv.AppendInt(nil, it.Counter, 10), typ, true, nil
	}
	return nil, typ, true, nil
}

func (h *redisHandler) get(s *resp.Session, key, dst []byte, cachedOnly bool) ([]byte, bool, error) {
	var o vclock.Object
	v, typ, ok, err := h.stringValue(key, cachedOnly, &o)
	if !ok || err != nil {
		return nil, ok, err
	}
	switch typ {
	case typeNone:
		h.misses.Add(1)
		return resp.AppendNull(dst, s), true, nil
	case typeSet:
		return nil, true, replyError(errWrongType)
	}
	h.hits.Add(1)
	return resp.AppendBulk(dst, v), true, nil
}

// setOpts are SET's options.
type setOpts struct {
	expiry          int64 // absolute, Unix ns; 0 none
	nx, xx, keepTTL bool
	get             bool
	expirySet       bool
}

// set serves SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ms-ts|KEEPTTL].
func (h *redisHandler) set(s *resp.Session, args [][]byte, dst []byte) ([]byte, bool, error) {
	if err := h.n.cfg.Limits.CheckValue(args[2]); err != nil {
		return nil, true, err
	}
	var o setOpts
	for i := 3; i < len(args); i++ {
		opt := strings.ToUpper(string(args[i]))
		switch opt {
		case "NX":
			o.nx = true
		case "XX":
			o.xx = true
		case "GET":
			o.get = true
		case "KEEPTTL":
			if o.expirySet {
				return nil, true, replyError(errSyntax)
			}
			o.keepTTL = true
		case "EX", "PX", "EXAT", "PXAT":
			if o.expirySet || o.keepTTL || i+1 == len(args) {
				return nil, true, replyError(errSyntax)
			}
			i++
			v, ok := resp.ParseInt(args[i])
			if !ok {
				return nil, true, replyError(errNotInt)
			}
			if v <= 0 {
				return nil, true, replyError("ERR invalid expire time in 'set' command")
			}
			var err error
			switch opt {
			case "EX":
				if v > math.MaxInt64/1000 {
					return nil, true, replyError("ERR invalid expire time in 'set' command")
				}
				o.expiry, err = h.n.expiryFor(v * 1000)
			case "PX":
				o.expiry, err = h.n.expiryFor(v)
			case "EXAT":
				if v > math.MaxInt64/int64(time.Second) {
					return nil, true, replyError("ERR invalid expire time in 'set' command")
				}
				o.expiry = v * int64(time.Second)
			case "PXAT":
				if v > math.MaxInt64/int64(time.Millisecond) {
					return nil, true, replyError("ERR invalid expire time in 'set' command")
				}
				o.expiry = v * int64(time.Millisecond)
			}
			if err != nil {
				return nil, true, replyError("ERR invalid expire time in 'set' command")
			}
			o.expirySet = true
		default:
			return nil, true, replyError(errSyntax)
		}
	}
	if o.nx && o.xx {
		return nil, true, replyError(errSyntax)
	}
	applied, old, hadOld, err := h.putString(args[1], args[2], o)
	if err != nil {
		return nil, true, err
	}
	switch {
	case o.get && hadOld:
		return resp.AppendBulk(dst, old), true, nil
	case o.get:
		return resp.AppendNull(dst, s), true, nil
	case !applied:
		return resp.AppendNull(dst, s), true, nil
	}
	return resp.AppendOK(dst), true, nil
}

// putString writes key's string value under the conditions of o, in one
// atomic step on the strings namespace; the key's old value is returned
// for SET ... GET. With NX, XX or GET, a key held as a counter counts as
// existing (a set is WRONGTYPE); a successful write removes the key from
// the counter and set namespaces, since SET replaces any type in Redis.
func (h *redisHandler) putString(key, value []byte, o setOpts) (applied bool, old []byte, hadOld bool, err error) {
	var other keyType
	if o.nx || o.xx || o.get {
		var obj vclock.Object
		for _, c := range []struct {
			ns  []byte
			typ keyType
		}{{h.counters, typeCounter}, {h.sets, typeSet}} {
			it, _, err := h.read(c.ns, key, false, &obj)
			if err != nil {
				return false, nil, false, err
			}
			if it.Found {
				other = c.typ
				if c.typ == typeCounter {
					old = strconv.AppendInt(nil, it.Counter, 10)
				}
				break
			}
		}
		if other == typeSet && o.get {
			return false, nil, false, replyError(errWrongType)
		}
	}
	hadOld = other == typeCounter
	applied, err = h.n.applyIf(h.strings, key, func(cur merge.Result, obj *vclock.Object) (merge.Op, bool, error) {
		exists := cur.Found || other != typeNone
		if cur.Found {
			// SET ... GET returns what GET would have: copy it, the
			// object's memory belongs to the store.
			v := cur.Values[len(cur.Values)-1]
			if len(cur.Values) > 1 {
				v = h.pickSibling(Item{Result: cur}, obj)
			}
			old, hadOld = bytes.Clone(v), true
		}
		if o.nx && exists || o.xx && !exists {
			return merge.Op{}, false, nil
		}
		op := merge.Op{Kind: merge.OpPut, Context: obj.Clock, Value: value, Expiry: o.expiry}
		if o.keepTTL && cur.Found {
			op.Expiry = cur.Expiry
		}
		return op, true, nil
	})
	if err != nil || !applied {
		return applied, old, hadOld, err
	}
	return true, old, hadOld, h.dropOthers(key, typeString)
}

// dropOthers deletes key from the RESP namespaces other than keep's when
// the memory tier holds it there. It does not go to disk for the check: a
// miss there would cost a disk lookup per SET. A value it misses is shadowed
// (reads look at the strings namespace first, see lookup) until DEL or its
// expiry removes it.
func (h *redisHandler) dropOthers(key []byte, keep keyType) error {
	for _, c := range []struct {
		ns  []byte
		typ keyType
	}{{h.strings, typeString}, {h.counters, typeCounter}, {h.sets, typeSet}} {
		if c.typ == keep {
			continue
		}
		var o vclock.Object
		it, ok, err := h.read(c.ns, key, true, &o)
		if err != nil {
			return err
		}
		if ok && it.Found {
			if _, err := h.delIn(c.ns, key); err != nil {
				return err
			}
		}
	}
	return nil
}

// delIn deletes (ns, key) if it is live, superseding every version this
// node holds, and reports whether it was. A counter is deleted by expiring
// it: a reset counter still reads as 0, an expired one as absent (and INCR
// restarts it from 0), which is what DEL means in Redis.
func (h *redisHandler) delIn(ns, key []byte) (bool, error) {
	counter := bytes.Equal(ns, h.counters)
	applied, err := h.n.applyIf(ns, key, func(cur merge.Result, obj *vclock.Object) (merge.Op, bool, error) {
		if !cur.Found {
			return merge.Op{}, false, nil
		}
		if counter {
			return merge.Op{Kind: merge.OpExpire, Expiry: 1}, true, nil
		}
		return merge.Op{Kind: merge.OpDelete, Context: obj.Clock}, true, nil
	})
	return applied, err
}

// del deletes key from every RESP namespace.
func (h *redisHandler) del(key []byte) (bool, error) {
	deleted := false
	for _, ns := range [][]byte{h.strings, h.counters, h.sets} {
		d, err := h.delIn(ns, key)
		if err != nil {
			return deleted, err
		}
		deleted = deleted || d
	}
	return deleted, nil
}

func (h *redisHandler) getdel(s *resp.Session, key, dst []byte) ([]byte, bool, error) {
	var o vclock.Object
	typ, _, _, err := h.lookup(key, false, &o)
	if err != nil {
		return nil, true, err
	}
	ns := h.strings
	switch typ {
	case typeNone:
		return resp.AppendNull(dst, s), true, nil
	case typeSet:
		return nil, true, replyError(errWrongType)
	case typeCounter:
		ns = h.counters
	}
	var old []byte
	applied, err := h.n.applyIf(ns, key, func(cur merge.Result, obj *vclock.Object) (merge.Op, bool, error) {
		if !cur.Found {
			return merge.Op{}, false, nil
		}
		if typ == typeCounter {
			old = strconv.AppendInt(nil, cur.Counter, 10)
			return merge.Op{Kind: merge.OpExpire, Expiry: 1}, true, nil
		} else {
			v := cur.Values[len(cur.Values)-1]
			if len(cur.Values) > 1 {
				v = h.pickSibling(Item{Result: cur}, obj)
			}
			old = bytes.Clone(v)
		}
		return merge.Op{Kind: merge.OpDelete, Context: obj.Clock}, true, nil
	})
	if err != nil {
		return nil, true, err
	}
	if !applied {
		return resp.AppendNull(dst, s), true, nil
	}
	return resp.AppendBulk(dst, old), true, nil
}

// nsOf returns the namespace of a key type.
func (h *redisHandler) nsOf(t keyType) []byte {
	switch t {
	case typeCounter:
		return h.counters
	case typeSet:
		return h.sets
	}
	return h.strings
}

func (h *redisHandler) expire(cmd string, key []byte, ms int64, dst []byte) ([]byte, bool, error) {
	var o vclock.Object
	typ, _, _, err := h.lookup(key, false, &o)
	if err != nil {
		return nil, true, err
	}
	if typ == typeNone {
		return resp.AppendInt(dst, 0), true, nil
	}
	if ms <= 0 {
		// Redis deletes a key given a deadline in the past.
		deleted, err := h.delIn(h.nsOf(typ), key)
		if err != nil {
			return nil, true, err
		}
		return resp.AppendInt(dst, int64(boolInt(deleted))), true, nil
	}
	exp, err := h.n.expiryFor(ms)
	if err != nil {
		return nil, true, replyError("ERR invalid expire time in '" + cmd + "' command")
	}
	applied, err := h.n.applyIf(h.nsOf(typ), key, func(cur merge.Result, _ *vclock.Object) (merge.Op, bool, error) {
		if !cur.Found {
			return merge.Op{}, false, nil
		}
		return merge.Op{Kind: merge.OpExpire, Expiry: exp}, true, nil
	})
	if err != nil {
		return nil, true, err
	}
	return resp.AppendInt(dst, int64(boolInt(applied))), true, nil
}

func (h *redisHandler) persist(key, dst []byte) ([]byte, bool, error) {
	var o vclock.Object
	typ, _, _, err := h.lookup(key, false, &o)
	if err != nil || typ == typeNone {
		return resp.AppendInt(dst, 0), true, err
	}
	applied, err := h.n.applyIf(h.nsOf(typ), key, func(cur merge.Result, _ *vclock.Object) (merge.Op, bool, error) {
		if !cur.Found || cur.Expiry == 0 {
			return merge.Op{}, false, nil
		}
		return merge.Op{Kind: merge.OpExpire}, true, nil
	})
	if err != nil {
		return nil, true, err
	}
	return resp.AppendInt(dst, int64(boolInt(applied))), true, nil
}

// incr adds delta to key's counter. A key holding a string that is an
// integer becomes a counter of that value (Redis's INCR works on integer
// strings); any other string, or a set, is an error. The namespaces are
// consulted in lookup's order, so the common case (an existing counter) costs
// one miss in the strings namespace.
func (h *redisHandler) incr(key []byte, delta int64) (int64, error) {
	var o vclock.Object
	it, _, err := h.read(h.strings, key, false, &o)
	if err != nil {
		return 0, err
	}
	if it.Found {
		base, ok := resp.ParseInt(h.pickSibling(it, &o))
		if !ok {
			return 0, replyError(errNotInt)
		}
		if delta > 0 && base > math.MaxInt64-delta || delta < 0 && base < math.MinInt64-delta {
			return 0, replyError(errOverflow)
		}
		// Start the counter afresh at base: a shadowed old counter goes.
		if _, err := h.delIn(h.counters, key); err != nil {
			return 0, err
		}
		if _, err := h.delIn(h.strings, key); err != nil {
			return 0, err
		}
		delta += base
	} else {
		if it, _, err = h.read(h.counters, key, false, &o); err != nil {
			return 0, err
		}
		if !it.Found {
			if it, _, err = h.read(h.sets, key, false, &o); err != nil {
				return 0, err
			}
			if it.Found {
				return 0, replyError(errWrongType)
			}
		}
	}
	var next int64
	_, err = h.n.applyIf(h.counters, key, func(cur merge.Result, _ *vclock.Object) (merge.Op, bool, error) {
		if delta > 0 && cur.Counter > math.MaxInt64-delta || delta < 0 && cur.Counter < math.MinInt64-delta {
			return merge.Op{}, false, replyError(errOverflow)
		}
		next = cur.Counter + delta
		return merge.Op{Kind: merge.OpIncr, Delta: delta}, true, nil
	})
	return next, err
}

// checkNotOther answers WRONGTYPE when key is live as a string or counter.
func (h *redisHandler) checkNotOther(key []byte, cachedOnly bool) (bool, error) {
	var o vclock.Object
	for _, ns := range [][]byte{h.strings, h.counters} {
		it, ok, err := h.read(ns, key, cachedOnly, &o)
		if !ok || err != nil {
			return ok, err
		}
		if it.Found {
			return true, replyError(errWrongType)
		}
	}
	return true, nil
}

// setWrite serves SADD and SREM and returns how many members they added or
// removed.
func (h *redisHandler) setWrite(add bool, key []byte, members [][]byte) (int64, error) {
	if _, err := h.checkNotOther(key, false); err != nil {
		return 0, err
	}
	return h.n.updateSet(h.sets, key, add, false, members) // sets.go
}

// members returns key's set members (sorted), WRONGTYPE for another type.
// The strings and counters namespaces come first (lookup's order), so a
// set shadowed by a later SET is not shown.
func (h *redisHandler) members(key []byte, cachedOnly bool, o *vclock.Object) ([][]byte, bool, error) {
	if ok, err := h.checkNotOther(key, cachedOnly); !ok || err != nil {
		return nil, ok, err
	}
	it, ok, err := h.read(h.sets, key, cachedOnly, o)
	if !ok || err != nil {
		return nil, ok, err
	}
	return it.Members, true, nil
}

// count scans the store for the live keys of the RESP namespaces and how
// many of them have a TTL; a counter or set shadowed by a live value earlier
// in lookup's order is not counted. It is O(keys): DBSIZE and INFO keyspace
// are not the constant-time counters they are in Redis.
func (h *redisHandler) count() (keys, expires int64, err error) {
	st := h.n.store
	parts := st.Config().Partitions
	strats := make([]merge.Strategy, 3)
	nss := [][]byte{h.strings, h.counters, h.sets}
	for i, ns := range nss {
		if strats[i], err = h.n.strategy(ns); err != nil {
			return 0, 0, err
		}
	}
	type candidate struct {
		key    []byte
		typ    keyType
		expiry bool
	}
	var others []candidate // live counters and sets, checked after the scan
	now := h.n.now().UnixNano()
	for p := range parts {
		err := st.Scan(uint32(p), func(e *storage.Entry) error {
			for i, ns := range nss {
				if !bytes.Equal(e.NS, ns) {
					continue
				}
				r := strats[i].Read(e.Object, now)
				switch {
				case !r.Found:
				case i == 0:
					keys++
					if r.Expiry != 0 {
						expires++
					}
				default:
					others = append(others, candidate{bytes.Clone(e.Key), keyType(i + 1), r.Expiry != 0})
				}
				break
			}
			return nil
		})
		if err != nil {
			return 0, 0, err
		}
	}
	for _, c := range others {
		var o vclock.Object
		typ, _, _, err := h.lookup(c.key, false, &o)
		if err != nil {
			return 0, 0, err
		}
		if typ == c.typ {
			keys++
			if c.expiry {
				expires++
			}
		}
	}
	return keys, expires, nil
}

// info renders INFO's sections.
func (h *redisHandler) info(sections [][]byte) (string, error) {
	want := map[string]bool{}
	for _, s := range sections {
		want[strings.ToLower(string(s))] = true
	}
	all := len(want) == 0 || want["all"] || want["default"] || want["everything"]
	var b strings.Builder
	section := func(name string) bool {
		if !all && !want[name] {
			return false
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + strings.ToUpper(name[:1]) + name[1:] + "\r\n")
		return true
	}
	line := func(k string, v any) { fmt.Fprintf(&b, "%s:%v\r\n", k, v) }
	var rs resp.Stats
	if h.srv != nil {
		rs = h.srv.Stats()
	}
	if section("server") {
		up := h.n.now().Sub(h.start)
		_, port, _ := net.SplitHostPort(h.n.RESPAddr())
		line("redis_version", redisVersion)
		line("ecache_version", h.n.cfg.Version)
		line("redis_mode", "standalone")
		line("os", runtime.GOOS)
		line("arch_bits", strconv.IntSize)
		line("process_id", os.Getpid())
		line("tcp_port", port)
		line("uptime_in_seconds", int64(up.Seconds()))
		line("uptime_in_days", int64(up.Hours()/24))
		line("ecache_node_id", uint64(h.n.ID()))
	}
	if section("clients") {
		line("connected_clients", rs.Conns)
	}
	if section("memory") {
		st := h.n.store.Stats()
		line("used_memory", st.MemoryBytes)
		line("maxmemory", st.MemoryLimit)
		line("ecache_memory_entries", st.MemoryEntries)
		line("ecache_persistence", h.n.store.Config().Persistence)
	}
	if section("stats") {
		st := h.n.store.Stats()
		line("total_connections_received", rs.Accepted)
		line("total_commands_processed", rs.Commands)
		line("rejected_connections", rs.Rejected)
		line("keyspace_hits", h.hits.Load())
		line("keyspace_misses", h.misses.Load())
		line("expired_keys", st.Expired)
		line("evicted_keys", 0)
		line("ecache_memory_evictions", st.Memory.Evictions)
		line("ecache_sibling_reads", h.siblingReads.Load())
		line("ecache_protocol_errors", rs.ProtocolErrors)
	}
	if all || want["keyspace"] {
		keys, expires, err := h.count()
		if err != nil {
			return "", err
		}
		section("keyspace")
		if keys > 0 {
			fmt.Fprintf(&b, "db0:keys=%d,expires=%d,avg_ttl=0\r\n", keys, expires)
		}
	}
	return b.String(), nil
}

// command serves COMMAND, COMMAND COUNT, COMMAND INFO, COMMAND LIST and
// COMMAND DOCS (answered with no docs: redis-cli then uses no hints).
func (h *redisHandler) command(s *resp.Session, args [][]byte, dst []byte) ([]byte, bool, error) {
	names := make([]string, 0, len(commandTable))
	for _, c := range commandTable {
		names = append(names, c.name)
	}
	slices.Sort(names)
	if len(args) == 1 {
		dst = resp.AppendArray(dst, len(names))
		for _, n := range names {
			dst = appendCommandInfo(dst, s, commandTable[strings.ToUpper(n)])
		}
		return dst, true, nil
	}
	switch sub := strings.ToUpper(string(args[1])); sub {
	case "COUNT":
		return resp.AppendInt(dst, int64(len(names))), true, nil
	case "LIST":
		dst = resp.AppendArray(dst, len(names))
		for _, n := range names {
			dst = resp.AppendBulkString(dst, n)
		}
		return dst, true, nil
	case "INFO":
		dst = resp.AppendArray(dst, len(args)-2)
		for _, a := range args[2:] {
			if c := commandTable[strings.ToUpper(string(a))]; c != nil {
				dst = appendCommandInfo(dst, s, c)
			} else {
				dst = resp.AppendNullArray(dst, s)
			}
		}
		return dst, true, nil
	case "DOCS":
		return resp.AppendMap(dst, s, 0), true, nil
	default:
		return nil, true, replyError("ERR unknown subcommand '" + string(args[1]) + "'. Try COMMAND HELP.")
	}
}

// appendCommandInfo appends one COMMAND reply entry in Redis 7's shape.
func appendCommandInfo(dst []byte, s *resp.Session, c *cmdInfo) []byte {
	dst = resp.AppendArray(dst, 10)
	dst = resp.AppendBulkString(dst, c.name)
	dst = resp.AppendInt(dst, int64(c.arity))
	dst = resp.AppendSet(dst, s, len(c.flags))
	for _, f := range c.flags {
		dst = resp.AppendSimple(dst, f)
	}
	dst = resp.AppendInt(dst, int64(c.first))
	dst = resp.AppendInt(dst, int64(c.last))
	dst = resp.AppendInt(dst, int64(c.step))
	dst = resp.AppendSet(dst, s, 0) // ACL categories
	dst = resp.AppendSet(dst, s, 0) // tips
	dst = resp.AppendArray(dst, 0)  // key specs
	return resp.AppendArray(dst, 0) // subcommands
}

// config serves CONFIG GET with the few parameters clients ask about
// (redis-benchmark asks for save and appendonly).
func (h *redisHandler) config(s *resp.Session, args [][]byte, dst []byte) ([]byte, bool, error) {
	if !strings.EqualFold(string(args[1]), "GET") {
		return nil, true, replyError("ERR unknown subcommand '" + string(args[1]) + "'. ecache supports CONFIG GET only.")
	}
	if len(args) < 3 {
		return nil, true, replyError("ERR wrong number of arguments for 'config|get' command")
	}
	st := h.n.store.Stats()
	_, port, _ := net.SplitHostPort(h.n.RESPAddr())
	appendonly := "no"
	if h.n.store.Persistent() {
		appendonly = "yes"
	}
	maxclients := h.n.cfg.RESP.Server.MaxConns
	params := [][2]string{
		{"save", ""},
		{"appendonly", appendonly},
		{"databases", "1"},
		{"maxmemory", strconv.FormatInt(st.MemoryLimit, 10)},
		{"maxclients", strconv.Itoa(maxclients)},
		{"port", port},
		{"proto-max-bulk-len", strconv.Itoa(h.n.cfg.Limits.MaxFrameSize)},
	}
	var match [][2]string
	for _, p := range params {
		for _, pat := range args[2:] {
			if ok, _ := path.Match(strings.ToLower(string(pat)), p[0]); ok {
				match = append(match, p)
				break
			}
		}
	}
	dst = resp.AppendMap(dst, s, len(match))
	for _, p := range match {
		dst = resp.AppendBulkString(dst, p[0])
		dst = resp.AppendBulkString(dst, p[1])
	}
	return dst, true, nil
}

// client serves CLIENT ID, SETNAME, GETNAME and SETINFO.
func (h *redisHandler) client(s *resp.Session, args [][]byte, dst []byte) ([]byte, bool, error) {
	sub := strings.ToUpper(string(args[1]))
	switch {
	case sub == "ID" && len(args) == 2:
		return resp.AppendInt(dst, int64(s.ID)), true, nil
	case sub == "GETNAME" && len(args) == 2:
		if s.Name == "" {
			return resp.AppendNull(dst, s), true, nil
		}
		return resp.AppendBulkString(dst, s.Name), true, nil
	case sub == "SETNAME" && len(args) == 3:
		for _, c := range args[2] {
			if c <= ' ' || c > '~' {
				return nil, true, replyError("ERR Client names cannot contain spaces, newlines or special characters.")
			}
		}
		s.Name = string(args[2])
		return resp.AppendOK(dst), true, nil
	case sub == "SETINFO" && len(args) == 4:
		return resp.AppendOK(dst), true, nil
	case sub == "ID" || sub == "GETNAME" || sub == "SETNAME" || sub == "SETINFO":
		return nil, true, replyError("ERR wrong number of arguments for 'client|" + strings.ToLower(sub) + "' command")
	}
	return nil, true, replyError("ERR unknown subcommand '" + string(args[1]) + "'. Try CLIENT HELP.")
}
