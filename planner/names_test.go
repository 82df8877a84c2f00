package planner_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/state"
)

// collidingNames is a file whose two networks, and two endpoints, hash to
// the same interface names: found by a cycle search over sha256 (Brent's),
// 2^24 hashes for the 48 bits of a bridge name, 2^22 for the 44 of a veth.
const collidingNames = `name: hash
networks:
  nc87f78da9ac2: {}
  n3eea6ea1a78d: {}
  n: {}
containers:
  c39e207c2b30: {networks: [n]}
  cb9736cc70dd: {networks: [n]}
`

// Two networks or endpoints of one file that would get the same interface
// name are file errors, found without a kernel, before any step.
func TestCollidingInterfaceNamesAreFileErrors(t *testing.T) {
	if a, b := names.Bridge("hash", "nc87f78da9ac2"), names.Bridge("hash", "n3eea6ea1a78d"); a != b {
		t.Fatalf("bridges %s and %s no longer collide", a, b)
	}
	if a, b := names.Veth("hash", "c39e207c2b30", "n"), names.Veth("hash", "cb9736cc70dd", "n"); a != b {
		t.Fatalf("veths %s and %s no longer collide", a, b)
	}
	f := parse(t, collidingNames)
	want := `/lab/topo.yaml:4:3: network "n3eea6ea1a78d": its bridge would be named br-e0061739e713, like network "nc87f78da9ac2"'s (line 3): the hashes of the two names agree in the 12 digits a bridge name holds; rename one of the networks
/lab/topo.yaml:8:29: container "cb9736cc70dd": its veth to network "n" would be named veth7bfcea6ff23, like container "c39e207c2b30"'s to network "n" (line 7): the hashes of the two agree in the 11 digits a veth name holds; rename one of the containers`
	err := planner.Check(f)
	if err == nil || err.Error() != want {
		t.Errorf("Check:\n%v\nwant:\n%s", err, want)
	}
	k := fake.New(nil)
	obs, _ := k.Observe(context.Background(), "hash")
	if _, _, err := planner.Up(f, obs, planner.Options{}); err == nil || err.Error() != want {
		t.Errorf("Up:\n%v\nwant:\n%s", err, want)
	}
	if err := planner.Check(parse(t, three)); err != nil {
		t.Errorf("Check(three) = %v", err)
	}
}

// A name held by another project's object is refused before the first
// step, and the message names that project and object.
func TestNameOfAnotherProjectIsRefused(t *testing.T) {
	f := parse(t, "name: b\nnetworks:\n  n: {}\ncontainers:\n  x: {networks: [n]}\n")
	for _, c := range []struct {
		link, mark, want string
	}{
		{names.Bridge("b", "n"), "topo:a:net:lan", "network n: link " + names.Bridge("b", "n") + " already exists and belongs to network lan of project a"},
		{names.Veth("b", "x", "n"), "topo:a:ep:y/lan", "container x: link " + names.Veth("b", "x", "n") + " already exists and belongs to endpoint y/lan of project a"},
	} {
		k := fake.New(&state.Snapshot{Host: state.Namespace{Links: []state.Link{{Name: c.link, Kind: "bridge", Alias: c.mark}}}})
		obs, _ := k.Observe(context.Background(), "b")
		if _, _, err := planner.Up(f, obs, planner.Options{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("link %s of project a: err = %v, want %q", c.link, err, c.want)
		}
	}
}

// The planner's problems are capped as the file's are: the first hundred,
// then a count.
func TestPlannerErrorsAreCapped(t *testing.T) {
	k := fake.New(nil)
	up(t, k, parse(t, "name: one\nnetworks:\n  n: {subnet: 10.0.0.0/8}\ncontainers:\n  x: {networks: [n]}\n"))
	var b strings.Builder
	b.WriteString("name: big\nnetworks:\n")
	for i := range 300 {
		fmt.Fprintf(&b, "  n%d: {subnet: 10.%d.%d.0/24}\n", i, i/256, i%256)
	}
	obs, _ := k.Observe(context.Background(), "big")
	_, _, err := planner.Up(parse(t, b.String()), obs, planner.Options{})
	if err == nil {
		t.Fatal("300 overlapping subnets planned")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 101 || lines[100] != "... and 200 more errors" || !strings.Contains(lines[0], "project one") {
		t.Errorf("%d lines, first %q, last %q", len(lines), lines[0], lines[len(lines)-1])
	}
}
