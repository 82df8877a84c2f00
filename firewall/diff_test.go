package firewall_test

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
	"github.com/topolab/topo/view"
)

const shop = `
name: shop
networks:
  front: {subnet: 10.42.1.0/24}
  back: {subnet: 10.42.2.0/24}
containers:
  web: {networks: [front], ports: ["8080:80", "80", "127.0.0.1:8081:80", "5300:5300/udp"]}
  db: {networks: [back]}
`

func parse(t *testing.T, src string) *spec.File {
	t.Helper()
	f, err := spec.Parse("/lab/topo.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func plan(t *testing.T, k *fake.Machine, f *spec.File) *planner.Plan {
	t.Helper()
	obs, err := k.Observe(context.Background(), f.Project)
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := planner.Up(f, obs, planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func render(p *planner.Plan) string {
	var b strings.Builder
	view.NewPlanView(&b, false).Plan(p)
	return b.String()
}

// A rule deleted by hand is drift: plan puts it back where it was, and
// nothing else changes.
func TestDeletedRuleIsRepaired(t *testing.T) {
	k := fake.New(nil)
	f := parse(t, shop)
	up(t, k, f)
	want := k.Firewall.Save()

	pre := names.ChainPrefixOf("shop")
	for _, c := range []struct{ table, chain, spec string }{
		{"filter", pre + "IN", `-d 10.42.1.2/32 -o ` + names.Bridge("shop", "front") + ` -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -m comment --comment "topo:shop:port:web/0.0.0.0:8080:80/tcp" -j ACCEPT`},
		{"filter", "FORWARD", `-m comment --comment "topo:shared" -j TOPO-INGRESS`},
		{"nat", pre + "DNAT", `-p udp -m udp --dport 5300 -m comment --comment "topo:shop:port:web/0.0.0.0:5300:5300/udp" -j DNAT --to-destination 10.42.1.2:5300`},
	} {
		if err := k.Apply(context.Background(), op.FirewallBatch{Table: c.table, Changes: []firewall.Change{{Op: firewall.Delete, Chain: c.chain, Spec: c.spec}}}); err != nil {
			t.Fatal(err)
		}
	}
	p := plan(t, k, f)
	got := render(p)
	for _, line := range []string{
		"+ iptables -t filter -I " + pre + "IN 2 -d 10.42.1.2/32",
		"+ iptables -t filter -I FORWARD 3 -m comment --comment \"topo:shared\" -j TOPO-INGRESS",
		"+ iptables -t nat -A " + pre + "DNAT -p udp",
		"Plan: 3 to add, 0 to change, 0 to destroy.",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("plan lacks %q:\n%s", line, got)
		}
	}
	if err := (&applier.Applier{Machine: k}).Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, k.Firewall.Save()); d != "" {
		t.Errorf("repair (-want +got):\n%s", d)
	}
	if p := plan(t, k, f); !p.Empty() {
		t.Errorf("plan after repair:\n%s", render(p))
	}
}

// A rule of the user's inserted in INPUT before topo's jump stays there:
// it is how a service of the host is opened to an internal network.
func TestRuleBeforeTheInputJumpStays(t *testing.T) {
	k := fake.New(nil)
	f := parse(t, strings.Replace(shop, "back: {subnet: 10.42.2.0/24}", "back: {subnet: 10.42.2.0/24, internal: true}", 1))
	up(t, k, f)
	mine := "-i " + names.Bridge("shop", "back") + " -p tcp -m tcp --dport 3128 -j ACCEPT"
	if err := k.Apply(context.Background(), op.FirewallBatch{Table: "filter", Changes: []firewall.Change{{Op: firewall.Insert, Chain: "INPUT", Pos: 1, Spec: mine}}}); err != nil {
		t.Fatal(err)
	}
	if p := plan(t, k, f); !p.Empty() {
		t.Errorf("plan moves topo's jump or the user's rule:\n%s", render(p))
	}
	if save := k.Firewall.Save(); !strings.Contains(save, "-A INPUT "+mine+"\n-A INPUT -m comment --comment \"topo:shared\" -j TOPO-INPUT\n") {
		t.Errorf("INPUT is not the user's rule then topo's jump:\n%s", save)
	}
}

// A rule added by hand to a chain of the project is removed; rules in
// TOPO-USER and other programs' rules are left alone.
func TestStrayRulesOfTheProjectGo(t *testing.T) {
	k := fake.New(nil)
	f := parse(t, shop)
	up(t, k, f)
	pre := names.ChainPrefixOf("shop")
	k.Firewall.AddForeignRule("filter", pre+"IN", "-s 1.2.3.4/32 -j ACCEPT")
	k.Firewall.AddForeignRule("filter", names.ChainUser, "-s 1.2.3.5/32 -j DROP")
	k.Firewall.AddForeignRule("filter", "FORWARD", "-s 1.2.3.6/32 -j DROP")
	p := plan(t, k, f)
	if got := render(p); !strings.Contains(got, "- iptables -t filter -D "+pre+"IN -s 1.2.3.4/32 -j ACCEPT") || p.Summary().Destroy != 1 || p.Summary().Add != 0 {
		t.Errorf("plan:\n%s", got)
	}
	if err := (&applier.Applier{Machine: k}).Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	// down keeps TOPO-USER, its jump, and the foreign rule.
	obs, _ := k.Observe(context.Background(), "shop")
	if err := (&applier.Applier{Machine: k}).Apply(context.Background(), planner.Down("shop", obs, planner.Options{})); err != nil {
		t.Fatal(err)
	}
	want := `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:TOPO-USER - [0:0]
-A FORWARD -m comment --comment "topo:shared" -j TOPO-USER
-A FORWARD -s 1.2.3.6/32 -j DROP
-A TOPO-USER -s 1.2.3.5/32 -j DROP
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
COMMIT
`
	if d := cmp.Diff(want, k.Firewall.Save()); d != "" {
		t.Errorf("after down (-want +got):\n%s", d)
	}
}

// A random host port stays the one it got while the container exists,
// even when a lower one frees up, and is taken by no other project.
func TestRandomPortIsKept(t *testing.T) {
	k := fake.New(nil)
	ports := &state.HostPorts{EphemeralLow: 32768, EphemeralHigh: 32800, Sockets: []state.Socket{{Proto: "tcp", Addr: "0.0.0.0", Port: 32768}}}
	k.SetPorts(ports)
	f := parse(t, shop)
	up(t, k, f)
	obs, _ := k.Observe(context.Background(), "shop")
	pubs := firewall.ReadPublished("shop", obs.Firewall)
	var random []string
	for _, p := range pubs {
		random = append(random, p.String()+"->"+p.Proto)
	}
	if d := cmp.Diff([]string{"0.0.0.0:8080->tcp", "0.0.0.0:32769->tcp", "127.0.0.1:8081->tcp", "0.0.0.0:5300->udp"}, random); d != "" {
		t.Errorf("publishes (-want +got):\n%s", d)
	}
	ports.Sockets = nil // 32768 is free now
	k.SetPorts(ports)
	if p := plan(t, k, f); !p.Empty() {
		t.Errorf("re-plan moves the random port:\n%s", render(p))
	}
	other := parse(t, "name: other\nnetworks: {n: {subnet: 10.9.0.0/24}}\ncontainers:\n  o: {networks: [n], ports: [\"80\", \"81\"]}\n")
	up(t, k, other)
	obs, _ = k.Observe(context.Background(), "other")
	var got []string
	for _, p := range firewall.ReadPublished("other", obs.Firewall) {
		got = append(got, p.String())
	}
	if d := cmp.Diff([]string{"0.0.0.0:32768", "0.0.0.0:32770"}, got); d != "" {
		t.Errorf("other project's ports (-want +got):\n%s", d)
	}
}

// A firewall failure midway through up rolls everything back, links and
// namespaces included.
func TestFirewallFailureRollsBack(t *testing.T) {
	k := fake.New(nil)
	k.Firewall.AddForeignRule("filter", "FORWARD", "-j DROP")
	before := k.Dump()
	f := parse(t, shop)
	p := plan(t, k, f)
	fail := func(o op.Operation) error {
		if fb, ok := o.(op.FirewallBatch); ok && fb.Table == "nat" && !slices.ContainsFunc(fb.Changes, func(c firewall.Change) bool { return !c.Adds() }) {
			return errors.New("iptables-restore: line 3 failed")
		}
		return nil
	}
	err := (&applier.Applier{Machine: &machine.Faults{Machine: k, Fail: fail}}).Apply(context.Background(), p)
	var se *applier.StepError
	if !errors.As(err, &se) || se.Rollback != nil {
		t.Fatalf("apply: %v", err)
	}
	if d := cmp.Diff(before, k.Dump()); d != "" {
		t.Errorf("kernel after rollback (-before +after):\n%s", d)
	}
}

// The fake refuses what iptables-restore refuses.
func TestFakeRejects(t *testing.T) {
	k := fake.New(nil)
	for _, c := range []firewall.Change{
		{Op: firewall.Delete, Chain: "FORWARD", Spec: "-j ACCEPT"},
		{Op: firewall.Append, Chain: "TOPO-NONE", Spec: "-j ACCEPT"},
		{Op: firewall.Append, Chain: "FORWARD", Spec: "-j TOPO-NONE"},
		{Op: firewall.DeleteChain, Chain: "FORWARD"},
		// Past the end is moved to the end (TestInsertPastTheEndGoesToTheEnd
		// of machine/iptables); before the start is refused.
		{Op: firewall.Insert, Chain: "FORWARD", Pos: 0, Spec: "-j ACCEPT"},
	} {
		if err := k.Apply(context.Background(), op.FirewallBatch{Table: "filter", Changes: []firewall.Change{c}}); err == nil {
			t.Errorf("%s: no error", c.Args())
		}
	}
	// A batch is all or nothing.
	err := k.Apply(context.Background(), op.FirewallBatch{Table: "filter", Changes: []firewall.Change{
		{Op: firewall.NewChain, Chain: "TOPO-X"}, {Op: firewall.Delete, Chain: "TOPO-X", Spec: "-j DROP"}}})
	if !machine.IsNotFound(err) {
		t.Errorf("delete of a missing rule: %v", err)
	}
	if strings.Contains(k.Firewall.Save(), "TOPO-X") {
		t.Error("a failed batch left a chain")
	}
	// A chain still jumped to cannot go.
	err = k.Apply(context.Background(), op.FirewallBatch{Table: "filter", Changes: []firewall.Change{
		{Op: firewall.NewChain, Chain: "TOPO-A"}, {Op: firewall.NewChain, Chain: "TOPO-B"}, {Op: firewall.Append, Chain: "TOPO-A", Spec: "-j TOPO-B"}, {Op: firewall.DeleteChain, Chain: "TOPO-B"}}})
	if err == nil || !strings.Contains(err.Error(), "referenced") {
		t.Errorf("deleting a referenced chain: %v", err)
	}
}

// Every change's inverse undoes it, so a step's Undo restores the table.
func TestInvert(t *testing.T) {
	cs := []firewall.Change{
		{Op: firewall.NewChain, Chain: "TOPO-A"},
		{Op: firewall.Append, Chain: "TOPO-A", Spec: "-j DROP"},
		{Op: firewall.Insert, Chain: "TOPO-A", Pos: 1, Spec: "-j ACCEPT"},
		{Op: firewall.Delete, Chain: "FORWARD", Pos: 1, Spec: "-j RETURN"},
		{Op: firewall.Flush, Chain: "TOPO-B", Flushed: []string{"-j ACCEPT", "-j DROP"}},
	}
	got := firewall.Invert(cs)
	want := []firewall.Change{
		{Op: firewall.Append, Chain: "TOPO-B", Spec: "-j ACCEPT"},
		{Op: firewall.Append, Chain: "TOPO-B", Spec: "-j DROP"},
		{Op: firewall.Insert, Chain: "FORWARD", Pos: 1, Spec: "-j RETURN"},
		// TOPO-A is the batch's own: flushed and deleted whole.
		{Op: firewall.Flush, Chain: "TOPO-A", Flushed: []string{"-j DROP", "-j ACCEPT"}},
		{Op: firewall.DeleteChain, Chain: "TOPO-A"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Invert (-want +got):\n%s", d)
	}
	if got := string(firewall.RestoreInput("nat", cs[:2])); got != "*nat\n-N TOPO-A\n-A TOPO-A -j DROP\nCOMMIT\n" {
		t.Errorf("RestoreInput: %q", got)
	}
}

// TestComment checks Comment against the regular expression it replaced,
// `--comment "([^"]*)"`, on the forms iptables-save prints and on broken
// ones.
func TestComment(t *testing.T) {
	re := regexp.MustCompile(`--comment "([^"]*)"`)
	for _, spec := range []string{
		`-s 10.0.0.0/24 ! -o br-1 -m comment --comment "topo:shop:net:lan" -j MASQUERADE`,
		`-m comment --comment "topo:shared" -j TOPO-USER`,
		`-m comment --comment "" -j ACCEPT`,
		`-m comment --comment "a --comment "b" -j ACCEPT`,
		`-m comment --comment "unterminated`,
		`-m comment --comment topo:unquoted -j ACCEPT`,
		`--comment "x"`,
		`-j ACCEPT`,
		``,
	} {
		want := ""
		if m := re.FindStringSubmatch(spec); m != nil {
			want = m[1]
		}
		if got := firewall.Comment(spec); got != want {
			t.Errorf("Comment(%q) = %q, want %q", spec, got, want)
		}
	}
}

// TestClampInserts: an insert past its chain's end, counted as the chain
// will be when it runs, moves to the end; the others keep their place.
func TestClampInserts(t *testing.T) {
	saved := []byte("*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -j DROP\nCOMMIT\n*nat\n:POSTROUTING ACCEPT [0:0]\n:CNI-1 - [0:0]\n-A POSTROUTING -s 10.88.0.2/32 -j CNI-1\nCOMMIT\n")
	lens := firewall.ChainLengths(saved, "nat")
	if lens["POSTROUTING"] != 1 || lens["CNI-1"] != 0 || len(lens) != 2 {
		t.Fatalf("lengths %v, want POSTROUTING 1 and CNI-1 0 only", lens)
	}
	cs := []firewall.Change{
		{Op: firewall.Insert, Chain: "POSTROUTING", Pos: 2, Spec: "-j A"}, // at the end: stays
		{Op: firewall.Insert, Chain: "POSTROUTING", Pos: 5, Spec: "-j B"}, // past it: 3
		{Op: firewall.Delete, Chain: "POSTROUTING", Spec: "-j A"},
		{Op: firewall.Insert, Chain: "POSTROUTING", Pos: 4, Spec: "-j C"}, // past it: 3
		{Op: firewall.NewChain, Chain: "TOPO-X"},
		{Op: firewall.Insert, Chain: "TOPO-X", Pos: 2, Spec: "-j D"}, // empty chain: 1
	}
	got, moved := firewall.ClampInserts(cs, lens)
	if !moved {
		t.Fatal("nothing moved")
	}
	var pos []int
	for _, c := range got {
		pos = append(pos, c.Pos)
	}
	if want := []int{2, 3, 0, 3, 0, 1}; !slices.Equal(pos, want) {
		t.Errorf("positions %v, want %v", pos, want)
	}
	if cs[1].Pos != 5 {
		t.Error("ClampInserts changed its input")
	}
	if _, moved := firewall.ClampInserts(cs[:1], lens); moved {
		t.Error("an insert at the end was moved")
	}
}
