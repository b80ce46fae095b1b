package clustertest

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/ecachedb/ecache/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testutil.LeakOptions()...) }
