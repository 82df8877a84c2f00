package applier_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/internal/benchtopo"
	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
)

// BenchmarkApplyFake applies a whole up plan to the fake kernel: the
// applier's own overhead, without any real kernel work.
func BenchmarkApplyFake(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			f, err := spec.Parse("topo.yaml", benchtopo.Topology{Project: "bench", N: n, K: 4}.YAML())
			if err != nil {
				b.Fatal(err)
			}
			obs, _ := fake.New(nil).Observe(context.Background(), f.Project)
			p, _, err := planner.Up(f, obs, planner.Options{})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				b.StopTimer()
				k := fake.New(nil)
				b.StartTimer()
				if err := (&applier.Applier{Machine: k}).Apply(context.Background(), p); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(p.Steps)), "steps")
		})
	}
}
