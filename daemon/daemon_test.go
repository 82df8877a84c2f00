package daemon

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/topolab/topo/safedir"
)

// These tests run processes in topo's own namespace only (NS ""): they
// start sleep and sh, which touch nothing.
func TestStartReadStop(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "p.pid")
	rec, err := Start(Spec{Tree: safedir.Runtime(dir), Argv: []string{"sh", "-c", "echo started; sleep 60 & wait"}, LogFile: filepath.Join(dir, "log"), PidFile: pidFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-rec.PID, syscall.SIGKILL) })
	got, ok, err := Read(safedir.Runtime(dir), pidFile)
	if err != nil || !ok || got.PID != rec.PID || got.Argv[0] != "sh" {
		t.Fatalf("Read = %+v, %v, %v", got, ok, err)
	}
	if err := Stop(safedir.Runtime(dir), pidFile, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if alive(rec) {
		t.Error("process alive after Stop")
	}
	if _, err := os.Stat(pidFile); !errors.Is(err, os.ErrNotExist) {
		t.Error("pid file left after Stop")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "log")); !strings.Contains(string(b), "started") {
		t.Errorf("log = %q", b)
	}
	// Stopping again, or something never started, is fine.
	if err := Stop(safedir.Runtime(dir), pidFile, time.Second); err != nil {
		t.Error(err)
	}
}

func TestStopEscalatesToKill(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "p.pid")
	rec, err := Start(Spec{Tree: safedir.Runtime(dir), Argv: []string{"sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"}, LogFile: filepath.Join(dir, "log"), PidFile: pidFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-rec.PID, syscall.SIGKILL) })
	if err := Stop(safedir.Runtime(dir), pidFile, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if alive(rec) {
		t.Error("process ignoring SIGTERM is alive after Stop")
	}
}

func TestStartErrors(t *testing.T) {
	// The exit-at-once check watches for a while; a loaded machine can take
	// longer than that to run sh, so this test watches longer.
	defer func(d time.Duration) { earlyExit = d }(earlyExit)
	earlyExit = 5 * time.Second
	dir := t.TempDir()
	_, err := Start(Spec{Tree: safedir.Runtime(dir), Argv: []string{"no-such-program-topo"}, LogFile: filepath.Join(dir, "log"), PidFile: filepath.Join(dir, "p")})
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("missing program: %v", err)
	}
	// The log holds an earlier run's output, which the error leaves out.
	log := filepath.Join(dir, "log")
	if err := os.WriteFile(log, []byte("from an earlier run\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		script, want string
	}{
		{"echo boom >&2; exit 3", `"sh" exited at once, with status 3, `},
		{"kill -SEGV $$", `"sh" exited at once, killed by signal SIGSEGV, `},
	} {
		_, err = Start(Spec{Tree: safedir.Runtime(dir), Argv: []string{"sh", "-c", c.script}, LogFile: log, PidFile: filepath.Join(dir, "p")})
		var early *EarlyExitError
		if !errors.As(err, &early) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "earlier run") {
			t.Errorf("%s: %v, want an EarlyExitError saying %q with this run's output alone", c.script, err, c.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "p")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: pid file left by a failed start", c.script)
		}
	}
	if err == nil || !strings.HasSuffix(err.Error(), " It printed nothing.") {
		t.Errorf("a command that printed nothing: %v", err)
	}
	if _, err = Start(Spec{Tree: safedir.Runtime(dir), Argv: []string{"sh", "-c", "echo boom >&2; exit 3"}, LogFile: log, PidFile: filepath.Join(dir, "p")}); err == nil ||
		!strings.HasSuffix(err.Error(), "Its last lines of output:\n    boom") {
		t.Errorf("its output: %v", err)
	}
}

func TestRecycledPIDIsNotAlive(t *testing.T) {
	// A process started as topo starts the resolver: a session (and a
	// process group) of its own.
	leader := exec.Command("sleep", "60")
	leader.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// And one that leads no group, with its start time and command line.
	member := exec.Command("sleep", "61")
	for _, c := range []*exec.Cmd{leader, member} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	}
	st, _ := startTime(leader.Process.Pid)
	if !alive(&Record{PID: leader.Process.Pid, Start: st, Argv: []string{"sleep", "60"}}) {
		t.Error("the process started is not alive")
	}
	// A record whose start time does not match is another process.
	if alive(&Record{PID: leader.Process.Pid, Start: 1, Argv: []string{"sleep", "60"}}) {
		t.Error("a pid with another start time counts as alive")
	}
	if alive(&Record{PID: leader.Process.Pid, Start: st, Argv: []string{"nginx"}}) {
		t.Error("a process running another command than recorded counts as alive")
	}
	mst, _ := startTime(member.Process.Pid)
	if alive(&Record{PID: member.Process.Pid, Start: mst, Argv: []string{"sleep", "61"}}) {
		t.Error("a process that leads no group counts as alive: its group would be signalled")
	}
}
