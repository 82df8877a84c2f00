package daemon

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/safedir"
)

// A confined command (a container's) is started by a shim: topo's own
// binary, run again as shimArg0, in a session of its own, which starts
// the command confined (see confine.go), stays its parent while it runs,
// and so can do what no other process can: copy its output into its log,
// noting when each part came (names.LogTimes, for logs --timestamps), and
// learn the status it ends with, which it records (names.ExitFile) for
// ps and for depends_on's service_completed_successfully, however long
// after topo's own run the command ends. As conmon and containerd's shims
// do for a container engine. The shim does nothing else; it ends when the
// command has ended and its output is copied.
//
// topo talks to the shim through a pipe (fd 4): the shim writes one
// shimMsg when the command runs (or could not start), one when it ends.
// The spec comes on the shim's stdin, the log on fd 3, the index of
// times on fd 5.

// shimArg0 is the shim's argv[0], by which its binary knows to be one.
const shimArg0 = "topo-shim"

func init() {
	// Before anything else of the binary (topo's commands, or a test's
	// TestMain) runs: a shim is nothing but a shim.
	if len(os.Args) > 0 && os.Args[0] == shimArg0 {
		os.Exit(shimMain())
	}
}

// shimMsg is what the shim tells topo: PID and Start once the command
// runs, Error when it could not start, Exit when it has ended.
type shimMsg struct {
	PID   int    `json:"pid,omitempty"`
	Start uint64 `json:"start,omitempty"`
	Error string `json:"error,omitempty"`
	Exit  *Exit  `json:"exit,omitempty"`
}

// Exit is how a command ended: the record a shim writes (names.ExitFile),
// of the process PID started at Start.
type Exit struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
	// Code is its status, or 128+N for one killed by signal N, as Docker
	// reports it.
	Code   int       `json:"code"`
	Signal string    `json:"signal,omitempty"`
	At     time.Time `json:"at"`
}

// exitOf is how the process of ps ended.
func exitOf(pid int, start uint64, ps *os.ProcessState) *Exit {
	e := &Exit{PID: pid, Start: start, Code: ps.ExitCode(), At: time.Now().UTC()}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		e.Code, e.Signal = 128+int(ws.Signal()), unix.SignalName(ws.Signal())
	}
	return e
}

// How, says how it ended, for messages.
func (e *Exit) how() string {
	if e.Signal != "" {
		return "killed by signal " + e.Signal
	}
	return fmt.Sprintf("with status %d", e.Code)
}

// startShim starts s's command through a shim, its output going to log
// and its times to times, and returns once the command runs, with its
// pid and start time; exited gets the shim's word of its end, and is
// closed after it (or when the shim ended without one).
func startShim(s Spec, log, times *os.File, exited chan<- *Exit) (shim *exec.Cmd, msg shimMsg, err error) {
	spec, err := json.Marshal(s)
	if err != nil {
		return nil, msg, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, msg, fmt.Errorf("find topo's binary to start the command's shim: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, msg, err
	}
	shim = &exec.Cmd{Path: self, Args: []string{shimArg0, s.PidFile}, Stdin: bytes.NewReader(spec),
		// The shim's own complaints, if it has any, are the log's.
		Stderr: log, ExtraFiles: []*os.File{log, w, times},
		Dir: "/", SysProcAttr: &syscall.SysProcAttr{Setsid: true}}
	err = shim.Start()
	w.Close()
	if err != nil {
		r.Close()
		return nil, msg, fmt.Errorf("start the command's shim: %w", err)
	}
	// Reaped while this topo runs; later, by whoever adopts it.
	go func() { _ = shim.Wait() }()
	dec := json.NewDecoder(r)
	if err := dec.Decode(&msg); err != nil {
		r.Close()
		return nil, msg, fmt.Errorf("the command's shim (pid %d) ended before it said how the start went: %w", shim.Process.Pid, err)
	}
	if msg.Error != "" {
		r.Close()
		return nil, msg, errors.New(msg.Error)
	}
	go func() {
		defer close(exited)
		defer r.Close()
		var end shimMsg
		if dec.Decode(&end) == nil && end.Exit != nil {
			exited <- end.Exit
		}
	}()
	return shim, msg, nil
}

// shimMain is the shim (see above): 0 when it did its part.
func shimMain() int {
	// A shim holds little: it copies output.
	debug.SetGCPercent(20)
	runtime.GOMAXPROCS(1)
	// Inherited without close-on-exec: the command gets none of them.
	for fd := 3; fd <= 5; fd++ {
		syscall.CloseOnExec(fd)
	}
	status := os.NewFile(4, "status")
	say := func(m shimMsg) {
		b, _ := json.Marshal(m)
		_, _ = status.Write(append(b, '\n')) // topo may have gone: EPIPE
	}
	fail := func(err error) int {
		say(shimMsg{Error: err.Error()})
		return 1
	}
	var s Spec
	if err := json.NewDecoder(os.Stdin).Decode(&s); err != nil {
		return fail(fmt.Errorf("the shim's spec: %w", err))
	}
	log, times := os.NewFile(3, "log"), os.NewFile(5, "times")
	// Caught, not ignored: an ignored signal would be the command's too.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE)
	conf, err := resolveConfinement(s)
	if err != nil {
		return fail(err)
	}
	prog, err := lookPath(s.Argv[0])
	if err != nil {
		return fail(fmt.Errorf("%q: %w (check the command: it is not run through a shell)", s.Argv[0], ErrNotFound))
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	cmd := exec.Command(prog, s.Argv[1:]...)
	// One pipe for both, as the log was one file for both: the order
	// the command wrote them in is kept.
	cmd.Stdout, cmd.Stderr = w, w
	cmd.Env = cleanEnv(conf.user.Home, s.Env)
	cmd.Dir = cmp.Or(s.Dir, "/")
	if err := startConfined(cmd, s, conf); err != nil {
		return fail(fmt.Errorf("start %q: %w", s.Argv[0], err))
	}
	w.Close()
	pid := cmd.Process.Pid
	start, _ := startTime(pid) // a zombie until Wait: it is there
	say(shimMsg{PID: pid, Start: start})
	copied := make(chan struct{})
	go func() {
		copyOutput(r, log, times)
		close(copied)
	}()
	_ = cmd.Wait()
	// Every process of its PID namespace ended with it: the pipe's
	// writers are gone, and the copy ends.
	<-copied
	e := exitOf(pid, start, cmd.ProcessState)
	b, _ := json.Marshal(e)
	if err := s.Tree.WriteAtomic(names.ExitFile(s.PidFile)+".tmp", names.ExitFile(s.PidFile), append(b, '\n'), 0o600); err != nil &&
		!errors.Is(err, fs.ErrNotExist) { // its folder went with a down
		fmt.Fprintf(log, "topo-shim: record how %q ended: %v\n", s.Argv[0], err)
	}
	say(shimMsg{Exit: e})
	return 0
}

// copyOutput copies the command's output from r to log as it comes, and
// for each read notes in times the log's offset and the time, a line
// "OFFSET UNIX-NANOSECONDS".
func copyOutput(r io.Reader, log, times *os.File) {
	off, _ := log.Seek(0, io.SeekEnd)
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			_, _ = times.WriteString(strconv.FormatInt(off, 10) + " " + strconv.FormatInt(time.Now().UnixNano(), 10) + "\n")
			if _, werr := log.Write(buf[:n]); werr == nil {
				off += int64(n)
			}
		}
		if err != nil {
			return
		}
	}
}

// ReadExit reads the record of how the command of pidFile ended; nil
// when there is none.
func ReadExit(t safedir.Tree, pidFile string) (*Exit, error) {
	b, err := t.ReadFile(names.ExitFile(pidFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var e Exit
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("%s: %w", names.ExitFile(pidFile), err)
	}
	return &e, nil
}

// AwaitEnd waits, as long as it runs, until the command of pidFile has
// ended, and returns the status it ended with: its shim's word, or its
// record's (a one-shot Watch saw finish).
func AwaitEnd(t safedir.Tree, pidFile string) (int, error) {
	for {
		rec, ok, err := Read(t, pidFile)
		switch {
		case err != nil:
			return 0, err
		case rec == nil:
			return 0, errors.New("its command has not started, or failed to (its pid file is gone)")
		case !ok && rec.Exit != nil:
			return *rec.Exit, nil
		case !ok:
			// Ended; its shim is about to say how, or has since the read.
			if rec.Shim == 0 {
				return 0, errors.New("its command ended unseen (started by a topo before shims): how is not known")
			}
			if fd, err := unix.PidfdOpen(rec.Shim, 0); err == nil {
				if shimRuns(rec) {
					awaitExit(fd, shimGrace)
				}
				unix.Close(fd)
			}
			if rec, _, err := Read(t, pidFile); err == nil && rec != nil && rec.Exit != nil {
				return *rec.Exit, nil
			}
			return 0, errors.New("its command ended, and its shim did not say how (was it killed?)")
		}
		fd, err := unix.PidfdOpen(rec.PID, 0)
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if alive(rec) {
			awaitExit(fd, time.Second)
		}
		unix.Close(fd)
	}
}
