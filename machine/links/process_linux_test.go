package links

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
	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
)

// TestProcessInNamespace starts a command in a container's namespace, sees
// it observed, sees it read the namespace's /etc/netns files, and stops it.
func TestProcessInNamespace(t *testing.T) {
	sandbox.Require(t)
	k := newKernel(t)
	ctx := context.Background()
	ns := op.Step{Op: op.NetnsAdd{NS: "pa", Mark: mustMark(mark(names.KindNamespace, "pa"))}}
	if err := k.Apply(ctx, ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Apply(ctx, op.Step{Op: op.NetnsDel{NS: "pa"}}) })
	os.MkdirAll("/etc/netns/pa", 0o755)
	os.WriteFile("/etc/netns/pa/hosts", []byte("10.9.9.9 only-in-pa\n"), 0o644)
	t.Cleanup(func() { os.RemoveAll("/etc/netns/pa") })

	startOp := op.ProcStart{NS: "pa", Argv: []string{"sh", "-c", "cat /etc/hosts; readlink /proc/self/ns/net; exec sleep 1000"}, PidFile: names.DefaultRuntime.PidFile(project, "pa"), Log: names.DefaultRuntime.LogFile(project, "pa")}
	start := op.Step{Ref: ref("container pa"), Op: startOp}
	if err := k.Apply(ctx, start); err != nil {
		t.Fatal(err)
	}
	// A second start of a live process is ErrExist.
	if err := k.Apply(ctx, start); !machine.IsExist(err) {
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
		log, _ = os.ReadFile(startOp.Log)
		if strings.Contains(string(log), "net:[") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(string(log), "only-in-pa") {
		t.Errorf("the command did not see /etc/netns/pa/hosts:\n%s", log)
	}

	stop := op.Step{Op: op.ProcStop{PidFile: startOp.PidFile, Log: startOp.Log, DropLog: true}}
	if err := k.Apply(ctx, stop); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); !strings.Contains(string(b), ") Z") {
			t.Errorf("process %d still runs after stop: %s", pid, b)
		}
	}
	if _, err := os.Stat(names.DefaultRuntime.Project(project)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("runtime folder left after the last stop: %v", err)
	}
	// Stopping what is gone is success.
	if err := k.Apply(ctx, stop); err != nil {
		t.Error(err)
	}
}

func TestProcessStartFailuresLeaveNothing(t *testing.T) {
	sandbox.Require(t)
	// Wide enough for sh to end within it on a loaded machine.
	t.Setenv("TOPO_START_WINDOW", "5s")
	k := newKernel(t)
	ctx := context.Background()
	for _, argv := range [][]string{{"no-such-program-topo"}, {"sh", "-c", "echo boom; exit 3"}, {"sh", "-c", "echo done"}} {
		s := op.Step{Op: op.ProcStart{Argv: argv, PidFile: names.DefaultRuntime.PidFile(project, "x"), Log: names.DefaultRuntime.LogFile(project, "x")}}
		err := k.Apply(ctx, s)
		if err == nil {
			t.Fatalf("%q started", argv)
		}
		if argv[0] == "no-such-program-topo" && !errors.Is(err, daemon.ErrNotFound) {
			t.Errorf("%q: %v, want ErrNotFound", argv, err)
		}
		if entries, _ := os.ReadDir(filepath.Dir(names.DefaultRuntime.Project(project))); len(entries) != 0 {
			t.Errorf("%q left %v", argv, entries)
		}
	}
	// A namespace that does not exist is ErrNotExist.
	s := op.Step{Op: op.ProcStart{NS: "nope", Argv: []string{"true"}, PidFile: names.DefaultRuntime.PidFile(project, "x"), Log: names.DefaultRuntime.LogFile(project, "x")}}
	if err := k.Apply(ctx, s); !machine.IsNotFound(err) {
		t.Errorf("missing namespace: %v", err)
	}
}
