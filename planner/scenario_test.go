package planner_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/internal/testkit"
	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

func parse(t *testing.T, src string) *spec.File {
	t.Helper()
	f, err := spec.Parse("/lab/topo.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// up plans f against k and applies it, failing the test on error.
func up(t *testing.T, k *fake.Machine, f *spec.File) *planner.Plan {
	t.Helper()
	obs, _ := k.Observe(context.Background(), f.Project)
	p, _, err := planner.Up(f, obs, planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := (&applier.Applier{Machine: k}).Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

func planOf(t *testing.T, k *fake.Machine, f *spec.File) *planner.Plan {
	t.Helper()
	obs, _ := k.Observe(context.Background(), f.Project)
	p, _, err := planner.Up(f, obs, planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const three = `
name: three
networks:
  lan: {subnet: 172.30.0.0/24}
containers:
  a: {networks: [lan]}
  b: {networks: [lan]}
  c: {networks: [lan]}
`

func addrOf(t *testing.T, k *fake.Machine, project, container string) string {
	t.Helper()
	obs, _ := k.Observe(context.Background(), project)
	ns := obs.Namespace(names.Namespace(project, container))
	if ns == nil {
		t.Fatalf("no namespace for %s", container)
	}
	for _, l := range ns.Links {
		if l.Name == "eth0" && len(l.Addrs) == 1 {
			return l.Addrs[0]
		}
	}
	t.Fatalf("%s has no single eth0 address: %+v", container, ns.Links)
	return ""
}

func TestUpThenNoChanges(t *testing.T) {
	k := fake.New(nil)
	f := parse(t, three)
	up(t, k, f)
	for c, want := range map[string]string{"a": "172.30.0.2/24", "b": "172.30.0.3/24", "c": "172.30.0.4/24"} {
		if got := addrOf(t, k, "three", c); got != want {
			t.Errorf("%s has %s, want %s", c, got, want)
		}
	}
	if p := planOf(t, k, f); !p.Empty() {
		t.Errorf("second plan is not empty:\n%v", p.Steps)
	}
	// Down removes everything and leaves the fake as new.
	obs, _ := k.Observe(context.Background(), "three")
	if err := (&applier.Applier{Machine: k}).Apply(context.Background(), planner.Down("three", obs, planner.Options{})); err != nil {
		t.Fatal(err)
	}
	// Forwarding too: topo set it, and this was the last project.
	fresh := fake.New(nil)
	if d := cmp.Diff(fresh.Dump(), k.Dump()); d != "" {
		t.Errorf("down left something (-new +after down):\n%s", d)
	}
}

func TestAddAndRemoveTouchOnlyThatContainer(t *testing.T) {
	k := fake.New(nil)
	up(t, k, parse(t, three))
	// b is removed: only b's steps; a and c keep their addresses.
	without := strings.Replace(three, "  b: {networks: [lan]}\n", "", 1)
	p := up(t, k, parse(t, without))
	for _, s := range p.Steps {
		if testkit.Is[op.RecordsWrite](s) {
			continue // the resolver's records change with any container
		}
		if !strings.Contains(s.Ref.String(), "b") || s.Action != op.Destroy {
			t.Errorf("removing b planned %s", s)
		}
	}
	with := strings.Replace(three, "  c: {networks: [lan]}\n", "  c: {networks: [lan]}\n  d: {networks: [lan]}\n", 1)
	p = up(t, k, parse(t, with))
	for _, s := range p.Steps {
		if testkit.Is[op.RecordsWrite](s) {
			continue
		}
		if s.Action != op.Create || !(strings.HasSuffix(s.Ref.String(), " b") || strings.Contains(s.Ref.String(), " b/") ||
			strings.HasSuffix(s.Ref.String(), " d") || strings.Contains(s.Ref.String(), " d/")) {
			t.Errorf("adding b and d planned %s", s)
		}
	}
	got := map[string]string{}
	for _, c := range []string{"a", "b", "c", "d"} {
		got[c] = addrOf(t, k, "three", c)
	}
	// a and c kept .2 and .4; b came back to the lowest free, d the next.
	want := map[string]string{"a": "172.30.0.2/24", "b": "172.30.0.3/24", "c": "172.30.0.4/24", "d": "172.30.0.5/24"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("addresses (-want +got):\n%s", d)
	}
}

func TestDriftIsRepaired(t *testing.T) {
	k := fake.New(nil)
	f := parse(t, three)
	up(t, k, f)
	before := k.Dump()
	// Someone deletes b's veth by hand.
	veth := names.Veth("three", "b", "lan")
	if err := k.Apply(context.Background(), op.LinkDel{Link: veth}); err != nil {
		t.Fatal(err)
	}
	p := planOf(t, k, f)
	if p.Empty() {
		t.Fatal("deleted veth does not show in the plan")
	}
	up(t, k, f)
	if d := cmp.Diff(before, k.Dump()); d != "" {
		t.Errorf("repair differs from the first up (-first +repaired):\n%s", d)
	}
}

func TestForeignObjectsCollideAndSurvive(t *testing.T) {
	foreign := &state.Snapshot{
		Host: state.Namespace{Links: []state.Link{
			{Name: "eth0", Kind: "device", Up: true, Addrs: []string{"172.17.0.5/16"}},
			{Name: "br-user", Kind: "bridge", Up: true},
		}, Routes: []state.Route{{Dst: "172.18.0.0/16", Dev: "eth0"}}},
		Namespaces: []state.Namespace{{Name: "mine"}, {Name: "three-a"}},
	}
	k := fake.New(foreign)
	obs, _ := k.Observe(context.Background(), "three")
	if _, _, err := planner.Up(parse(t, three), obs, planner.Options{}); err == nil || !strings.Contains(err.Error(), "three-a already exists and was not made by topo") {
		t.Fatalf("collision with a foreign namespace: err = %v", err)
	}
	// Without the collision, IPAM skips the host's networks, and down
	// leaves the foreign objects.
	k = fake.New(&state.Snapshot{Host: foreign.Host, Namespaces: foreign.Namespaces[:1]})
	before := k.Dump()
	f := parse(t, "name: p\ncontainers:\n  x: {}\n")
	up(t, k, f)
	if got := addrOf(t, k, "p", "x"); got != "172.19.0.2/16" {
		t.Errorf("x got %s, want 172.19.0.2/16 (172.17 and 172.18 are the host's)", got)
	}
	obs, _ = k.Observe(context.Background(), "p")
	if err := (&applier.Applier{Machine: k}).Apply(context.Background(), planner.Down("p", obs, planner.Options{})); err != nil {
		t.Fatal(err)
	}
	after := strings.Replace(k.Dump(), "sysctl net.ipv4.ip_forward=1", "sysctl net.ipv4.ip_forward=0", 1)
	if d := cmp.Diff(before, after); d != "" {
		t.Errorf("foreign objects changed (-before +after):\n%s", d)
	}
}

func TestTwoProjectsDoNotOverlap(t *testing.T) {
	k := fake.New(nil)
	up(t, k, parse(t, "name: one\ncontainers:\n  x: {}\n"))
	up(t, k, parse(t, "name: two\ncontainers:\n  x: {}\n"))
	if a, b := addrOf(t, k, "one", "x"), addrOf(t, k, "two", "x"); a != "172.17.0.2/16" || b != "172.18.0.2/16" {
		t.Errorf("one/x=%s two/x=%s, want 172.17.0.2/16 and 172.18.0.2/16", a, b)
	}
	// A fixed subnet that overlaps the other project's is refused.
	obs, _ := k.Observe(context.Background(), "three")
	_, _, err := planner.Up(parse(t, "name: three\nnetworks:\n  n: {subnet: 172.17.3.0/24}\ncontainers:\n  x: {networks: [n]}\n"), obs, planner.Options{})
	if err == nil || !strings.Contains(err.Error(), "project one") {
		t.Errorf("overlap with project one: err = %v", err)
	}
}

// TestRollbackAtEveryStep fails each step of an up in turn and checks that
// the kernel is left exactly as it was.
func TestRollbackAtEveryStep(t *testing.T) {
	src := `
name: rb
networks:
  front: {}
  back: {internal: true}
containers:
  web: {networks: [front, back]}
  db: {networks: [back]}
  probe: {}
`
	f := parse(t, src)
	// Start from a half-changed project so the plan has destroys too.
	seed := fake.New(nil)
	up(t, seed, parse(t, "name: rb\nnetworks:\n  old: {}\ncontainers:\n  gone: {networks: [old]}\n  web: {networks: [old]}\n"))
	obs, _ := seed.Observe(context.Background(), "rb")
	p, _, err := planner.Up(f, obs, planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) < 20 {
		t.Fatalf("plan has only %d steps", len(p.Steps))
	}
	for k := range p.Steps {
		t.Run(fmt.Sprintf("step%02d", k), func(t *testing.T) {
			fk := fake.New(nil)
			up(t, fk, parse(t, "name: rb\nnetworks:\n  old: {}\ncontainers:\n  gone: {networks: [old]}\n  web: {networks: [old]}\n"))
			before := fk.Dump()
			err := (&applier.Applier{Machine: &machine.Faults{Machine: fk, FailAt: k + 1}}).Apply(context.Background(), p)
			var se *applier.StepError
			if !errors.As(err, &se) || !errors.Is(err, machine.ErrInjected) || se.Index != k || se.Rollback != nil {
				t.Fatalf("err = %v", err)
			}
			if d := cmp.Diff(before, fk.Dump()); d != "" {
				t.Errorf("after rollback of %s (-before +after):\n%s", p.Steps[k], d)
			}
		})
	}
}
