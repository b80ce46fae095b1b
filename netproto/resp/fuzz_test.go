package resp

import (
	"bytes"
	"testing"
)

// FuzzParse: Parse never panics, consumes no more than it was given,
// returns arguments that lie within the input (or were unquoted), respects
// the limits, and parses a complete command the same way however much
// input follows it.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "PING\r\n", "set \"a\\x41\" 'b'\r\n", "*0\r\n", "*1\r\n$-1\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000000\r\n", "*99999999\r\n",
	} {
		f.Add([]byte(s))
	}
	l := Limits{MaxArgs: 16, MaxBulk: 64, MaxRequest: 256, MaxInline: 128}
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		args, n, need, err := Parse(in, nil, l)
		if !bytes.Equal(in, orig) {
			t.Fatal("Parse modified its input")
		}
		if err != nil {
			return
		}
		if n < 0 || n > len(in) {
			t.Fatalf("consumed %d of %d", n, len(in))
		}
		if n == 0 {
			if need <= len(in) {
				t.Fatalf("incomplete but need %d <= %d", need, len(in))
			}
			return
		}
		if len(args) > l.MaxArgs {
			t.Fatalf("%d args over the limit", len(args))
		}
		for _, a := range args {
			if len(a) > l.MaxBulk && in[0] == '*' {
				t.Fatalf("argument of %d bytes over the limit", len(a))
			}
		}
		more := append(bytes.Clone(in[:n]), "*1\r\n$4\r\nPING\r\n"...)
		args2, n2, _, err2 := Parse(more, nil, l)
		if err2 != nil || n2 != n || len(args2) != len(args) {
			t.Fatalf("prefix parse differs: %d %d %v", n, n2, err2)
		}
		for i := range args {
			if !bytes.Equal(args[i], args2[i]) {
				t.Fatalf("arg %d differs", i)
			}
		}
	})
}
