// Package applier runs a plan's steps against a kernel, in order, and undoes
// the steps already done when one fails, so that a failed run leaves the
// kernel as it found it.
package applier

import (
	"context"
	"fmt"

	"github.com/topolab/topo/planner"
)

// Executor performs one step. kernel.Kernel satisfies it.
type Executor interface {
	Apply(ctx context.Context, s planner.Step) error
}

// Hook hears about progress; the CLI renders it. i is the step's index in
// the plan.
type Hook interface {
	BeforeStep(i int, s planner.Step)
	AfterStep(i int, s planner.Step, err error)
	// RolledBack is called after the undo of step i ran; undo is nil when the
	// step had none.
	RolledBack(i int, undo *planner.Step, err error)
}

// Journal records a run durably, so that after a crash another process
// can undo what it did (package journal implements it). Start must be
// durable before it returns: the step runs only after it.
type Journal interface {
	// Start records that steps, numbered from i, are about to run.
	Start(i int, steps ...planner.Step) error
	Finish(i int, err error) error
	Undo(i int) error
	Undone(i int, err error) error
}

// Applier runs plans.
type Applier struct {
	Exec Executor
	// Hook may be nil.
	Hook Hook
	// Journal may be nil. When a record cannot be written the step does not
	// run: it fails, and the steps before it are undone.
	Journal Journal
}

// StepError says which step failed and how the rollback went.
type StepError struct {
	Index int
	Step  planner.Step
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
		return msg + fmt.Sprintf("; rollback of %d steps was incomplete: %v; %s", e.RolledBack, e.Rollback, e.Compared)
	}
	return msg + fmt.Sprintf("; rolled back %d steps, %s", e.RolledBack, e.Compared)
}

// Unwrap gives both the step's error and the rollback's, so errors.Is
// finds either.
func (e *StepError) Unwrap() []error {
	if e.Rollback != nil {
		return []error{e.Err, e.Rollback}
	}
	return []error{e.Err}
}

// Apply runs the plan's steps in order. When step k fails it runs the undo
// of steps k-1 … 0, in that order, and returns a *StepError.
//
// A cancelled ctx (Ctrl-C) stops the run at the next step boundary: the
// step after it fails with ctx's error, and what was done is undone. A
// step already running is not cut short: it gets a context that is never
// cancelled, so that no command is killed half way through its work.
func (a *Applier) Apply(ctx context.Context, p *planner.Plan) error {
	if b, ok := a.Exec.(Batcher); ok {
		return a.applyBatched(ctx, p, b) // batch.go
	}
	run := context.WithoutCancel(ctx)
	for i, s := range p.Steps {
		if a.Hook != nil {
			a.Hook.BeforeStep(i, s)
		}
		err := interrupted(ctx)
		if err == nil && a.Journal != nil {
			err = a.Journal.Start(i, s)
		}
		ran := false // the step happened, though a record of it failed
		if err == nil {
			err = a.Exec.Apply(run, s)
			ran = err == nil
			if a.Journal != nil {
				if jerr := a.Journal.Finish(i, err); jerr != nil && err == nil {
					err = jerr
				}
			}
		}
		if a.Hook != nil {
			a.Hook.AfterStep(i, s, err)
		}
		if err != nil {
			se := &StepError{Index: i, Step: s, Err: err}
			done := p.Steps[:i]
			if ran {
				done = p.Steps[:i+1]
			}
			se.RolledBack, se.Rollback = a.rollback(done)
			return se
		}
	}
	a.settle(run)
	return nil
}

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
	return a.rollback(p.Steps)
}

// rollback undoes done, a prefix of a plan, in reverse.
func (a *Applier) rollback(done []planner.Step) (int, error) {
	idx := make([]int, len(done))
	for i := range idx {
		idx[i] = i
	}
	return a.rollbackIndexed(done, idx)
}
