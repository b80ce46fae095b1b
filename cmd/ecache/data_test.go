package main

import (
	"strings"
	"testing"

	"github.com/ecachedb/ecache/client"
)

func TestLevelOption(t *testing.T) {
	for _, tc := range []struct {
		in      string
		none    bool
		wantErr bool
	}{
		{"", true, false}, {"0", true, false}, {"1", false, false}, {"3", false, false},
		{"quorum", false, false}, {"all", false, false},
		{"-1", false, true}, {"Quorum", false, true}, {"most", false, true}, {"1.5", false, true},
	} {
		o, err := levelOption("--w", tc.in, client.WithW, client.WithWQuorum(), client.WithWAll())
		if (err != nil) != tc.wantErr || (err == nil && (o == nil) != tc.none) {
			t.Errorf("levelOption(%q) = %v, %v", tc.in, o != nil, err)
		}
		if err != nil && !strings.Contains(err.Error(), "--w") {
			t.Errorf("levelOption(%q): error %q does not name the flag", tc.in, err)
		}
	}
	f := &dataFlags{ns: "default", w: "quorum", r: "all"}
	if o, err := f.opts(); err != nil || len(o) != 3 {
		t.Fatalf("opts() = %d options, %v", len(o), err)
	}
	f.r = "bogus"
	if _, err := f.opts(); err == nil {
		t.Fatal("--r bogus accepted")
	}
}
