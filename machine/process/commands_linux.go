// Package process is the processes mechanism of package machine:
// container commands, started detached in their namespace (package
// daemon), and the projects' resolvers (`topo resolver serve`), with their
// records documents. Fake is its in-memory counterpart.
package process

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/topolab/topo/daemon"
	"github.com/topolab/topo/health"
	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/resolver/records"
	"github.com/topolab/topo/safedir"
	"github.com/topolab/topo/state"
)

// Kernel is the real Processes, with its files under Runtime.
type Kernel struct {
	Runtime names.Runtime
	// ResolverArgv is the command that runs a project's resolver serving
	// the runtime folder dir; nil means the running binary's `resolver
	// serve`.
	ResolverArgv func(dir string) ([]string, error)
}

var _ machine.Processes = Kernel{}

// tree is the runtime root: every file there is reached without
// following links (see package safedir).
func (k Kernel) tree() safedir.Tree { return safedir.Runtime(k.Runtime.Root) }

// stopGrace is how long a container's command has between SIGTERM and
// SIGKILL, as docker stop's default.
var stopGrace = 10 * time.Second

// Start starts a container's command, confined (see package
// daemon): its own PID and mount namespaces, its user and capabilities, a
// clean environment. A record of a live process is ErrExist; a stale one
// (the process died, and with it all it started) is replaced. If the
// command cannot start, nothing of it is left: no pid file, and no log
// unless one was there before.
//
// Equivalent to: `ip netns exec NS setpriv ... ARGV... >>LOG 2>&1 &`, in a
// PID namespace of its own
func (k Kernel) Start(s op.ProcStart) error {
	errs := make([]error, 1)
	k.StartBatch([]op.ProcStart{s}, errs)
	return errs[0]
}

// StartBatch starts commands as Start does, each launched in turn, and then
// watches their start windows, which run at the same time: N commands cost
// one window, not N.
func (k Kernel) StartBatch(ss []op.ProcStart, errs []error) {
	type started struct {
		l      *daemon.Launched
		hadLog bool
	}
	launched := make([]started, len(ss))
	for i, s := range ss {
		var hadLog bool
		launched[i].l, hadLog, errs[i] = k.launch(s)
		launched[i].hadLog = hadLog
	}
	for i, st := range launched {
		if st.l == nil {
			continue
		}
		if _, err := st.l.Watch(); err != nil {
			errs[i] = err
			k.undoLaunch(ss[i], st.hadLog)
		}
	}
}

// launch launches s's command; on an error nothing of it is left.
func (k Kernel) launch(s op.ProcStart) (l *daemon.Launched, hadLog bool, err error) {
	rec, alive, err := daemon.Read(k.tree(), s.PidFile)
	if err != nil {
		return nil, false, err
	}
	if alive {
		return nil, false, fmt.Errorf("process %d (%s): %w", rec.PID, rec.Argv[0], machine.ErrExist)
	}
	if s.NS != "" {
		if _, err := os.Stat(filepath.Join(names.NetnsDir, s.NS)); errors.Is(err, fs.ErrNotExist) {
			return nil, false, fmt.Errorf("namespace %s: %w", s.NS, machine.ErrNotExist)
		}
	}
	for _, a := range s.Await {
		if a.Completed {
			code, err := daemon.AwaitEnd(k.tree(), a.PidFile)
			if err != nil {
				return nil, false, fmt.Errorf("container %q has not completed successfully (depends_on's service_completed_successfully): %w", a.Container, err)
			}
			if code != 0 {
				return nil, false, fmt.Errorf("container %q exited with status %d: it did not complete successfully, which depends_on's service_completed_successfully waits for (topo logs %s)", a.Container, code, a.Container)
			}
			continue
		}
		if err := health.Await(s.Health, a.Container, a.PidFile, a.Timeout); err != nil {
			return nil, false, err
		}
	}
	_, statErr := k.tree().Lstat(s.Log)
	hadLog = statErr == nil
	l, err = daemon.Launch(daemon.Spec{Argv: s.Argv, NS: s.NS, LogFile: s.Log, PidFile: s.PidFile, Tree: k.tree(),
		Env: s.Env, Dir: s.Dir, UTS: s.UTS, Confined: true, Privileges: s.Privileges, MayFinish: true})
	if err != nil {
		k.undoLaunch(s, hadLog)
	}
	return l, hadLog, err
}

func (k Kernel) undoLaunch(s op.ProcStart, hadLog bool) {
	if !hadLog {
		_ = k.tree().Remove(s.Log)
		_ = k.tree().Remove(names.LogTimes(s.Log))
	}
	k.removeEmptyDirs(s.PidFile)
}

// Stop stops the process of a pid file, TERM then KILL after
// stopGrace, and removes the record; with DropLog the log goes too. A
// missing or dead process is success.
//
// Equivalent to: `kill -TERM` each process of its PID namespace; `sleep 10;
// kill -KILL` its first; `rm PIDFILE`
func (k Kernel) Stop(s op.ProcStop) error {
	if s.Keep {
		return daemon.StopKeep(k.tree(), s.PidFile, stopGrace)
	}
	if err := daemon.Stop(k.tree(), s.PidFile, stopGrace); err != nil {
		return err
	}
	if s.DropLog {
		if err := k.tree().Remove(s.Log); err != nil {
			return err
		}
		if err := k.tree().Remove(names.LogTimes(s.Log)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	k.removeEmptyDirs(s.PidFile)
	return nil
}

// removeEmptyDirs removes the containers folder of a pid file and the
// project's runtime folder when nothing is left in them, so that down
// leaves no trace; a folder that still holds something stays.
func (k Kernel) removeEmptyDirs(pidFile string) {
	dir := filepath.Dir(pidFile)
	if k.tree().Rmdir(dir) == nil {
		_ = k.tree().Rmdir(filepath.Dir(dir))
	}
}

// Observe reads the pid files of project's container commands and tells
// which still run.
//
// Equivalent to: `for f in /run/topo/PROJECT/containers/*.pid; do kill -0 $(jq .pid $f); done`
func (k Kernel) Observe(project string) ([]state.Process, error) {
	dir := k.Runtime.Containers(project)
	entries, err := k.tree().ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	// Health is shown, not planned on: a file being replaced or gone
	// leaves it out.
	hf, _ := k.Runtime.Resolver(project, records.HealthFile)
	healths, _ := health.Read(hf)
	var out []state.Process
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".pid")
		if !ok || e.IsDir() {
			continue
		}
		pidFile := filepath.Join(dir, e.Name())
		rec, alive, err := daemon.Read(k.tree(), pidFile)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w (remove the file if topo is not running it)", name, err)
		}
		if rec == nil {
			continue // removed since the listing
		}
		out = append(out, state.Process{
			Container: name, NS: rec.NS, Argv: rec.Argv, PID: rec.PID, Running: alive,
			PidFile: pidFile, Log: k.Runtime.LogFile(project, name),
			Privileges: rec.Privileges, Unconfined: rec.PidNS == 0, Env: rec.Env, Dir: rec.Dir, UTS: rec.UTS,
			Health: observedHealth(healths[name], rec.PID, alive),
			Exit:   rec.Exit, Stopped: rec.Stopped,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Container < out[j].Container })
	return out, nil
}

// observedHealth is a running command's health as the resolver process
// last wrote it: starting until a check of this process has run; nil
// without a healthcheck.
func observedHealth(st *health.Status, pid int, alive bool) *state.Health {
	if st == nil || !alive {
		return nil
	}
	if st.PID != pid {
		return &state.Health{Status: health.Starting}
	}
	h := &state.Health{Status: st.Status, FailingStreak: st.FailingStreak}
	if r := st.Last(); r != nil {
		h.LastExitCode, h.LastOutput = r.ExitCode, r.Output
	}
	return h
}
