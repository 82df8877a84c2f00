package planner_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/internal/benchtopo"
	"github.com/topolab/topo/internal/testkit"
	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

// The planner's share of a command, against the fake kernel, for the
// bench program's shapes: planning N=1000 must cost a small part of the
// kernel's work (see BENCHMARKS.md).
//
//	go test ./planner -run '^$' -bench . -benchmem

func benchSpec(b *testing.B, n int) *spec.File {
	b.Helper()
	f, err := spec.Parse("topo.yaml", benchtopo.Topology{Project: "bench", N: n, K: benchtopo.Networks(n, 4)}.YAML())
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// converged returns the snapshot of a fake kernel on which f is up.
func converged(b *testing.B, f *spec.File) *state.Snapshot {
	b.Helper()
	k := fake.New(nil)
	obs, _ := k.Observe(context.Background(), f.Project)
	p, _, err := planner.Up(f, obs, planner.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := (&applier.Applier{Machine: k}).Apply(context.Background(), p); err != nil {
		b.Fatal(err)
	}
	obs, err = k.Observe(context.Background(), f.Project)
	if err != nil {
		b.Fatal(err)
	}
	return obs
}

var sizes = []int{100, 1000, 5000}

// BenchmarkPlanUp plans a whole project from nothing.
func BenchmarkPlanUp(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			f := benchSpec(b, n)
			obs, _ := fake.New(nil).Observe(context.Background(), f.Project)
			for b.Loop() {
				p, _, err := planner.Up(f, obs, planner.Options{})
				if err != nil || len(p.Steps) < 4*n {
					b.Fatalf("plan of %d steps, err %v", len(p.Steps), err)
				}
			}
		})
	}
}

// BenchmarkPlanNoop plans a converged project: the work of `topo plan`
// after `up`, without the kernel.
func BenchmarkPlanNoop(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			f := benchSpec(b, n)
			obs := converged(b, f)
			for b.Loop() {
				p, _, err := planner.Up(f, obs, planner.Options{})
				if err != nil || !p.Empty() {
					b.Fatalf("no-op plan has %d steps, err %v", len(p.Steps), err)
				}
			}
		})
	}
}

// BenchmarkPlanDown plans the removal of a whole project.
func BenchmarkPlanDown(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			f := benchSpec(b, n)
			obs := converged(b, f)
			for b.Loop() {
				p := planner.Down(f.Project, obs, planner.Options{})
				// Each container goes with its namespace (its veths with it).
				dels := 0
				for _, s := range p.Steps {
					if testkit.Is[op.NetnsDel](s) {
						dels++
					}
				}
				if dels != n {
					b.Fatalf("down plan deletes %d namespaces, want %d", dels, n)
				}
			}
		})
	}
}

// BenchmarkParse reads and validates the file.
func BenchmarkParse(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			src := benchtopo.Topology{Project: "bench", N: n, K: benchtopo.Networks(n, 4)}.YAML()
			for b.Loop() {
				if _, err := spec.Parse("topo.yaml", src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
