package gossip_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ecachedb/ecache/gossip"
)

// TestPrepareLeave: a node preparing to leave drops out of every ring, its
// own included, while it stays an alive member; Leave then marks it left.
func TestPrepareLeave(t *testing.T) {
	ms := cluster(t, 3)
	all := ids(ms...)
	waitFor(t, 10*time.Second, "three nodes", func() bool {
		return ringIs(ms[0], all) && ringIs(ms[1], all) && ringIs(ms[2], all)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ms[2].PrepareLeave(ctx); err != nil {
		t.Fatalf("PrepareLeave: %v", err)
	}
	if !ringIs(ms[2], all[:2]) {
		t.Fatalf("the leaver's own ring still holds it: %v", ms[2].Ring().Nodes())
	}
	waitFor(t, 10*time.Second, "the leaver out of the others' rings", func() bool {
		return ringIs(ms[0], all[:2]) && ringIs(ms[1], all[:2])
	})
	for i, m := range ms {
		for _, mem := range m.Members() {
			if mem.ID == all[2] && (mem.State != gossip.StateAlive || !mem.Leaving) {
				t.Fatalf("node %d sees the leaver as %v leaving=%v, want alive and leaving", i, mem.State, mem.Leaving)
			}
		}
	}
	if err := ms[2].Leave(ctx); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	waitFor(t, 10*time.Second, "the leaver left", func() bool {
		return stateOf(ms[0], all[2]) == gossip.StateLeft && stateOf(ms[1], all[2]) == gossip.StateLeft
	})
	if err := ms[2].PrepareLeave(ctx); !errors.Is(err, gossip.ErrClosed) {
		t.Fatalf("PrepareLeave after Leave: %v, want ErrClosed", err)
	}
}

func TestProfile(t *testing.T) {
	for _, p := range []string{"", gossip.ProfileLocal, gossip.ProfileLAN} {
		cfg := config(t, "p"+p)
		cfg.Profile = p
		m := open(t, cfg)
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
	cfg := gossip.DefaultConfig()
	cfg.NodeID = 42
	cfg.Profile = "wan"
	if err := cfg.Validate(); !errors.Is(err, gossip.ErrConfig) || !strings.Contains(err.Error(), "Profile") {
		t.Fatalf("Profile wan: %v", err)
	}
}
