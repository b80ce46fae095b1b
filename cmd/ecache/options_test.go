package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ecachedb/ecache/storage"
)

// TestConfigPrecedence: flag > env > file > default, for single and
// repeatable settings.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ecache.yaml")
	if err := os.WriteFile(file, []byte(`
listen: 127.0.0.1:9000
memory-limit: 64MiB
persistence: sync
data-dir: /from/file
password: 0123
namespace:
  hits: counter
`), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ECACHE_MEMORY_LIMIT", "128MiB")
	t.Setenv("ECACHE_PERSISTENCE", "none")
	cmd := newServeCmd()
	if err := cmd.Flags().Parse([]string{"--persistence", "async", "--namespace", "tags=set"}); err != nil {
		t.Fatal(err)
	}
	vals, err := resolve(cmd.Flags(), serveOptions, file)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := nodeConfig(vals, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Storage.Persistence != storage.PersistenceAsync {
		t.Errorf("persistence = %v: the flag must beat env and file", cfg.Storage.Persistence)
	}
	if cfg.Storage.MemoryLimit != 128<<20 {
		t.Errorf("memory limit = %d: env must beat the file", cfg.Storage.MemoryLimit)
	}
	if cfg.Password != "0123" {
		t.Errorf("password %q: YAML scalars must keep their text", cfg.Password)
	}
	if cfg.Listen != "127.0.0.1:9000" || cfg.DataDir != "/from/file" {
		t.Errorf("listen %q data-dir %q: the file must beat defaults", cfg.Listen, cfg.DataDir)
	}
	if cfg.Namespaces["tags"] != "set" || cfg.Namespaces["hits"] != "" || cfg.Namespaces["default"] != "lww" {
		t.Errorf("namespaces %v: the flag list replaces the file's; default=lww stays", cfg.Namespaces)
	}
	if cfg.Limits.MaxKeySize != 8<<10 || cfg.Limits.MaxValueSize != 4<<20 {
		t.Errorf("default limits: %+v", cfg.Limits)
	}

	// Env list for a repeatable setting, no flag.
	t.Setenv("ECACHE_NAMESPACE", "a=counter, b=siblings")
	cmd = newServeCmd()
	vals, err = resolve(cmd.Flags(), serveOptions, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err = nodeConfig(vals, nil); err != nil || cfg.Namespaces["a"] != "counter" || cfg.Namespaces["b"] != "siblings" {
		t.Fatalf("env namespaces: %v %v", cfg.Namespaces, err)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("memroy-limit: 1GiB\n"), 0o644)
	cmd := newServeCmd()
	if _, err := resolve(cmd.Flags(), serveOptions, bad); err == nil {
		t.Fatal("a misspelled config key was accepted")
	}
	for _, args := range [][]string{
		{"--memory-limit", "lots"},
		{"--persistence", "maybe"},
		{"--namespace", "x"},
		{"--namespace", "x=nosuch"},
	} {
		cmd := newServeCmd()
		if err := cmd.Flags().Parse(args); err != nil {
			t.Fatal(err)
		}
		vals, err := resolve(cmd.Flags(), serveOptions, "")
		if err == nil {
			_, err = nodeConfig(vals, nil)
		}
		if err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"512MiB": 512 << 20, "1GB": 1e9, "4096": 4096, "64k": 64 << 10, "1.5GiB": 3 << 29} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1MiB", "ten"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
}
