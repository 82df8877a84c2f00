//go:build porting

package kernel

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
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
)

// The benchmarks below run topo's own path (observe, plan, apply) on the
// real kernel, in the sandbox, for the shapes of the bench program; with
// -cpuprofile they show where the CPU goes, and the per-op metrics show
// where the wall time goes (much of it is the kernel waiting, which a CPU
// profile does not see):
//
//	go test ./kernel -run '^$' -bench 'Netlink' -benchtime 3x -cpuprofile cpu.prof

// opTimer is an executor that adds up the wall time of each op.
type opTimer struct {
	next applier.Executor
	mu   sync.Mutex
	wall map[planner.Op]time.Duration
	n    map[planner.Op]int
}

func newOpTimer(next applier.Executor) *opTimer {
	return &opTimer{next: next, wall: map[planner.Op]time.Duration{}, n: map[planner.Op]int{}}
}

func (t *opTimer) Apply(ctx context.Context, s planner.Step) error {
	start := time.Now()
	err := t.next.Apply(ctx, s)
	t.mu.Lock()
	t.wall[s.Op] += time.Since(start)
	t.n[s.Op]++
	t.mu.Unlock()
	return err
}

// Batch and ApplyBatch pass batches through, so that the timed kernel
// runs as the commands run it; a batch's wall time is shared among its
// steps.
func (t *opTimer) Batch(steps []planner.Step) int {
	if b, ok := t.next.(applier.Batcher); ok {
		return b.Batch(steps)
	}
	return 1
}

func (t *opTimer) ApplyBatch(ctx context.Context, steps []planner.Step) []error {
	start := time.Now()
	errs := t.next.(applier.Batcher).ApplyBatch(ctx, steps)
	each := time.Since(start) / time.Duration(len(steps))
	t.mu.Lock()
	for _, s := range steps {
		t.wall[s.Op] += each
		t.n[s.Op]++
	}
	t.mu.Unlock()
	return errs
}

// report adds, per op, the wall time per iteration in ms and the mean per
// step in µs.
func (t *opTimer) report(b *testing.B) {
	ops := make([]string, 0, len(t.wall))
	for op := range t.wall {
		ops = append(ops, string(op))
	}
	sort.Strings(ops)
	for _, op := range ops {
		w, n := t.wall[planner.Op(op)], t.n[planner.Op(op)]
		b.ReportMetric(float64(w.Milliseconds())/float64(b.N), "ms-"+op+"/op")
		b.ReportMetric(float64(w.Microseconds())/float64(n), "µs/"+op)
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
func newApplier(exec applier.Executor) *applier.Applier {
	return &applier.Applier{Exec: exec}
}

func benchUp(b *testing.B, k Kernel, exec applier.Executor, f *spec.File) {
	b.Helper()
	ctx := context.Background()
	obs, err := k.Observe(ctx, f.Project)
	if err != nil {
		b.Fatal(err)
	}
	p, _, err := planner.Up(f, obs)
	if err != nil {
		b.Fatal(err)
	}
	if err := newApplier(exec).Apply(ctx, p); err != nil {
		b.Fatal(err)
	}
}

func benchDown(b *testing.B, k Kernel, exec applier.Executor, project string) {
	b.Helper()
	ctx := context.Background()
	obs, err := k.Observe(ctx, project)
	if err != nil {
		b.Fatal(err)
	}
	if err := newApplier(exec).Apply(ctx, planner.Down(project, obs)); err != nil {
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
				p, _, err := planner.Up(f, obs)
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

func mustNew(b *testing.B) Kernel {
	b.Helper()
	k, err := New()
	if err != nil {
		b.Fatal(err)
	}
	return k
}
