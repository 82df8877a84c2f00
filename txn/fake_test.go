package txn_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/txn"

	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/planner"
)

// toSeed returns a reset for rollbackEveryStep: down, then seedFile up,
// then forwarding off, so that the plan turns it on again.
func toSeed(t testing.TB, k machine.Machine) func() {
	return func() {
		p := project(t, k)
		mustDown(t, p)
		mustUp(t, p, seedFile)
		off := op.Sysctl{Key: names.IPForward, Value: "0"}
		if err := k.Apply(context.Background(), off); err != nil {
			t.Fatal(err)
		}
	}
}

// toBase returns a reset for the in-place change proofs: down, then
// inPlaceBase up.
func toBase(t testing.TB, k machine.Machine) func() { return toFile(t, k, inPlaceBase) }

// toFile returns a reset to src: down, then src up.
func toFile(t testing.TB, k machine.Machine, src string) func() {
	return func() {
		p := project(t, k)
		mustDown(t, p)
		mustUp(t, p, src)
	}
}

func TestRollbackAtEveryStepFake(t *testing.T) {
	k := fake.New(nil)
	rollbackEveryStep(t, k, toSeed(t, k), bigFile, 50)
}

func TestCrashAtEveryStepFake(t *testing.T) {
	k := fake.New(nil)
	crashAtEveryStep(t, k, toSeed(t, k), bigFile, nil, nil)
}

func TestDownRollbackAtEveryStepFake(t *testing.T) {
	k := fake.New(nil)
	downRollbackEveryStep(t, k, func() {
		p := project(t, k)
		mustDown(t, p)
		mustUp(t, p, bigFile)
	}, 50)
}

// TestSysctlValuesCrashAtEveryStepFake is the crash proof of a container
// whose sysctls are not all 0 or 1: recovery puts back what the journal
// says of them, as of any other.
func TestSysctlValuesCrashAtEveryStepFake(t *testing.T) {
	k := fake.New(nil)
	crashAtEveryStep(t, k, func() { mustDown(t, project(t, k)) }, sysctlValuesFile, nil, nil)
}

const sysctlValuesFile = `
name: rb
containers:
  r1:
    network_mode: none
    sysctls: {net.ipv4.ip_forward: 1, net.ipv4.ip_local_port_range: "20000 30000", net.ipv4.tcp_keepalive_time: 600}
`

// TestInPlaceRollbackAtEveryStepFake and TestInPlaceCrashAtEveryStepFake
// are the two proofs for plans that change running containers in place.
func TestInPlaceRollbackAtEveryStepFake(t *testing.T) {
	for i, c := range inPlace {
		t.Run(c.name, func(t *testing.T) {
			k := fake.New(nil)
			rollbackEveryStep(t, k, toBase(t, k), inPlaceFile(t, i), 1)
		})
	}
}

func TestInPlaceCrashAtEveryStepFake(t *testing.T) {
	for i, c := range inPlace {
		t.Run(c.name, func(t *testing.T) {
			k := fake.New(nil)
			crashAtEveryStep(t, k, toBase(t, k), inPlaceFile(t, i), nil, nil)
		})
	}
}

// liar claims to run the operations its skip accepts but does nothing.
type liar struct {
	machine.Machine
	skip func(op.Operation) bool
}

func (l liar) Apply(ctx context.Context, o op.Operation) error {
	if l.skip(o) {
		return nil
	}
	return l.Machine.Apply(ctx, o)
}

// TestVerifyRollsBack: a kernel that silently drops a step leaves up with
// a difference; up reports it and rolls everything back.
func TestVerifyRollsBack(t *testing.T) {
	k := fake.New(nil)
	toSeed(t, k)()
	before := k.Dump()
	drop := func(o op.Operation) bool {
		r, ok := o.(op.RouteAdd)
		return ok && r.NS == "rb-worker" && r.Dst == op.DefaultRoute
	}
	p := project(t, liar{k, drop})
	_, err := p.Up(context.Background(), parse(t, bigFile))
	var ve *txn.VerifyError
	if !errors.As(err, &ve) || ve.Rollback != nil || len(ve.Diff.Steps) != 1 || !drop(ve.Diff.Steps[0].Op) {
		t.Fatalf("err = %v, want a VerifyError naming the dropped route", err)
	}
	if !strings.Contains(err.Error(), "ip -n rb-worker route add default via 10.99.3.1") || !strings.Contains(err.Error(), "the kernel is as it was") {
		t.Errorf("message: %v", err)
	}
	if d := cmp.Diff(before, k.Dump()); d != "" {
		t.Errorf("after the verify rollback (-before +after):\n%s", d)
	}
	if pend, _ := p.Pending(); pend != nil {
		t.Errorf("journal still pending after a complete rollback: %s", pend.Summary())
	}
}

// TestIncompleteRollbackStaysPending: when an undo fails too, the journal
// stays open and the next up finishes the job.
func TestIncompleteRollbackStaysPending(t *testing.T) {
	k := fake.New(nil)
	toSeed(t, k)()
	// Step 30 fails, and so does the undo of step 20 (call 30+10).
	f := faults(k, 30, 0, false, nil)
	f.Fail = func(op.Operation) error {
		if f.Count() == 40 {
			return machine.ErrInjected
		}
		return nil
	}
	p := project(t, f)
	_, err := p.Up(context.Background(), parse(t, bigFile))
	var se *applier.StepError
	if !errors.As(err, &se) || se.Rollback == nil {
		t.Fatalf("err = %v, want a failed step with an incomplete rollback", err)
	}
	pend, _ := p.Pending()
	if pend == nil {
		t.Fatal("journal not pending after an incomplete rollback")
	}
	if pend.Done() != 1 {
		t.Errorf("%d steps still in effect, want 1: %s", pend.Done(), pend.Summary())
	}
	// The next down undoes the one step left and removes the project.
	p.Machine = k
	res, err := p.Down(context.Background())
	if err != nil || res.Recovered == nil {
		t.Fatalf("down: %v, recovered %v", err, res.Recovered)
	}
	for _, n := range observe(t, k).Namespaces {
		t.Errorf("namespace %s left after down", n.Name)
	}
}

// TestRollbackSaysWhatDiffers: when a rollback does not put the kernel
// back (here an undo that claims success and does nothing), up observes
// again, names what differs and the command that repairs it, and does
// not say that the kernel is as it was.
func TestRollbackSaysWhatDiffers(t *testing.T) {
	k := fake.New(nil)
	toSeed(t, k)()
	seed := observe(t, k)
	lost := func(o op.Operation) bool {
		a, ok := o.(op.AddrAdd)
		return ok && a.NS == "rb-db" && a.Addr.String() == "10.99.1.2/24"
	}
	_, err := project(t, faults(liar{k, lost}, 30, 0, false, nil)).Up(context.Background(), parse(t, bigFile))
	var se *applier.StepError
	if !errors.As(err, &se) || se.Compared == nil {
		t.Fatalf("err = %v, want a failed step compared after its rollback", err)
	}
	msg := err.Error()
	for _, want := range []string{"the kernel is not as it was", "address 10.99.1.2/24 of eth0 in namespace rb-db is missing (repair: ip -n rb-db addr add 10.99.1.2/24 dev eth0)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "the kernel is as it was") {
		t.Errorf("message claims the kernel is as it was:\n%s", msg)
	}
	// The repair commands named do put it back.
	for _, d := range se.Compared.Differences {
		if d.Repair == nil {
			continue
		}
		if err := k.Apply(context.Background(), d.Repair.Op); err != nil {
			t.Errorf("repair %s: %v", d.Repair.Command(), err)
		}
	}
	if c := planner.Compare("rb", seed, observe(t, k), planner.Options{}); !c.AsItWas() {
		t.Errorf("after the repairs: %s", c)
	}
}
