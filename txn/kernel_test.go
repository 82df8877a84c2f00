package txn_test

import (
	"testing"

	"github.com/topolab/topo/internal/sandbox"
	"github.com/topolab/topo/kernel"
)

// realKernel returns the netlink kernel of the sandbox, and removes the
// project again when t ends.
func realKernel(t *testing.T) kernel.Kernel {
	t.Helper()
	sandbox.Require(t)
	k, err := kernel.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mustDown(t, project(t, k, nil)) })
	return k
}

func TestRollbackAtEveryStepKernel(t *testing.T) {
	k := realKernel(t)
	rollbackEveryStep(t, k, toSeed(t, k))
}
