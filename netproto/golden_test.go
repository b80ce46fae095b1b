package netproto

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden and the fuzz seed corpora")

const (
	goldenDir = "testdata/golden"
	docPath   = "../docs/protocol.md"
)

// TestGolden pins the canonical encoding of every message: a change here is
// a wire-format change, and must be a deliberate one.
func TestGolden(t *testing.T) {
	exs := examples()
	if *update {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for _, e := range exs {
		if seen[e.name] {
			t.Fatalf("duplicate example %s", e.name)
		}
		seen[e.name] = true
		path := filepath.Join(goldenDir, e.name+".hex")
		got := hex.EncodeToString(e.frame())
		if *update {
			if err := os.WriteFile(path, []byte(got+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -run TestGolden -update)", err)
		}
		if got != strings.TrimSpace(string(want)) {
			t.Errorf("%s:\n got %s\nwant %s", e.name, got, want)
		}
	}
	// Every opcode has a request and a response vector.
	for op := OpHello; op < opEnd; op++ {
		for _, suffix := range []string{"_request", "_response"} {
			if !seen[strings.ToLower(op.String())+suffix] {
				t.Errorf("no golden vector for %v%s", op, suffix)
			}
		}
	}
	// No stale files.
	files, _ := filepath.Glob(filepath.Join(goldenDir, "*.hex"))
	if len(files) != len(exs) {
		t.Errorf("%d golden files for %d examples", len(files), len(exs))
	}
}

// TestGoldenDecode decodes every golden file with the real decoder, so the
// vectors are checked as a client in another language would read them.
func TestGoldenDecode(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.hex"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	d := NewDecoder(DefaultLimits())
	for _, path := range files {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := hex.DecodeString(strings.TrimSpace(string(raw)))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		f, n, err := d.Next(b)
		if err != nil || n != len(b) {
			t.Fatalf("%s: n=%d err=%v", path, n, err)
		}
		body := bodyFor(f.Opcode, f.Flags)
		if err := body.DecodeBody(f.Body); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if re := AppendFrame(nil, f.Opcode, f.Flags, f.RequestID, body); !bytes.Equal(re, b) {
			t.Fatalf("%s: re-encoded differently", path)
		}
	}
}

// TestProtocolDocVectors checks that docs/protocol.md quotes every golden
// vector verbatim, so the spec and the code cannot drift apart.
func TestProtocolDocVectors(t *testing.T) {
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range examples() {
		h := hex.EncodeToString(e.frame())
		if !bytes.Contains(doc, []byte(h)) {
			t.Errorf("docs/protocol.md lacks the %s vector %s", e.name, h)
		}
	}
}

// TestFuzzSeeds keeps the checked-in seed corpora in step with the
// examples: one seed per golden vector for each fuzz target, plus a few
// malformed inputs.
func TestFuzzSeeds(t *testing.T) {
	type seed struct {
		name string
		data string
	}
	var dec, body []seed
	var stream []byte
	for _, e := range examples() {
		fr := e.frame()
		stream = append(stream, fr...)
		dec = append(dec, seed{e.name, fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", fr)})
		body = append(body, seed{e.name, fmt.Sprintf("go test fuzz v1\nbyte(%q)\nbyte(%q)\n[]byte(%q)\n", byte(e.op), byte(e.flags), e.bodyBytes())})
	}
	dec = append(dec,
		seed{"stream", fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", stream)},
		seed{"bad_magic", fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", append([]byte("GET / HTTP/1.1\r\n"), stream[:20]...))},
		seed{"oversize", fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", AppendHeader(nil, Header{Opcode: OpPut, BodyLen: 1 << 30}))},
	)
	body = append(body,
		seed{"map_body", fmt.Sprintf("go test fuzz v1\nbyte(%q)\nbyte(%q)\n[]byte(%q)\n", byte(OpGet), byte(0), []byte{0x81, 0xa1, 'k', 0x01})},
		seed{"deep_trailing", fmt.Sprintf("go test fuzz v1\nbyte(%q)\nbyte(%q)\n[]byte(%q)\n", byte(OpGet), byte(0), rawBody(str("n"), bin("k"), uintv(0), bytes.Repeat([]byte{0x91}, 80)))},
	)
	for target, seeds := range map[string][]seed{"FuzzDecoder": dec, "FuzzDecodeBody": body} {
		dir := filepath.Join("testdata", "fuzz", target)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for _, s := range seeds {
			path := filepath.Join(dir, s.name)
			if *update {
				if err := os.WriteFile(path, []byte(s.data), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != s.data {
				t.Errorf("%s is stale or missing (run go test -run TestFuzzSeeds -update): %v", path, err)
			}
		}
	}
}
