// Package lock makes one process at a time change a project. The lock is
// an flock(2) on a file in the project's runtime folder that holds the
// holder's pid. The kernel drops an flock when its holder dies, however it
// dies (kill -9 included), so a lock left by a dead process is simply free:
// there is no stale-lock guessing, and the pid in the file is only for
// telling the user who to wait for.
package lock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/topolab/topo/safedir"
)

// Lock is a held project lock.
type Lock struct {
	f    *os.File
	tree safedir.Tree
	path string
}

// BusyError says the lock stayed held for the whole wait.
type BusyError struct {
	Path   string
	Pid    int // 0 when the holder did not say
	Waited time.Duration
}

func (e *BusyError) Error() string {
	who := "another process"
	if e.Pid > 0 {
		who = fmt.Sprintf("pid %d", e.Pid)
	}
	return fmt.Sprintf("lock %s is held by %s (waited %s); wait for it to finish, or raise --lock-timeout", e.Path, who, e.Waited.Round(time.Millisecond))
}

// poll is how often a waiter tries again. flock has no timed wait; a
// blocking flock in a goroutine could not be abandoned cleanly.
const poll = 20 * time.Millisecond

// Acquire takes the lock at path, in the Tree t (reached without
// following links, and root's alone: see package safedir), creating the
// file (0600) and its folder as needed. While another process holds it, Acquire tries again every few
// milliseconds for up to timeout (0: try once), calling waiting once with
// the holder's pid when it first has to wait; then it returns a
// *BusyError. It writes this process's pid into the file, if it can: on
// a full disk the lock works without it.
func Acquire(ctx context.Context, t safedir.Tree, path string, timeout time.Duration, waiting func(pid int)) (*Lock, error) {
	start := time.Now()
	told := false
	for {
		l, err := try(t, path)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		pid := Holder(t, path)
		if waiting != nil && !told {
			waiting(pid)
			told = true
		}
		waited := time.Since(start)
		if waited >= timeout {
			return nil, &BusyError{Path: path, Pid: pid, Waited: waited}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lock %s held by pid %d: %w", path, pid, ctx.Err())
		case <-time.After(min(poll, timeout-waited)):
		}
	}
}

// try makes one attempt. The file it locks must still be the one at path:
// a holder may have removed it (Remove) between our open and our flock, and
// a lock on a removed file excludes nobody.
func try(t safedir.Tree, path string) (*Lock, error) {
	var f *os.File
	var d *safedir.Dir
	// A holder's Remove may delete the folder between our making it and
	// opening the file: make it again.
	for range 10 {
		var err error
		if d, err = t.OpenDir(filepath.Dir(path), true); err != nil {
			return nil, err
		}
		// The file is opened O_CLOEXEC: the lock is never inherited by a
		// program topo starts, which would otherwise hold it after topo
		// exits.
		f, err = d.OpenFile(filepath.Base(path), os.O_RDWR|os.O_CREATE, 0o600)
		if err == nil {
			break
		}
		d.Close()
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	if f == nil {
		return nil, fmt.Errorf("folder %s keeps disappearing", filepath.Dir(path))
	}
	defer d.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	same, err := samefile(f, d, filepath.Base(path))
	if err != nil || !same {
		f.Close()
		if err == nil || errors.Is(err, os.ErrNotExist) {
			// Removed under us: the next attempt makes a new one.
			return try(t, path)
		}
		return nil, err
	}
	// The pid only tells waiters whom they wait for: a full disk, where
	// it cannot be written, must not stop a down.
	if f.Truncate(0) == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f, tree: t, path: path}, nil
}

func samefile(f *os.File, d *safedir.Dir, name string) (bool, error) {
	a, err := f.Stat()
	if err != nil {
		return false, err
	}
	b, err := d.Lstat(name)
	if err != nil {
		return false, err
	}
	st := a.Sys().(*syscall.Stat_t)
	return st.Dev == b.Dev && st.Ino == b.Ino, nil
}

// Holder returns the pid written in the lock file at path, or 0. The pid
// is as seen in the holder's PID namespace.
func Holder(t safedir.Tree, path string) int {
	b, err := t.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// Release lets the next process in.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor drops the flock
	l.f = nil
	return err
}

// Remove deletes the lock file, then releases the lock: for `down`, which
// leaves nothing of the project behind. A waiter that opened the removed
// file notices (see try) and locks a new one.
func (l *Lock) Remove() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.tree.Remove(l.path)
	return errors.Join(err, l.Release())
}
