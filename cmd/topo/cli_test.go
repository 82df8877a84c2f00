package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/topolab/topo/internal/testkit"
	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/planner"
)

// The CLI runs on the machine its env gives it: these tests run the
// commands on the fake machine, without root, and check what they print.

const cliFile = `name: shop
networks:
  front: {subnet: 10.42.1.0/24}
containers:
  web:
    networks:
      front: {aliases: [www], ipv4_address: 10.42.1.10}
    ports: ["8080:80"]
    command: ["python3", "-m", "http.server", "80"]
  db: {networks: [front]}
`

// cli runs topo with args on m, with its runtime files under a fresh
// folder, and returns stdout, stderr and the error.
func cli(t *testing.T, m machine.Machine, rt names.Runtime, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e := env{runtime: rt, root: true, machine: func(context.Context, bool) (machine.Machine, error) { return m, nil }}
	root := newRootCmd(&stdout, &stderr, e)
	root.SetArgs(args)
	err := root.Execute()
	return stdout.String(), stderr.String(), err
}

func cliSetup(t *testing.T) (string, *fake.Machine, names.Runtime) {
	dir := filepath.Join(t.TempDir(), "shop")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "topo.yaml")
	if err := os.WriteFile(file, []byte(cliFile), 0o644); err != nil {
		t.Fatal(err)
	}
	rt := names.Runtime{Root: filepath.Join(t.TempDir(), "run")}
	return file, fake.NewAt(rt, nil), rt
}

// TestPlanPrintsThePlan: plan and plan --json print what the views
// render of the planner's plan against the machine.
func TestPlanPrintsThePlan(t *testing.T) {
	file, m, rt := cliSetup(t)
	want, _, err := planner.Up(testkit.Load(t, file), testkit.Observe(t, m, "shop"), planner.Options{Runtime: rt})
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := cli(t, m, rt, "-f", file, "plan")
	if err != nil || out != testkit.Human(want) {
		t.Errorf("plan: %v\n%s\nwant:\n%s", err, out, testkit.Human(want))
	}
	out, _, err = cli(t, m, rt, "-f", file, "plan", "--json")
	if err != nil || out != testkit.JSON(want) {
		t.Errorf("plan --json: %v\n%s", err, out)
	}
	if !strings.Contains(out, `"pid_file": "`+rt.PidFile("shop", "web")+`"`) {
		t.Errorf("plan --json names no pid file under the runtime root %s:\n%s", rt.Root, out)
	}
	_, _, err = cli(t, m, rt, "-f", file, "plan", "--detailed-exitcode")
	if ee, ok := err.(*exitError); !ok || ee.code != 2 {
		t.Errorf("plan --detailed-exitcode with changes: %v, want exit 2", err)
	}
}

// TestUpPsDown: up prints its steps and summary, ps the containers as
// up left them, a second up has nothing to do, and down removes it all.
func TestUpPsDown(t *testing.T) {
	file, m, rt := cliSetup(t)
	before := m.Dump()
	out, _, err := cli(t, m, rt, "-f", file, "up")
	if err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}
	for _, want := range []string{"+ ip netns add shop-web  # container web\n", "Project shop: up done in "} {
		if !strings.Contains(out, want) {
			t.Errorf("up printed no %q:\n%s", want, out)
		}
	}
	out, _, err = cli(t, m, rt, "-f", file, "ps")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"web   running  shop-web  front=10.42.1.10/24  0.0.0.0:8080->80/tcp  1000  python3 -m http.server 80", "db    up       shop-db   front=10.42.1.2/24"} {
		if !strings.Contains(out, want) {
			t.Errorf("ps printed no %q:\n%s", want, out)
		}
	}
	out, _, err = cli(t, m, rt, "-f", file, "port", "web", "80")
	if err != nil || out != "0.0.0.0:8080\n" {
		t.Errorf("port web 80: %v %q", err, out)
	}
	if out, _, err = cli(t, m, rt, "-f", file, "up"); err != nil || out != "Project shop: nothing to do.\n" {
		t.Errorf("second up: %v %q", err, out)
	}
	if out, _, err = cli(t, m, rt, "-p", "shop", "down"); err != nil || !strings.Contains(out, "Project shop: down done in ") {
		t.Errorf("down: %v\n%s", err, out)
	}
	if after := m.Dump(); after != before {
		t.Errorf("after down the machine differs:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if _, err := os.Stat(rt.Project("shop")); !os.IsNotExist(err) {
		t.Errorf("runtime folder left after down: %v", err)
	}
}

// TestUpFailureIsRolledBack: a step that fails (a command not found) is
// reported with the steps undone, and the machine is as it was.
func TestUpFailureIsRolledBack(t *testing.T) {
	file, m, rt := cliSetup(t)
	m.Processes.Missing = []string{"python3"}
	before := m.Dump()
	out, _, err := cli(t, m, rt, "-f", file, "up")
	if err == nil || !strings.Contains(err.Error(), "up of project shop: step") {
		t.Fatalf("up: %v", err)
	}
	for _, want := range []string{"  failed: \"python3\": command not found", "Rolled back the ", "the kernel is as it was."} {
		if !strings.Contains(out, want) {
			t.Errorf("up printed no %q:\n%s", want, out)
		}
	}
	if after := m.Dump(); after != before {
		t.Errorf("after the rollback the machine differs:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestNeedsRoot: commands that read the machine say so without root.
func TestNeedsRoot(t *testing.T) {
	file, _, rt := cliSetup(t)
	var stdout, stderr bytes.Buffer
	root := newRootCmd(&stdout, &stderr, env{runtime: rt})
	root.SetArgs([]string{"-f", file, "plan"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "topo plan needs root") {
		t.Errorf("plan without root: %v", err)
	}
}
