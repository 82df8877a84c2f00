package linux_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/internal/sandbox"
	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/machine/linux"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

const overlayConf = `hosts:
  h1: { address: 192.0.2.11 }
  h2: { address: 192.0.2.12 }
  h3: { address: 192.0.2.13 }
networks:
  mesh: { driver: overlay, subnet: 10.80.0.0/24 }
containers:
  a: { networks: [mesh] }
  b: { host: h2, networks: [mesh] }
  c: { host: h3, networks: [mesh] }
`

// TestFakeMatchesRealKernelOverlay: an overlay, then a container moved
// from h3 to h2 and one added on h2, on the real kernel and the fake as
// h1: the same VXLAN device and entries, changed the same way, and both
// gone after down.
func TestFakeMatchesRealKernelOverlay(t *testing.T) {
	sandbox.Require(t)
	for _, c := range [][]string{{"link", "add", "under0", "type", "bridge"}, {"addr", "add", "192.0.2.11/24", "dev", "under0"}, {"link", "set", "under0", "up"}} {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", c, err, out)
		}
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", "under0").Run() })
	real, err := linux.New(context.Background(), linux.Options{Runtime: names.DefaultRuntime})
	if err != nil {
		t.Fatal(err)
	}
	fk := fake.New(&state.Snapshot{Host: state.Namespace{Links: []state.Link{{Name: "under0", Kind: "bridge", Up: true, MTU: 1500, Addrs: []string{"192.0.2.11/24"}}}}})
	moved := strings.Replace(overlayConf, "c: { host: h3,", "c: { host: h2,", 1) + "  d: { host: h2, networks: [mesh] }\n"
	for i, src := range []string{overlayConf, moved} {
		f, err := spec.Parse("/conf/topo.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		r, k := converge(t, real, f), converge(t, fk, f)
		if d := cmp.Diff(k, r); d != "" {
			t.Errorf("file %d: fake and real kernels differ (-fake +real):\n%s", i, d)
		}
		if vx := r.Host.Link(names.VXLAN("conf", "mesh")); vx == nil || vx.VXLAN == nil || len(vx.VXLAN.FDB) == 0 {
			t.Errorf("file %d: no VXLAN device with entries observed: %+v", i, r.Host.Links)
		}
	}
	down := func(k machine.Machine) *state.Snapshot {
		obs, _ := k.Observe(context.Background(), "conf")
		if err := (&applier.Applier{Machine: k}).Apply(context.Background(), planner.Down("conf", obs, planner.Options{})); err != nil {
			t.Fatal(err)
		}
		after, _ := k.Observe(context.Background(), "conf")
		return normalize(after)
	}
	if d, r := down(fk), down(real); len(r.Host.Links) != 0 || !cmp.Equal(d, r) {
		t.Errorf("after down (-fake +real):\n%s", cmp.Diff(d, r))
	}
}
