package planner

import (
	"slices"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/resolver/records"
	"github.com/topolab/topo/state"
)

// processes plans the containers' commands against the observed ones: a
// command that is missing, died or was stopped is started (a one-shot
// that finished is not); one whose argv or namespace
// changed, or whose namespace is being made anew, is restarted; one the file
// no longer has is stopped. Nothing else is touched, so a changed command
// restarts only its own container's process.
func (d *differ) processes(m *Model) {
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
		case o.Finished() && o.NS == c.NS && slices.Equal(o.Argv, c.Command) && o.Privileges.Equal(c.Privileges) &&
			(c.NS == "" || d.ownNS[c.NS] != nil):
			// A one-shot that did its work (status 0 in its start
			// window, as Compose's restart: "no" leaves it): done.
		case !o.Running:
			// A dead command is drift: start it again over its stale record.
			d.procStart(c, false)
		case o.NS != c.NS || !slices.Equal(o.Argv, c.Command) || !o.Privileges.Equal(c.Privileges) || o.Unconfined ||
			!slices.Equal(o.Env, c.Env) || o.Dir != c.WorkingDir ||
			(c.NS != "" && d.ownNS[c.NS] == nil) ||
			o.UTS != UTSOf(d.rt, d.project, c) || d.utsFresh(o.UTS):
			// Changed (its argv, namespace, privileges, environment or
			// working folder), started by a
			// topo that did not confine commands, or its namespace (or
			// its UTS namespace) was deleted under it and is about to be
			// made anew: the old process holds the old one. One
			// started before UTS namespaces runs in the host's.
			d.procStop(o, false)
			d.procStart(c, false)
		}
	}
	for _, name := range sortedKeys(want) {
		if have[name] == nil {
			d.procStart(want[name], true)
		}
	}
}

// procStart starts c's command, after its namespace's files. fresh says
// no record or log exists yet, so that the undo leaves none behind.
func (d *differ) procStart(c *Container, fresh bool) {
	pid, log := d.rt.PidFile(d.project, c.Name), d.rt.LogFile(d.project, c.Name)
	s := step(op.Create, op.Container(c.Name), op.ProcStart{NS: c.NS, Argv: c.Command, Privileges: c.Privileges, Env: c.Env, Dir: c.WorkingDir, Log: log, PidFile: pid,
		UTS: UTSOf(d.rt, d.project, c)},
		op.ProcStop{NS: c.NS, Argv: c.Command, Log: log, PidFile: pid, DropLog: fresh})
	if c.NS != "" {
		for _, f := range names.NetnsFiles {
			s.Needs = append(s.Needs, op.FileKey(names.NetnsFile(c.NS, f)))
		}
	}
	// depends_on: after the commands it depends on, when they start
	// too; after the resolver process, which runs the healthchecks it
	// waits for, when it starts or reloads.
	start := s.Op.(op.ProcStart)
	health := false
	for _, dep := range c.DependsOn {
		pid := d.rt.PidFile(d.project, dep.Container)
		s.Needs = append(s.Needs, op.ProcKey(pid))
		switch {
		case dep.Completed:
			start.Await = append(start.Await, op.Await{Container: dep.Container, PidFile: pid, Completed: true})
		case dep.Await > 0:
			start.Await = append(start.Await, op.Await{Container: dep.Container, PidFile: pid, Timeout: dep.Await})
			health = true
		}
	}
	s.Op = start
	if health {
		start.Health, _ = d.rt.Resolver(d.project, records.HealthFile)
		s.Op = start
		s.Needs = append(s.Needs, op.RecordsKey(d.project), op.ResolverKey(d.project))
	}
	d.add(s)
}

// procStop stops an observed process; drop removes its log too, when the
// container's command goes away for good.
func (d *differ) procStop(o *state.Process, drop bool) {
	ref := op.Container(o.Container)
	undo := op.Step{Action: op.Create, Ref: ref, Op: op.ProcStart{NS: o.NS, Argv: o.Argv, Privileges: o.Privileges, Env: o.Env, Dir: o.Dir, Log: o.Log, PidFile: o.PidFile, UTS: o.UTS}}
	if !o.Running {
		// A dead process's record holds nothing to restore: starting the
		// command would change more than the stop did. The undo is a stop
		// that finds nothing left, so rollback succeeds without a start.
		undo = op.Step{Action: op.Destroy, Ref: ref, Op: op.ProcStop{NS: o.NS, Argv: o.Argv, Log: o.Log, PidFile: o.PidFile}}
	}
	d.add(op.Step{Action: op.Destroy, Ref: ref, Undo: &undo,
		Op: op.ProcStop{NS: o.NS, Argv: o.Argv, Log: o.Log, PidFile: o.PidFile, PID: o.PID, DropLog: drop}})
}
