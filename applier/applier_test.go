package applier

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/state"
)

// recorder is a Machine that logs what it runs and fails where told; it
// batches nothing.
type recorder struct {
	ran  []string
	fail map[string]error
}

func (r *recorder) Apply(_ context.Context, o op.Operation) error {
	r.ran = append(r.ran, o.Command())
	return r.fail[o.Command()]
}

func (r *recorder) Observe(context.Context, string) (*state.Snapshot, error) {
	return &state.Snapshot{}, nil
}
func (r *recorder) Batch([]op.Operation) int { return 1 }
func (r *recorder) ApplyBatch(ctx context.Context, ops []op.Operation) []error {
	panic("recorder batches nothing")
}
func (r *recorder) Settle(context.Context)                          {}
func (r *recorder) FirewallBackend(context.Context) (string, error) { return "", nil }

type hookLog []string

func (h *hookLog) BeforeStep(i int, s op.Step) { *h = append(*h, fmt.Sprintf("before %d", i)) }
func (h *hookLog) AfterStep(i int, s op.Step, err error) {
	*h = append(*h, fmt.Sprintf("after %d err=%v", i, err != nil))
}
func (h *hookLog) RolledBack(i int, u *op.Step, err error) {
	*h = append(*h, fmt.Sprintf("undo %d err=%v", i, err != nil))
}

func step(ns string) op.Step {
	return op.Step{Action: op.Create, Op: op.NetnsAdd{NS: ns},
		Undo: &op.Step{Action: op.Destroy, Op: op.NetnsDel{NS: ns}}}
}

func TestApplyRunsInOrder(t *testing.T) {
	r := &recorder{}
	var h hookLog
	p := &planner.Plan{Steps: []op.Step{step("a"), step("b")}}
	if err := (&Applier{Machine: r, Hook: &h}).Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"ip netns add a", "ip netns add b"}, r.ran); d != "" {
		t.Error(d)
	}
	if d := cmp.Diff(hookLog{"before 0", "after 0 err=false", "before 1", "after 1 err=false"}, h); d != "" {
		t.Error(d)
	}
}

func TestFailureUndoesDoneStepsInReverse(t *testing.T) {
	boom := errors.New("boom")
	r := &recorder{fail: map[string]error{"ip netns add c": boom}}
	var h hookLog
	p := &planner.Plan{Steps: []op.Step{step("a"), step("b"), step("c"), step("d")}}
	err := (&Applier{Machine: r, Hook: &h}).Apply(context.Background(), p)
	var se *StepError
	if !errors.As(err, &se) || !errors.Is(err, boom) || se.Index != 2 || se.RolledBack != 2 || se.Rollback != nil {
		t.Fatalf("err = %#v", err)
	}
	want := []string{"ip netns add a", "ip netns add b", "ip netns add c", "ip netns del b", "ip netns del a"}
	if d := cmp.Diff(want, r.ran); d != "" {
		t.Errorf("ran (-want +got):\n%s", d)
	}
	if !strings.Contains(err.Error(), "step 3 (ip netns add c) failed: boom; rolled back 2 steps") {
		t.Errorf("message: %v", err)
	}
	if d := cmp.Diff(hookLog{"before 0", "after 0 err=false", "before 1", "after 1 err=false", "before 2", "after 2 err=true", "undo 1 err=false", "undo 0 err=false"}, h); d != "" {
		t.Error(d)
	}
}

func TestRollbackFailuresAreReportedAndDoNotStopIt(t *testing.T) {
	boom, stuck := errors.New("boom"), errors.New("stuck")
	r := &recorder{fail: map[string]error{"ip netns add c": boom, "ip netns del b": stuck}}
	noUndo := op.Step{Action: op.Destroy, Op: op.LinkDel{Link: "x"}}
	p := &planner.Plan{Steps: []op.Step{step("a"), noUndo, step("b"), step("c")}}
	err := (&Applier{Machine: r}).Apply(context.Background(), p)
	var se *StepError
	if !errors.As(err, &se) || !errors.Is(err, boom) || !errors.Is(err, stuck) || se.RolledBack != 1 {
		t.Fatalf("err = %v", err)
	}
	// a was still undone after b's undo failed and x had none.
	if last := r.ran[len(r.ran)-1]; last != "ip netns del a" {
		t.Errorf("last run %q", last)
	}
	for _, want := range []string{"undo of step 3 (ip netns del b): stuck", "step 2 (ip link del x) cannot be undone"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %v", want, err)
		}
	}
}

func TestCancelledContextStopsBeforeTheNextStep(t *testing.T) {
	r := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := (&Applier{Machine: r}).Apply(ctx, &planner.Plan{Steps: []op.Step{step("a")}})
	if !errors.Is(err, context.Canceled) || len(r.ran) != 0 {
		t.Errorf("err = %v, ran %v", err, r.ran)
	}
}

// settling is a recorder that logs when it is asked to settle.
type settling struct{ recorder }

func (s *settling) Settle(context.Context) { s.ran = append(s.ran, "settle") }

// TestSettleEndsEveryRun: a Settler settles once its last step ran, or
// once a rollback has ended, and not between steps.
func TestSettleEndsEveryRun(t *testing.T) {
	p := &planner.Plan{Steps: []op.Step{step("a"), step("b")}}
	s := &settling{}
	if err := (&Applier{Machine: s}).Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"ip netns add a", "ip netns add b", "settle"}, s.ran); d != "" {
		t.Errorf("ran (-want +got):\n%s", d)
	}

	s = &settling{recorder{fail: map[string]error{"ip netns add b": errors.New("boom")}}}
	if err := (&Applier{Machine: s}).Apply(context.Background(), p); err == nil {
		t.Fatal("no error")
	}
	if d := cmp.Diff([]string{"ip netns add a", "ip netns add b", "ip netns del a", "settle"}, s.ran); d != "" {
		t.Errorf("ran with a failure (-want +got):\n%s", d)
	}
}
