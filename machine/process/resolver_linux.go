package process

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/topolab/topo/daemon"
	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/resolver/records"
	"github.com/topolab/topo/state"
)

// selfResolverArgv runs the topo binary itself, found at apply time.
func selfResolverArgv(dir string) ([]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the topo binary: %w", err)
	}
	return []string{exe, "resolver", "serve", "--dir", dir}, nil
}

// resolverWait bounds how long a start or reload waits for the resolver to
// report that it serves the records.
const resolverWait = 10 * time.Second

// resolverFile is one of the resolver's files in project's runtime folder.
func (k Kernel) resolverFile(project, name string) (string, error) {
	return k.Runtime.Resolver(project, name)
}

// RecordsWrite writes the records document, then has a running resolver
// serve it.
func (k Kernel) RecordsWrite(o op.RecordsWrite) error {
	project, content := o.Project, o.Content
	p, err := k.resolverFile(project, records.DocumentFile)
	if err != nil {
		return err
	}
	if _, err := records.Decode([]byte(content)); err != nil {
		return err
	}
	// Root's alone, as every state file: the resolver runs as root.
	if err := k.tree().WriteAtomic(filepath.Join(filepath.Dir(p), "."+records.DocumentFile+".tmp"), p, []byte(content), 0o600); err != nil {
		return err
	}
	pid, _ := k.resolverFile(project, records.PidFile)
	if _, alive, err := daemon.Read(k.tree(), pid); err != nil || !alive {
		return err
	}
	return k.ResolverReload(project)
}

// RecordsDel removes the records document.
func (k Kernel) RecordsDel(project string) error {
	p, err := k.resolverFile(project, records.DocumentFile)
	if err != nil {
		return err
	}
	if err := k.tree().Remove(p); err != nil {
		return err
	}
	k.removeRundirIfEmpty(project)
	return nil
}

// removeRundirIfEmpty removes the project's runtime folder when nothing
// else (a lock, a journal, logs) is left in it.
// (/run/topo itself stays once made, as /run/docker does.)
func (k Kernel) removeRundirIfEmpty(project string) {
	_ = k.tree().Rmdir(k.Runtime.Project(project))
}

// ResolverStart starts the project's resolver, detached, in the host's
// namespace (where it forwards from), and waits until it serves the
// records document. If it does not, it is stopped again, so that the step
// happens whole or not at all.
//
// Equivalent to: `topo resolver serve --dir /run/topo/PROJECT &`
func (k Kernel) ResolverStart(project string) error {
	pidFile, err := k.resolverFile(project, records.PidFile)
	if err != nil {
		return err
	}
	dir := filepath.Dir(pidFile)
	if _, alive, err := daemon.Read(k.tree(), pidFile); err != nil {
		return err
	} else if alive {
		return fmt.Errorf("resolver of project %s: %w", project, machine.ErrExist)
	}
	want, err := k.tree().ReadFile(filepath.Join(dir, records.DocumentFile))
	if err != nil {
		return fmt.Errorf("the resolver needs its records document: %w", err)
	}
	statusFile := filepath.Join(dir, records.StatusFile)
	if err := k.tree().Remove(statusFile); err != nil {
		return err
	}
	argvOf := k.ResolverArgv
	if argvOf == nil {
		argvOf = selfResolverArgv
	}
	argv, err := argvOf(dir)
	if err != nil {
		return err
	}
	logFile := filepath.Join(dir, records.LogFile)
	_, statErr := k.tree().Lstat(logFile)
	rec, err := daemon.Start(daemon.Spec{Argv: argv, LogFile: logFile, PidFile: pidFile, Tree: k.tree(), Ready: true})
	if err != nil {
		// The step leaves nothing: a resolver killed because its pid
		// could not be recorded may have written its status and its
		// healthchecks' file.
		_ = k.tree().Remove(statusFile)
		_ = k.tree().Remove(filepath.Join(dir, records.HealthFile))
		if statErr != nil {
			_ = k.tree().Remove(logFile)
		}
		return err
	}
	if err := awaitLoad(statusFile, rec.PID, 0, records.Hash(want)); err != nil {
		// What it said last (a status it could not write, say), before
		// the stop removes its log.
		var st unix.Statfs_t
		if b, _ := k.tree().ReadFile(logFile); len(strings.TrimSpace(string(b))) > 0 {
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			err = fmt.Errorf("%w: %s", err, lines[len(lines)-1])
		} else if unix.Statfs(dir, &st) == nil && st.Bavail == 0 {
			// Nor could it say why: its log is on the same full disk.
			err = fmt.Errorf("%w: %s: %w", err, dir, unix.ENOSPC)
		}
		return errors.Join(fmt.Errorf("%w (log: %s)", err, logFile), k.stop(project))
	}
	return nil
}

// stop stops the project's resolver and removes its pid, status
// and log files. A resolver that is not running is success.
//
// Equivalent to: `kill $(cat /run/topo/PROJECT/resolver.pid)`
func (k Kernel) stop(project string) error {
	wait, err := k.ResolverStop(project)
	if err != nil {
		return err
	}
	return wait()
}

// ResolverStop begins stop: it asks the resolver to stop and
// returns the wait for its end, which also removes its files.
func (k Kernel) ResolverStop(project string) (wait func() error, err error) {
	pidFile, err := k.resolverFile(project, records.PidFile)
	if err != nil {
		return nil, err
	}
	stopping, err := daemon.Signal(k.tree(), pidFile)
	if err != nil {
		return nil, err
	}
	return func() error {
		if err := stopping.Wait(2 * time.Second); err != nil {
			return err
		}
		dir := filepath.Dir(pidFile)
		for _, name := range []string{records.StatusFile, records.LogFile, records.HealthFile} {
			if err := k.tree().Remove(filepath.Join(dir, name)); err != nil {
				return err
			}
		}
		k.removeRundirIfEmpty(project)
		return nil
	}, nil
}

// ResolverReload has the running resolver load its records document again
// and waits until it says it serves it.
//
// Equivalent to: `kill -HUP $(cat /run/topo/PROJECT/resolver.pid)`
func (k Kernel) ResolverReload(project string) error {
	pidFile, err := k.resolverFile(project, records.PidFile)
	if err != nil {
		return err
	}
	dir := filepath.Dir(pidFile)
	rec, alive, err := daemon.Read(k.tree(), pidFile)
	if err != nil {
		return err
	}
	if !alive {
		return fmt.Errorf("resolver of project %s is not running; run topo up", project)
	}
	want, err := k.tree().ReadFile(filepath.Join(dir, records.DocumentFile))
	if err != nil {
		return err
	}
	statusFile := filepath.Join(dir, records.StatusFile)
	st, err := records.ReadStatus(statusFile)
	if err != nil {
		return err
	}
	gen := 0
	if st != nil && st.PID == rec.PID {
		gen = st.Generation
	}
	if err := syscall.Kill(rec.PID, syscall.SIGHUP); err != nil {
		return fmt.Errorf("signal resolver %d: %w", rec.PID, err)
	}
	return awaitLoad(statusFile, rec.PID, gen, records.Hash(want))
}

// awaitLoad waits for process pid to report a load after generation gen,
// and fails unless that load serves hash without errors.
func awaitLoad(statusFile string, pid, gen int, hash string) error {
	deadline := time.Now().Add(resolverWait)
	for {
		st, err := records.ReadStatus(statusFile)
		if err == nil && st != nil && st.PID == pid && st.Generation > gen {
			if len(st.Errors) > 0 {
				return fmt.Errorf("resolver: %s", st.Errors[0])
			}
			if st.Hash != hash {
				return fmt.Errorf("resolver serves records %.12s, not %.12s", st.Hash, hash)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("resolver %d did not report loading its records within %v", pid, resolverWait)
		}
		if syscall.Kill(pid, 0) != nil {
			// Gone (and reaped by daemon.Start): no point waiting.
			return fmt.Errorf("resolver %d exited before loading its records", pid)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// ObserveResolver reads the project's resolver: pid file, records
// document, and what the running process reports it serves, checked
// against the namespaces that exist now; nil when it has neither pid file
// nor records.
func (k Kernel) ObserveResolver(project string) (*state.Resolver, error) {
	pidFile, err := k.resolverFile(project, records.PidFile)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(pidFile)
	rec, alive, err := daemon.Read(k.tree(), pidFile)
	if err != nil {
		return nil, fmt.Errorf("resolver: %w", err)
	}
	doc, err := k.tree().ReadFile(filepath.Join(dir, records.DocumentFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("resolver: %w", err)
	}
	if rec == nil && doc == nil {
		return nil, nil
	}
	r := &state.Resolver{Records: string(doc)}
	if rec != nil {
		r.PID, r.Alive = rec.PID, alive
	}
	if !alive {
		return r, nil
	}
	st, err := records.ReadStatus(filepath.Join(dir, records.StatusFile))
	if err != nil {
		return nil, fmt.Errorf("resolver: %w", err)
	}
	if st != nil && st.PID == rec.PID {
		r.Loaded, r.Errors = st.Hash, st.Errors
		for ns, id := range st.Namespaces {
			path, err := names.NetnsPath(ns)
			if err != nil {
				continue
			}
			if cur, err := records.NamespaceIDOf(path); err == nil && cur == id {
				r.Listening = append(r.Listening, ns)
			}
		}
		slices.Sort(r.Listening)
	}
	return r, nil
}
