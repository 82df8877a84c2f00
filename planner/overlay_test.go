package planner_test

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/topolab/topo/internal/testkit"
	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/state"
)

// underlayAt is a host namespace with the underlay address a on eth0.
func underlayAt(a string) *state.Snapshot {
	return &state.Snapshot{Host: state.Namespace{Links: []state.Link{{Name: "eth0", Kind: "veth", Up: true, MTU: 1500, Addrs: []string{a + "/24"}}}}}
}

const twoHosts = `name: ov
hosts:
  h1: { address: 192.0.2.11 }
  h2: { address: 192.0.2.12 }
  h3: { address: 192.0.2.13 }
networks:
  mesh: { driver: overlay, subnet: 10.80.0.0/24 }
  lan: {}
containers:
  a: { host: h1, networks: [mesh] }
  b: { host: h2, networks: [mesh, lan] }
  c: { host: h2, networks: { mesh: { ipv4_address: 10.80.0.9 } } }
  d: { networks: [lan] }
`

// TestOverlaySameAllocationOnEveryHost: each host's model gives every
// container the address the others give it, from the file alone, and
// keeps to its own containers; the others' are Remote.
func TestOverlaySameAllocationOnEveryHost(t *testing.T) {
	f := testkit.Parse(t, twoHosts)
	addrs := map[string]map[string]netip.Addr{}
	for _, h := range []string{"192.0.2.11", "192.0.2.12", "192.0.2.13"} {
		m, err := planner.Desire(f, underlayAt(h))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]netip.Addr{}
		for _, c := range append(append([]*planner.Container(nil), m.Containers...), m.Remote...) {
			for _, e := range c.Endpoints {
				if e.Network == "mesh" {
					seen[c.Name] = e.Addr.Addr()
				}
			}
		}
		addrs[m.Host] = seen
		var local []string
		for _, c := range m.Containers {
			local = append(local, c.Name)
		}
		want := map[string]string{"h1": "a d", "h2": "b c", "h3": ""}[m.Host]
		if got := strings.Join(local, " "); got != want {
			t.Errorf("%s: containers %q, want %q", m.Host, got, want)
		}
	}
	want := map[string]netip.Addr{"a": netip.MustParseAddr("10.80.0.2"), "b": netip.MustParseAddr("10.80.0.3"), "c": netip.MustParseAddr("10.80.0.9")}
	for _, h := range []string{"h1", "h2"} {
		for c, a := range want {
			if addrs[h][c] != a {
				t.Errorf("%s gives %s %v, want %v", h, c, addrs[h][c], a)
			}
		}
	}
	m3, err := planner.Desire(f, underlayAt("192.0.2.13"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m3.Networks) != 0 || m3.Underlay != nil {
		t.Errorf("h3 has no container, so no network: %+v", m3.Networks)
	}
}

// TestOverlayEntries: h1's plan makes the VXLAN device on the bridge,
// broadcast to h2 only (h3 has no container on the network), and each
// remote container's forwarding and neighbour entries; a second up
// changes nothing, and a deleted entry is planned again.
func TestOverlayEntries(t *testing.T) {
	f := testkit.Parse(t, twoHosts)
	k := fake.New(underlayAt("192.0.2.11"))
	p := testkit.Up(t, k, f)
	got := testkit.Human(p)
	vx := names.VXLAN("ov", "mesh")
	for _, want := range []string{
		"ip link add " + vx + " mtu 1450 master " + names.Bridge("ov", "mesh") + " type vxlan id " + strconv.Itoa(names.VNI("ov", "mesh")) + " local 192.0.2.11 dstport 4789 nolearning proxy",
		"bridge fdb append 00:00:00:00:00:00 dev " + vx + " dst 192.0.2.12 self permanent",
		"bridge fdb append 02:42:0a:50:00:03 dev " + vx + " dst 192.0.2.12 self permanent",
		"ip neigh add 10.80.0.3 lladdr 02:42:0a:50:00:03 dev " + vx + " nud permanent",
		"ip neigh add 10.80.0.9 lladdr 02:42:0a:50:00:09 dev " + vx + " nud permanent",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("plan lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "dst 192.0.2.13") || strings.Contains(got, "netns add ov-b") || strings.Contains(got, "netns add ov-c") {
		t.Errorf("plan makes what is not h1's:\n%s", got)
	}
	if p := testkit.Plan(t, k, f); !p.Empty() {
		t.Errorf("second plan:\n%s", testkit.Human(p))
	}
	mac, _ := net.ParseMAC("02:42:0a:50:00:03")
	if err := k.Apply(context.Background(), op.FdbDel{Link: vx, MAC: mac, Dst: netip.MustParseAddr("192.0.2.12")}); err != nil {
		t.Fatal(err)
	}
	if got := testkit.Human(testkit.Plan(t, k, f)); !strings.Contains(got, "+ bridge fdb append 02:42:0a:50:00:03 dev "+vx) || !strings.Contains(got, "Plan: 1 to add, 0 to change, 0 to destroy.") {
		t.Errorf("plan after the entry went:\n%s", got)
	}
	testkit.Down(t, k, "ov")
	if obs := testkit.Observe(t, k, "ov"); len(obs.Host.Links) != 2 {
		t.Errorf("down left links: %+v", obs.Host.Links)
	}
}

// TestOverlayMoveContainer: moving b from h2 to h1 is a plan on both:
// h1 makes b and drops b's entries toward h2, h2 removes b and gains
// its entries toward h1.
func TestOverlayMoveContainer(t *testing.T) {
	before := testkit.Parse(t, twoHosts)
	after := testkit.Parse(t, strings.Replace(twoHosts, "b: { host: h2,", "b: { host: h1,", 1))
	vx := names.VXLAN("ov", "mesh")
	k1, k2 := fake.New(underlayAt("192.0.2.11")), fake.New(underlayAt("192.0.2.12"))
	testkit.Up(t, k1, before)
	testkit.Up(t, k2, before)
	on1 := testkit.Human(testkit.Up(t, k1, after))
	on2 := testkit.Human(testkit.Up(t, k2, after))
	for _, want := range []string{
		"+ ip netns add ov-b",
		"- bridge fdb del 02:42:0a:50:00:03 dev " + vx + " dst 192.0.2.12 self",
		"- ip neigh del 10.80.0.3 dev " + vx,
	} {
		if !strings.Contains(on1, want) {
			t.Errorf("h1's plan lacks %q:\n%s", want, on1)
		}
	}
	for _, want := range []string{
		"- ip netns del ov-b",
		"+ bridge fdb append 02:42:0a:50:00:03 dev " + vx + " dst 192.0.2.11 self permanent",
		"+ ip neigh add 10.80.0.3 lladdr 02:42:0a:50:00:03 dev " + vx + " nud permanent",
	} {
		if !strings.Contains(on2, want) {
			t.Errorf("h2's plan lacks %q:\n%s", want, on2)
		}
	}
	for _, k := range []*fake.Machine{k1, k2} {
		if p := testkit.Plan(t, k, after); !p.Empty() {
			t.Errorf("not converged:\n%s", testkit.Human(p))
		}
	}
}
