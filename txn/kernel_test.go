package txn_test

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/topolab/topo/internal/sandbox"
	"github.com/topolab/topo/internal/testkit"
	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/machine/linux"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/txn"
)

// realKernel returns the netlink kernel of the sandbox, and removes the
// project again when t ends.
func realKernel(t *testing.T) machine.Machine {
	t.Helper()
	sandbox.Require(t)
	k, err := linux.New(context.Background(), linux.Options{Runtime: names.DefaultRuntime})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mustDown(t, project(t, k)) })
	return k
}

func TestRollbackAtEveryStepKernel(t *testing.T) {
	k := realKernel(t)
	rollbackEveryStep(t, k, toSeed(t, k), bigFile, 50)
}

func TestDownRollbackAtEveryStepKernel(t *testing.T) {
	k := realKernel(t)
	downRollbackEveryStep(t, k, func() {
		p := project(t, k)
		mustDown(t, p)
		mustUp(t, p, bigFile)
	}, 50)
}

// halfDone leaves a step as a kill -9 in its middle can: the object made
// but not yet marked (an empty /run/netns file, a namespace with an
// unmarked lo, a bridge or veth pair without alias), or a namespace
// unmounted but its file not yet removed. Other steps are not run at all.
func halfDone(t *testing.T) func(op.Operation) {
	n := 0
	return func(o op.Operation) {
		n++
		var cmd string
		switch s := o.(type) {
		case op.NetnsAdd:
			cmd = "ip netns add " + s.NS
			if n%2 == 0 {
				cmd = "touch /run/netns/" + s.NS
			}
		case op.BridgeAdd:
			cmd = "ip link add " + s.Link + " type bridge"
		case op.VethAdd:
			cmd = fmt.Sprintf("ip link add %s type veth peer name %s netns %s", s.Link, s.Peer, s.PeerNS)
		case op.NetnsDel:
			cmd = "umount /run/netns/" + s.NS
		default:
			return
		}
		if out, err := exec.Command("sh", "-c", cmd).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
	}
}

// TestCrashHalfDoneKernel crashes up, down and rollbacks in the middle of
// every step that makes or removes a namespace or a link, leaving the step
// half done, and checks that one up converges and one down leaves nothing.
func TestCrashHalfDoneKernel(t *testing.T) {
	k := realKernel(t)
	pick := func(s op.Step) bool {
		switch s.Op.(type) {
		case op.NetnsAdd, op.NetnsDel, op.BridgeAdd, op.VethAdd:
			return true
		}
		return false
	}
	crashAtEveryStep(t, k, toSeed(t, k), bigFile, pick, halfDone(t))
}

// TestCrashKernel crashes at every call, before or after the step, as the
// fake test does, on a sample of the calls to keep the run short.
func TestCrashKernel(t *testing.T) {
	k := realKernel(t)
	n := 0
	sample := func(op.Step) bool { n++; return n%3 == 0 }
	crashAtEveryStep(t, k, toSeed(t, k), bigFile, sample, nil)
}

// TestInPlaceRollbackAtEveryStepKernel is the every-step rollback proof of
// the in-place changes on the real kernel.
func TestInPlaceRollbackAtEveryStepKernel(t *testing.T) {
	k := realKernel(t)
	for i, c := range inPlace {
		t.Run(c.name, func(t *testing.T) {
			rollbackEveryStep(t, k, toBase(t, k), inPlaceFile(t, i), 1)
		})
	}
}

// TestInPlaceCrashKernel crashes the in-place changes on the real kernel
// at its first three calls and two in three after, before or after the
// step, as the fake test does at every call.
func TestInPlaceCrashKernel(t *testing.T) {
	k := realKernel(t)
	for i, c := range inPlace {
		t.Run(c.name, func(t *testing.T) {
			n := 0
			sample := func(op.Step) bool { n++; return n <= 3 || n%3 != 0 }
			crashAtEveryStep(t, k, toBase(t, k), inPlaceFile(t, i), sample, nil)
		})
	}
}

// TestRecoveryLeavesOthersAlone: an object with the in-flight step's name
// that carries another mark is never deleted, even by recovery.
func TestRecoveryLeavesOthersAlone(t *testing.T) {
	k := realKernel(t)
	toSeed(t, k)()
	plan, _, err := planner.Up(parse(t, bigFile), observe(t, k), planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(plan.Steps, func(s op.Step) bool { return testkit.Is[op.BridgeAdd](s) })
	br := plan.Steps[i].Op.(op.BridgeAdd).Link
	dir := runDir(t) + "/rb"
	// The bridge step is in flight when topo dies; meanwhile someone else
	// made a bridge of that name, marked for another project.
	f := faults(k, 0, i+1, false, func(op.Operation) {
		for _, c := range []string{"ip link add " + br + " type bridge", "ip link set " + br + " alias topo:other:net:x"} {
			if out, err := exec.Command("sh", "-c", c).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", c, err, out)
			}
		}
	})
	p := &txn.Project{Name: "rb", Machine: f, Dir: dir}
	crashed(func() { p.Up(context.Background(), parse(t, bigFile)) })
	t.Cleanup(func() { exec.Command("ip", "link", "del", br).Run() })
	if l := observe(t, k).Host.Link(br); l == nil || l.Alias != "topo:other:net:x" {
		t.Fatalf("after the crash: %+v", l)
	}
	p = &txn.Project{Name: "rb", Machine: k, Dir: dir, Notes: testWriter{t}}
	_, err = p.Up(context.Background(), parse(t, bigFile))
	if err == nil || !strings.Contains(err.Error(), "belongs to network x of project other") {
		t.Errorf("up after the crash: %v, want the collision with project other reported", err)
	}
	if l := observe(t, k).Host.Link(br); l == nil || l.Alias != "topo:other:net:x" {
		t.Errorf("the other project's bridge: %+v, want it untouched", l)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }
