package txn_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/internal/testkit"
	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
	"github.com/topolab/topo/txn"
	"github.com/topolab/topo/view"
)

// The rollback and crash proofs run a plan that goes from seedFile's state
// to bigFile's: destroys (a network, a container, a moved endpoint, a
// default route) and creates (namespaces, bridges, veths, addresses,
// routes, forwarding). Ports and commands are in the file so that, as the
// planner learns firewall, resolver and process steps, the plan, and so the
// proof, covers them without a change here.
const seedFile = `
name: rb
networks:
  old: {subnet: 10.99.9.0/24}
  front: {subnet: 10.99.1.0/24}
containers:
  gone: {networks: [old]}
  web: {networks: [old]}
  db: {networks: [front]}
`

const bigFile = `
name: rb
networks:
  front: {subnet: 10.99.1.0/24}
  back: {subnet: [10.99.2.0/24, "fd99:2::/64"], internal: true}
  side: {subnet: [10.99.3.0/24, "fd99:3::/64"]}
containers:
  web:
    networks:
      front: {aliases: [www]}
      back: {}
    ports: ["18080:80", "127.0.0.1:18443:443", "15353:53/udp"]
    command: ["sleep", "3600"]
  db: {networks: [back]}
  cache: {networks: [back, side]}
  api: {networks: [front, side], ports: ["19000:9000"]}
  worker: {networks: [side], command: ["sleep", "3600"]}
  batch: {networks: [side, back]}
  probe: {networks: [front]}
  edge: {networks: [front, back, side]}
  tools: {network_mode: none}
  shadow: {network_mode: "container:web"}
  r1:
    network_mode: none
    sysctls: {net.ipv4.ip_forward: 1}
    routes: [{to: 10.77.0.0/24, via: 10.99.7.1}]
  r2: {networks: [side], routes: [{to: 10.99.1.0/24, via: 10.99.7.0, metric: 7}]}
links:
  - endpoints:
      - {container: r1, interface: p0, address: 10.99.7.0/31}
      - {container: r2, interface: p0, address: 10.99.7.1/31}
    mtu: 1400
    impairment: {rate: 10mbit}
`

// inPlaceBase is the project, up and with its commands running, that the
// in-place change proofs start from; each of inPlace changes one thing of
// it. Plans of creation (seedFile to bigFile) and of in-place change are
// proved alike.
const inPlaceBase = `
name: rb
networks:
  front: {subnet: 10.99.1.0/24}
  back: {subnet: 10.99.2.0/24, internal: true}
containers:
  web:
    networks:
      front: {aliases: [www], ipv4_address: 10.99.1.10}
    ports: ["18080:80"]
    command: ["sleep", "3600"]
  db: {networks: [back, front], command: ["sleep", "3600"]}
  probe: {network_mode: "container:web", command: ["sleep", "3600"]}
  tools: {networks: [front]}
  r1:
    network_mode: none
    sysctls: {net.ipv4.ip_forward: 1}
    routes: [{to: 10.77.0.0/24, via: 10.99.7.1}]
    command: ["sleep", "3600"]
  r2: {command: ["sleep", "3600"]}
links:
  - endpoints:
      - {container: r1, interface: p0, address: 10.99.7.0/31}
      - {container: r2, interface: p0, address: 10.99.7.1/31}
    impairment: {rate: 10mbit}
`

// change is an in-place change of a base file, as a replacement of its
// text.
type change struct {
	name      string
	old, new_ string
}

// inPlace are the in-place changes of inPlaceBase.
var inPlace = []change{
	{"address", "ipv4_address: 10.99.1.10", "ipv4_address: 10.99.1.20"},
	{"connect", "front: {aliases: [www], ipv4_address: 10.99.1.10}\n", "front: {aliases: [www], ipv4_address: 10.99.1.10}\n      back: {}\n"},
	{"disconnect", "db: {networks: [back, front]", "db: {networks: [back]"},
	{"mode", `probe: {network_mode: "container:web"`, "probe: {networks: [back]"},
	{"subnet", "front: {subnet: 10.99.1.0/24}", "front: {subnet: 10.99.5.0/24}"},
	{"alias", "aliases: [www]", "aliases: [www2, www3]"},
	{"port", `ports: ["18080:80"]`, `ports: ["18081:80", "127.0.0.1:18443:443"]`},
	{"mtu", "front: {subnet: 10.99.1.0/24}", "front: {subnet: 10.99.1.0/24, mtu: 1400}"},
	{"route", "via: 10.99.7.1}", "via: 10.99.7.1, metric: 5}"},
	{"rate", "rate: 10mbit", "rate: 20mbit"},
	{"link-mtu", "    impairment: {rate: 10mbit}\n", "    impairment: {rate: 10mbit}\n    mtu: 1400\n"},
	{"link-mac", "address: 10.99.7.1/31}", "address: 10.99.7.1/31, mac: \"02:00:00:00:07:01\"}"},
	{"link-address", "10.99.7.1/31}", "10.99.7.6/30}"},
	{"sysctl", "net.ipv4.ip_forward: 1", "net.ipv4.ip_forward: 0"},
	{"sysctl-gone", "    sysctls: {net.ipv4.ip_forward: 1}\n", ""},
	{"link-gone", "links:", "x-links:"},
	{"endpoint-rate", "tools: {networks: [front]}", "tools: {networks: {front: {impairment: {rate: 50mbit}}}}"},
	{"endpoint-mac", "tools: {networks: [front]}", `tools: {networks: {front: {mac_address: "02:00:00:00:99:01"}}}`},
	{"interface-name", "tools: {networks: [front]}", "tools: {networks: {front: {interface_name: lan}}}"},
	{"ipv6", "front: {subnet: 10.99.1.0/24}", `front: {subnet: [10.99.1.0/24, "fd99:1::/64"]}`},
	{"ipv6-only", "back: {subnet: 10.99.2.0/24, internal: true}", `back: {enable_ipv4: false, subnet: "fd99:2::/64", internal: true}`},
	{"ipv6-loopback", `ports: ["18080:80"]`, `ports: ["18080:80", "[::1]:18444:443", "[::1]::53/udp"]`},
}

// inPlaceFile returns the changed file of change i; for "address" and
// "subnet", it also fixes what the change makes invalid.
func inPlaceFile(t testing.TB, i int) string {
	c := inPlace[i]
	out := changed(t, inPlaceBase, c)
	switch c.name {
	case "subnet":
		out = strings.Replace(out, "10.99.1.10", "10.99.5.10", 1)
	case "link-address":
		out = strings.Replace(out, "10.99.7.0/31", "10.99.7.5/30", 1)
		out = strings.Replace(out, "via: 10.99.7.1}", "via: 10.99.7.6}", 1)
	case "ipv6-loopback":
		// A publish on [::1] needs IPv6 on the network it forwards to.
		out = strings.Replace(out, "front: {subnet: 10.99.1.0/24}", `front: {subnet: [10.99.1.0/24, "fd99:1::/64"]}`, 1)
	case "link-gone":
		out = strings.Replace(out, "    routes: [{to: 10.77.0.0/24, via: 10.99.7.1}]\n", "", 1)
	}
	inPlaceFiles.Store(out, true)
	return out
}

// changed is base with c made, an in-place change (see inPlaceFiles).
func changed(t testing.TB, base string, c change) string {
	if !strings.Contains(base, c.old) {
		t.Fatalf("change %s: %q not in the base file", c.name, c.old)
	}
	out := strings.Replace(base, c.old, c.new_, 1)
	inPlaceFiles.Store(out, true)
	return out
}

// inPlaceFiles holds the files inPlaceFile made: their downs are a down
// like bigFile's, which its own proofs cover.
var inPlaceFiles sync.Map

func parse(t testing.TB, src string) *spec.File {
	t.Helper()
	f, err := spec.Parse("/lab/rb/topo.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// project returns a transaction runner on k with its runtime folder in a
// fresh temporary folder.
func project(t testing.TB, m machine.Machine) *txn.Project {
	return &txn.Project{Name: "rb", Machine: m, Dir: runDir(t) + "/rb"}
}

// runDir is a folder on a tmpfs when there is one to write (/run, private
// inside the sandbox), as topo's runtime folder is: the journal syncs each
// step, which costs milliseconds on a disk.
func runDir(t testing.TB) string {
	dir, err := os.MkdirTemp("/run", "txn-test-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// observe observes the project, without the kernel's link-local
// addresses, which come when the kernel gets to them.
func observe(t testing.TB, k machine.Machine) *state.Snapshot {
	t.Helper()
	s, err := k.Observe(context.Background(), "rb")
	if err != nil {
		t.Fatal(err)
	}
	return testkit.WithoutLinkLocal(s)
}

func mustUp(t testing.TB, p *txn.Project, src string) {
	t.Helper()
	if _, err := p.Up(context.Background(), parse(t, src)); err != nil {
		t.Fatalf("up: %v", err)
	}
}

func mustDown(t testing.TB, p *txn.Project) {
	t.Helper()
	if _, err := p.Down(context.Background()); err != nil {
		t.Fatalf("down: %v", err)
	}
}

// converged fails t unless a plan of src against k is empty.
func converged(t testing.TB, k machine.Machine, src string) {
	t.Helper()
	p, _, err := planner.Up(parse(t, src), observe(t, k), planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Empty() {
		var b strings.Builder
		view.NewPlanView(&b, false).Plan(p)
		t.Fatalf("not converged:\n%s", b.String())
	}
}

// faults fails, or "crashes" at, given operations of m (1-based, undos
// included): see machine.Faults. A crash ends the calling goroutine with
// runtime.Goexit after (or, with before, instead of) running the
// operation: no rollback, no further journal record, as kill -9 would
// leave it. During a crash, when partial is set, it runs instead of the
// operation, to leave it half done as only a real kernel can.
func faults(m machine.Machine, failAt, crashAt int, before bool, partial func(op.Operation)) *machine.Faults {
	return &machine.Faults{Machine: m, FailAt: failAt, CrashAt: crashAt, Before: before, Partial: partial, Crash: runtime.Goexit}
}

// headline names what a crash hit.
func headline(o op.Operation) string {
	if o == nil {
		return "nothing"
	}
	return op.Headline(o)
}

// crashed runs fn in a goroutine of its own, as a process that may be
// killed, and reports whether it crashed.
func crashed(fn func()) bool {
	done := make(chan bool)
	go func() {
		ok := false
		defer func() { done <- !ok }()
		fn()
		ok = true
	}()
	return <-done
}

// rollbackEveryStep is the every-step rollback proof on kernel k: for each
// step of the plan from seedFile's state to bigFile's, it fails that step
// and checks that the observed kernel equals its snapshot from before up.
// Each rollback must leave the kernel at the snapshot, so the next step
// starts from there; reset brings k to seedFile's state at the start and
// after a rollback that failed to. It logs the table
// (k, step, result).
func rollbackEveryStep(t *testing.T, k machine.Machine, reset func(), to string, minSteps int, opts ...cmp.Option) {
	reset()
	plan, _, err := planner.Up(parse(t, to), observe(t, k), planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Steps) < minSteps {
		t.Fatalf("plan has %d steps, want at least %d", len(plan.Steps), minSteps)
	}
	ops := map[string]int{}
	for _, s := range plan.Steps {
		ops[s.Op.Name()]++
	}
	t.Logf("plan: %d steps, by op: %v", len(plan.Steps), ops)
	t.Logf("%3s  %-72s  %s", "k", "step", "result")
	before := observe(t, k)
	for i, s := range plan.Steps {
		_, err := project(t, faults(k, i+1, 0, false, nil)).Up(context.Background(), parse(t, to))
		var se *applier.StepError
		result := ""
		switch {
		case !errors.As(err, &se) || !errors.Is(err, machine.ErrInjected) || se.Index != i:
			t.Errorf("step %d: err = %v, want the injected failure of step %d", i, err, i)
			result = "WRONG ERROR"
		case se.Rollback != nil:
			t.Errorf("step %d: rollback failed: %v", i, se.Rollback)
			result = "ROLLBACK FAILED"
		case !onlyRestarts(se.Compared):
			t.Errorf("step %d: up's own comparison after the rollback: %s", i, se.Compared)
			result = "UP SAYS IT DIFFERS"
		}
		// A command the plan restarted runs again after the rollback, as
		// a new process: all else of it must be as before.
		// A foreign bridge's neighbours are the kernel's, learnt from the
		// traffic of the steps (an overlay's VXLAN resolving the other
		// hosts on the underlay), not topo's to put back.
		if d := cmp.Diff(before, observe(t, k), append(opts, cmpopts.IgnoreFields(state.Process{}, "PID"), cmpopts.IgnoreFields(state.Link{}, "Neighbours"))...); d != "" {
			t.Errorf("after failing step %d (%s) and rolling back, the kernel differs (-before +after):\n%s", i, s, d)
			result = "DIFFERS"
			// Start the next step from the snapshot again.
			reset()
			before = observe(t, k)
		}
		if result == "" {
			result = fmt.Sprintf("rolled back %d, equal", se.RolledBack)
			if n := len(se.Compared.Differences); n > 0 {
				result += fmt.Sprintf(" (%d restarted)", n)
			}
		}
		cmd := s.Command()
		if len(cmd) > 70 {
			cmd = cmd[:67] + "..."
		}
		t.Logf("%3d  %c %-70s  %s", i, s.Action, cmd, result)
	}
}

// downRollbackEveryStep is the rollback proof of a down: with k holding
// the project of file, up (reset brings it there), for each step of its
// down it fails that step and checks that the rollback leaves the kernel
// as its snapshot from before the down: a down that fails takes nothing
// away, not even what a step's undo does not name.
func downRollbackEveryStep(t *testing.T, k machine.Machine, reset func(), minSteps int, opts ...cmp.Option) {
	reset()
	plan := planner.Down("rb", observe(t, k), planner.Options{})
	if len(plan.Steps) < minSteps {
		t.Fatalf("down has %d steps, want at least %d", len(plan.Steps), minSteps)
	}
	before := observe(t, k)
	for i, s := range plan.Steps {
		_, err := project(t, faults(k, i+1, 0, false, nil)).Down(context.Background())
		var se *applier.StepError
		switch {
		case !errors.As(err, &se) || !errors.Is(err, machine.ErrInjected) || se.Index != i:
			t.Errorf("down step %d: err = %v, want the injected failure of step %d", i, err, i)
		case se.Rollback != nil:
			t.Errorf("down step %d: rollback failed: %v", i, se.Rollback)
		case !onlyRestarts(se.Compared):
			t.Errorf("down step %d: down's own comparison after the rollback: %s", i, se.Compared)
		}
		// The resolver a step stopped runs again as a new process; a
		// chain made again is listed last, and the order of chains
		// means nothing (that of their rules does).
		byName := cmpopts.SortSlices(func(a, b state.FwChain) bool { return a.Name < b.Name })
		if d := cmp.Diff(before, observe(t, k), append(opts, cmpopts.IgnoreFields(state.Process{}, "PID"), cmpopts.IgnoreFields(state.Resolver{}, "PID"), cmpopts.IgnoreFields(state.Link{}, "Neighbours"), byName)...); d != "" {
			t.Errorf("after failing down step %d (%s) and rolling back, the kernel differs (-before +after):\n%s", i, s, d)
			reset()
			before = observe(t, k)
		}
		cmd := s.Command()
		if len(cmd) > 70 {
			cmd = cmd[:67] + "..."
		}
		t.Logf("%3d  %c %-70s  rolled back %d", i, s.Action, cmd, rolledBack(se))
	}
}

// rolledBack is how many steps se says were rolled back, -1 for none.
func rolledBack(se *applier.StepError) int {
	if se == nil {
		return -1
	}
	return se.RolledBack
}

// onlyRestarts reports whether c found no difference but commands that
// run again as new processes.
func onlyRestarts(c *planner.Comparison) bool {
	if c == nil || c.Err != nil {
		return false
	}
	for _, d := range c.Differences {
		if !d.Restart {
			return false
		}
	}
	return true
}

// undoneLeft returns the undos recovery's notes say it could not run,
// but for the commands it never starts (the next up starts the file's).
func undoneLeft(notes string) []string {
	var left []string
	for _, l := range strings.Split(notes, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "undo of step") && !strings.Contains(l, "recovery starts no command") {
			left = append(left, l)
		}
	}
	return left
}

// crashAtEveryStep is the crash proof in process: for each kernel call of
// an up from seedFile's state to bigFile's, of a down of bigFile's project,
// and of the rollback of an up that failed, the run "crashes" there (see
// faults); then one up must converge and one down must leave the kernel as
// it was before the project existed. Calls whose step pick rejects are
// skipped; partial, when not nil, leaves the crashed step half done.
func crashAtEveryStep(t *testing.T, k machine.Machine, reset func(), to string, pick func(op.Step) bool, partial func(op.Operation)) {
	reset()
	plan, _, err := planner.Up(parse(t, to), observe(t, k), planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustDown(t, project(t, k))
	empty := observe(t, k)
	mustUp(t, project(t, k), to)
	downPlan := planner.Down("rb", observe(t, k), planner.Options{})
	if _, ok := inPlaceFiles.Load(to); ok {
		downPlan = &planner.Plan{}
	}

	type run struct {
		verb            string
		failAt, crashAt int
		step            op.Step
	}
	var runs []run
	for i, s := range plan.Steps {
		runs = append(runs, run{"up", 0, i + 1, s})
		// Fail step i, crash in the middle of undoing what came before.
		if i > 0 {
			j := i / 2
			runs = append(runs, run{"rollback", i + 1, i + 1 + (i - j), *plan.Steps[j].Undo})
		}
	}
	for i, s := range downPlan.Steps {
		runs = append(runs, run{"down", 0, i + 1, s})
	}
	count := map[string]int{}
	for i, r := range runs {
		if pick != nil && !pick(r.step) {
			continue
		}
		count[r.verb]++
		reset()
		if r.verb == "down" {
			mustUp(t, project(t, k), to)
		}
		dir := runDir(t) + "/rb"
		f := faults(k, r.failAt, r.crashAt, i%2 == 1, partial)
		p := &txn.Project{Name: "rb", Machine: f, Dir: dir}
		if !crashed(func() {
			if r.verb == "down" {
				p.Down(context.Background())
			} else {
				p.Up(context.Background(), parse(t, to))
			}
		}) {
			t.Fatalf("%s did not reach call %d", r.verb, r.crashAt)
		}
		what := fmt.Sprintf("%s crashed at call %d (%s)", r.verb, r.crashAt, headline(f.Crashed))
		if pend, err := p.Pending(); err != nil || pend == nil {
			t.Fatalf("%s: pending = %v, %v; want the interrupted run", what, pend, err)
		}
		// The next process.
		var notes strings.Builder
		p = &txn.Project{Name: "rb", Machine: k, Dir: dir, Notes: &notes}
		res, err := p.Up(context.Background(), parse(t, to))
		if err != nil || res.Recovered == nil {
			t.Fatalf("%s: up after it: %v (recovered %v)", what, err, res.Recovered)
		}
		// A step left half done (partial) may leave its undo to the
		// next plan; a crash between steps may not.
		if left := undoneLeft(notes.String()); len(left) > 0 && partial == nil {
			t.Errorf("%s: recovery left to the next plan what it should have undone:\n  %s", what, strings.Join(left, "\n  "))
		}
		converged(t, k, to)
		mustDown(t, p)
		// Forwarding too: the last project's down puts it back.
		if d := cmp.Diff(empty, observe(t, k)); d != "" {
			t.Fatalf("%s: down after it left (-clean +after):\n%s", what, d)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s: runtime folder %s left after down (%v)", what, dir, err)
		}
	}
	t.Logf("crashed at %v calls; each time one up converged and one down left nothing", count)
	if kinds := 1 + min(len(plan.Steps)-1, 1) + min(len(downPlan.Steps), 1); len(count) != kinds {
		t.Errorf("crashes by kind %v: want some in each of %d kinds (up, rollback, down)", count, kinds)
	}
}
