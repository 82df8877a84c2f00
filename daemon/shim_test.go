package daemon

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/topolab/topo/internal/sandbox"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/privilege"
	"github.com/topolab/topo/safedir"
)

// TestShimRecordsTheEnd: a confined command's shim outlives the start
// window, copies its output with an index of times, and records the
// status it ended with long after Start returned, root's alone; Read and
// AwaitEnd tell it, Stop removes the record.
func TestShimRecordsTheEnd(t *testing.T) {
	sandbox.Require(t)
	old := earlyExit
	earlyExit = 50 * time.Millisecond
	t.Cleanup(func() { earlyExit = old })
	dir, outside := t.TempDir(), t.TempDir() // the command sees no runtime folder
	tree := safedir.Runtime(dir)
	pid, log := filepath.Join(dir, "c.pid"), filepath.Join(dir, "c.log")
	rec, err := Start(Spec{Tree: tree, Confined: true, Privileges: privilege.Settings{}, LogFile: log, PidFile: pid,
		Argv: []string{"sh", "-c", "echo hello; until [ -e " + outside + "/go ]; do sleep 0.02; done; echo bye; exit 5"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Stop(tree, pid, time.Second) })
	if rec.Shim == 0 || rec.ShimStart == 0 || !shimRuns(rec) {
		t.Fatalf("no shim runs beside the command: %+v", rec)
	}
	if _, ok, _ := Read(tree, pid); !ok {
		t.Fatal("the command does not run after its start window")
	}
	if err := os.WriteFile(filepath.Join(outside, "go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	code, err := AwaitEnd(tree, pid)
	if err != nil || code != 5 {
		t.Fatalf("AwaitEnd = %d, %v; want 5", code, err)
	}
	got, ok, err := Read(tree, pid)
	if err != nil || ok || got.Exit == nil || *got.Exit != 5 {
		t.Fatalf("Read after the end: %+v, running %v, %v", got, ok, err)
	}
	fi, err := os.Stat(names.ExitFile(pid))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the exit record: %v, %v; want mode 0600", fi, err)
	}
	if b, _ := os.ReadFile(log); string(b) != "hello\nbye\n" {
		t.Errorf("log %q, want the command's output as it wrote it", b)
	}
	times := readTimes(t, names.LogTimes(log))
	if len(times) < 2 || times[0] != "0" || times[len(times)-1] != "6" {
		t.Errorf("index of times %q: want an entry at offset 0 and one at 6 (bye came after go)", times)
	}
	if err := Stop(tree, pid, time.Second); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{pid, names.ExitFile(pid)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s stays after Stop: %v", p, err)
		}
	}
}

// readTimes is the offsets of an index of times.
func readTimes(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		off, _, _ := strings.Cut(l, " ")
		out = append(out, off)
	}
	return out
}

// TestOneShotGoneBeforeItsNamespaceIsRead: a one-shot that may finish and
// ends with status 0 before Launch reads its PID namespace (a loaded
// machine, an "echo") is a finished one-shot, not an early exit.
func TestOneShotGoneBeforeItsNamespaceIsRead(t *testing.T) {
	sandbox.Require(t)
	old := launchedNS
	t.Cleanup(func() { launchedNS = old })
	launchedNS = func(pid int) (uint64, error) {
		// Late: the command has ended and its shim has reaped it.
		for {
			if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); os.IsNotExist(err) {
				return old(pid)
			}
			time.Sleep(time.Millisecond)
		}
	}
	dir := t.TempDir()
	tree := safedir.Runtime(dir)
	pid, log := filepath.Join(dir, "c.pid"), filepath.Join(dir, "c.log")
	spec := Spec{Tree: tree, Confined: true, Privileges: privilege.Settings{}, LogFile: log, PidFile: pid, MayFinish: true,
		Argv: []string{"sh", "-c", "echo done"}}
	rec, err := Start(spec)
	if err != nil {
		t.Fatalf("a one-shot gone before its namespace was read: %v", err)
	}
	if rec.Exit == nil || *rec.Exit != 0 {
		t.Fatalf("record %+v, want a finished one-shot with status 0", rec)
	}
	got, ok, err := Read(tree, pid)
	if err != nil || ok || got == nil || got.Exit == nil || *got.Exit != 0 {
		t.Fatalf("Read: %+v, running %v, %v; want the one-shot's record with status 0", got, ok, err)
	}
	if err := Stop(tree, pid, time.Second); err != nil {
		t.Fatal(err)
	}
	// Without MayFinish the same end is an early exit.
	spec.MayFinish = false
	if _, err := Start(spec); err == nil {
		t.Fatal("a command that must keep running ended at once and started")
	}
}
