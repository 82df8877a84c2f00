package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/planner"
)

// progress renders applier events. On a terminal each step shows with a
// counter as it starts, and its result and time when it ends; piped, the
// step lines alone, so logs stay diffable. Both end with a summary that
// says, on failure, which step failed and what was rolled back.
type progress struct {
	w       io.Writer
	tty     bool
	total   int
	start   time.Time // of the step running
	begun   time.Time // of the whole run
	undone  int
	undoErr int
}

func newProgress(w io.Writer, total int) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, tty: tty, total: total, begun: time.Now()}
}

// Planned learns the length of the plan about to run (txn calls it).
func (p *progress) Planned(plan *planner.Plan) { p.total = len(plan.Steps) }

func (p *progress) BeforeStep(i int, s planner.Step) {
	p.start = time.Now()
	if p.tty {
		// The line stays open while the step runs; AfterStep ends it.
		fmt.Fprintf(p.w, "[%*d/%d] %s ...", len(fmt.Sprint(p.total)), i+1, p.total, s)
		return
	}
	fmt.Fprintf(p.w, "%s\n", s)
}

func (p *progress) AfterStep(i int, s planner.Step, err error) {
	if !p.tty {
		if err != nil {
			fmt.Fprintf(p.w, "  failed: %v\n", err)
		}
		return
	}
	if err != nil {
		fmt.Fprintf(p.w, " FAILED\n    %v\n", err)
		return
	}
	fmt.Fprintf(p.w, " ok %s\n", round(time.Since(p.start)))
}

func (p *progress) RolledBack(i int, undo *planner.Step, err error) {
	what := "(no undo)"
	if undo != nil {
		what = undo.String()
	}
	if err != nil {
		p.undoErr++
		fmt.Fprintf(p.w, "  rollback of step %d failed: %s: %v\n", i+1, what, err)
		return
	}
	p.undone++
	fmt.Fprintf(p.w, "  rolled back step %d: %s\n", i+1, what)
}

// done writes the summary line of a run of p that ended with err.
func (p *progress) done(verb string, plan *planner.Plan, err error) {
	took := ""
	if p.tty {
		took = " in " + round(time.Since(p.begun)).String()
	}
	var se *applier.StepError
	if err == nil {
		s := plan.Summary()
		fmt.Fprintf(p.w, "Project %s: %s done%s: %d added, %d changed, %d destroyed.\n", plan.Project, verb, took, s.Add, s.Change, s.Destroy)
		return
	}
	if !errors.As(err, &se) {
		fmt.Fprintf(p.w, "Project %s: %s failed%s: %v\n", plan.Project, verb, took, err)
		return
	}
	fmt.Fprintf(p.w, "Project %s: %s failed%s at step %d of %d: %s\n", plan.Project, verb, took, se.Index+1, p.total, se.Step)
	switch {
	case se.Index == 0:
		fmt.Fprintf(p.w, "Nothing had changed; nothing was rolled back.\n")
	case se.Rollback == nil:
		fmt.Fprintf(p.w, "Rolled back the %d steps done before it, in reverse: the kernel is as it was.\n", se.RolledBack)
	default:
		fmt.Fprintf(p.w, "Rolled back %d of the %d steps done before it; %d could not be undone (listed above): check with topo plan.\n", se.RolledBack, se.Index, se.Index-se.RolledBack)
	}
}

func round(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(100 * time.Microsecond)
}
