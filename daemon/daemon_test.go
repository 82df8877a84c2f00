package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests run processes in topo's own namespace only (NS ""): they
// start sleep and sh, which touch nothing.
func TestStartReadStop(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "p.pid")
	rec, err := Start(Spec{Argv: []string{"sh", "-c", "echo started; sleep 60 & wait"}, LogFile: filepath.Join(dir, "log"), PidFile: pidFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-rec.PID, syscall.SIGKILL) })
	got, ok, err := Read(pidFile)
	if err != nil || !ok || got.PID != rec.PID || got.Argv[0] != "sh" {
		t.Fatalf("Read = %+v, %v, %v", got, ok, err)
	}
	if err := Stop(pidFile, 2*time.Second); err != nil {
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
	if err := Stop(pidFile, time.Second); err != nil {
		t.Error(err)
	}
}

func TestStopEscalatesToKill(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "p.pid")
	rec, err := Start(Spec{Argv: []string{"sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"}, LogFile: filepath.Join(dir, "log"), PidFile: pidFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-rec.PID, syscall.SIGKILL) })
	if err := Stop(pidFile, 200*time.Millisecond); err != nil {
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
	_, err := Start(Spec{Argv: []string{"no-such-program-topo"}, LogFile: filepath.Join(dir, "log"), PidFile: filepath.Join(dir, "p")})
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
		_, err = Start(Spec{Argv: []string{"sh", "-c", c.script}, LogFile: log, PidFile: filepath.Join(dir, "p")})
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
	if _, err = Start(Spec{Argv: []string{"sh", "-c", "echo boom >&2; exit 3"}, LogFile: log, PidFile: filepath.Join(dir, "p")}); err == nil ||
		!strings.HasSuffix(err.Error(), "Its last lines of output:\n    boom") {
		t.Errorf("its output: %v", err)
	}
}

func TestRecycledPIDIsNotAlive(t *testing.T) {
	// A record whose start time does not match is another process.
	rec := &Record{PID: os.Getpid(), Start: 1}
	if alive(rec) {
		t.Error("a pid with another start time counts as alive")
	}
	st, _ := startTime(os.Getpid())
	if !alive(&Record{PID: os.Getpid(), Start: st}) {
		t.Error("this process is not alive")
	}
}
