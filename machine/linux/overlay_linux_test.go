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
	fakeMatchesRealOverlay(t, "192.0.2.11/24", overlayConf)
}

// TestFakeMatchesRealKernelOverlayIPv6: the same with a dual-stack
// overlay on an IPv6 underlay: IPv6 neighbour entries, forwarding
// entries to IPv6 hosts, a VXLAN device sending from an IPv6 address.
func TestFakeMatchesRealKernelOverlayIPv6(t *testing.T) {
	conf := strings.NewReplacer(`192.0.2.11`, `"2001:db8::11"`, `192.0.2.12`, `"2001:db8::12"`, `192.0.2.13`, `"2001:db8::13"`,
		"10.80.0.0/24 }", "10.80.0.0/24, enable_ipv6: true }").Replace(overlayConf)
	fakeMatchesRealOverlay(t, "2001:db8::11/64", conf)
}

// fakeMatchesRealOverlay brings conf up, and the file with a container
// moved, as h1, whose address under (ADDR/BITS) is on a bridge of the
// sandbox's, on the real kernel and the fake, and compares them.
func fakeMatchesRealOverlay(t *testing.T, under, overlayConf string) {
	sandbox.Require(t)
	for _, c := range [][]string{{"link", "add", "under0", "type", "bridge"}, {"addr", "add", under, "dev", "under0", "nodad"}, {"link", "set", "under0", "up"}} {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", c, err, out)
		}
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", "under0").Run() })
	real, err := linux.New(context.Background(), linux.Options{Runtime: names.DefaultRuntime})
	if err != nil {
		t.Fatal(err)
	}
	fk := fake.New(&state.Snapshot{Host: state.Namespace{Links: []state.Link{{Name: "under0", Kind: "bridge", Up: true, MTU: 1500, Addrs: []string{under}}}}})
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
