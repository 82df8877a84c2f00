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
	for _, argv := range [][]string{{"no-such-program-topo"}, {"sh", "-c", "echo boom; exit 3"}, {"false"}} {
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

// TestProcessOneShotFinishes: a command that ends with status 0 within its
// start window is a one-shot that did its work: the start succeeds, the
// record stays with its status, and a stop removes it.
func TestProcessOneShotFinishes(t *testing.T) {
	sandbox.Require(t)
	t.Setenv("TOPO_START_WINDOW", "5s")
	k := newKernel(t)
	ctx := context.Background()
	s := op.ProcStart{Argv: []string{"sh", "-c", "echo done"}, PidFile: names.DefaultRuntime.PidFile(project, "x"), Log: names.DefaultRuntime.LogFile(project, "x")}
	if err := k.Apply(ctx, op.Step{Op: s}); err != nil {
		t.Fatalf("a one-shot ending with status 0: %v", err)
	}
	obs, err := k.Observe(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	pr := obs.Process("x")
	if pr == nil || pr.Running || !pr.Finished() {
		t.Fatalf("observed %+v, want a finished one-shot (exit 0, not running)", pr)
	}
	if err := k.Apply(ctx, op.Step{Op: op.ProcStop{PidFile: s.PidFile, Log: s.Log, DropLog: true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(names.DefaultRuntime.Project(project)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("runtime folder left after the stop: %v", err)
	}
}

// TestProcessStartBatch starts a run of commands together: each gets its
// own result, the one that dies at once fails and leaves nothing, the
// others run.
func TestProcessStartBatch(t *testing.T) {
	sandbox.Require(t)
	t.Setenv("TOPO_START_WINDOW", "3s")
	k := newKernel(t)
	ctx := context.Background()
	var steps []op.Step
	for i, argv := range [][]string{{"sleep", "1000"}, {"sh", "-c", "exit 7"}, {"sleep", "1000"}, {"no-such-program-topo"}} {
		name := "c" + strconv.Itoa(i)
		steps = append(steps, op.Step{Op: op.ProcStart{Argv: argv, PidFile: names.DefaultRuntime.PidFile(project, name), Log: names.DefaultRuntime.LogFile(project, name)}})
	}
	if n := k.Batch(steps); n != len(steps) {
		t.Fatalf("Batch = %d, want the %d starts together", n, len(steps))
	}
	errs := k.ApplyBatch(ctx, steps)
	t.Cleanup(func() {
		for _, s := range steps {
			k.Apply(ctx, op.Step{Op: op.ProcStop{PidFile: s.Op.(op.ProcStart).PidFile, Log: s.Op.(op.ProcStart).Log, DropLog: true}})
		}
	})
	var early *daemon.EarlyExitError
	if errs[0] != nil || errs[2] != nil || !errors.As(errs[1], &early) || !errors.Is(errs[3], daemon.ErrNotFound) {
		t.Fatalf("results %v, want nil, an early exit, nil, not found", errs)
	}
	obs, err := k.Observe(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	var running []string
	for _, pr := range obs.Processes {
		if pr.Running {
			running = append(running, pr.Container)
		}
	}
	if strings.Join(running, ",") != "c0,c2" || len(obs.Processes) != 2 {
		t.Errorf("observed %+v, want c0 and c2 running and nothing of c1, c3", obs.Processes)
	}
	for _, c := range []string{"c1", "c3"} {
		if _, err := os.Stat(names.DefaultRuntime.LogFile(project, c)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: log left by a failed start", c)
		}
	}
}
