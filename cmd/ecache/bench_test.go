package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecachedb/ecache/node"
	"github.com/ecachedb/ecache/storage"
)

// TestBenchCommand runs `ecache bench` in process against an in-process
// node, with the JSON and HTML reports.
func TestBenchCommand(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.Storage.Persistence = storage.PersistenceNone
	cfg.Storage.MemoryLimit = 16 << 20
	n, err := node.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	dir := t.TempDir()
	jsonPath, htmlPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.html")
	cmd := newBenchCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--target", "ecache://" + n.Addr(), "--ops", "300", "--keys", "50", "--preload",
		"--conns", "2", "--pipeline", "4", "--ratio", "4:1", "--dist", "zipf:0.99", "--value-size", "10-100",
		"--json", jsonPath, "--html", htmlPath})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "ops/s") || !strings.Contains(out.String(), "zipf:0.99") {
		t.Errorf("output:\n%s", out.String())
	}
	var rep struct {
		Results []struct {
			Ops, Errors int64
			HitRatio    float64 `json:"hit_ratio"`
		}
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 || rep.Results[0].Ops != 300 || rep.Results[0].Errors != 0 || rep.Results[0].HitRatio != 1 {
		t.Errorf("report: %s", b)
	}
	h, err := os.ReadFile(htmlPath)
	if err != nil || !bytes.Contains(h, []byte("<svg")) {
		t.Errorf("html: %v %.200s", err, h)
	}
}
