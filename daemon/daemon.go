// Package daemon starts topo's detached processes (container commands, the
// DNS resolver) inside a named network namespace, records them in a pid
// file, tells whether they still run, and stops them. A pid file records the
// process's start time too, and a container's command its PID namespace,
// so that a recycled pid, or any process a pid file names that topo did
// not start, is never taken for the process topo started, and never
// signalled (see alive). Pid files and logs are reached without following
// links, root's alone (package safedir). A container's command runs
// confined (see confine.go), started by a shim that stays its parent
// (see shim.go).
package daemon

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/privilege"
	"github.com/topolab/topo/safedir"
)

// Spec says what to start and where.
type Spec struct {
	// Argv is the command; it is never run through a shell.
	Argv []string
	// NS is the named namespace (under /run/netns) to run in, through
	// `ip netns exec`, which also puts /etc/netns/NS files over /etc; "" runs
	// in topo's own namespace.
	NS string
	// LogFile receives stdout and stderr, appended.
	LogFile string
	// PidFile is written once the process runs.
	PidFile string
	// Tree holds LogFile and PidFile: they are reached without following
	// links, and made root's alone (see package safedir).
	Tree safedir.Tree
	// Env is the environment; nil means topo's own. A confined command's
	// is clean (see cleanEnv): Env adds to it.
	Env []string
	// Dir is the working folder; "" is /.
	Dir string
	// UTS, of a confined command, is the UTS namespace (a bind mount
	// under Tree, see names.Runtime.UTS) it runs in; "" keeps the host's.
	UTS string
	// Confined runs the command as a container's (see confine.go), with
	// Privileges' user and capabilities; otherwise (the resolver) it runs
	// with topo's own privileges, namespaces and environment.
	Confined   bool
	Privileges privilege.Settings
	// Ready, when set, is how the caller learns the process is up (the
	// resolver reports its records loaded): Start then returns at once
	// instead of watching the new process for an exit.
	Ready bool
	// MayFinish takes an end with status 0 within the start window for
	// a one-shot's success (Compose's restart: "no"), not a failure.
	MayFinish bool
}

// Record is what a pid file holds.
type Record struct {
	PID int `json:"pid"`
	// Start is the process's start time in clock ticks since boot
	// (/proc/PID/stat field 22).
	Start uint64   `json:"start"`
	Argv  []string `json:"argv"`
	NS    string   `json:"netns,omitempty"`
	// PidNS is the inode of a confined command's PID namespace; 0 for a
	// process started unconfined (the resolver, or a command of a topo
	// before confinement).
	PidNS      uint64             `json:"pidns,omitempty"`
	Privileges privilege.Settings `json:"privileges,omitzero"`
	// Env and Dir are a confined command's Spec.Env and Spec.Dir.
	Env []string `json:"env,omitempty"`
	Dir string   `json:"dir,omitempty"`
	// UTS is a confined command's Spec.UTS.
	UTS string `json:"uts,omitempty"`
	// Exit is the status the process ended with: a one-shot that
	// finished in its start window, a command topo stop ended, and (as
	// Read fills it in) one whose shim recorded its end. nil while it
	// runs, or when it ended unseen (a command without a shim).
	Exit *int `json:"exit,omitempty"`
	// Stopped says topo stop ended it (StopKeep).
	Stopped bool `json:"stopped,omitempty"`
	// Shim and ShimStart are a confined command's shim (see shim.go),
	// which a stop waits for: it records how the command ended.
	Shim      int    `json:"shim,omitempty"`
	ShimStart uint64 `json:"shim_start,omitempty"`
}

// ErrNotFound says the command does not exist or cannot be executed.
var ErrNotFound = errors.New("command not found or not executable")

// earlyExit is how long Start watches a new process: one that ends within
// its first second (a missing library, a bad flag, a port taken) is
// reported by the up that started it while its output is still there to
// show, unless it ended with status 0 and may (Spec.MayFinish: a one-shot
// that did its work). The windows of commands launched together run at the
// same time (Launch). TOPO_START_WINDOW (a Go duration) changes it, for
// topo's own tests.
var earlyExit = time.Second

// startWindow is earlyExit, or TOPO_START_WINDOW when set and valid.
func startWindow() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("TOPO_START_WINDOW")); err == nil && d > 0 {
		return d
	}
	return earlyExit
}

// Start runs s detached, in a session of its own, writes its pid file,
// and watches it for an early exit (see Launch and Watch).
func Start(s Spec) (*Record, error) {
	l, err := Launch(s)
	if err != nil {
		return nil, err
	}
	return l.Watch()
}

// Launched is a process Launch started, whose start window Watch ends.
type Launched struct {
	spec     Spec
	rec      *Record
	began    time.Time
	logStart int64
	// exited is closed when the process has ended (or, for a confined
	// one, when its shim said so, end holding how, or went).
	exited chan struct{}
	end    *Exit
}

// Launch runs s detached, in a session of its own, writes its pid file and
// returns at once: Watch must follow. Launching many before watching any
// lets their start windows run at the same time, so that N commands cost
// one window rather than N (see BENCHMARKS.md). A confined command is
// started by its shim (see shim.go).
func Launch(s Spec) (*Launched, error) {
	if len(s.Argv) == 0 {
		return nil, errors.New("empty command")
	}
	// Resolve the program here so that a typo fails up before anything
	// runs, with a message naming it; a confined command by its own PATH.
	var prog string
	var err error
	if s.Confined {
		if _, err = resolveConfinement(s); err != nil {
			return nil, err
		}
		prog, err = lookPath(s.Argv[0])
	} else {
		prog, err = exec.LookPath(s.Argv[0])
	}
	if err != nil {
		return nil, fmt.Errorf("%q: %w (check the command: it is not run through a shell)", s.Argv[0], ErrNotFound)
	}
	argv := append([]string{prog}, s.Argv[1:]...)
	if s.NS != "" && !s.Confined {
		ip, err := exec.LookPath("ip")
		if err != nil {
			return nil, fmt.Errorf("starting commands in a namespace needs the ip command (Debian package iproute2): %w", err)
		}
		argv = append([]string{ip, "netns", "exec", s.NS}, argv...)
	}
	if err := s.Tree.MkdirAll(filepath.Dir(s.PidFile)); err != nil {
		return nil, err
	}
	// Root's alone: a command's output may hold what others must not read.
	log, err := s.Tree.OpenFile(s.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	if err := log.Chmod(0o600); err != nil { // one an earlier topo made
		return nil, err
	}
	l := &Launched{spec: s, exited: make(chan struct{})}
	// Where this run's output starts: an early exit shows only its own.
	l.logStart, _ = log.Seek(0, io.SeekEnd)
	var rec *Record
	if s.Confined {
		if rec, err = l.launchShim(log); err != nil {
			return nil, err
		}
	} else {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdout, cmd.Stderr = log, log
		cmd.Env = s.Env
		cmd.Dir = cmp.Or(s.Dir, "/")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start %q: %w", s.Argv[0], err)
		}
		l.began = time.Now()
		go func() {
			_ = cmd.Wait()
			l.end = exitOf(cmd.Process.Pid, 0, cmd.ProcessState)
			close(l.exited)
		}()
		start, err := startTime(cmd.Process.Pid)
		if err != nil {
			// Gone already, and reaped by Wait: it exited at once.
			<-l.exited
			return nil, l.failed()
		}
		rec = &Record{PID: cmd.Process.Pid, Start: start, Argv: s.Argv, NS: s.NS, Privileges: s.Privileges}
	}
	if err := writeRecord(s.Tree, s.PidFile, rec); err != nil {
		// The process leads its session (and a confined one its PID
		// namespace): the group, or the namespace, goes with it.
		// Waited for, so that nothing it writes comes after the caller
		// cleans up (a confined one's shim records the end, then says
		// so: no record stays).
		syscall.Kill(-rec.PID, syscall.SIGKILL)
		<-l.exited
		_ = s.Tree.Remove(names.ExitFile(s.PidFile))
		return nil, err
	}
	l.rec = rec
	return l, nil
}

// launchShim starts a confined command through its shim, its output
// going to log, and returns its record.
func (l *Launched) launchShim(log *os.File) (*Record, error) {
	s := l.spec
	// How an earlier run ended is not this one's.
	if err := s.Tree.Remove(names.ExitFile(s.PidFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	times, err := s.Tree.OpenFile(names.LogTimes(s.LogFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer times.Close()
	ends := make(chan *Exit, 1)
	shim, msg, err := startShim(s, log, times, ends)
	if err != nil {
		return nil, err
	}
	l.began = time.Now()
	go func() {
		l.end = <-ends
		close(l.exited)
	}()
	rec := &Record{PID: msg.PID, Start: msg.Start, Argv: s.Argv, NS: s.NS, Privileges: s.Privileges, Env: s.Env, Dir: s.Dir, UTS: s.UTS,
		Shim: shim.Process.Pid}
	rec.ShimStart, _ = startTime(rec.Shim)
	if rec.PidNS, err = launchedNS(rec.PID); err != nil {
		// Ended already: the shim says how. A one-shot may end before
		// its namespace is read (a 2 ms "echo"); its record, with its
		// status, names no process to signal.
		<-l.exited
		if l.finished() {
			code := 0
			rec.Exit = &code
			return rec, nil
		}
		return nil, l.failed()
	}
	return rec, nil
}

// launchedNS reads a launched command's PID namespace; a test makes it
// late, as a loaded machine does.
var launchedNS = pidNS

// finished reports whether the process ended with status 0 and may
// (Spec.MayFinish): a one-shot that did its work.
func (l *Launched) finished() bool {
	return l.spec.MayFinish && l.end != nil && l.end.Code == 0
}

func (l *Launched) failed() error {
	_ = l.spec.Tree.Remove(names.ExitFile(l.spec.PidFile))
	return &EarlyExitError{Argv: l.spec.Argv, Exit: l.end, After: time.Since(l.began), Tail: tail(l.spec.Tree, l.spec.LogFile, l.logStart)}
}

// Watch waits until the start window (from the launch) is over, and
// fails if the process ended within it; then its pid file is gone. A
// process launched Ready is not watched. With Spec.MayFinish, one that
// ended with status 0 is done: its pid file stays, with its status.
func (l *Launched) Watch() (*Record, error) {
	watch := startWindow()
	if l.spec.Ready {
		watch = 0
	}
	timer := time.NewTimer(time.Until(l.began.Add(watch)))
	defer timer.Stop()
	select {
	case <-l.exited:
	case <-timer.C:
		// Looked at late (after others' windows): an end before now
		// is reported all the same, as the up that verifies would see it.
		select {
		case <-l.exited:
		default:
			return l.rec, nil
		}
	}
	if l.finished() {
		code := 0
		l.rec.Exit = &code
		if err := writeRecord(l.spec.Tree, l.spec.PidFile, l.rec); err != nil {
			return nil, err
		}
		return l.rec, nil
	}
	_ = l.spec.Tree.Remove(l.spec.PidFile)
	return nil, l.failed()
}

// EarlyExitError says that a command ended within the start window, with
// or without success: a container's command is to keep running, and the
// rollback that follows removes its log, so the error carries the last
// lines of its output.
type EarlyExitError struct {
	Argv  []string
	Exit  *Exit         // nil when its shim went without a word
	After time.Duration // from its start to when Start saw it gone
	Tail  string        // its last lines of output, "" for none
}

func (e *EarlyExitError) Error() string {
	how := "in a way its shim did not say"
	if e.Exit != nil {
		how = e.Exit.how()
	}
	out := " It printed nothing."
	if e.Tail != "" {
		out = " Its last lines of output:\n    " + strings.ReplaceAll(e.Tail, "\n", "\n    ")
	}
	return fmt.Sprintf("%q exited at once, %s, %s after it started: a container's command must keep running (for a one-off, use topo exec).%s",
		e.Argv[0], how, e.After.Round(time.Millisecond), out)
}

func writeRecord(t safedir.Tree, path string, rec *Record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return t.WriteAtomic(path+".tmp", path, append(b, '\n'), 0o600)
}

// Read returns the pid file's record and whether that process still runs.
// A missing pid file is (nil, false, nil).
func Read(t safedir.Tree, pidFile string) (*Record, bool, error) {
	b, err := t.ReadFile(pidFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, false, fmt.Errorf("pid file %s: %w", pidFile, err)
	}
	if alive(&rec) {
		return &rec, true, nil
	}
	if rec.Exit == nil && rec.Shim != 0 {
		// Ended since: its shim says how, if it is this process's word.
		if e, _ := ReadExit(t, pidFile); e != nil && e.PID == rec.PID && e.Start == rec.Start {
			rec.Exit = &e.Code
		}
	}
	return &rec, false, nil
}

// shimRuns reports whether rec's shim still runs (it writes how the
// command ended, then ends).
func shimRuns(rec *Record) bool {
	if rec.Shim == 0 {
		return false
	}
	st, state, err := stat(rec.Shim)
	return err == nil && st == rec.ShimStart && state != "Z" && state != "X"
}

// alive reports whether rec's process runs and is still the one topo
// started, and so may be signalled: same pid and start time, not a
// zombie waiting to be reaped, and for a confined command the first
// process of the PID namespace recorded, which is not topo's own; for
// an unconfined one (the resolver) the leader of its process group (it
// was started in a session of its own, and is stopped through its
// group) running the recorded command. A pid file that names any other
// process, live or recycled, names no process of topo's: nothing is
// signalled, and a stop just removes the file.
func alive(rec *Record) bool {
	if rec.Exit != nil {
		return false
	}
	st, state, err := stat(rec.PID)
	if err != nil || st != rec.Start || state == "Z" || state == "X" {
		return false
	}
	if rec.PidNS != 0 {
		ns, err := pidNS(rec.PID)
		own, oerr := pidNS(os.Getpid())
		return err == nil && oerr == nil && ns == rec.PidNS && ns != own && firstOfNamespace(rec.PID)
	}
	pgid, err := unix.Getpgid(rec.PID)
	return err == nil && pgid == rec.PID && runs(rec.PID, rec.Argv)
}

// firstOfNamespace reports whether pid is 1 in its own PID namespace
// (the last of /proc/PID/status' NSpid).
func firstOfNamespace(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(v)
			return len(f) > 1 && f[len(f)-1] == "1"
		}
	}
	return false
}

// runs reports whether pid's command line is argv: the same arguments,
// and a program of the same name (argv[0] as the file gave it, the
// command line the path it was found at).
func runs(pid int, argv []string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(argv) == 0 {
		return false
	}
	got := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	return len(got) == len(argv) && filepath.Base(got[0]) == filepath.Base(argv[0]) && slices.Equal(got[1:], argv[1:])
}

// Stop sends SIGTERM to the pid file's process and what it started (its
// PID namespace, or for an unconfined one its process group), then
// SIGKILL after grace, and removes the pid file. A missing pid file or a
// dead process is success.
func Stop(t safedir.Tree, pidFile string, grace time.Duration) error {
	s, err := Signal(t, pidFile)
	if err != nil {
		return err
	}
	return s.Wait(grace)
}

// StopKeep is Stop for topo stop: the pid file stays, marked stopped,
// with the status the process ended with (its shim's word; 137 when it
// had to be killed, as docker stop reports it). One without a shim (a
// command of a topo before shims) that ended on SIGTERM by itself ended
// with a status no process of topo's can read: none is recorded.
func StopKeep(t safedir.Tree, pidFile string, grace time.Duration) error {
	s, err := Signal(t, pidFile)
	if err != nil {
		return err
	}
	s.keep = true
	return s.Wait(grace)
}

// Stopping is a stop that Signal began and Wait ends.
type Stopping struct {
	tree    safedir.Tree
	pidFile string  // "" when there was no pid file: nothing to wait for
	rec     *Record // nil when the process was not running
	pidfd   int
	shimfd  int // its shim's pidfd; -1 when none runs
	sent    time.Time
	// endsAlone: the process is the first of its PID namespace and does
	// not catch or ignore SIGTERM, which the kernel therefore dropped; as
	// it would have ended on it, it is killed once the rest of its
	// namespace has ended (which its death would cut short). others is
	// how many other processes Signal found there.
	endsAlone bool
	others    int
	// keep: StopKeep's; killed: SIGKILL was sent.
	keep, killed bool
}

// Signal begins Stop: it sends SIGTERM to the pid file's process and what
// it started, and returns at once, so that the caller can do other work
// while the process ends. Wait must follow.
func Signal(t safedir.Tree, pidFile string) (*Stopping, error) {
	rec, ok, err := Read(t, pidFile)
	if err != nil {
		return nil, err
	}
	s := &Stopping{tree: t, pidfd: -1, shimfd: -1}
	if rec == nil {
		return s, nil
	}
	s.pidFile = pidFile
	if shimRuns(rec) {
		if fd, err := unix.PidfdOpen(rec.Shim, 0); err == nil {
			if shimRuns(rec) {
				s.shimfd = fd
			} else {
				unix.Close(fd)
			}
		}
	}
	if !ok {
		return s, nil
	}
	// A pidfd says when the process ends, at once; opened before the
	// signal and checked to be rec's process, not a successor's.
	if pidfd, err := unix.PidfdOpen(rec.PID, 0); err == nil {
		s.pidfd = pidfd
	}
	if !alive(rec) {
		return s, nil
	}
	s.rec, s.sent = rec, time.Now()
	if rec.PidNS == 0 {
		// The process leads its own session: the group holds whatever
		// it started, and goes with it.
		syscall.Kill(-rec.PID, syscall.SIGTERM)
		return s, nil
	}
	// A confined command: every process of its PID namespace gets
	// SIGTERM, as a group would, each in its own session or not.
	s.endsAlone = endsOn(rec.PID, unix.SIGTERM)
	s.kill(unix.SIGTERM)
	s.others = signalNamespace(rec.PidNS, rec.PID, unix.SIGTERM)
	return s, nil
}

// kill sends sig to the stopping process, through its pidfd when there
// is one; to a confined command's first process SIGKILL ends its whole
// PID namespace, and to an unconfined one's group.
func (s *Stopping) kill(sig unix.Signal) {
	switch {
	case s.rec.PidNS == 0:
		syscall.Kill(-s.rec.PID, sig)
	case s.pidfd >= 0:
		_ = unix.PidfdSendSignal(s.pidfd, sig, nil, 0)
	default:
		syscall.Kill(s.rec.PID, sig)
	}
}

// Wait ends a stop: it waits until grace after the signal for the process
// to end, then sends SIGKILL, and removes the pid file.
func (s *Stopping) Wait(grace time.Duration) error {
	if s.pidfd >= 0 {
		defer unix.Close(s.pidfd)
	}
	if s.pidFile == "" {
		return nil
	}
	if rec := s.rec; rec != nil {
		deadline := s.sent.Add(grace)
		for alive(rec) && time.Now().Before(deadline) && !(s.endsAlone && s.others == 0) {
			wait := time.Until(deadline)
			if s.endsAlone {
				wait = min(wait, 20*time.Millisecond) // then look again
			}
			awaitExit(s.pidfd, wait)
			if s.endsAlone {
				s.others = len(inNamespace(rec.PidNS, rec.PID))
			}
		}
		if alive(rec) {
			s.kill(unix.SIGKILL)
			s.killed = true
			for end := time.Now().Add(time.Second); alive(rec) && time.Now().Before(end); {
				awaitExit(s.pidfd, time.Until(end))
			}
			if alive(rec) {
				return fmt.Errorf("process %d (%s) survives SIGKILL", rec.PID, rec.Argv[0])
			}
		}
	}
	if s.shimfd >= 0 {
		// The shim copies the last output and records how the command
		// ended, then ends: its records are done before they go.
		defer unix.Close(s.shimfd)
		awaitExit(s.shimfd, shimGrace)
	}
	if s.keep {
		return s.markStopped()
	}
	if err := s.tree.Remove(names.ExitFile(s.pidFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return s.tree.Remove(s.pidFile)
}

// shimGrace bounds the wait for a shim once its command has ended.
const shimGrace = 2 * time.Second

// markStopped rewrites the pid file of a process StopKeep ended.
func (s *Stopping) markStopped() error {
	rec, _, err := Read(s.tree, s.pidFile)
	if err != nil || rec == nil {
		return err
	}
	if s.rec != nil && rec.Exit == nil && s.killed {
		// It ran when the stop came, and no shim said how it ended
		// (one that topo stop killed says 137 itself).
		code := 128 + int(unix.SIGKILL)
		rec.Exit = &code
	}
	rec.Stopped = true
	return writeRecord(s.tree, s.pidFile, rec)
}

// awaitExit waits at most d for the process of pidfd to end, or 20 ms
// without a pidfd (-1; kernels before 5.3): the caller looks again.
func awaitExit(pidfd int, d time.Duration) {
	if pidfd < 0 {
		time.Sleep(min(d, 20*time.Millisecond))
		return
	}
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	_, _ = unix.Poll(fds, int(max(d.Milliseconds(), 1)))
}

func startTime(pid int) (uint64, error) {
	st, _, err := stat(pid)
	return st, err
}

// stat reads a process's start time and state from /proc/PID/stat.
func stat(pid int) (uint64, string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", err
	}
	// The command name (field 2) may hold spaces and parentheses: fields
	// are counted from the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	// f[0] is field 3 (state); field 22 (starttime) is f[19].
	st, err := strconv.ParseUint(f[19], 10, 64)
	return st, f[0], err
}

// tail is the last ten lines of path from offset on.
func tail(t safedir.Tree, path string, offset int64) string {
	b, _ := t.ReadFile(path)
	b = b[min(int(offset), len(b)):]
	if len(strings.TrimSpace(string(b))) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return strings.Join(lines, "\n")
}
