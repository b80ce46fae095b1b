package antientropy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ecachedb/ecache/antientropy"
)

func addSeeds(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(m.AppendMsgpack(nil))
	}
}

// FuzzDecodeMessage: the decoder never panics, and whatever it accepts
// re-encodes canonically: encode(decode(b)) decodes to the same bytes again.
func FuzzDecodeMessage(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := antientropy.DecodeMessage(b)
		if err != nil {
			return
		}
		enc := m.AppendMsgpack(nil)
		m2, err := antientropy.DecodeMessage(enc)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if enc2 := m2.AppendMsgpack(nil); string(enc2) != string(enc) {
			t.Fatal("encoding is not canonical")
		}
		for i := range m.Objects {
			if err := m.Objects[i].Object.Validate(); err != nil {
				t.Fatalf("decoder accepted an invalid object: %v", err)
			}
		}
	})
}

// fuzzReplicas returns two small diverged replicas.
func fuzzReplicas(t tester, s antientropy.Shape) (*model, *model) {
	a, b := newModel(t, s), newModel(t, s)
	for i := range 40 {
		sc := scenarios[i%len(scenarios)]
		x, y := sc.make(fmt.Sprint(i))
		k := []byte(fmt.Sprintf("k%d", i))
		if !x.IsZero() {
			a.put([]byte("ns"), k, x)
		}
		if !y.IsZero() {
			b.put([]byte("ns"), k, y)
		}
	}
	return a, b
}

// FuzzStep feeds decoded messages to a responder and to an exchange in the
// middle of a run (with session and sequence fixed up so they are not just
// ignored): neither may panic, and the responder's answers must encode.
func FuzzStep(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := antientropy.DecodeMessage(b)
		if err != nil {
			return
		}
		cfg := antientropy.DefaultConfig()
		cfg.Shape = antientropy.Shape{Width: 4, Depth: 2}
		a, bm := fuzzReplicas(t, cfg.Shape)
		resp := antientropy.NewResponder(m.Partition, bm.tree, bm)
		out, _ := resp.Step(m)
		for _, r := range out {
			if _, err := antientropy.DecodeMessage(r.AppendMsgpack(nil)); err != nil {
				t.Fatalf("responder answer does not decode: %v", err)
			}
		}

		// Run a real exchange for len(b)%5 rounds, then inject m.
		ex, _ := antientropy.NewExchange(cfg, 9, 0, a.tree, a)
		resp = antientropy.NewResponder(0, bm.tree, bm)
		msgs := ex.Start(now)
		for range len(b) % 5 {
			var next []antientropy.Message
			for _, x := range msgs {
				rs, _ := resp.Step(x)
				for _, r := range rs {
					next = append(next, ex.Step(now, r)...)
				}
			}
			msgs = next
		}
		if len(msgs) == 0 {
			return
		}
		m.Session, m.Partition, m.Seq = 9, 0, msgs[0].Seq
		ex.Step(now, m)
		ex.Tick(now + int64(cfg.Timeout))
	})
}

// TestWriteFuzzCorpus regenerates testdata/fuzz from sampleMessages when
// ECACHE_WRITE_CORPUS is set.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("ECACHE_WRITE_CORPUS") == "" {
		t.Skip("set ECACHE_WRITE_CORPUS=1 to regenerate the seed corpus")
	}
	for _, target := range []string{"FuzzDecodeMessage", "FuzzStep"} {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, m := range sampleMessages() {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", m.AppendMsgpack(nil))
			if err := os.WriteFile(filepath.Join(dir, "seed-"+m.Type.String()), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
