//go:build porting

package kernel

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/topolab/topo/daemon"
	"github.com/topolab/topo/internal/sandbox"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/rundir"
	"github.com/topolab/topo/state"
)

// TestProcessInNamespace starts a command in a container's namespace, sees
// it observed, sees it read the namespace's /etc/netns files, and stops it.
func TestProcessInNamespace(t *testing.T) {
	sandbox.Require(t)
	t.Setenv("TOPO_STATE_DIR", t.TempDir())
	k, err := New()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ns := planner.Step{Op: planner.OpNetnsAdd, NS: "pa", Alias: mark(state.KindNamespace, "pa")}
	if err := k.Apply(ctx, ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Apply(ctx, planner.Step{Op: planner.OpNetnsDel, NS: "pa"}) })
	os.MkdirAll("/etc/netns/pa", 0o755)
	os.WriteFile("/etc/netns/pa/hosts", []byte("10.9.9.9 only-in-pa\n"), 0o644)
	t.Cleanup(func() { os.RemoveAll("/etc/netns/pa") })

	start := planner.Step{Op: planner.OpProcStart, NS: "pa", Resource: "container pa",
		Argv:    []string{"sh", "-c", "cat /etc/hosts; readlink /proc/self/ns/net; exec sleep 1000"},
		PidFile: rundir.PidFile(project, "pa"), Log: rundir.LogFile(project, "pa")}
	if err := k.Apply(ctx, start); err != nil {
		t.Fatal(err)
	}
	// A second start of a live process is ErrExist.
	if err := k.Apply(ctx, start); !IsExist(err) {
		t.Errorf("second start: %v, want ErrExist", err)
	}
	snap, err := k.Observe(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Processes) != 1 || !snap.Processes[0].Running || snap.Processes[0].NS != "pa" || snap.Processes[0].Container != "pa" {
		t.Fatalf("observed %+v", snap.Processes)
	}
	pid := snap.Processes[0].PID
	nsLink, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/net")
	self, _ := os.Readlink("/proc/self/ns/net")
	if nsLink == self || nsLink == "" {
		t.Errorf("process %d is in %q, this test in %q", pid, nsLink, self)
	}
	deadline := time.Now().Add(10 * time.Second)
	var log []byte
	for time.Now().Before(deadline) {
		log, _ = os.ReadFile(start.Log)
		if strings.Contains(string(log), "net:[") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(string(log), "only-in-pa") {
		t.Errorf("the command did not see /etc/netns/pa/hosts:\n%s", log)
	}

	stop := planner.Step{Op: planner.OpProcStop, PidFile: start.PidFile, Log: start.Log, DropLog: true}
	if err := k.Apply(ctx, stop); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); !strings.Contains(string(b), ") Z") {
			t.Errorf("process %d still runs after stop: %s", pid, b)
		}
	}
	if _, err := os.Stat(rundir.Project(project)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("runtime folder left after the last stop: %v", err)
	}
	// Stopping what is gone is success.
	if err := k.Apply(ctx, stop); err != nil {
		t.Error(err)
	}
}

func TestProcessStartFailuresLeaveNothing(t *testing.T) {
	sandbox.Require(t)
	t.Setenv("TOPO_STATE_DIR", t.TempDir())
	// Wide enough for sh to end within it on a loaded machine.
	t.Setenv("TOPO_START_WINDOW", "5s")
	k, _ := New()
	ctx := context.Background()
	for _, argv := range [][]string{{"no-such-program-topo"}, {"sh", "-c", "echo boom; exit 3"}, {"sh", "-c", "echo done"}} {
		s := planner.Step{Op: planner.OpProcStart, Argv: argv, PidFile: rundir.PidFile(project, "x"), Log: rundir.LogFile(project, "x")}
		err := k.Apply(ctx, s)
		if err == nil {
			t.Fatalf("%q started", argv)
		}
		if argv[0] == "no-such-program-topo" && !errors.Is(err, daemon.ErrNotFound) {
			t.Errorf("%q: %v, want ErrNotFound", argv, err)
		}
		if entries, _ := os.ReadDir(filepath.Dir(rundir.Project(project))); len(entries) != 0 {
			t.Errorf("%q left %v", argv, entries)
		}
	}
	// A namespace that does not exist is ErrNotExist.
	s := planner.Step{Op: planner.OpProcStart, NS: "nope", Argv: []string{"true"}, PidFile: rundir.PidFile(project, "x"), Log: rundir.LogFile(project, "x")}
	if err := k.Apply(ctx, s); !IsNotFound(err) {
		t.Errorf("missing namespace: %v", err)
	}
}
