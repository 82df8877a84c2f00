package view

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/txn"
)

// Progress renders applier events. On a terminal each command shows with
// a counter, and a step's result and time follow its last command; piped,
// the step lines alone, so logs stay diffable. Both end with a summary
// that says how long the run took and, on failure, which step failed and
// what was rolled back. Steps are numbered as the counter counts: by the
// commands shown (a firewall step shows one per rule), a step by its
// first.
type Progress struct {
	w       io.Writer
	tty     bool
	total   int       // commands of the plan
	first   []int     // per step, the counter of its first command
	start   time.Time // of the run of steps going on
	begun   time.Time // of the whole run
	undone  int       // commands undone
	undoErr int
	// running are the steps begun and not yet ended, in order: a batch
	// begins all its steps, then ends them one by one. The first is shown
	// while it runs; each other is shown as it ends, with its result.
	running []int
	shown   bool // running[0]'s lines are out, its result is not
}

// NewProgress renders on w; total is the number of commands, when known
// before Planned says.
func NewProgress(w io.Writer, total int) *Progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &Progress{w: w, tty: tty, total: total, begun: time.Now()}
}

// Planned learns the plan about to run (txn calls it) and numbers its
// commands.
func (p *Progress) Planned(plan *planner.Plan) {
	p.first = make([]int, len(plan.Steps))
	n := 1
	for i, s := range plan.Steps {
		p.first[i] = n
		n += len(commandLines(s))
	}
	p.total = n - 1
}

// commandLines are the commands a step shows, one a line.
func commandLines(s op.Step) []string {
	return strings.Split(strings.ReplaceAll(s.String(), "\n  ", "\n"), "\n")
}

// number is the counter of step i's first command; of the step after the
// last, total+1.
func (p *Progress) number(i int) int {
	switch {
	case p.first == nil:
		return i + 1
	case i < len(p.first):
		return p.first[i]
	}
	return p.total + 1
}

func (p *Progress) BeforeStep(i int, s op.Step) {
	if !p.tty {
		fmt.Fprintf(p.w, "%s\n", s)
		return
	}
	p.running = append(p.running, i)
	if len(p.running) == 1 {
		p.start = time.Now()
		p.show(i, s)
	}
}

// show writes step i's commands with their counters, the last line left
// open for the result.
func (p *Progress) show(i int, s op.Step) {
	width := len(fmt.Sprint(p.total))
	for j, line := range commandLines(s) {
		if j > 0 {
			fmt.Fprintln(p.w)
		}
		fmt.Fprintf(p.w, "[%*d/%d] %s", width, p.number(i)+j, p.total, line)
	}
	fmt.Fprint(p.w, " ...")
	p.shown = true
}

func (p *Progress) AfterStep(i int, s op.Step, err error) {
	// A step that another's failure stopped did not fail: its error says
	// why it did not run.
	notRun := errors.Is(err, op.ErrNotRun)
	if !p.tty {
		switch {
		case notRun:
			fmt.Fprintf(p.w, "  %v\n", err)
		case err != nil:
			fmt.Fprintf(p.w, "  failed: %v\n", err)
		}
		return
	}
	if !p.shown {
		p.show(i, s)
	}
	if len(p.running) > 0 {
		p.running = p.running[1:]
	}
	p.shown = false
	switch {
	case notRun:
		fmt.Fprintf(p.w, " %v\n", err)
		return
	case err != nil:
		fmt.Fprintf(p.w, " FAILED\n    %v\n", err)
		return
	}
	fmt.Fprintf(p.w, " ok %s\n", round(time.Since(p.start)))
}

func (p *Progress) RolledBack(i int, undo *op.Step, err error) {
	what := "(no undo)"
	if undo != nil {
		what = undo.String()
	}
	if err != nil {
		p.undoErr++
		fmt.Fprintf(p.w, "  rollback of step %d failed: %s: %v\n", p.number(i), what, err)
		return
	}
	p.undone += p.number(i+1) - p.number(i)
	fmt.Fprintf(p.w, "  rolled back step %d: %s\n", p.number(i), what)
}

// Done writes the summary line of a run of p that ended with err.
func (p *Progress) Done(verb string, plan *planner.Plan, err error) {
	took := " in " + round(time.Since(p.begun)).String()
	var se *applier.StepError
	var ve *txn.VerifyError
	if err == nil {
		s := plan.Summary()
		fmt.Fprintf(p.w, "Project %s: %s done%s: %d added, %d changed, %d destroyed.\n", plan.Project, verb, took, s.Add, s.Change, s.Destroy)
		return
	}
	if !errors.As(err, &se) {
		fmt.Fprintf(p.w, "Project %s: %s failed%s: %v\n", plan.Project, verb, took, err)
		if errors.As(err, &ve) {
			fmt.Fprintf(p.w, "Rolled back all %d steps", ve.RolledBack)
			p.compared(ve.Compared)
		}
		return
	}
	before := p.number(se.Index) - 1
	fmt.Fprintf(p.w, "Project %s: %s failed%s at step %d of %d: %s\n", plan.Project, verb, took, before+1, p.total, se.Step)
	switch {
	case se.Index == 0 && se.RolledBack == 0 && se.Compared.AsItWas():
		fmt.Fprintf(p.w, "Nothing had changed; nothing was rolled back.\n")
		return
	case se.Rollback == nil:
		fmt.Fprintf(p.w, "Rolled back the %d steps done before it, in reverse", p.undone)
	default:
		fmt.Fprintf(p.w, "Rolled back %d of the %d steps done before it; %d could not be undone (listed above)", p.undone, before, before-p.undone)
	}
	p.compared(se.Compared)
}

// compared ends the line of a rollback with how the kernel, observed
// again, compares with the one before the run: only when they are equal
// does it say the kernel is as it was.
func (p *Progress) compared(c *planner.Comparison) {
	if c == nil || c.Err != nil || c.AsItWas() {
		fmt.Fprintf(p.w, ": %s.\n", c)
		return
	}
	fmt.Fprintf(p.w, ", but the kernel is not as it was before the run:\n")
	for _, d := range c.Differences {
		fmt.Fprintf(p.w, "  %s\n", d.What)
		switch {
		case d.Restart:
			fmt.Fprintf(p.w, "    a process cannot be put back; the command runs as before, as a new process\n")
		case d.Repair != nil:
			fmt.Fprintf(p.w, "    repair: %s\n", strings.ReplaceAll(d.Repair.Command(), "\n", "\n            "))
		default:
			fmt.Fprintf(p.w, "    no single command puts it back: topo up converges to the file, topo down removes the project\n")
		}
	}
}

func round(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(100 * time.Microsecond)
}
