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
	file := map[string]any{}
	if configPath != "" {
		b, err := os.ReadFile(configPath)
		if err != nil {
			return nil, fmt.Errorf("reading config file: %w", err)
		}
		if err := yaml.Unmarshal(b, &file); err != nil {
			return nil, fmt.Errorf("parsing config file %s: %w", configPath, err)
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
		case file[o.name] != nil:
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

func fileValue(v any, o option) ([]string, error) {
	switch x := v.(type) {
	case []any:
		if !o.list {
			return nil, fmt.Errorf("want a single value, got a list")
		}
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, err := scalar(e)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	case map[string]any:
		if !o.list {
			return nil, fmt.Errorf("want a single value, got a map")
		}
		out := make([]string, 0, len(x))
		for k, e := range x {
			s, err := scalar(e)
			if err != nil {
				return nil, err
			}
			out = append(out, k+"="+s)
		}
		return out, nil
	default:
		s, err := scalar(v)
		if err != nil {
			return nil, err
		}
		if o.list {
			return splitList(s), nil
		}
		return []string{s}, nil
	}
}

func scalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int:
		return strconv.Itoa(x), nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	}
	return "", fmt.Errorf("unsupported value %v (%T)", v, v)
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
