package txn_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/internal/testkit"
	"github.com/topolab/topo/journal"
	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/state"
	"github.com/topolab/topo/txn"
)

// TestRecoverEarlierJournal recovers, on the fake machine, the journals
// that topo wrote before journals had a format (e2e/testdata/journal):
// the machine is first brought where that run was when it was killed
// (every step it started ran), the journal put in place, and the next up
// must undo it and converge, the next down leave nothing. e2e
// TestRecoverEarlierJournal does the same on the real kernel.
func TestRecoverEarlierJournal(t *testing.T) {
	src, err := os.ReadFile("../e2e/testdata/journal/topo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f := testkit.ParseAt(t, "/lab/jfix/topo.yaml", string(src))
	for _, c := range []struct {
		journal string
		up      bool // the interrupted run was a down of the project up
	}{{"up.journal", false}, {"down.journal", true}} {
		t.Run(c.journal, func(t *testing.T) {
			k := fake.New(nil)
			empty := testkit.Observe(t, k, "jfix")
			plan := testkit.Plan(t, k, f)
			if c.up {
				testkit.Up(t, k, f)
				plan = planner.Down("jfix", testkit.Observe(t, k, "jfix"), planner.Options{})
			}
			dir := filepath.Join(t.TempDir(), "jfix")
			b, err := os.ReadFile(filepath.Join("../e2e/testdata/journal", c.journal))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, journal.FileName), b, 0o644); err != nil {
				t.Fatal(err)
			}
			pend, err := journal.Read(dir)
			if err != nil || pend == nil {
				t.Fatalf("pending: %v, %v", pend, err)
			}
			// The run got as far as the journal says: every step it
			// started ran, the last one before the kill.
			steps := beforeUTS(plan.Steps)
			ran := &planner.Plan{Project: "jfix", Steps: steps[:len(pend.Entries)]}
			for i, e := range pend.Entries {
				// (A pid aside: the processes are this machine's.)
				if got, want := e.Step, steps[i]; got.Ref != want.Ref || got.Op.Name() != want.Op.Name() {
					t.Fatalf("step %d of the journal is %q, today's plan's %q", i, got, want)
				}
			}
			if err := (&applier.Applier{Machine: k}).Apply(context.Background(), ran); err != nil {
				t.Fatal(err)
			}
			p := &txn.Project{Name: "jfix", Machine: k, Dir: dir}
			res, err := p.Up(context.Background(), f)
			if err != nil || res.Recovered == nil {
				t.Fatalf("up: %v (recovered %v)", err, res.Recovered)
			}
			if p := testkit.Plan(t, k, f); !p.Empty() {
				t.Errorf("not converged after the recovery:\n%s", testkit.Human(p))
			}
			if _, err := p.Down(context.Background()); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(empty, testkit.Observe(t, k, "jfix"), cmpopts.IgnoreFields(state.Process{}, "PID")); d != "" {
				t.Errorf("after down (-before up +after):\n%s", d)
			}
		})
	}
}

// beforeUTS are steps as a topo before UTS namespaces planned them: no
// UTS namespace, commands in the host's.
func beforeUTS(steps []op.Step) []op.Step {
	var out []op.Step
	for _, s := range steps {
		switch o := s.Op.(type) {
		case op.UTSAdd, op.UTSDel:
			continue
		case op.ProcStart:
			o.UTS = ""
			s.Op = o
		}
		if s.Undo != nil {
			if o, ok := s.Undo.Op.(op.ProcStart); ok {
				undo := *s.Undo
				o.UTS = ""
				undo.Op = o
				s.Undo = &undo
			}
		}
		out = append(out, s)
	}
	return out
}
