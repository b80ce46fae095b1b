package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// option is one setting of `ecache serve`, settable by flag, environment
// variable (ECACHE_ + the flag name upper-cased, dashes as underscores) or
// YAML config file key (the flag name), with that precedence over the
// default.
type option struct {
	name  string
	usage string
	def   string
	list  bool // repeatable; env and file values are comma-separated lists
}

func (o option) env() string {
	return "ECACHE_" + strings.ToUpper(strings.ReplaceAll(o.name, "-", "_"))
}

// resolve returns each option's value: flag > env > file > default. List
// options return every value joined by "\n".
func resolve(fs *pflag.FlagSet, opts []option, configPath string) (map[string][]string, error) {
	file := map[string]*yaml.Node{}
	if configPath != "" {
		b, err := os.ReadFile(configPath)
		if err != nil {
			return nil, fmt.Errorf("reading config file: %w", err)
		}
		// Decode to nodes, not Go values, so scalars keep their exact text
		// (a password 0123 stays "0123", not octal 83).
		var doc yaml.Node
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("parsing config file %s: %w", configPath, err)
		}
		if len(doc.Content) == 1 {
			m := doc.Content[0]
			if m.Kind != yaml.MappingNode {
				return nil, fmt.Errorf("config file %s: want a map of settings", configPath)
			}
			for i := 0; i+1 < len(m.Content); i += 2 {
				file[m.Content[i].Value] = m.Content[i+1]
			}
		}
		known := map[string]bool{"config": true}
		for _, o := range opts {
			known[o.name] = true
		}
		for k := range file {
			if !known[k] {
				return nil, fmt.Errorf("config file %s: unknown setting %q", configPath, k)
			}
		}
	}
	out := make(map[string][]string, len(opts))
	for _, o := range opts {
		switch {
		case fs.Changed(o.name):
			if o.list {
				v, _ := fs.GetStringArray(o.name)
				out[o.name] = v
			} else {
				v, _ := fs.GetString(o.name)
				out[o.name] = []string{v}
			}
		case os.Getenv(o.env()) != "":
			v := os.Getenv(o.env())
			if o.list {
				out[o.name] = splitList(v)
			} else {
				out[o.name] = []string{v}
			}
		case file[o.name] != nil && !(file[o.name].Kind == yaml.ScalarNode && file[o.name].Tag == "!!null"):
			v, err := fileValue(file[o.name], o)
			if err != nil {
				return nil, fmt.Errorf("config file %s: %s: %w", configPath, o.name, err)
			}
			out[o.name] = v
		case o.def != "":
			out[o.name] = []string{o.def}
		}
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func fileValue(v *yaml.Node, o option) ([]string, error) {
	switch v.Kind {
	case yaml.ScalarNode:
		if o.list {
			return splitList(v.Value), nil
		}
		return []string{v.Value}, nil
	case yaml.SequenceNode:
		if !o.list {
			return nil, fmt.Errorf("want a single value, got a list")
		}
		out := make([]string, 0, len(v.Content))
		for _, e := range v.Content {
			if e.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("list elements must be plain values")
			}
			out = append(out, e.Value)
		}
		return out, nil
	case yaml.MappingNode:
		if !o.list {
			return nil, fmt.Errorf("want a single value, got a map")
		}
		out := make([]string, 0, len(v.Content)/2)
		for i := 0; i+1 < len(v.Content); i += 2 {
			k, e := v.Content[i], v.Content[i+1]
			if e.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("map values must be plain values")
			}
			out = append(out, k.Value+"="+e.Value)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported value")
}

// parseBytes parses a size such as 512MiB, 1GB, 4096 or 64k.
func parseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"TB", 1000 * 1000 * 1000 * 1000},
		{"k", 1 << 10}, {"K", 1 << 10}, {"m", 1 << 20}, {"M", 1 << 20}, {"g", 1 << 30}, {"G", 1 << 30},
		{"B", 1},
	}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size %q (want e.g. 512MiB, 1GB, 4096)", s)
	}
	return int64(n * float64(mult)), nil
}
