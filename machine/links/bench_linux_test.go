package links

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/internal/benchtopo"
	"github.com/topolab/topo/internal/sandbox"
	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
)

// The benchmarks below run topo's own path (observe, plan, apply) on the
// real kernel, in the sandbox, for the shapes of the bench program; with
// -cpuprofile they show where the CPU goes, and the per-op metrics show
// where the wall time goes (much of it is the kernel waiting, which a CPU
// profile does not see):
//
//	go test ./machine/links -run '^$' -bench 'Netlink' -benchtime 3x -cpuprofile cpu.prof

// opTimer is a machine that adds up the wall time of each operation.
type opTimer struct {
	machine.Machine
	mu   sync.Mutex
	wall map[string]time.Duration
	n    map[string]int
}

func newOpTimer(next machine.Machine) *opTimer {
	return &opTimer{Machine: next, wall: map[string]time.Duration{}, n: map[string]int{}}
}

func (t *opTimer) Apply(ctx context.Context, o op.Operation) error {
	start := time.Now()
	err := t.Machine.Apply(ctx, o)
	t.mu.Lock()
	t.wall[o.Name()] += time.Since(start)
	t.n[o.Name()]++
	t.mu.Unlock()
	return err
}

// ApplyBatch times a batch as the commands run it; its wall time is
// shared among its operations.
func (t *opTimer) ApplyBatch(ctx context.Context, ops []op.Operation) []error {
	start := time.Now()
	errs := t.Machine.ApplyBatch(ctx, ops)
	each := time.Since(start) / time.Duration(len(ops))
	t.mu.Lock()
	for _, o := range ops {
		t.wall[o.Name()] += each
		t.n[o.Name()]++
	}
	t.mu.Unlock()
	return errs
}

// report adds, per operation, the wall time per iteration in ms and the
// mean per operation in µs.
func (t *opTimer) report(b *testing.B) {
	ops := make([]string, 0, len(t.wall))
	for o := range t.wall {
		ops = append(ops, o)
	}
	sort.Strings(ops)
	for _, o := range ops {
		w, n := t.wall[o], t.n[o]
		b.ReportMetric(float64(w.Milliseconds())/float64(b.N), "ms-"+o+"/op")
		b.ReportMetric(float64(w.Microseconds())/float64(n), "µs/"+o)
	}
}

func benchFile(b *testing.B, n int) *spec.File {
	b.Helper()
	top := benchtopo.Topology{Project: "bench", N: n, K: 4}
	f, err := spec.Parse("topo.yaml", top.YAML())
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// newApplier is how the commands apply a plan.
func newApplier(m machine.Machine) *applier.Applier {
	return &applier.Applier{Machine: m}
}

func benchUp(b *testing.B, k machine.Machine, exec machine.Machine, f *spec.File) {
	b.Helper()
	ctx := context.Background()
	obs, err := k.Observe(ctx, f.Project)
	if err != nil {
		b.Fatal(err)
	}
	p, _, err := planner.Up(f, obs, planner.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := newApplier(exec).Apply(ctx, p); err != nil {
		b.Fatal(err)
	}
}

func benchDown(b *testing.B, k machine.Machine, exec machine.Machine, project string) {
	b.Helper()
	ctx := context.Background()
	obs, err := k.Observe(ctx, project)
	if err != nil {
		b.Fatal(err)
	}
	if err := newApplier(exec).Apply(ctx, planner.Down(project, obs, planner.Options{})); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkNetlinkUp(b *testing.B) {
	sandbox.Require(b)
	for _, n := range []int{100, 500} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			f := benchFile(b, n)
			k := mustNew(b)
			t := newOpTimer(k)
			for b.Loop() {
				benchUp(b, k, t, f)
				b.StopTimer()
				benchDown(b, k, k, f.Project)
				b.StartTimer()
			}
			t.report(b)
		})
	}
}

func BenchmarkNetlinkDown(b *testing.B) {
	sandbox.Require(b)
	for _, n := range []int{100, 500} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			f := benchFile(b, n)
			k := mustNew(b)
			t := newOpTimer(k)
			for b.Loop() {
				b.StopTimer()
				benchUp(b, k, k, f)
				b.StartTimer()
				benchDown(b, k, t, f.Project)
			}
			t.report(b)
		})
	}
}

// BenchmarkNetlinkPlan is a no-op plan: observe a converged project and
// diff it against its file.
func BenchmarkNetlinkPlan(b *testing.B) {
	sandbox.Require(b)
	for _, n := range []int{500, 1000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			f := benchFile(b, n)
			k := mustNew(b)
			benchUp(b, k, k, f)
			defer benchDown(b, k, k, f.Project)
			for b.Loop() {
				obs, err := k.Observe(context.Background(), f.Project)
				if err != nil {
					b.Fatal(err)
				}
				p, _, err := planner.Up(f, obs, planner.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if !p.Empty() {
					b.Fatalf("a converged project plans %d steps", len(p.Steps))
				}
			}
		})
	}
}

func mustNew(b *testing.B) machine.Machine { return newKernel(b).m }
