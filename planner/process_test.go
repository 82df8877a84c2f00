package planner_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/daemon"
	"github.com/topolab/topo/internal/testkit"
	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/privilege"
)

func init() {
	// Steps name runtime files; golden plans assume the default root.
	os.Unsetenv("TOPO_STATE_DIR")
}

const withCommands = `
name: app
networks:
  lan: {subnet: 10.5.0.0/24}
containers:
  web:
    networks: [lan]
    command: [python3, -m, http.server, "80"]
  worker:
    networks: [lan]
    command: [sleep, infinity]
  side:
    network_mode: container:web
    command: [sh, -c, "echo side; sleep 1000"]
  agent:
    network_mode: host
    command: [sleep, "60"]
  quiet:
    networks: [lan]
`

// pids hides process ids, which a restart changes, to compare dumps.
var pids = regexp.MustCompile(`pid=\d+`)

func dumpNoPIDs(k *fake.Machine) string { return pids.ReplaceAllString(k.Dump(), "pid=N") }

func down(t *testing.T, k *fake.Machine, project string) *planner.Plan {
	t.Helper()
	obs, _ := k.Observe(context.Background(), project)
	p := planner.Down(project, obs, planner.Options{})
	if err := (&applier.Applier{Machine: k}).Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

func procOf(t *testing.T, k *fake.Machine, project, container string) (ns string, pid int, running bool) {
	t.Helper()
	obs, _ := k.Observe(context.Background(), project)
	pr := obs.Process(container)
	if pr == nil {
		return "", 0, false
	}
	return pr.NS, pr.PID, pr.Running
}

func TestCommandsStartLastInTheirNamespaces(t *testing.T) {
	k := fake.New(nil)
	f := parse(t, withCommands)
	p := up(t, k, f)
	// Starts come after every network step.
	seen := false
	for _, s := range p.Steps {
		if testkit.Is[op.ProcStart](s) {
			seen = true
		} else if seen {
			t.Errorf("%s runs after a command started", s)
		}
	}
	for c, want := range map[string]string{"web": "app-web", "worker": "app-worker", "side": "app-web", "agent": ""} {
		ns, _, running := procOf(t, k, "app", c)
		if !running || ns != want {
			t.Errorf("%s: running=%v in %q, want running in %q", c, running, ns, want)
		}
	}
	if _, _, running := procOf(t, k, "app", "quiet"); running {
		t.Error("quiet has no command but runs one")
	}
	if p := planOf(t, k, f); !p.Empty() {
		t.Errorf("second plan is not empty:\n%v", p.Steps)
	}
	// Down stops every command first, and leaves no record and no log.
	dp := down(t, k, "app")
	for i, s := range dp.Steps {
		if !testkit.Is[op.ProcStop](s) && i < 4 {
			t.Errorf("down step %d is %s; commands stop first", i, s)
		}
		if testkit.Is[op.ProcStop](s) && !s.Op.(op.ProcStop).DropLog {
			t.Errorf("down keeps the log: %s", s)
		}
	}
	if d := k.Dump(); strings.Contains(d, "process ") || strings.Contains(d, "log ") {
		t.Errorf("down left processes or logs:\n%s", d)
	}
}

func TestDeadCommandIsDriftAndChangeRestartsOnlyIt(t *testing.T) {
	k := fake.New(nil)
	f := parse(t, withCommands)
	up(t, k, f)
	_, webPID, _ := procOf(t, k, "app", "web")
	_, workerPID, _ := procOf(t, k, "app", "worker")

	k.Processes.Exit(names.DefaultRuntime.PidFile("app", "worker"))
	p := planOf(t, k, f)
	if len(p.Steps) != 1 || !testkit.Is[op.ProcStart](p.Steps[0]) || p.Steps[0].Ref.String() != "container worker" {
		t.Fatalf("plan for a dead command:\n%v", p.Steps)
	}
	up(t, k, f)
	if _, pid, running := procOf(t, k, "app", "worker"); !running || pid == workerPID {
		t.Errorf("worker: running=%v pid %d (was %d)", running, pid, workerPID)
	}

	// A changed argv: worker alone is stopped and started again.
	changed := parse(t, strings.Replace(withCommands, "[sleep, infinity]", "[sleep, \"9999\"]", 1))
	p = planOf(t, k, changed)
	var got []string
	for _, s := range p.Steps {
		got = append(got, fmt.Sprintf("%c %s %s", s.Action, s.Op.Name(), s.Ref))
	}
	want := []string{"- proc-stop container worker", "+ proc-start container worker"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("plan for a changed command (-want +got):\n%s", d)
	}
	up(t, k, changed)
	if _, pid, _ := procOf(t, k, "app", "web"); pid != webPID {
		t.Errorf("web was restarted (pid %d, was %d)", pid, webPID)
	}
	// A command removed from the file is stopped and its log removed.
	noCmd := parse(t, strings.Replace(withCommands, "    command: [sleep, infinity]\n", "", 1))
	up(t, k, noCmd)
	if strings.Contains(k.Dump(), "worker.") {
		t.Errorf("worker's process or log left:\n%s", k.Dump())
	}
}

// TestChangedPrivilegesRestart: a changed user: or capability is a
// changed command, restarted alone, with the new privileges in its step;
// a process an earlier topo started unconfined is restarted too.
func TestChangedPrivilegesRestart(t *testing.T) {
	k := fake.New(nil)
	f := parse(t, withCommands)
	up(t, k, f)
	changed := parse(t, strings.Replace(withCommands, "    command: [sleep, infinity]\n", "    command: [sleep, infinity]\n    user: nobody\n    cap_add: [sys_time]\n", 1))
	p := planOf(t, k, changed)
	var got []string
	for _, s := range p.Steps {
		var priv privilege.Settings
		if start, ok := s.Op.(op.ProcStart); ok {
			priv = start.Privileges
		}
		got = append(got, fmt.Sprintf("%c %s %s %+v", s.Action, s.Op.Name(), s.Ref, priv))
	}
	want := []string{"- proc-stop container worker {User: CapAdd:[] CapDrop:[] Privileged:false}",
		"+ proc-start container worker {User:nobody CapAdd:[SYS_TIME] CapDrop:[] Privileged:false}"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("plan for changed privileges (-want +got):\n%s", d)
	}
	up(t, k, changed)
	if p := planOf(t, k, changed); !p.Empty() {
		t.Errorf("plan after up: %v", p.Steps)
	}

	obs, _ := k.Observe(context.Background(), "app")
	for i := range obs.Processes {
		obs.Processes[i].Unconfined = obs.Processes[i].Container == "web"
	}
	p, _, err := planner.Up(changed, obs, planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, s := range p.Steps {
		got = append(got, fmt.Sprintf("%c %s %s", s.Action, s.Op.Name(), s.Ref))
	}
	if d := cmp.Diff([]string{"- proc-stop container web", "+ proc-start container web"}, got); d != "" {
		t.Errorf("plan for a command started unconfined (-want +got):\n%s", d)
	}
}

func TestDeletedNamespaceRestartsItsCommands(t *testing.T) {
	k := fake.New(nil)
	f := parse(t, withCommands)
	up(t, k, f)
	// ip netns del by hand: the old processes keep the old namespace.
	if err := k.Apply(context.Background(), op.NetnsDel{NS: "app-web"}); err != nil {
		t.Fatal(err)
	}
	p := planOf(t, k, f)
	restarted := map[string]int{}
	for _, s := range p.Steps {
		if testkit.Is[op.ProcStart](s) || testkit.Is[op.ProcStop](s) {
			restarted[s.Ref.String()]++
		}
	}
	if d := cmp.Diff(map[string]int{"container web": 2, "container side": 2}, restarted); d != "" {
		t.Errorf("restarts (-want +got):\n%s", d)
	}
}

func TestMissingProgramRollsBackEverything(t *testing.T) {
	k := fake.New(nil)
	k.Processes.Missing = []string{"no-such-program"}
	// Something of the project exists already, and keeps running.
	up(t, k, parse(t, "name: app\ncontainers:\n  old:\n    command: [sleep, \"5\"]\n"))
	before := k.Dump()
	f := parse(t, strings.Replace(withCommands, "[sleep, infinity]", "[no-such-program, -x]", 1))
	obs, _ := k.Observe(context.Background(), "app")
	p, _, err := planner.Up(f, obs, planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = (&applier.Applier{Machine: k}).Apply(context.Background(), p)
	var se *applier.StepError
	if !errors.As(err, &se) || !errors.Is(err, daemon.ErrNotFound) || se.Rollback != nil {
		t.Fatalf("err = %v", err)
	}
	if !testkit.Is[op.ProcStart](se.Step) || se.Step.Ref.String() != "container worker" {
		t.Errorf("failed at %s", se.Step)
	}
	if d := cmp.Diff(pids.ReplaceAllString(before, "pid=N"), dumpNoPIDs(k)); d != "" {
		t.Errorf("rollback left a change (-before +after):\n%s", d)
	}
}

// TestModeChanges walks one container through every network mode, with a
// command, and checks each plan applies and converges, and that the command
// follows the container's namespace.
func TestModeChanges(t *testing.T) {
	k := fake.New(nil)
	base := `
name: mc
networks:
  lan: {subnet: 10.6.0.0/24}
containers:
  main: {networks: [lan]}
  x:
    %s
    command: [sleep, infinity]
`
	steps := []struct {
		mode, ns string
		links    []string // links in x's own namespace, if it has one
	}{
		{"networks: [lan]", "mc-x", []string{"eth0", "lo"}},
		{"network_mode: none", "mc-x", []string{"lo"}},
		{"network_mode: container:main", "mc-main", nil},
		{"network_mode: host", "", nil},
		{"networks: [lan]", "mc-x", []string{"eth0", "lo"}},
	}
	for i, st := range steps {
		f := parse(t, fmt.Sprintf(base, st.mode))
		up(t, k, f)
		if p := planOf(t, k, f); !p.Empty() {
			t.Fatalf("step %d (%s) does not converge:\n%v", i, st.mode, p.Steps)
		}
		ns, _, running := procOf(t, k, "mc", "x")
		if !running || ns != st.ns {
			t.Errorf("step %d (%s): x's command running=%v in %q, want %q", i, st.mode, running, ns, st.ns)
		}
		obs, _ := k.Observe(context.Background(), "mc")
		own := obs.Namespace("mc-x")
		if st.links == nil {
			if own != nil {
				t.Errorf("step %d (%s): mc-x still exists", i, st.mode)
			}
			continue
		}
		var names []string
		if own != nil {
			for _, l := range own.Links {
				names = append(names, l.Name)
			}
		}
		if d := cmp.Diff(st.links, names); d != "" {
			t.Errorf("step %d (%s): links of mc-x (-want +got):\n%s", i, st.mode, d)
		}
	}
}

// TestRollbackAtEveryStepWithCommands fails each step of a plan that
// starts, restarts and stops commands and checks the rollback.
func TestRollbackAtEveryStepWithCommands(t *testing.T) {
	seedSrc := "name: app\nnetworks:\n  lan: {subnet: 10.5.0.0/24}\ncontainers:\n  web:\n    networks: [lan]\n    command: [old, web]\n  gone:\n    command: [sleep, \"1\"]\n"
	seed := fake.New(nil)
	up(t, seed, parse(t, seedSrc))
	obs, _ := seed.Observe(context.Background(), "app")
	p, _, err := planner.Up(parse(t, withCommands), obs, planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for k := range p.Steps {
		t.Run(fmt.Sprintf("step%02d", k), func(t *testing.T) {
			fk := fake.New(nil)
			up(t, fk, parse(t, seedSrc))
			before := dumpNoPIDs(fk)
			err := (&applier.Applier{Machine: &machine.Faults{Machine: fk, FailAt: k + 1}}).Apply(context.Background(), p)
			var se *applier.StepError
			if !errors.As(err, &se) || se.Index != k || se.Rollback != nil {
				t.Fatalf("err = %v", err)
			}
			if d := cmp.Diff(before, dumpNoPIDs(fk)); d != "" {
				t.Errorf("after rollback of %s (-before +after):\n%s", p.Steps[k], d)
			}
		})
	}
}
