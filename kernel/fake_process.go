package kernel

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/topolab/topo/daemon"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/rundir"
	"github.com/topolab/topo/state"
)

// fakeProcs are the fake's container commands, as data: the records their
// pid files would hold, and which log files exist.
type fakeProcs struct {
	procs   map[string]state.Process // by pid file
	logs    map[string]bool
	nextPID int
}

func (p *fakeProcs) init() {
	if p.procs == nil {
		p.procs, p.logs, p.nextPID = map[string]state.Process{}, map[string]bool{}, 1000
	}
}

func (p *fakeProcs) loadProcs(procs []state.Process) {
	p.init()
	for _, pr := range procs {
		pr.Argv = slices.Clone(pr.Argv)
		p.procs[pr.PidFile] = pr
		p.logs[pr.Log] = true
		p.nextPID = max(p.nextPID, pr.PID+1)
	}
}

func (p fakeProcs) clone() fakeProcs {
	out := fakeProcs{nextPID: p.nextPID}
	out.init()
	out.nextPID = max(out.nextPID, p.nextPID)
	for k, v := range p.procs {
		out.procs[k] = v
	}
	for k, v := range p.logs {
		out.logs[k] = v
	}
	return out
}

// observeProcs returns the processes whose pid files lie in project's
// runtime folder, sorted by container, as the real kernel reads them.
func (p *fakeProcs) observeProcs(project string) []state.Process {
	dir := rundir.Containers(project) + string(filepath.Separator)
	var out []state.Process
	for _, pf := range sortedNames(p.procs) {
		if strings.HasPrefix(pf, dir) {
			pr := p.procs[pf]
			pr.Argv = slices.Clone(pr.Argv)
			out = append(out, pr)
		}
	}
	return out
}

func (st *fakeState) applyProc(s planner.Step, missing []string) error {
	st.init()
	switch s.Op {
	case planner.OpProcStart:
		if old, ok := st.procs[s.PidFile]; ok && old.Running {
			return fmt.Errorf("process %d: %w", old.PID, ErrExist)
		}
		if len(s.Argv) == 0 {
			return fmt.Errorf("empty command")
		}
		if slices.Contains(missing, s.Argv[0]) {
			return fmt.Errorf("%q: %w", s.Argv[0], daemon.ErrNotFound)
		}
		if s.NS != "" && st.ns[s.NS] == nil {
			return fmt.Errorf("namespace %q: %w", s.NS, ErrNotExist)
		}
		st.procs[s.PidFile] = state.Process{
			Container: strings.TrimSuffix(filepath.Base(s.PidFile), ".pid"),
			NS:        s.NS, Argv: slices.Clone(s.Argv), PID: st.nextPID, Running: true,
			PidFile: s.PidFile, Log: s.Log, Privileges: s.Privileges,
		}
		st.nextPID++
		st.logs[s.Log] = true
	case planner.OpProcStop:
		delete(st.procs, s.PidFile)
		if s.DropLog {
			delete(st.logs, s.Log)
		}
	}
	return nil
}

// Exit makes the process recorded in pidFile die, as a crash or a kill by
// hand would: its record stays, not running.
func (f *Fake) Exit(pidFile string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if pr, ok := f.st.procs[pidFile]; ok {
		pr.Running = false
		f.st.procs[pidFile] = pr
	}
}

func (p *fakeProcs) dumpProcs(b *strings.Builder) {
	for _, pf := range sortedNames(p.procs) {
		pr := p.procs[pf]
		fmt.Fprintf(b, "process %s netns=%q pid=%d running=%v argv=%q\n", pf, pr.NS, pr.PID, pr.Running, pr.Argv)
	}
	for _, l := range sortedNames(p.logs) {
		fmt.Fprintf(b, "log %s\n", l)
	}
}
