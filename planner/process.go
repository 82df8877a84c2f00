package planner

import (
	"slices"
	"strconv"
	"strings"

	"github.com/topolab/topo/rundir"
	"github.com/topolab/topo/state"
)

// phaseProcess puts container commands after every network step: they start
// last, in a namespace that is complete, and stop first, before anything
// they use goes away.
const phaseProcess = phaseRoute + 20

// processes plans the containers' commands against the observed ones: a
// command that is missing or died is started; one whose argv or namespace
// changed, or whose namespace is being made anew, is restarted; one the file
// no longer has is stopped. Nothing else is touched, so a changed command
// restarts only its own container's process.
func (d *differ) processes(m *Model, ownNS map[string]*state.Namespace) {
	want := map[string]*Container{}
	for _, c := range m.Containers {
		if len(c.Command) > 0 {
			want[c.Name] = c
		}
	}
	have := map[string]*state.Process{}
	for i := range d.obs.Processes {
		have[d.obs.Processes[i].Container] = &d.obs.Processes[i]
	}
	for _, name := range sortedKeys(have) {
		o, c := have[name], want[name]
		switch {
		case c == nil:
			d.procStop(o, true)
		case !o.Running:
			// A dead command is drift: start it again over its stale record.
			d.procStart(m.Project, c, false)
		case o.NS != c.NS || !slices.Equal(o.Argv, c.Command) || !o.Privileges.Equal(c.Privileges) || o.Unconfined ||
			(c.NS != "" && ownNS[c.NS] == nil):
			// Changed (its argv, namespace or privileges), started by a
			// topo that did not confine commands, or its namespace was
			// deleted under it and is about to be made anew: the old
			// process holds the old one.
			d.procStop(o, false)
			d.procStart(m.Project, c, false)
		}
	}
	for _, name := range sortedKeys(want) {
		if have[name] == nil {
			d.procStart(m.Project, want[name], true)
		}
	}
}

// procStart starts c's command. fresh says no record or log exists yet, so
// that the undo leaves none behind.
func (d *differ) procStart(project string, c *Container, fresh bool) {
	res := "container " + c.Name
	pid, log := rundir.PidFile(project, c.Name), rundir.LogFile(project, c.Name)
	undo := Step{Action: Destroy, Op: OpProcStop, Resource: res, NS: c.NS, Argv: c.Command, Log: log, PidFile: pid, DropLog: fresh}
	d.add(phaseProcess, Step{Action: Create, Op: OpProcStart, Resource: res, NS: c.NS, Argv: c.Command, Privileges: c.Privileges,
		Log: log, PidFile: pid, Undo: &undo})
}

// procStop stops an observed process; drop removes its log too, when the
// container's command goes away for good.
func (d *differ) procStop(o *state.Process, drop bool) {
	res := "container " + o.Container
	var undo Step
	if o.Running {
		undo = Step{Action: Create, Op: OpProcStart, Resource: res, NS: o.NS, Argv: o.Argv, Privileges: o.Privileges, Log: o.Log, PidFile: o.PidFile}
	} else {
		// A dead process's record holds nothing to restore: starting the
		// command would change more than the stop did. The undo is a stop
		// that finds nothing left, so rollback succeeds without a start.
		undo = Step{Action: Destroy, Op: OpProcStop, Resource: res, NS: o.NS, Argv: o.Argv, Log: o.Log, PidFile: o.PidFile}
	}
	d.add(phaseProcess, Step{Action: Destroy, Op: OpProcStop, Resource: res, NS: o.NS, Argv: o.Argv, Log: o.Log,
		PidFile: o.PidFile, PID: o.PID, DropLog: drop, Undo: &undo})
}

// procCommand renders a command step as shell: what `ip netns exec` and a
// background job would do, and how a person stops a process group.
func procCommand(s Step) string {
	if s.Op == OpProcStart {
		var b strings.Builder
		if s.NS != "" {
			b.WriteString("ip netns exec " + s.NS + " ")
		}
		b.WriteString(ShellJoin(s.Argv))
		b.WriteString(" >>" + shellQuote(s.Log) + " 2>&1 &")
		return b.String()
	}
	pid := `"$(jq .pid ` + shellQuote(s.PidFile) + `)"`
	if s.PID != 0 {
		pid = strconv.Itoa(s.PID)
	}
	rm := "rm -f " + shellQuote(s.PidFile)
	if s.DropLog {
		rm += " " + shellQuote(s.Log)
	}
	return "kill -TERM -- -" + pid + "; " + rm
}

// ShellJoin quotes argv for a POSIX shell, leaving plain words bare, so
// that commands read as a person would type them.
func ShellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@%+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
