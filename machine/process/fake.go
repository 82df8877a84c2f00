package process

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/topolab/topo/daemon"
	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/resolver/records"
	"github.com/topolab/topo/state"
)

// Fake is an in-memory Processes: the records container commands' pid
// files would hold, which logs exist, and each project's resolver as
// data.
type Fake struct {
	Runtime names.Runtime
	// Missing lists programs the fake treats as absent: a start of one
	// fails as the real one does for a command not found.
	Missing []string
	// HasNamespace, when set, says whether a namespace exists.
	HasNamespace func(ns string) bool
	// HasUTS, when set, says whether a UTS namespace exists.
	HasUTS func(path string) bool

	mu          sync.Mutex
	procs       map[string]state.Process // by pid file
	logs        map[string]bool
	nextPID     int
	resolvers   map[string]*fakeResolver
	resolverPID int
}

var _ machine.Processes = (*Fake)(nil)

// fakeResolver is a project's resolver: its pid file, its records
// document and what it serves.
type fakeResolver struct {
	pid       int // 0: no pid file
	alive     bool
	records   string // "" when there is no records document
	loaded    string
	listening map[string]bool
}

// NewFake returns a fake running procs (which may be nil).
func NewFake(rt names.Runtime, procs []state.Process) *Fake {
	f := &Fake{Runtime: rt, procs: map[string]state.Process{}, logs: map[string]bool{}, nextPID: 1000, resolvers: map[string]*fakeResolver{}}
	for _, pr := range procs {
		pr.Argv = slices.Clone(pr.Argv)
		f.procs[pr.PidFile] = pr
		f.logs[pr.Log] = true
		f.nextPID = max(f.nextPID, pr.PID+1)
	}
	return f
}

func (f *Fake) hasNamespace(ns string) bool { return f.HasNamespace == nil || f.HasNamespace(ns) }

// Start starts a command: a record of a live one is ErrExist.
func (f *Fake) Start(s op.ProcStart) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if old, ok := f.procs[s.PidFile]; ok && old.Running {
		return fmt.Errorf("process %d: %w", old.PID, machine.ErrExist)
	}
	if len(s.Argv) == 0 {
		return errors.New("empty command")
	}
	if slices.Contains(f.Missing, s.Argv[0]) {
		return fmt.Errorf("%q: %w", s.Argv[0], daemon.ErrNotFound)
	}
	if s.NS != "" && !f.hasNamespace(s.NS) {
		return fmt.Errorf("namespace %q: %w", s.NS, machine.ErrNotExist)
	}
	if s.UTS != "" && f.HasUTS != nil && !f.HasUTS(s.UTS) {
		return fmt.Errorf("UTS namespace %s: %w", s.UTS, machine.ErrNotExist)
	}
	// The fake runs no healthchecks: a running command counts as healthy.
	for _, a := range s.Await {
		if p := f.procs[a.PidFile]; a.Completed {
			// Nor does it run commands to their end: one that finished
			// did (a seeded record), any other has not.
			if !p.Finished() {
				return fmt.Errorf("container %q has not completed successfully", a.Container)
			}
			continue
		}
		if p, ok := f.procs[a.PidFile]; !ok || !p.Running {
			return fmt.Errorf("container %q is not healthy: its command does not run", a.Container)
		}
	}
	f.procs[s.PidFile] = state.Process{
		Container: names.ContainerOfPidFile(s.PidFile),
		NS:        s.NS, Argv: slices.Clone(s.Argv), PID: f.nextPID, Running: true,
		PidFile: s.PidFile, Log: s.Log, Privileges: s.Privileges, Env: slices.Clone(s.Env), Dir: s.Dir, UTS: s.UTS,
	}
	f.nextPID++
	f.logs[s.Log] = true
	return nil
}

// StartBatch starts each command as Start does.
func (f *Fake) StartBatch(ss []op.ProcStart, errs []error) {
	for i, s := range ss {
		errs[i] = f.Start(s)
	}
}

// Stop ends the process of a pid file and removes its record (and with
// DropLog its log).
func (f *Fake) Stop(s op.ProcStop) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if pr, ok := f.procs[s.PidFile]; ok && s.Keep {
		if pr.Running {
			pr.Exit = nil
		}
		pr.Running, pr.Stopped = false, true
		f.procs[s.PidFile] = pr
		return nil
	}
	delete(f.procs, s.PidFile)
	if s.DropLog {
		delete(f.logs, s.Log)
	}
	return nil
}

// Observe returns the processes whose pid files lie in project's runtime
// folder, sorted by container, as the real mechanism reads them.
func (f *Fake) Observe(project string) ([]state.Process, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir := f.Runtime.Containers(project) + string(filepath.Separator)
	var out []state.Process
	for _, pf := range slices.Sorted(maps.Keys(f.procs)) {
		if strings.HasPrefix(pf, dir) {
			pr := f.procs[pf]
			pr.Argv = slices.Clone(pr.Argv)
			out = append(out, pr)
		}
	}
	return out, nil
}

// Exit makes the process recorded in pidFile die, as a crash or a kill by
// hand would: its record stays, not running.
func (f *Fake) Exit(pidFile string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if pr, ok := f.procs[pidFile]; ok {
		pr.Running = false
		f.procs[pidFile] = pr
	}
}

// SetHealth gives the command of pidFile a health, as a project's
// resolver process writes it for the real one.
func (f *Fake) SetHealth(pidFile string, h *state.Health) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if pr, ok := f.procs[pidFile]; ok {
		pr.Health = h
		f.procs[pidFile] = pr
	}
}

func (f *Fake) resolver(project string) *fakeResolver {
	r := f.resolvers[project]
	if r == nil {
		r = &fakeResolver{listening: map[string]bool{}}
		f.resolvers[project] = r
	}
	return r
}

// load makes r serve its records, listening in those of the document's
// namespaces that exist.
func (f *Fake) load(r *fakeResolver) error {
	d, err := records.Decode([]byte(r.records))
	if err != nil {
		return err
	}
	r.loaded = records.Hash([]byte(r.records))
	r.listening = map[string]bool{}
	var missing []error
	for _, ns := range d.Namespaces {
		if !f.hasNamespace(ns.Name) {
			missing = append(missing, fmt.Errorf("namespace %s: %w", ns.Name, machine.ErrNotExist))
			continue
		}
		r.listening[ns.Name] = true
	}
	return errors.Join(missing...)
}

// RecordsWrite writes the records; a running resolver loads them.
func (f *Fake) RecordsWrite(o op.RecordsWrite) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.resolver(o.Project)
	r.records = o.Content
	if r.alive {
		return f.load(r)
	}
	return nil
}

// RecordsDel removes the records.
func (f *Fake) RecordsDel(project string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resolver(project).records = ""
	return nil
}

// ResolverStart starts the resolver, which needs its records.
func (f *Fake) ResolverStart(project string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.resolver(project)
	if r.alive {
		return fmt.Errorf("resolver of project %s: %w", project, machine.ErrExist)
	}
	if r.records == "" {
		return fmt.Errorf("resolver of project %s: no records document", project)
	}
	f.resolverPID++
	r.pid, r.alive = f.resolverPID, true
	return f.load(r)
}

// ResolverStop stops the resolver.
func (f *Fake) ResolverStop(project string) (func() error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.resolver(project)
	r.pid, r.alive, r.loaded, r.listening = 0, false, "", map[string]bool{}
	return func() error { return nil }, nil
}

// ResolverReload makes a running resolver load its records again.
func (f *Fake) ResolverReload(project string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.resolver(project)
	if !r.alive {
		return fmt.Errorf("resolver of project %s is not running", project)
	}
	return f.load(r)
}

// ObserveResolver reads the project's resolver.
func (f *Fake) ObserveResolver(project string) (*state.Resolver, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.resolvers[project]
	if r == nil || r.pid == 0 && r.records == "" {
		return nil, nil
	}
	o := &state.Resolver{PID: r.pid, Alive: r.alive, Records: r.records}
	if r.alive {
		o.Loaded = r.loaded
		o.Listening = slices.Sorted(maps.Keys(r.listening))
	}
	return o, nil
}

// NetnsGone drops what a deleted namespace takes with it: the resolvers'
// sockets in it.
func (f *Fake) NetnsGone(ns string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.resolvers {
		delete(r.listening, ns)
	}
}

// KillResolver ends project's resolver as kill -9 would: its pid file
// stays, naming a dead process. Tests use it as drift.
func (f *Fake) KillResolver(project string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.resolvers[project]; r != nil {
		r.alive, r.loaded, r.listening = false, "", map[string]bool{}
	}
}

// Dump renders the processes, logs and resolvers as sorted text.
func (f *Fake) Dump(b *strings.Builder) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, pf := range slices.Sorted(maps.Keys(f.procs)) {
		pr := f.procs[pf]
		fmt.Fprintf(b, "process %s netns=%q pid=%d running=%v argv=%q\n", pf, pr.NS, pr.PID, pr.Running, pr.Argv)
	}
	for _, l := range slices.Sorted(maps.Keys(f.logs)) {
		fmt.Fprintf(b, "log %s\n", l)
	}
	for _, p := range slices.Sorted(maps.Keys(f.resolvers)) {
		r := f.resolvers[p]
		if r.pid == 0 && r.records == "" {
			continue
		}
		fmt.Fprintf(b, "resolver %s pidfile=%v alive=%v records=%.12s loaded=%.12s listening=%v\n",
			p, r.pid != 0, r.alive, records.Hash([]byte(r.records)), r.loaded, slices.Sorted(maps.Keys(r.listening)))
	}
}
