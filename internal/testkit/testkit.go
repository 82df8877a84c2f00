// Package testkit holds what topo's tests share: parsing a file given as
// text, planning and bringing it up on a machine (the fake, usually), and
// rendering plans for comparison. Fault injection is machine.Faults.
package testkit

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
	"github.com/topolab/topo/view"
)

// Path is the file path Parse gives a file: its folder names no project.
const Path = "/lab/topo.yaml"

// Parse parses src as the file Path.
func Parse(t testing.TB, src string) *spec.File { return ParseAt(t, Path, src) }

// ParseAt parses src as the file path.
func ParseAt(t testing.TB, path, src string) *spec.File {
	t.Helper()
	f, err := spec.Parse(path, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Load reads and parses the file at path.
func Load(t testing.TB, path string) *spec.File {
	t.Helper()
	f, err := spec.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Observe observes project on m.
func Observe(t testing.TB, m machine.Machine, project string) *state.Snapshot {
	t.Helper()
	s, err := m.Observe(context.Background(), project)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Plan plans f against m.
func Plan(t testing.TB, m machine.Machine, f *spec.File) *planner.Plan {
	t.Helper()
	p, _, err := planner.Up(f, Observe(t, m, f.Project), planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Up plans f against m and applies the plan, failing t on error.
func Up(t testing.TB, m machine.Machine, f *spec.File) *planner.Plan {
	t.Helper()
	p := Plan(t, m, f)
	if err := (&applier.Applier{Machine: m}).Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

// Down plans the removal of project on m and applies it.
func Down(t testing.TB, m machine.Machine, project string) *planner.Plan {
	t.Helper()
	p := planner.Down(project, Observe(t, m, project), planner.Options{})
	if err := (&applier.Applier{Machine: m}).Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

// Human renders p as `topo plan` prints it.
func Human(p *planner.Plan) string {
	var b bytes.Buffer
	_ = view.NewPlanView(&b, false).Plan(p)
	return b.String()
}

// JSON renders p as `topo plan --json` prints it.
func JSON(p *planner.Plan) string {
	var b bytes.Buffer
	_ = view.NewPlanView(&b, true).Plan(p)
	return b.String()
}

// Is reports whether s's operation is a T.
func Is[T op.Operation](s op.Step) bool {
	_, ok := s.Op.(T)
	return ok
}

// WithoutLinkLocal drops from s, in place, the IPv6 link-local addresses
// and routes the kernel makes for a link as it comes up (a bridge's,
// once it has a port up): when they appear is the kernel's business,
// and plans leave them alone. It returns s.
func WithoutLinkLocal(s *state.Snapshot) *state.Snapshot {
	drop := func(n *state.Namespace) {
		for i := range n.Links {
			n.Links[i].Addrs = slices.DeleteFunc(n.Links[i].Addrs, func(a string) bool { return strings.HasPrefix(a, "fe80:") })
			if len(n.Links[i].Addrs) == 0 {
				n.Links[i].Addrs = nil
			}
		}
		n.Routes = slices.DeleteFunc(n.Routes, func(r state.Route) bool { return strings.HasPrefix(r.Dst, "fe80:") })
		if len(n.Routes) == 0 {
			n.Routes = nil
		}
	}
	drop(&s.Host)
	for i := range s.Namespaces {
		drop(&s.Namespaces[i])
	}
	return s
}
