package txn_test

import (
	"context"
	"testing"

	"github.com/topolab/topo/kernel"
	"github.com/topolab/topo/planner"
)

// toSeed returns a reset for rollbackEveryStep: down, then seedFile up,
// then forwarding off, so that the plan turns it on again.
func toSeed(t testing.TB, k kernel.Kernel) func() {
	return func() {
		p := project(t, k, nil)
		mustDown(t, p)
		mustUp(t, p, seedFile)
		off := planner.Step{Action: planner.Change, Op: planner.OpSysctl, Resource: "host", Key: planner.IPForward, Value: "0"}
		if err := k.Apply(context.Background(), off); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRollbackAtEveryStepFake(t *testing.T) {
	k := kernel.NewFake(nil)
	rollbackEveryStep(t, k, toSeed(t, k))
}

func TestCrashAtEveryStepFake(t *testing.T) {
	k := kernel.NewFake(nil)
	crashAtEveryStep(t, k, toSeed(t, k), nil, nil)
}
