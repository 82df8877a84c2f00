package firewall_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/internal/testkit"
	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
)

// p19847 and p42256 share the first 8 hex digits of their sha256, which
// is all that earlier topo put in chain names.
const (
	collideA = "p19847"
	collideB = "p42256"
)

func projectFile(project, subnet string) string {
	return "name: " + project + "\nnetworks:\n  lan: {subnet: " + subnet + "}\ncontainers:\n  a: {networks: [lan], ports: [\"80\"]}\n  b: {networks: [lan]}\n"
}

// legacyPrefix is the prefix of the project's chains as topo named them
// before: TOPO- and 8 hex digits of sha256(project).
func legacyPrefix(project string) string {
	sum := sha256.Sum256([]byte(project))
	return "TOPO-" + hex.EncodeToString(sum[:])[:8] + "-"
}

func apply(t *testing.T, k *fake.Machine, p *planner.Plan) {
	t.Helper()
	if err := (&applier.Applier{Machine: k}).Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

func downPlan(t *testing.T, k *fake.Machine, project string) *planner.Plan {
	t.Helper()
	obs, err := k.Observe(context.Background(), project)
	if err != nil {
		t.Fatal(err)
	}
	return planner.Down(project, obs, planner.Options{})
}

// Chain names of every length fit iptables' limit of 28 bytes.
func TestChainNamesFit(t *testing.T) {
	for _, p := range []string{"a", collideA, strings.Repeat("x", 63)} {
		for _, suffix := range []string{"IN", "OUT", "DNAT", "SNAT"} {
			if n := names.ChainPrefixOf(p) + suffix; len(n) > 28 {
				t.Errorf("chain %s has %d bytes", n, len(n))
			}
		}
	}
	if n := names.ChainPrefixOf(collideA) + "DNAT"; len(n) != 28 {
		t.Errorf("chain %s has %d bytes: use the 28 iptables allows", n, len(n))
	}
}

// Two projects whose names hash alike in the first 32 bits keep chains
// of their own: the second up leaves the first's rules, and each down
// removes only its own.
func TestCollidingProjectsKeepTheirChains(t *testing.T) {
	if legacyPrefix(collideA) != legacyPrefix(collideB) {
		t.Fatalf("%s and %s no longer collide in 8 digits", collideA, collideB)
	}
	if names.ChainPrefixOf(collideA) == names.ChainPrefixOf(collideB) {
		t.Errorf("%s and %s share chain prefix %s", collideA, collideB, names.ChainPrefixOf(collideA))
	}
	k := fake.New(nil)
	fa, fb := parse(t, projectFile(collideA, "10.81.1.0/24")), parse(t, projectFile(collideB, "10.81.2.0/24"))
	up(t, k, fa)
	up(t, k, fb)
	for _, f := range []string{projectFile(collideA, "10.81.1.0/24"), projectFile(collideB, "10.81.2.0/24")} {
		if p := plan(t, k, parse(t, f)); !p.Empty() {
			t.Errorf("after both ups, %s plans:\n%s", f[:12], render(p))
		}
	}
	apply(t, k, downPlan(t, k, collideB))
	if p := plan(t, k, fa); !p.Empty() {
		t.Errorf("after down of %s, %s plans:\n%s", collideB, collideA, render(p))
	}
	if s := k.Firewall.Save(); strings.Contains(s, "topo:"+collideB+":") || !strings.Contains(s, "topo:"+collideA+":") {
		t.Errorf("after down of %s:\n%s", collideB, s)
	}
	apply(t, k, downPlan(t, k, collideA))
	if s := k.Firewall.Save(); strings.Contains(s, "TOPO-") {
		t.Errorf("after both downs:\n%s", s)
	}
}

// A chain with the project's name that holds another project's rules is
// refused before the first step, naming both projects; down of either
// removes only its own rules from it.
func TestChainOfAnotherProjectIsRefused(t *testing.T) {
	k := fake.New(nil)
	up(t, k, parse(t, projectFile(collideA, "10.81.1.0/24")))
	// What a collision of 72 bits would give: A's rule in B's chain.
	mine := names.ChainPrefixOf(collideB) + "IN"
	k.Firewall.AddForeignRule("filter", mine, `-o br-x -m comment --comment "topo:`+collideA+`:net:lan" -j DROP`)
	k.Firewall.AddForeignRule("filter", names.ChainIngress, `-m comment --comment "topo:`+collideA+`:project:`+collideA+`" -j `+mine)
	before := k.Firewall.Save()

	obs, _ := k.Observe(context.Background(), collideB)
	_, _, err := planner.Up(parse(t, projectFile(collideB, "10.81.2.0/24")), obs, planner.Options{})
	if err == nil {
		t.Fatalf("up of %s planned over %s's rules", collideB, collideA)
	}
	for _, want := range []string{"project " + collideB + ":", "chain " + mine, "rules of project " + collideA, "bring project " + collideA + " down"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	// Down of B, which has nothing, changes nothing.
	apply(t, k, downPlan(t, k, collideB))
	if d := cmp.Diff(before, k.Firewall.Save()); d != "" {
		t.Errorf("down of %s changed the firewall (-before +after):\n%s", collideB, d)
	}
	// Down of A removes its rules, in B's chain too, and leaves the chain.
	apply(t, k, downPlan(t, k, collideA))
	if s := k.Firewall.Save(); strings.Contains(s, "topo:"+collideA) || !strings.Contains(s, ":"+mine) {
		t.Errorf("after down of %s:\n%s", collideA, s)
	}
}

// asEarlierTopo renames the project's chains in k to the names earlier
// topo gave them, as if that binary had brought the project up.
func asEarlierTopo(t *testing.T, k *fake.Machine, project string) {
	t.Helper()
	saved := strings.ReplaceAll(k.Firewall.Save(), names.ChainPrefixOf(project), legacyPrefix(project))
	p := downPlan(t, k, project)
	for _, s := range p.Steps {
		if testkit.Is[op.FirewallBatch](s) {
			if err := k.Apply(context.Background(), s.Op); err != nil {
				t.Fatal(err)
			}
		}
	}
	replay(t, k, saved)
}

// replay makes the chains and rules of an iptables-save text that k lacks.
func replay(t *testing.T, k *fake.Machine, saved string) {
	t.Helper()
	var table string
	var made, rules []firewall.Change
	sc := bufio.NewScanner(strings.NewReader(saved))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":TOPO-"):
			name, _, _ := strings.Cut(line[1:], " ")
			made = append(made, firewall.Change{Op: firewall.NewChain, Chain: name})
		case strings.HasPrefix(line, "-A "):
			chain, spec, _ := strings.Cut(line[3:], " ")
			rules = append(rules, firewall.Change{Op: firewall.Append, Chain: chain, Spec: spec})
		case line == "COMMIT":
			s := op.FirewallBatch{Table: table, Changes: append(made, rules...)}
			if err := k.Apply(context.Background(), s); err != nil {
				t.Fatalf("replay %s: %v", table, err)
			}
			made, rules = nil, nil
		}
	}
}

// A project brought up by an earlier topo, whose chains have 8-digit
// names, is moved to the new names by up and cleaned by down; the chains
// of another project that share its old names are left alone.
func TestChainsOfAnEarlierTopo(t *testing.T) {
	fa := parse(t, projectFile(collideA, "10.81.1.0/24"))
	fresh := fake.New(nil)
	up(t, fresh, fa)
	want := fresh.Firewall.Save()

	k := fake.New(nil)
	up(t, k, fa)
	asEarlierTopo(t, k, collideA)
	if s := k.Firewall.Save(); !strings.Contains(s, ":"+legacyPrefix(collideA)+"IN") || strings.Contains(s, names.ChainPrefixOf(collideA)) {
		t.Fatalf("the old names are not in place:\n%s", s)
	}
	p := plan(t, k, fa)
	got := render(p)
	for _, line := range []string{
		"+ iptables -t filter -N " + names.ChainPrefixOf(collideA) + "IN",
		"- iptables -t filter -F " + legacyPrefix(collideA) + "IN",
		"- iptables -t filter -X " + legacyPrefix(collideA) + "IN",
		"- iptables -t nat -X " + legacyPrefix(collideA) + "DNAT",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("plan lacks %q:\n%s", line, got)
		}
	}
	apply(t, k, p)
	if d := cmp.Diff(want, k.Firewall.Save()); d != "" {
		t.Errorf("after up from the old names (-want +got):\n%s", d)
	}
	if p := plan(t, k, fa); !p.Empty() {
		t.Errorf("plan after the move:\n%s", render(p))
	}

	// down from the old names leaves nothing.
	asEarlierTopo(t, k, collideA)
	apply(t, k, downPlan(t, k, collideA))
	if s := k.Firewall.Save(); strings.Contains(s, "TOPO-") {
		t.Errorf("down from the old names left:\n%s", s)
	}

	// B, whose old names are A's, neither takes nor removes A's old chains.
	up(t, k, fa)
	asEarlierTopo(t, k, collideA)
	before := k.Firewall.Save()
	fb := parse(t, projectFile(collideB, "10.81.2.0/24"))
	up(t, k, fb)
	apply(t, k, downPlan(t, k, collideB))
	if d := cmp.Diff(before, k.Firewall.Save()); d != "" {
		t.Errorf("up and down of %s changed %s's old chains (-before +after):\n%s", collideB, collideA, d)
	}
	// Its random port survives the move too.
	published := func() []string {
		obs, _ := k.Observe(context.Background(), collideA)
		var out []string
		for _, p := range firewall.ReadPublished(collideA, obs.Firewall) {
			out = append(out, p.String())
		}
		return out
	}
	old := published()
	if len(old) != 1 {
		t.Fatalf("publishes read from the old names: %v", old)
	}
	up(t, k, fa)
	if d := cmp.Diff(old, published()); d != "" {
		t.Errorf("publishes after the move (-before +after):\n%s", d)
	}
}
