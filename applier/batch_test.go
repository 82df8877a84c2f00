package applier_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/internal/testkit"
	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
)

// batcher batches runs of steps with the same op on a fake kernel, and
// fails the steps fail names, whether they run alone or in a batch; the
// other steps of a failing batch still happen, as they may in the kernel.
type batcher struct {
	*fake.Machine
	fail    map[int]bool // by index in the plan
	plan    []op.Step
	undo    bool // the run is rolling back: undos are not the plan's
	batches int
}

func (b *batcher) index(o op.Operation) int {
	for i := range b.plan {
		if reflect.DeepEqual(b.plan[i].Op, o) {
			return i
		}
	}
	return -1
}

var errInjected = errors.New("injected")

func (b *batcher) Apply(ctx context.Context, o op.Operation) error {
	if i := b.index(o); i >= 0 && b.fail[i] && !b.undo {
		b.undo = true // what runs after a failure is the rollback
		return errInjected
	}
	return b.Machine.Apply(ctx, o)
}

// ApplyBatch fails the failing operations of a batch the fake machine
// batched, and performs the others.
func (b *batcher) ApplyBatch(ctx context.Context, ops []op.Operation) []error {
	b.batches++
	errs := make([]error, len(ops))
	var rest []op.Operation
	var at []int
	for i, o := range ops {
		if j := b.index(o); j >= 0 && b.fail[j] {
			errs[i] = errInjected
			continue
		}
		rest, at = append(rest, o), append(at, i)
	}
	if len(rest) > 0 {
		for k, err := range b.Machine.ApplyBatch(ctx, rest) {
			errs[at[k]] = err
		}
	}
	if len(rest) < len(ops) {
		b.undo = true
	}
	return errs
}

// sequential is the fake machine batching nothing.
type sequential struct{ *fake.Machine }

func (sequential) Batch([]op.Operation) int { return 1 }

func parse(t *testing.T, src string) *spec.File { return testkit.Parse(t, src) }

const old = "name: rb\nnetworks:\n  old: {}\ncontainers:\n  gone: {networks: [old]}\n  gone2: {networks: [old]}\n  web: {networks: [old]}\n"

const want = `
name: rb
networks:
  front: {}
  back: {internal: true}
containers:
  web: {networks: [front, back]}
  db: {networks: [back]}
  probe: {}
  probe2: {}
`

// seeded returns a fake machine holding the project as old describes it.
func seeded(t *testing.T) *fake.Machine {
	t.Helper()
	k := fake.New(nil)
	testkit.Up(t, k, parse(t, old))
	return k
}

// TestBatchedRollbackAtEveryStep fails each step of a plan in turn, alone
// and together with the step after it, with batching on, and checks that
// the kernel is left exactly as it was: a failed batch undoes precisely
// its done steps and everything before it.
func TestBatchedRollbackAtEveryStep(t *testing.T) {
	obs, _ := seeded(t).Observe(context.Background(), "rb")
	p, _, err := planner.Up(parse(t, want), obs, planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for k := range p.Steps {
		for _, fails := range [][]int{{k}, {k, k + 1}} {
			t.Run(fmt.Sprintf("fail%v", fails), func(t *testing.T) {
				fk := seeded(t)
				before := fk.Dump()
				b := &batcher{Machine: fk, plan: p.Steps, fail: map[int]bool{}}
				for _, i := range fails {
					b.fail[i] = true
				}
				err := (&applier.Applier{Machine: b}).Apply(context.Background(), p)
				var se *applier.StepError
				if !errors.As(err, &se) || !errors.Is(err, errInjected) || se.Index != k || se.Rollback != nil {
					t.Fatalf("err = %v", err)
				}
				if d := cmp.Diff(before, fk.Dump()); d != "" {
					t.Errorf("after rollback of %s (-before +after):\n%s", p.Steps[k], d)
				}
			})
		}
	}
}

// TestBatchedMatchesSequential checks that batching changes nothing in
// the outcome: the same plan, batched or not, leaves the same kernel.
func TestBatchedMatchesSequential(t *testing.T) {
	seq, bat := seeded(t), seeded(t)
	obs, _ := seq.Observe(context.Background(), "rb")
	p, _, err := planner.Up(parse(t, want), obs, planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := (&applier.Applier{Machine: sequential{seq}}).Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	b := &batcher{Machine: bat, plan: p.Steps}
	if err := (&applier.Applier{Machine: b}).Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if b.batches == 0 {
		t.Fatal("no step ran in a batch")
	}
	if d := cmp.Diff(seq.Dump(), bat.Dump()); d != "" {
		t.Errorf("batched differs from sequential (-seq +batched):\n%s", d)
	}
}

// settlingBatcher is a batcher that counts when it is asked to settle.
type settlingBatcher struct {
	batcher
	settled int
}

func (s *settlingBatcher) Settle(context.Context) { s.settled++ }

// TestBatchedSettlesAtTheEnd: a batched run settles once, at its end.
func TestBatchedSettlesAtTheEnd(t *testing.T) {
	k := seeded(t)
	obs, _ := k.Observe(context.Background(), "rb")
	plan, _, err := planner.Up(parse(t, want), obs, planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := &settlingBatcher{batcher: batcher{Machine: k, plan: plan.Steps}}
	if err := (&applier.Applier{Machine: b}).Apply(context.Background(), plan); err != nil {
		t.Fatal(err)
	}
	if b.batches == 0 {
		t.Fatal("the plan ran without a batch")
	}
	if b.settled != 1 {
		t.Errorf("settled %d times, want once", b.settled)
	}
}

// stoppedBatch answers every plan as one batch whose last operation
// failed on another thread after it had stopped the others.
type stoppedBatch struct{ *fake.Machine }

func (stoppedBatch) Batch(ops []op.Operation) int { return len(ops) }

func (stoppedBatch) ApplyBatch(_ context.Context, ops []op.Operation) []error {
	errs := make([]error, len(ops))
	for i := range errs {
		errs[i] = fmt.Errorf("%w: stopped", op.ErrNotRun)
	}
	errs[len(ops)-1] = errInjected
	return errs
}

// TestBatchReportsTheFailureNotWhatItStopped: the steps a failure
// stopped are not done and not news: the error names the step that
// failed, even when steps before it in the plan were the ones stopped.
func TestBatchReportsTheFailureNotWhatItStopped(t *testing.T) {
	k := fake.New(nil)
	obs, _ := k.Observe(context.Background(), "rb")
	p, _, err := planner.Up(parse(t, want), obs, planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = (&applier.Applier{Machine: stoppedBatch{k}}).Apply(context.Background(), p)
	var se *applier.StepError
	if !errors.As(err, &se) || !errors.Is(err, errInjected) {
		t.Fatalf("err = %v", err)
	}
	if last := len(p.Steps) - 1; se.Index != last || se.RolledBack != 0 {
		t.Errorf("failed step %d, rolled back %d; want step %d, nothing to roll back", se.Index, se.RolledBack, last)
	}
	if strings.Contains(err.Error(), "also failed") || strings.Contains(err.Error(), "stopped") {
		t.Errorf("the steps stopped are reported: %v", err)
	}
}
