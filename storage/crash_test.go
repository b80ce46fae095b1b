package storage

// Crash safety. The SIGKILL tests run a child process (this test binary
// re-executed, see TestMain) that writes keys k0, k1, ... and prints
// "ack N" after each Update returns; the parent kills it at an arbitrary
// moment, reopens the directory and checks what survived against what was
// acknowledged. SIGKILL loses the process but not the operating system's
// page cache, so these tests prove the store never acknowledges a write it
// has not handed to the OS and that recovery yields a consistent prefix; the
// power-loss tests use Pebble's crashable in-memory FS, which drops
// everything not fsynced, to prove the fsync discipline.

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/goleak"

	"github.com/ecachedb/ecache/vclock"
)

// Environment of the crash child process.
const (
	crashEnvChild      = "ECACHE_STORAGE_CRASH_CHILD"       // set: run as the child
	crashEnvDir        = "ECACHE_STORAGE_CRASH_DIR"         // data directory
	crashEnvMode       = "ECACHE_STORAGE_CRASH_MODE"        // sync or async
	crashEnvStart      = "ECACHE_STORAGE_CRASH_START"       // index of the first key to write
	crashEnvFlushEvery = "ECACHE_STORAGE_CRASH_FLUSH_EVERY" // async: Flush after this many writes; 0 never
)

const (
	// crashChildLifetime bounds a child the parent failed to kill.
	crashChildLifetime = 2 * time.Minute
	// crashRunDeadline bounds how long the parent lets a child write.
	crashRunDeadline = 20 * time.Second
	// crashValueSize is the size of every written value.
	crashValueSize = 100
)

func TestMain(m *testing.M) {
	if os.Getenv(crashEnvChild) != "" {
		os.Exit(crashChild())
	}
	os.Exit(m.Run())
}

// crashConfig is the configuration parent and child both open the crash
// directory with.
func crashConfig(p Persistence) Config {
	cfg := DefaultConfig()
	cfg.Persistence = p
	cfg.Partitions = 16
	cfg.MemoryLimit = 64 << 20
	cfg.PebbleCacheSize = 8 << 20
	cfg.ExpiryInterval = 0
	return cfg
}

func crashKey(i int) []byte { return []byte("k" + strconv.Itoa(i)) }

// crashValue is the value of key i: deterministic, crashValueSize bytes.
func crashValue(i int) []byte {
	b := fmt.Appendf(make([]byte, 0, crashValueSize), "v%07d:", i)
	for len(b) < crashValueSize {
		b = append(b, byte('a'+(i+len(b))%26))
	}
	return b
}

// crashWrite writes key i as a write coordinated by s's node.
func crashWrite(s *Store, i int) error {
	_, err := s.Update(nil, crashKey(i), func(cur vclock.Object, _ bool) (vclock.Object, error) {
		o, _ := cur.Update(cur.Clock, s.NodeID(), vclock.Sibling{HLC: vclock.Timestamp(i + 1), Value: crashValue(i)})
		return o, nil
	})
	return err
}

// crashChild is the child process: it writes keys from ECACHE_STORAGE_CRASH_START
// on, printing "ack N" after each write and, in async mode, "flushed N" after
// each explicit Flush, until it is killed.
func crashChild() int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "crash child: "+format+"\n", args...)
		return 2
	}
	p, err := ParsePersistence(os.Getenv(crashEnvMode))
	if err != nil {
		return fail("%v", err)
	}
	start, err := strconv.Atoi(os.Getenv(crashEnvStart))
	if err != nil {
		return fail("bad %s: %v", crashEnvStart, err)
	}
	flushEvery, err := strconv.Atoi(os.Getenv(crashEnvFlushEvery))
	if err != nil {
		return fail("bad %s: %v", crashEnvFlushEvery, err)
	}
	cfg := crashConfig(p)
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := Open(os.Getenv(crashEnvDir), cfg)
	if err != nil {
		return fail("Open: %v", err)
	}
	deadline := time.Now().Add(crashChildLifetime)
	var line []byte
	for i, n := start, 1; time.Now().Before(deadline); i, n = i+1, n+1 {
		if err := crashWrite(s, i); err != nil {
			return fail("writing %d: %v", i, err)
		}
		// os.Stdout is unbuffered: once Write returns, the line is in the
		// pipe and reaches the parent even if we die right after.
		line = fmt.Appendf(line[:0], "ack %d\n", i)
		if _, err := os.Stdout.Write(line); err != nil {
			return fail("writing ack: %v", err)
		}
		if p == PersistenceAsync && flushEvery > 0 && n%flushEvery == 0 {
			if err := s.Flush(); err != nil {
				return fail("Flush: %v", err)
			}
			line = fmt.Appendf(line[:0], "flushed %d\n", i)
			if _, err := os.Stdout.Write(line); err != nil {
				return fail("writing flushed: %v", err)
			}
		}
	}
	return fail("not killed within %v", crashChildLifetime)
}

// crashRunOpts says when the parent kills the child.
type crashRunOpts struct {
	minAcks     int           // at least this many acks ...
	minDuration time.Duration // ... and this long after the first one
	flushEvery  int           // async: the child flushes after this many writes
}

// crashRun is what a killed child acknowledged.
type crashRun struct {
	start    int         // index of the first key written
	ackAt    []time.Time // ackAt[i-start]: when the parent read "ack i"
	flushed  int         // last "flushed N" read; start-1 if none
	killedAt time.Time
}

// lastAck is the index of the last acknowledged key, start-1 if none.
func (r *crashRun) lastAck() int { return r.start + len(r.ackAt) - 1 }

// crashRunChild runs a child writing from key start in dir, reads its acks
// until opts are met (or crashRunDeadline passes), SIGKILLs it and returns
// what it acknowledged.
func crashRunChild(t *testing.T, dir string, p Persistence, start int, opts crashRunOpts) *crashRun {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		crashEnvChild+"=1",
		crashEnvDir+"="+dir,
		crashEnvMode+"="+p.String(),
		crashEnvStart+"="+strconv.Itoa(start),
		crashEnvFlushEvery+"="+strconv.Itoa(opts.flushEvery),
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("StdoutPipe: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting child: %v", err)
	}

	run := &crashRun{start: start, flushed: start - 1}
	var (
		mu       sync.Mutex // guards run and protoErr until readDone
		protoErr error
	)
	reached := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		signalled := false
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			now := time.Now()
			kind, num, _ := strings.Cut(sc.Text(), " ")
			n, err := strconv.Atoi(num)
			mu.Lock()
			switch {
			case err != nil:
				protoErr = fmt.Errorf("bad line %q", sc.Text())
			case kind == "ack" && n == run.lastAck()+1:
				run.ackAt = append(run.ackAt, now)
			case kind == "flushed" && n == run.lastAck():
				run.flushed = n
			default:
				protoErr = fmt.Errorf("line %q out of sequence after ack %d", sc.Text(), run.lastAck())
			}
			if !signalled && len(run.ackAt) >= opts.minAcks && now.Sub(run.ackAt[0]) >= opts.minDuration {
				signalled = true
				close(reached)
			}
			mu.Unlock()
		}
	}()

	timer := time.NewTimer(crashRunDeadline)
	defer timer.Stop()
	select {
	case <-reached:
	case <-timer.C:
	case <-readDone: // the child exited on its own; Wait below reports it
	}
	killedAt := time.Now()
	if err := cmd.Process.Kill(); err != nil {
		t.Logf("Kill: %v", err)
	}
	// Every ack the child wrote before dying is still in the pipe.
	<-readDone
	werr := cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v\nstderr:\n%s", werr, stderr.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if protoErr != nil {
		t.Fatalf("child output: %v\nstderr:\n%s", protoErr, stderr.String())
	}
	if len(run.ackAt) == 0 {
		t.Fatalf("child acknowledged nothing within %v\nstderr:\n%s", crashRunDeadline, stderr.String())
	}
	run.killedAt = killedAt
	return run
}

type crashLogWriter struct{ t testing.TB }

func (w crashLogWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// crashSurvivors opens dir, checks that every stored object is a key this
// test wrote, holding exactly its value written by the directory's node, and
// that the stored keys are exactly k0..k<n-1> for some n, which it returns
// with the node ID.
func crashSurvivors(t *testing.T, dir string, p Persistence, fs vfs.FS) (int, vclock.NodeID) {
	t.Helper()
	cfg := crashConfig(p)
	cfg.FS = fs
	cfg.Logger = slog.New(slog.NewTextHandler(crashLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := Open(dir, cfg)
	if err != nil {
		t.Fatalf("reopening after the crash: %v", err)
	}
	defer s.Close()
	var found []int
	for part := range uint32(cfg.Partitions) {
		err := s.Scan(part, func(e *Entry) error {
			i, err := strconv.Atoi(strings.TrimPrefix(string(e.Key), "k"))
			if len(e.NS) != 0 || !bytes.HasPrefix(e.Key, []byte("k")) || err != nil || i < 0 {
				return fmt.Errorf("unexpected key %q/%q", e.NS, e.Key)
			}
			sibs := e.Object.Siblings
			if len(sibs) != 1 || !bytes.Equal(sibs[0].Value, crashValue(i)) || sibs[0].Dot.Node != s.NodeID() {
				return fmt.Errorf("key %s holds %+v; want the single value %q written by %v", e.Key, sibs, crashValue(i), s.NodeID())
			}
			found = append(found, i)
			return nil
		})
		if err != nil {
			t.Fatalf("Scan(%d): %v", part, err)
		}
	}
	slices.Sort(found)
	for j, i := range found {
		if i != j {
			t.Fatalf("stored keys are not a prefix: k%d missing, k%d present (of %d keys)", j, i, len(found))
		}
	}
	// Point reads take the disk path too (the memory tier starts empty).
	for _, i := range []int{0, len(found) / 2, len(found) - 1} {
		if len(found) == 0 {
			break
		}
		var o vclock.Object
		ok, err := s.Get(nil, crashKey(i), &o)
		if err != nil || !ok || !bytes.Equal(o.Siblings[0].Value, crashValue(i)) {
			t.Fatalf("Get(k%d) = %v, %v, %+v", i, ok, err, o.Siblings)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return len(found), s.NodeID()
}

// TestCrashSyncKeepsAcknowledged: with PersistenceSync every acknowledged
// write survives SIGKILL, and the only unacknowledged write that may also
// survive is the one in flight when the child died.
func TestCrashSyncKeepsAcknowledged(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	start := time.Now()
	run := crashRunChild(t, dir, PersistenceSync, 0, crashRunOpts{minAcks: 2000})
	elapsed := time.Since(start)
	n, _ := crashSurvivors(t, dir, PersistenceSync, nil)
	last := run.lastAck()
	t.Logf("%d writes acknowledged in %v, %d stored after SIGKILL", last+1, elapsed.Round(time.Millisecond), n)
	if n-1 < last {
		t.Fatalf("acknowledged k%d..k%d lost", n, last)
	}
	if n-1 > last+1 {
		t.Fatalf("k%d..k%d stored but the child never got past k%d", last+2, n-1, last+1)
	}
}

// TestCrashSyncRestartRounds kills and restarts the writer three times in
// the same directory, each round appending keys after what survived; every
// write acknowledged in any round survives, and the node keeps its identity.
func TestCrashSyncRestartRounds(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	next := 0 // first key of the next round
	var id vclock.NodeID
	for round := range 3 {
		run := crashRunChild(t, dir, PersistenceSync, next, crashRunOpts{minAcks: 500})
		n, rid := crashSurvivors(t, dir, PersistenceSync, nil)
		last := run.lastAck()
		t.Logf("round %d: acknowledged k%d..k%d, %d keys stored", round, run.start, last, n)
		if n-1 < last || n-1 > last+1 {
			t.Fatalf("round %d: stored k0..k%d; want k0..k%d or one more", round, n-1, last)
		}
		if round > 0 && rid != id {
			t.Fatalf("round %d: node ID changed from %v to %v", round, id, rid)
		}
		id, next = rid, n
	}
}

// TestCrashAsyncKeepsFlushed: with PersistenceAsync every write acknowledged
// before a Flush that returned survives SIGKILL; acknowledged writes after
// it may be lost (the documented loss window), but what survives is a
// prefix. It logs how many were lost and how long before the kill the
// oldest lost one was acknowledged.
func TestCrashAsyncKeepsFlushed(t *testing.T) {
	defer goleak.VerifyNone(t)
	r := crashAsyncOnce(t, crashRunOpts{minAcks: 2000, minDuration: 300 * time.Millisecond, flushEvery: 500})
	t.Logf("acknowledged %d, last Flush covered %d, %d stored: %d acknowledged writes lost, oldest lost acknowledged %v before the kill",
		r.acked, r.flushed, r.stored, r.lost, r.window)
}

// crashAsyncResult is one async crash.
type crashAsyncResult struct {
	acked, flushed, stored, lost int
	window                       time.Duration // oldest lost ack to kill; 0 if nothing was lost
}

func crashAsyncOnce(t *testing.T, opts crashRunOpts) crashAsyncResult {
	t.Helper()
	dir := t.TempDir()
	run := crashRunChild(t, dir, PersistenceAsync, 0, opts)
	n, _ := crashSurvivors(t, dir, PersistenceAsync, nil)
	last := run.lastAck()
	if n-1 < run.flushed {
		t.Fatalf("keys up to k%d were flushed but only k0..k%d survived", run.flushed, n-1)
	}
	if n-1 > last+1 {
		t.Fatalf("k%d..k%d stored but the child never got past k%d", last+2, n-1, last+1)
	}
	r := crashAsyncResult{acked: last + 1, flushed: run.flushed + 1, stored: n}
	if n <= last {
		r.lost = last + 1 - n
		// Ack times are when the parent read them, a little after the child
		// wrote them; an ack read after the kill was sent counts as zero.
		r.window = max(0, run.killedAt.Sub(run.ackAt[n-run.start]))
	}
	return r
}

// TestCrashMeasureAsyncLossWindow measures the async loss window for
// docs/benchmarks.md. Run it with
//
//	ECACHE_MEASURE_LOSS=1 go test -run TestCrashMeasureAsyncLossWindow -v ./storage/
//
// It crashes the async writer five times with the child flushing every 500
// writes (as TestCrashAsyncKeepsFlushed) and five times relying on the
// background flusher alone (FlushInterval, the documented bound), killing at
// a different phase of the flush interval each time.
func TestCrashMeasureAsyncLossWindow(t *testing.T) {
	if os.Getenv("ECACHE_MEASURE_LOSS") != "1" {
		t.Skip("measurement, not a test: set ECACHE_MEASURE_LOSS=1 (and -v) to print the async crash loss window")
	}
	interval := crashConfig(PersistenceAsync).FlushInterval
	for _, flushEvery := range []int{500, 0} {
		var windows []time.Duration
		maxLost := 0
		for k := range 5 {
			opts := crashRunOpts{
				minAcks:     2000,
				minDuration: 300*time.Millisecond + time.Duration(k)*interval/5,
				flushEvery:  flushEvery,
			}
			r := crashAsyncOnce(t, opts)
			t.Logf("flushEvery=%d run %d: acked=%d flushed=%d stored=%d lost=%d window=%v",
				flushEvery, k, r.acked, r.flushed, r.stored, r.lost, r.window.Round(10*time.Microsecond))
			windows = append(windows, r.window)
			maxLost = max(maxLost, r.lost)
		}
		slices.Sort(windows)
		t.Logf("flushEvery=%d (FlushInterval %v): loss window min %v median %v max %v; max lost writes %d",
			flushEvery, interval, windows[0].Round(10*time.Microsecond), windows[len(windows)/2].Round(10*time.Microsecond),
			windows[len(windows)-1].Round(10*time.Microsecond), maxLost)
	}
}

// crashPowerLossWriters writes keys "w<g>-<i>" from writers goroutines
// until stop is closed, recording in acked[g] the last index whose Update
// returned, and closes enough once total acks reach want.
func crashPowerLossWriters(s *Store, writers, want int, acked []atomic.Int64, enough, stop chan struct{}) (wait func() error) {
	var total atomic.Int64
	var once sync.Once
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for g := range writers {
		acked[g].Store(-1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := []byte(fmt.Sprintf("w%d-%d", g, i))
				_, err := s.Update(nil, key, func(cur vclock.Object, _ bool) (vclock.Object, error) {
					o, _ := cur.Update(cur.Clock, s.NodeID(), vclock.Sibling{HLC: 1, Value: crashValue(i)})
					return o, nil
				})
				if err != nil {
					errs[g] = err
					once.Do(func() { close(enough) })
					return
				}
				acked[g].Store(int64(i))
				if total.Add(1) >= int64(want) {
					once.Do(func() { close(enough) })
				}
			}
		}()
	}
	return func() error {
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	}
}

// TestCrashPowerLossSyncKeepsAcknowledged: with PersistenceSync, a machine
// crash (everything not fsynced is lost, or a random part of it) taken while
// concurrent writers are running keeps every write acknowledged before the
// crash, and the node's identity.
func TestCrashPowerLossSyncKeepsAcknowledged(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, unsynced := range []int{0, 50, 100} {
		t.Run(fmt.Sprintf("unsynced=%d%%", unsynced), func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			cfg := crashConfig(PersistenceSync)
			cfg.FS = fs
			s, err := Open("/data", cfg)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			const writers = 4
			acked := make([]atomic.Int64, writers)
			enough, stop := make(chan struct{}), make(chan struct{})
			wait := crashPowerLossWriters(s, writers, 600, acked, enough, stop)
			<-enough
			// Acks recorded before the crash must survive it.
			snap := make([]int64, writers)
			for g := range acked {
				snap[g] = acked[g].Load()
			}
			crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced, RNG: rand.New(rand.NewPCG(1, uint64(unsynced)))})
			close(stop)
			if err := wait(); err != nil {
				t.Fatalf("writer: %v", err)
			}
			id := s.NodeID()
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}

			cfg.FS = crashed
			s, err = Open("/data", cfg)
			if err != nil {
				t.Fatalf("Open after the crash: %v", err)
			}
			defer s.Close()
			if s.NodeID() != id {
				t.Fatalf("node ID changed from %v to %v", id, s.NodeID())
			}
			total := 0
			for g := range writers {
				for i := 0; i <= int(snap[g]); i++ {
					var o vclock.Object
					ok, err := s.Get(nil, []byte(fmt.Sprintf("w%d-%d", g, i)), &o)
					if err != nil || !ok || len(o.Siblings) != 1 || !bytes.Equal(o.Siblings[0].Value, crashValue(i)) {
						t.Fatalf("acknowledged w%d-%d after the crash: found=%v err=%v %+v", g, i, ok, err, o.Siblings)
					}
				}
				total += int(snap[g]) + 1
			}
			t.Logf("%d acknowledged writes of %d writers survived", total, writers)
		})
	}
}

// TestCrashPowerLossAsyncKeepsFlushed: with PersistenceAsync, a machine
// crash keeps every write acknowledged before a Flush that returned, even
// while later writes are being queued and committed.
func TestCrashPowerLossAsyncKeepsFlushed(t *testing.T) {
	defer goleak.VerifyNone(t)
	fs := vfs.NewCrashableMem()
	cfg := crashConfig(PersistenceAsync)
	cfg.FS = fs
	cfg.FlushInterval = time.Millisecond // keep the background flusher busy
	s, err := Open("/data", cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	const flushed = 1000
	for i := range flushed {
		if err := crashWrite(s, i); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	for i := flushed; i < 2*flushed; i++ {
		if err := crashWrite(s, i); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	crashed := fs.CrashClone(vfs.CrashCloneCfg{})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	n, _ := crashSurvivors(t, "/data", PersistenceAsync, crashed)
	if n < flushed {
		t.Fatalf("only k0..k%d survived; k0..k%d were flushed", n-1, flushed-1)
	}
	t.Logf("%d flushed and %d of %d later writes survived", flushed, n-flushed, flushed)
}
