// Package applier runs a plan's steps on a machine, in order, batching
// what the machine runs together, and undoes the steps already done when
// one fails, so that a failed run leaves the machine as it found it. It
// is the one apply loop: the real machine, the fake and the fault
// injection of tests all run through it.
package applier

import (
	"context"
	"errors"
	"fmt"

	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
)

// Hook hears about progress; the CLI renders it. i is the step's index in
// the plan.
type Hook interface {
	BeforeStep(i int, s op.Step)
	AfterStep(i int, s op.Step, err error)
	// RolledBack is called after the undo of step i ran; undo is nil when the
	// step had none.
	RolledBack(i int, undo *op.Step, err error)
}

// Journal records a run durably, so that after a crash another process
// can undo what it did (package journal implements it). Start must be
// durable before it returns: the step runs only after it.
type Journal interface {
	// Start records that steps, numbered from i, are about to run.
	Start(i int, steps ...op.Step) error
	// Finish records how steps, numbered from i, ended: errs[j] is step
	// i+j's error, nil when it is done.
	Finish(i int, errs ...error) error
	Undo(i int) error
	Undone(i int, err error) error
}

// Applier runs plans.
type Applier struct {
	Machine machine.Machine
	// Hook may be nil.
	Hook Hook
	// Journal may be nil. When a record cannot be written the step does not
	// run: it fails, and the steps before it are undone.
	Journal Journal
}

// StepError says which step failed and how the rollback went.
type StepError struct {
	Index int
	Step  op.Step
	Err   error
	// RolledBack counts the undone steps; Rollback holds their failures.
	RolledBack int
	Rollback   error
	// Compared is how the kernel after the rollback compares with the
	// snapshot taken before the run; nil when nobody compared them (the
	// caller observes: package txn does).
	Compared *planner.Comparison
}

func (e *StepError) Error() string {
	msg := fmt.Sprintf("step %d (%s) failed: %v", e.Index+1, e.Step.Headline(), e.Err)
	if e.Rollback != nil {
		return msg + fmt.Sprintf("; rollback of %s was incomplete: %v; %s", nSteps(e.RolledBack), e.Rollback, e.Compared)
	}
	return msg + fmt.Sprintf("; rolled back %s, %s", nSteps(e.RolledBack), e.Compared)
}

// nSteps is "1 step" or "N steps".
func nSteps(n int) string {
	if n == 1 {
		return "1 step"
	}
	return fmt.Sprintf("%d steps", n)
}

// Unwrap gives both the step's error and the rollback's, so errors.Is
// finds either.
func (e *StepError) Unwrap() []error {
	if e.Rollback != nil {
		return []error{e.Err, e.Rollback}
	}
	return []error{e.Err}
}

// Apply runs the plan's steps in order, a run of them at once where the
// machine batches them. When step k fails it runs the undo of every step
// done, last first, and returns a *StepError.
//
// Hooks hear every step: BeforeStep for all the steps of a run before it
// starts, AfterStep for each after it. A cancelled ctx (Ctrl-C) stops the
// run at the next step boundary: the step after it fails with ctx's
// error, and what was done is undone. A step already running is not cut
// short: it gets a context that is never cancelled, so that no command is
// killed half way through its work.
func (a *Applier) Apply(ctx context.Context, p *planner.Plan) error {
	run := context.WithoutCancel(ctx)
	ops := make([]op.Operation, len(p.Steps))
	for i := range p.Steps {
		ops[i] = p.Steps[i].Op
	}
	var done []int // indexes of the steps done, in plan order
	for i := 0; i < len(p.Steps); {
		n := 1
		if ctx.Err() == nil {
			n = min(max(a.Machine.Batch(ops[i:]), 1), len(p.Steps)-i)
		}
		errs, err := a.run(ctx, run, i, p.Steps[i:i+n], ops[i:i+n])
		if err != nil {
			return err
		}
		failed, also := -1, []error(nil)
		for j, s := range p.Steps[i : i+n] {
			stepErr := errs[j]
			var re *recordError
			if stepErr == nil || errors.As(stepErr, &re) {
				done = append(done, i+j)
			}
			switch {
			case stepErr == nil:
			case failed < 0:
				failed = i + j
			case errors.Is(stepErr, op.ErrNotRun):
				// A consequence of the failure reported, not news.
			case errors.Is(errs[failed-i], op.ErrNotRun):
				// The first real failure of a batch whose steps before
				// it were stopped by it (it ran on another thread).
				failed = i + j
			default:
				also = append(also, fmt.Errorf("step %d (%s) also failed: %w", i+j+1, s.Headline(), stepErr))
			}
		}
		if failed >= 0 {
			se := &StepError{Index: failed, Step: p.Steps[failed], Err: errors.Join(append([]error{errs[failed-i]}, also...)...)}
			se.RolledBack, se.Rollback = a.rollback(p.Steps, done)
			return se
		}
		i += n
	}
	a.Machine.Settle(run)
	return nil
}

// run performs steps, numbered from i, as one run: journaled before,
// heard by the hook, then journaled one by one. It returns per step the
// reason it is not done (nil for done); err is set when the machine did
// not say what it did, which leaves nothing to undo exactly.
func (a *Applier) run(ctx, run context.Context, i int, steps []op.Step, ops []op.Operation) (errs []error, err error) {
	if a.Hook != nil {
		for j, s := range steps {
			a.Hook.BeforeStep(i+j, s)
		}
	}
	n := len(steps)
	errs = make([]error, n)
	pre := interrupted(ctx)
	if pre == nil && a.Journal != nil {
		// Every step of the run is recorded before any of it runs.
		pre = a.Journal.Start(i, steps...)
	}
	switch {
	case pre != nil:
		// Nothing of the run ran: its first step fails with pre.
		errs[0] = pre
		for j := 1; j < n; j++ {
			errs[j] = fmt.Errorf("%w: %w", op.ErrNotRun, pre)
		}
	case n == 1:
		errs[0] = a.Machine.Apply(run, ops[0])
	default:
		got := a.Machine.ApplyBatch(run, ops)
		if len(got) != n {
			return nil, fmt.Errorf("machine answered %d results for a batch of %d steps (steps %d-%d)", len(got), n, i+1, i+n)
		}
		copy(errs, got)
	}
	if pre == nil && a.Journal != nil {
		if jerr := a.Journal.Finish(i, errs...); jerr != nil {
			// The steps done happened even if their records fail: they
			// are undone with the rest, and the run stops here.
			for j := range errs {
				if errs[j] == nil {
					errs[j] = &recordError{jerr}
				}
			}
		}
	}
	for j, s := range steps {
		if a.Hook != nil {
			a.Hook.AfterStep(i+j, s, errs[j])
		}
	}
	return errs, nil
}

// recordError is a step that ran but whose record failed: done, and so
// undone.
type recordError struct{ err error }

func (e *recordError) Error() string { return e.err.Error() }
func (e *recordError) Unwrap() error { return e.err }

// interrupted is ctx's error, said as what it does to the step about to run.
func interrupted(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted before it ran: %w", err)
	}
	return nil
}

// RollBack undoes every step of p, last first, as after a failure of a
// step past the end: for a run that finished but must not stand (topo up
// verifies the result and rolls back when the kernel differs from the
// file). It returns how many steps were undone and the failures.
func (a *Applier) RollBack(p *planner.Plan) (int, error) {
	done := make([]int, len(p.Steps))
	for i := range done {
		done[i] = i
	}
	return a.rollback(p.Steps, done)
}

// rollback undoes steps[done[k]] for k from last to first; done need not
// be a prefix of the plan (a batch may have done some of its steps). It
// goes on past failures, so that one stuck undo does not leave the rest
// in place, and reports them all.
func (a *Applier) rollback(steps []op.Step, done []int) (int, error) {
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
			if err = a.Machine.Apply(ctx, u.Op); err != nil {
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
	a.Machine.Settle(ctx)
	return n, errors.Join(errs...)
}
