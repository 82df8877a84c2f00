package benchtopo

import (
	"context"
	"net/netip"
	"testing"

	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
)

// TestAddrMatchesIPAM checks that the addresses the scripts use are the ones
// topo gives, so that every tool in a comparison builds the same network.
func TestAddrMatchesIPAM(t *testing.T) {
	top := Topology{Project: "b", N: 37, K: 4}
	if err := top.Check(); err != nil {
		t.Fatal(err)
	}
	f, err := spec.Parse("topo.yaml", top.YAML())
	if err != nil {
		t.Fatal(err)
	}
	obs, err := fake.New(nil).Observe(context.Background(), top.Project)
	if err != nil {
		t.Fatal(err)
	}
	m, err := planner.Desire(f, obs)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Containers) != top.N {
		t.Fatalf("model has %d containers, want %d", len(m.Containers), top.N)
	}
	for i, c := range m.Containers {
		if c.Name != top.Container(i) || len(c.Endpoints) != 1 {
			t.Fatalf("container %d is %s with %d endpoints", i, c.Name, len(c.Endpoints))
		}
		e := c.Endpoints[0]
		if e.Network != top.Network(top.NetworkOf(i)) || e.Addr.Addr() != top.Addr(i) || e.Addr.Bits() != 20 {
			t.Errorf("container %s: topo gives %s on %s, benchtopo says %s on %s", c.Name, e.Addr, e.Network, top.Addr(i), top.Network(top.NetworkOf(i)))
		}
		if c.DefaultGW != top.Gateway(top.NetworkOf(i)) {
			t.Errorf("container %s: gateway %s, benchtopo says %s", c.Name, c.DefaultGW, top.Gateway(top.NetworkOf(i)))
		}
	}
	if len(f.Containers[5].Ports) != 1 || int(f.Containers[5].Ports[0].HostStart) != top.HostPort(5) {
		t.Errorf("container c5 publishes %v, want host port %d", f.Containers[5].Ports, top.HostPort(5))
	}
}

func TestCheck(t *testing.T) {
	for _, n := range []int{1, 1000, 4092, 5000, MaxN} {
		k := Networks(n, 4)
		if err := (Topology{N: n, K: k}).Check(); err != nil || k < 4 || k > 4 && (Topology{N: n, K: k - 1}).Check() == nil {
			t.Errorf("Networks(%d, 4) = %d: %v; want the fewest networks, at least 4, that hold them", n, k, err)
		}
	}
	for _, top := range []Topology{{N: 0, K: 4}, {N: 10, K: 0}, {N: 10, K: 17}, {N: 50000, K: 4}, {N: 5000, K: 4}} {
		if top.Check() == nil {
			t.Errorf("Check(%+v) accepted a shape the plan cannot hold", top)
		}
	}
}

// TestMeshAddrMatchesIPAM: the addresses Mesh says are the ones topo
// gives, on one bridge and on every host of an overlay alike, so that
// the pings of both files go to the same addresses.
func TestMeshAddrMatchesIPAM(t *testing.T) {
	for _, overlay := range []bool{false, true} {
		m := Mesh{Project: "m", Groups: 3, PerGroup: 7, Overlay: overlay}
		if err := m.Check(); err != nil {
			t.Fatal(err)
		}
		f, err := spec.Parse("topo.yaml", m.YAML())
		if err != nil {
			t.Fatalf("overlay %v: %v", overlay, err)
		}
		obs, err := fake.New(nil).Observe(context.Background(), m.Project)
		if err != nil {
			t.Fatal(err)
		}
		views := []string{""}
		if overlay {
			views = []string{m.Host(0), m.Host(1), m.Host(2)}
		}
		for _, host := range views {
			var model *planner.Model
			if host == "" {
				model, err = planner.Desire(f, obs)
			} else {
				model, err = planner.DesireFor(f, obs, host)
			}
			if err != nil {
				t.Fatalf("overlay %v, host %q: %v", overlay, host, err)
			}
			got := map[string]netip.Addr{}
			for _, c := range append(model.Containers, model.Remote...) {
				if len(c.Endpoints) != 1 || c.Endpoints[0].Network != MeshNetwork {
					t.Fatalf("host %q: container %s has endpoints %v", host, c.Name, c.Endpoints)
				}
				got[c.Name] = c.Endpoints[0].Addr.Addr()
			}
			if len(got) != m.Groups*m.PerGroup {
				t.Fatalf("overlay %v, host %q: %d containers, want %d", overlay, host, len(got), m.Groups*m.PerGroup)
			}
			for g := range m.Groups {
				for i := range m.PerGroup {
					if a := got[m.Container(g, i)]; a != m.Addr(g, i) {
						t.Errorf("overlay %v, host %q: %s has %s, Mesh says %s", overlay, host, m.Container(g, i), a, m.Addr(g, i))
					}
				}
			}
		}
	}
}
