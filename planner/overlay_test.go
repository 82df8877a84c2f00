package planner_test

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

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

const dualStackHosts = `name: ov6
hosts:
  h1: { address: 192.0.2.11 }
  h2: { address: 192.0.2.12 }
networks:
  mesh: { driver: overlay, subnet: 10.80.0.0/24, enable_ipv6: true }
containers:
  a: { host: h1, networks: [mesh] }
  b: { host: h2, networks: [mesh] }
  c: { host: h2, networks: { mesh: { ipv6_address: "fd76:50a:e876:8e79::9" } } }
`

// TestOverlayIPv6SameOnEveryHost: an overlay's automatic IPv6 subnet is
// derived from the file, not from the host's machine ID, and each
// host gives every container the IPv6 address the other gives it, fixed
// ones honoured; each host's resolver has the remote containers' IPv6
// addresses (AAAA, PTR).
func TestOverlayIPv6SameOnEveryHost(t *testing.T) {
	f := testkit.Parse(t, dualStackHosts)
	want := map[string]string{"a": "fd76:50a:e876:8e79::2/64", "b": "fd76:50a:e876:8e79::3/64", "c": "fd76:50a:e876:8e79::9/64"}
	for i, h := range []string{"192.0.2.11", "192.0.2.12"} {
		obs := underlayAt(h)
		obs.MachineID = strconv.Itoa(i) + "0123456789abcdef0123456789abcde" // hosts differ
		m, err := planner.Desire(f, obs)
		if err != nil {
			t.Fatal(err)
		}
		if n := m.Networks[0]; n.Subnet6.String() != "fd76:50a:e876:8e79::/64" || n.Gateway6.String() != "fd76:50a:e876:8e79::1" {
			t.Errorf("%s: mesh has %s, gateway %s; want fd76:50a:e876:8e79::/64 and ::1 on every host", m.Host, n.Subnet6, n.Gateway6)
		}
		for _, c := range append(append([]*planner.Container(nil), m.Containers...), m.Remote...) {
			if got := c.Endpoints[0].Addr6.String(); got != want[c.Name] {
				t.Errorf("%s gives %s %s, want %s", m.Host, c.Name, got, want[c.Name])
			}
		}
		aaaa := map[string]string{}
		for _, mb := range planner.Records(m).Networks[0].Members {
			aaaa[mb.Container] = mb.Addr6.String() + "/64"
		}
		if !cmp.Equal(aaaa, want) {
			t.Errorf("%s: the resolver's IPv6 addresses %v, want %v", m.Host, aaaa, want)
		}
	}
}

// TestOverlayIPv6Entries: h1's VXLAN device gets an IPv6 neighbour entry
// beside the IPv4 one of each of h2's containers; a deleted one is drift
// that the next plan adds again; an overlay given enable_ipv6 in place
// gets the entries, the gateway and the addresses without its commands
// restarted.
func TestOverlayIPv6Entries(t *testing.T) {
	vx := names.VXLAN("ov6", "mesh")
	mac, _ := net.ParseMAC("02:42:0a:50:00:03")
	six := testkit.Parse(t, strings.Replace(dualStackHosts, "a: { host: h1, networks: [mesh] }", `a: { host: h1, networks: [mesh], command: ["sleep", "infinity"] }`, 1))
	v4 := testkit.Parse(t, strings.NewReplacer(", enable_ipv6: true", "", `{ mesh: { ipv6_address: "fd76:50a:e876:8e79::9" } }`, "[mesh]",
		"a: { host: h1, networks: [mesh] }", `a: { host: h1, networks: [mesh], command: ["sleep", "infinity"] }`).Replace(dualStackHosts))
	k := fake.New(underlayAt("192.0.2.11"))
	testkit.Up(t, k, v4)
	p := testkit.Up(t, k, six)
	got := testkit.Human(p)
	for _, want := range []string{
		"+ ip addr add fd76:50a:e876:8e79::1/64 dev " + names.Bridge("ov6", "mesh") + " nodad",
		"+ ip -n ov6-a addr add fd76:50a:e876:8e79::2/64 dev eth0 nodad",
		"+ ip -n ov6-a route add ::/0 via fd76:50a:e876:8e79::1",
		"+ ip neigh add fd76:50a:e876:8e79::3 lladdr 02:42:0a:50:00:03 dev " + vx + " nud permanent",
		"+ ip neigh add fd76:50a:e876:8e79::9 lladdr 02:42:0a:50:00:04 dev " + vx + " nud permanent",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("enable_ipv6 in place: plan lacks %q:\n%s", want, got)
		}
	}
	for _, s := range p.Steps {
		if testkit.Is[op.ProcStop](s) || testkit.Is[op.ProcStart](s) || testkit.Is[op.LinkDel](s) || testkit.Is[op.FdbAdd](s) || testkit.Is[op.FdbDel](s) {
			t.Errorf("enable_ipv6 in place: %c %s", s.Action, s.Op.Command())
		}
	}
	if p := testkit.Plan(t, k, six); !p.Empty() {
		t.Errorf("second plan:\n%s", testkit.Human(p))
	}
	if err := k.Apply(context.Background(), op.NeighDel{Link: vx, Addr: netip.MustParseAddr("fd76:50a:e876:8e79::3"), MAC: mac}); err != nil {
		t.Fatal(err)
	}
	if got := testkit.Human(testkit.Plan(t, k, six)); !strings.Contains(got, "+ ip neigh add fd76:50a:e876:8e79::3 lladdr 02:42:0a:50:00:03 dev "+vx) || !strings.Contains(got, "Plan: 1 to add, 0 to change, 0 to destroy.") {
		t.Errorf("plan after the IPv6 entry went:\n%s", got)
	}
}

// TestOverlayRemoteMAC: a remote container's mac_address is the one its
// forwarding and neighbour entries name, not the one of its address.
func TestOverlayRemoteMAC(t *testing.T) {
	f := testkit.Parse(t, strings.Replace(dualStackHosts, "b: { host: h2, networks: [mesh] }", `b: { host: h2, networks: { mesh: { mac_address: "02:00:00:00:00:0b" } } }`, 1))
	got := testkit.Human(testkit.Up(t, fake.New(underlayAt("192.0.2.11")), f))
	vx := names.VXLAN("ov6", "mesh")
	for _, want := range []string{
		"+ bridge fdb append 02:00:00:00:00:0b dev " + vx + " dst 192.0.2.12 self permanent",
		"+ ip neigh add 10.80.0.3 lladdr 02:00:00:00:00:0b dev " + vx + " nud permanent",
		"+ ip neigh add fd76:50a:e876:8e79::3 lladdr 02:00:00:00:00:0b dev " + vx + " nud permanent",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("plan lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "02:42:0a:50:00:03") {
		t.Errorf("plan names b's derived MAC:\n%s", got)
	}
}

// TestOverlayIPv4OnIPv6Underlay: an IPv4-only overlay over an IPv6
// underlay has ip6tables' tables for the underlay's rule alone (and
// iptables none of it); down removes them.
func TestOverlayIPv4OnIPv6Underlay(t *testing.T) {
	f := testkit.Parse(t, `name: u6
hosts:
  h1: { address: "2001:db8::11" }
  h2: { address: "2001:db8::12" }
networks:
  mesh: { driver: overlay, subnet: 10.80.0.0/24 }
containers:
  a: { host: h1, networks: [mesh] }
  b: { host: h2, networks: [mesh] }
`)
	k := fake.New(underlayAt("2001:db8::11"))
	got := testkit.Human(testkit.Up(t, k, f))
	if want := "+ ip6tables -t filter -A TOPO-INPUT -d 2001:db8::11/128 -p udp -m udp --dport 4789 -m iprange ! --src-range 2001:db8::12-2001:db8::12"; !strings.Contains(got, want) {
		t.Errorf("plan lacks %q:\n%s", want, got)
	}
	if strings.Contains(got, "iptables -t filter -A TOPO-INPUT") || !strings.Contains(got, "mtu 1430") {
		t.Errorf("plan has an IPv4 rule for an IPv6 underlay, or not its MTU (1500 - 70):\n%s", got)
	}
	testkit.Down(t, k, "u6")
	if obs := testkit.Observe(t, k, "u6"); obs.Firewall6 != nil {
		for _, tb := range obs.Firewall6.Tables {
			if len(tb.Chains) != 0 {
				t.Errorf("down left ip6tables' chains of %s: %+v", tb.Name, tb.Chains)
			}
		}
	}
}
