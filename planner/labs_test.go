package planner_test

import (
	"strings"
	"testing"

	"github.com/topolab/topo/internal/testkit"
	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
)

// TestLabsDown: a down leaves the links to their namespaces' deletion
// (one wait of the kernel for all, not one a link), and each namespace
// that holds a link's rebuild goes before the other end's, whose
// namespace that rebuild needs.
func TestLabsDown(t *testing.T) {
	f, err := spec.Load("testdata/labs/topo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	k := fake.New(nil)
	fixtureUp(t, k, f)
	p := planner.Down(f.Project, fixtureObserve(t, k, f.Project), planner.Options{})
	del := map[string]int{}
	for i, s := range p.Steps {
		switch o := s.Op.(type) {
		case op.LinkDel:
			if s.Ref.Kind == op.RefLink {
				t.Errorf("step %d deletes a link of its own: %s", i+1, s)
			}
		case op.RouteDel:
			t.Errorf("step %d deletes a route of its own: %s", i+1, s)
		case op.NetnsDel:
			del[o.NS] = i
			if o.NS == "labs-r1" && !strings.Contains(s.Undo.Command(), "link add eth9") {
				t.Errorf("r1's undo does not make its links again: %s", s.Undo.Command())
			}
		}
	}
	if del["labs-r1"] > del["labs-r2"] {
		t.Errorf("r1's namespace, whose undo makes the links to r2 again, goes after r2's:\n%s", testkit.Human(p))
	}
}
