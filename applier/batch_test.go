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
	"github.com/topolab/topo/kernel"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
)

// batcher batches runs of steps with the same op on a fake kernel, and
// fails the steps fail names, whether they run alone or in a batch; the
// other steps of a failing batch still happen, as they may in the kernel.
type batcher struct {
	*kernel.Fake
	fail    map[int]bool // by index in the plan
	plan    []planner.Step
	batches int
}

func (b *batcher) index(s planner.Step) int {
	// Whole steps are compared: an undo can render like a later step of
	// the plan (a resolver reload, say) but has no undo of its own.
	for i := range b.plan {
		if reflect.DeepEqual(b.plan[i], s) {
			return i
		}
	}
	return -1
}

var errInjected = errors.New("injected")

func (b *batcher) Apply(ctx context.Context, s planner.Step) error {
	if b.fail[b.index(s)] {
		return errInjected
	}
	return b.Fake.Apply(ctx, s)
}

func (b *batcher) Batch(steps []planner.Step) int {
	n := 1
	// As the real kernel's: one op on one kind of object.
	kind := func(s planner.Step) string { k, _, _ := strings.Cut(s.Resource, " "); return k }
	for n < len(steps) && steps[n].Op == steps[0].Op && kind(steps[n]) == kind(steps[0]) {
		n++
	}
	return n
}

func (b *batcher) ApplyBatch(ctx context.Context, steps []planner.Step) []error {
	b.batches++
	errs := make([]error, len(steps))
	for i, s := range steps {
		errs[i] = b.Apply(ctx, s)
	}
	return errs
}

func parse(t *testing.T, src string) *spec.File {
	t.Helper()
	f, err := spec.Parse("/lab/topo.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

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

// seeded returns a fake kernel holding the project as old describes it.
func seeded(t *testing.T) *kernel.Fake {
	t.Helper()
	k := kernel.NewFake(nil)
	obs, _ := k.Observe(context.Background(), "rb")
	p, _, err := planner.Up(parse(t, old), obs)
	if err != nil {
		t.Fatal(err)
	}
	if err := (&applier.Applier{Exec: k}).Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return k
}

// TestBatchedRollbackAtEveryStep fails each step of a plan in turn, alone
// and together with the step after it, with batching on, and checks that
// the kernel is left exactly as it was: a failed batch undoes precisely
// its done steps and everything before it.
func TestBatchedRollbackAtEveryStep(t *testing.T) {
	obs, _ := seeded(t).Observe(context.Background(), "rb")
	p, _, err := planner.Up(parse(t, want), obs)
	if err != nil {
		t.Fatal(err)
	}
	for k := range p.Steps {
		for _, fails := range [][]int{{k}, {k, k + 1}} {
			t.Run(fmt.Sprintf("fail%v", fails), func(t *testing.T) {
				fk := seeded(t)
				before := fk.Dump()
				b := &batcher{Fake: fk, plan: p.Steps, fail: map[int]bool{}}
				for _, i := range fails {
					b.fail[i] = true
				}
				err := (&applier.Applier{Exec: b}).Apply(context.Background(), p)
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
	p, _, err := planner.Up(parse(t, want), obs)
	if err != nil {
		t.Fatal(err)
	}
	if err := (&applier.Applier{Exec: seq}).Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	b := &batcher{Fake: bat, plan: p.Steps}
	if err := (&applier.Applier{Exec: b}).Apply(context.Background(), p); err != nil {
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
	plan, _, err := planner.Up(parse(t, want), obs)
	if err != nil {
		t.Fatal(err)
	}
	b := &settlingBatcher{batcher: batcher{Fake: k, plan: plan.Steps}}
	if err := (&applier.Applier{Exec: b}).Apply(context.Background(), plan); err != nil {
		t.Fatal(err)
	}
	if b.batches == 0 {
		t.Fatal("the plan ran without a batch")
	}
	if b.settled != 1 {
		t.Errorf("settled %d times, want once", b.settled)
	}
}
