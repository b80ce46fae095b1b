package resp

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	l := Limits{MaxArgs: 4, MaxBulk: 8, MaxRequest: 48, MaxInline: 32}
	for _, tc := range []struct {
		in   string
		args []string // nil: incomplete or error
		n    int
		err  string // substring of the error, "" for none
	}{
		{in: "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", args: []string{"GET", "k"}, n: 20},
		{in: "*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n", args: []string{"GET", "k"}, n: 20},
		{in: "*1\r\n$0\r\n\r\n", args: []string{""}, n: 10},
		{in: "*0\r\n", args: []string{}, n: 4},
		{in: "*-1\r\n", args: []string{}, n: 5},
		{in: "*2\r\n$3\r\nGET\r\n$1\r\n", n: 0},
		{in: "*2\r\n$3\r\nGE", n: 0},
		{in: "*2\r", n: 0},
		{in: "PING\r\n", args: []string{"PING"}, n: 6},
		{in: "PING\n", args: []string{"PING"}, n: 5},
		{in: "  set  a   b \r\n", args: []string{"set", "a", "b"}, n: 15},
		{in: "\r\n", args: []string{}, n: 2},
		{in: `set "a b" 'c\'d' "\x41\n"` + "\r\n", args: []string{"set", "a b", "c'd", "A\n"}, n: 27},
		{in: "PIN", n: 0},
		{in: "*x\r\n", err: "invalid multibulk length"},
		{in: "*5\r\n", err: "invalid multibulk length 5"},
		{in: "*1\r\n$9\r\n", err: "invalid bulk length 9"},
		{in: "*1\r\n$-1\r\n", err: "invalid bulk length -1"},
		{in: "*1\r\n+OK\r\n", err: "expected '$', got '+'"},
		{in: "*1\r\n$1\r\nabc\r\n", err: "not terminated by CRLF"},
		{in: "*1\n", err: "CRLF"},
		{in: "*1\r\n$99999999999999999999999\r\n", err: "bulk length"},
		{in: `set "a` + "\r\n", err: "unbalanced quotes"},
		{in: `set "a"b` + "\r\n", err: "unbalanced quotes"},
		{in: "a b c d e\r\n", err: "too many arguments"},
		{in: strings.Repeat("x", 40), err: "too big inline request"},
		{in: "*4\r\n$8\r\n12345678\r\n$8\r\n12345678\r\n$8\r\n12345678\r\n$8\r\n12345678\r\n", err: "request over 48 bytes"},
	} {
		args, n, need, err := Parse([]byte(tc.in), nil, l)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrProtocol) {
				t.Errorf("Parse(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if n != tc.n {
			t.Errorf("Parse(%q) n = %d, want %d", tc.in, n, tc.n)
		}
		if n == 0 {
			if need <= len(tc.in) {
				t.Errorf("Parse(%q) incomplete with need %d", tc.in, need)
			}
			continue
		}
		got := make([]string, len(args))
		for i, a := range args {
			got[i] = string(a)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.args) || len(got) != len(tc.args) {
			t.Errorf("Parse(%q) = %q, want %q", tc.in, got, tc.args)
		}
	}
}

// TestParseNeed: feeding a command byte by byte, Parse never claims a
// command before it is complete, and need never overshoots.
func TestParseNeed(t *testing.T) {
	in := []byte("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n")
	for i := range len(in) {
		_, n, need, err := Parse(in[:i], nil, DefaultLimits())
		if err != nil || n != 0 || need > len(in) || need <= i {
			t.Fatalf("prefix %d: n=%d need=%d err=%v", i, n, need, err)
		}
	}
	if args, n, _, err := Parse(in, nil, DefaultLimits()); err != nil || n != len(in) || len(args) != 3 {
		t.Fatalf("whole: %q %d %v", args, n, err)
	}
}

func TestParseIntArg(t *testing.T) {
	for in, want := range map[string]bool{"0": true, "-1": true, "9223372036854775807": true, "-9223372036854775808": true,
		"9223372036854775808": false, "01": false, "+1": false, "-0": false, "": false, "1a": false, " 1": false} {
		if _, ok := ParseInt([]byte(in)); ok != want {
			t.Errorf("ParseInt(%q) ok = %v", in, ok)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	in := []byte("*3\r\n$3\r\nSET\r\n$16\r\nkey:000000012345\r\n$3\r\nxxx\r\n")
	args := make([][]byte, 0, 8)
	l := DefaultLimits()
	b.ReportAllocs()
	for b.Loop() {
		args, _, _, _ = Parse(in, args, l)
	}
}
