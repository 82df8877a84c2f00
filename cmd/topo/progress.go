package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/topolab/topo/planner"
)

// progress renders applier events: on a terminal a counter, the step and
// how long it took; piped, the step lines alone, so logs stay diffable.
type progress struct {
	w     io.Writer
	tty   bool
	total int
	start time.Time
}

func newProgress(w io.Writer, total int) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, tty: tty, total: total}
}

// Planned learns the length of the plan about to run (txn calls it).
func (p *progress) Planned(plan *planner.Plan) { p.total = len(plan.Steps) }

func (p *progress) BeforeStep(i int, s planner.Step) {
	p.start = time.Now()
	if !p.tty {
		fmt.Fprintf(p.w, "%s\n", s)
	}
}

func (p *progress) AfterStep(i int, s planner.Step, err error) {
	if !p.tty {
		if err != nil {
			fmt.Fprintf(p.w, "  failed: %v\n", err)
		}
		return
	}
	result := fmt.Sprintf("ok %s", time.Since(p.start).Round(10*time.Microsecond))
	if err != nil {
		result = "FAILED"
	}
	fmt.Fprintf(p.w, "[%*d/%d] %s ... %s\n", len(fmt.Sprint(p.total)), i+1, p.total, s, result)
}

func (p *progress) RolledBack(i int, undo *planner.Step, err error) {
	what := "(no undo)"
	if undo != nil {
		what = fmt.Sprintf("%c %s", undo.Action, undo.Command())
	}
	if err != nil {
		fmt.Fprintf(p.w, "rollback of step %d: %s failed: %v\n", i+1, what, err)
		return
	}
	fmt.Fprintf(p.w, "rollback of step %d: %s\n", i+1, what)
}
