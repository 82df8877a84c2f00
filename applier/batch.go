package applier

import (
	"context"
	"errors"
	"fmt"

	"github.com/topolab/topo/planner"
)

// Batcher is an Executor that can perform a run of consecutive steps
// together, faster than one by one. The real kernel batches link deletions:
// deleted one at a time, each link costs the kernel an RCU grace period
// (about 20 ms, more on a busy machine); deleted together, the whole run
// costs one.
//
// Batching keeps rollback exact: ApplyBatch says, per step, whether it was
// done, and a failed run undoes precisely the done steps, in reverse plan
// order. A Batcher only groups steps that do not depend on each other, so
// reverse plan order is still a valid order to undo them in.
type Batcher interface {
	Executor
	// Batch says how many of steps, from the first, it can perform
	// together; 1 means the first step runs alone through Apply.
	Batch(steps []planner.Step) int
	// ApplyBatch performs steps and returns one error per step: nil for a
	// step that is done, the reason for one that is not (and has changed
	// nothing).
	ApplyBatch(ctx context.Context, steps []planner.Step) []error
}

// Settler is an Executor whose steps may leave work that the kernel
// finishes in the background: the real kernel removes a deleted
// namespace's veths after the namespace is gone. Settle waits for that
// work. Apply and rollbacks call it at their end, so that a finished run
// means a finished kernel; between steps the Executor settles itself
// where a step needs it.
type Settler interface {
	Settle(ctx context.Context)
}

// settle waits for a Settler's background work.
func (a *Applier) settle(ctx context.Context) {
	if s, ok := a.Exec.(Settler); ok {
		s.Settle(ctx)
	}
}

// applyBatched is Apply for a Batcher. Hooks hear every step: BeforeStep
// for all the steps of a run before it starts, AfterStep for each after it.
func (a *Applier) applyBatched(ctx context.Context, p *planner.Plan, b Batcher) error {
	run := context.WithoutCancel(ctx) // see Apply
	var done []int                    // indexes of the steps done, in plan order
	for i := 0; i < len(p.Steps); {
		n := 1
		if ctx.Err() == nil {
			n = min(max(b.Batch(p.Steps[i:]), 1), len(p.Steps)-i)
		}
		steps := p.Steps[i : i+n]
		if a.Hook != nil {
			for j, s := range steps {
				a.Hook.BeforeStep(i+j, s)
			}
		}
		errs := make([]error, n)
		err := interrupted(ctx)
		if err == nil && a.Journal != nil {
			// Every step of the run is recorded before any of it runs.
			err = a.Journal.Start(i, steps...)
		}
		switch {
		case err != nil:
			// Nothing of the run ran: its first step fails with err.
			errs[0] = err
			for j := 1; j < n; j++ {
				errs[j] = fmt.Errorf("not run: %w", err)
			}
		case n == 1:
			errs[0] = b.Apply(run, steps[0])
		default:
			got := b.ApplyBatch(run, steps)
			if len(got) != n {
				// A Batcher that does not say what it did leaves nothing
				// to undo exactly; treat the run as failed and unknown.
				return fmt.Errorf("executor answered %d results for a batch of %d steps (steps %d-%d)", len(got), n, i+1, i+n)
			}
			copy(errs, got)
		}
		failed := -1
		var also []error
		for j, s := range steps {
			stepErr := errs[j]
			ran := err == nil && stepErr == nil
			if ran && a.Journal != nil {
				// The step happened even if its record fails: it is undone
				// with the rest, and the run stops here.
				stepErr = a.Journal.Finish(i+j, nil)
			} else if err == nil && a.Journal != nil {
				_ = a.Journal.Finish(i+j, stepErr)
			}
			if a.Hook != nil {
				a.Hook.AfterStep(i+j, s, stepErr)
			}
			if ran {
				done = append(done, i+j)
			}
			switch {
			case stepErr == nil:
			case failed < 0:
				failed = i + j
				errs[j] = stepErr
			default:
				also = append(also, fmt.Errorf("step %d (%s) also failed: %w", i+j+1, s.Headline(), stepErr))
			}
		}
		if failed >= 0 {
			se := &StepError{Index: failed, Step: p.Steps[failed], Err: errors.Join(append([]error{errs[failed-i]}, also...)...)}
			se.RolledBack, se.Rollback = a.rollbackIndexed(p.Steps, done)
			return se
		}
		i += n
	}
	a.settle(run)
	return nil
}

// rollbackIndexed undoes steps[done[k]] for k from last to first; done
// need not be a prefix of the plan (a batch may have done some of its
// steps). It goes on past failures, so that one stuck undo does not leave
// the rest in place, and reports them all.
func (a *Applier) rollbackIndexed(steps []planner.Step, done []int) (int, error) {
	var errs []error
	n := 0
	ctx := context.Background() // the context may be what failed
	for k := len(done) - 1; k >= 0; k-- {
		i := done[k]
		u := steps[i].Undo
		var err error
		if u == nil {
			err = fmt.Errorf("step %d (%s) cannot be undone", i+1, steps[i].Headline())
		} else {
			if a.Journal != nil {
				// Undo even if the record fails: a crash now would leave
				// the step looking done, and its undo is safe to repeat.
				_ = a.Journal.Undo(i)
			}
			if err = a.Exec.Apply(ctx, *u); err != nil {
				err = fmt.Errorf("undo of step %d (%s): %w", i+1, u.Headline(), err)
			}
			if a.Journal != nil {
				_ = a.Journal.Undone(i, err)
			}
		}
		if err != nil {
			errs = append(errs, err)
		} else {
			n++
		}
		if a.Hook != nil {
			a.Hook.RolledBack(i, u, err)
		}
	}
	a.settle(ctx)
	return n, errors.Join(errs...)
}
