//go:build porting

package kernel

import (
	"context"
	"strings"
	"testing"

	"github.com/topolab/topo/planner"
)

func TestFakeRefusesToDeleteWhatIsNotMarked(t *testing.T) {
	ctx := context.Background()
	f := NewFake(nil)
	for _, s := range []planner.Step{
		{Op: planner.OpNetnsAdd, NS: "p-a", Alias: "topo:p:ns:a"},
		{Op: planner.OpBridgeAdd, Link: "br0", Alias: "someone else"},
	} {
		if err := f.Apply(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	before := f.Dump()
	for _, s := range []planner.Step{
		{Op: planner.OpNetnsDel, NS: "p-a", Alias: "topo:q:ns:a"},
		{Op: planner.OpLinkDel, Link: "br0", Alias: "topo:p:net:n"},
	} {
		if err := f.Apply(ctx, s); err == nil || !strings.Contains(err.Error(), "not topo's to delete") {
			t.Errorf("%s: err = %v", s.Command(), err)
		}
	}
	if f.Dump() != before {
		t.Error("a refused delete changed the fake")
	}
	// Missing objects are already deleted.
	if err := f.Apply(ctx, planner.Step{Op: planner.OpLinkDel, Link: "nope", Alias: "x"}); err != nil {
		t.Error(err)
	}
	if err := f.Apply(ctx, planner.Step{Op: planner.OpBridgeAdd, Link: "br0"}); !IsExist(err) {
		t.Errorf("creating an existing link: %v", err)
	}
}
