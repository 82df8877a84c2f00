package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/view"
)

// overlay6File has IPv6 on overlays across h1 and h2 (an IPv4
// underlay): mesh's IPv6 subnet is the one topo derives from project and
// network (fd76:50a:e876:8e79::/64, the same on both hosts), with b's
// fixed address in it; red's is the file's; lan is a bridge network of
// h1's. overlay6Before is the same with no IPv6 on mesh yet.
const overlay6File = `name: ov6
hosts:
  h1: { address: 192.0.2.11 }
  h2: { address: 192.0.2.12 }
networks:
  mesh: { driver: overlay, subnet: 10.80.0.0/24, enable_ipv6: true }
  red: { driver: overlay, subnet: [10.81.0.0/24, "fd81::/64"] }
  lan: { subnet: [10.83.0.0/24, "fd83::/64"] }
containers:
  a: { host: h1, networks: [mesh], command: ["sleep", "infinity"] }
  b: { host: h2, networks: { mesh: { ipv6_address: "fd76:50a:e876:8e79::b" } } }
  r1: { host: h1, networks: [red] }
  r2: { host: h2, networks: [red] }
  l1: { host: h1, networks: [lan] }
`

var overlay6Before = strings.NewReplacer(", enable_ipv6: true", "", `{ mesh: { ipv6_address: "fd76:50a:e876:8e79::b" } }`, "[mesh]").Replace(overlay6File)

// TestOverlayIPv6AcrossHosts: enable_ipv6 added to a running overlay on
// both hosts gives its containers their IPv6 addresses without
// restarting a's command; then a on h1 and b on h2 reach each other by
// name over IPv6 (AAAA from each host's resolver), over TCP and UDP; the
// VXLAN devices hold the remote containers' IPv6 neighbour entries, a
// deleted one is drift that up repairs; over IPv6, two overlays, and an
// overlay and a bridge, do not reach each other, on one host or across
// both; ps, graph, inspect and plan --host show the remote side's IPv6;
// down leaves both hosts clean, ip6tables too.
func TestOverlayIPv6AcrossHosts(t *testing.T) {
	need(t, "dig", "ip6tables-save")
	_, hs := newWorld(t)
	h1, h2 := hs["h1"], hs["h2"]
	before := writeFile(t, "ov6", overlay6Before)
	h1.mustTopo("up", "-f", before, "--host", "h1")
	h2.mustTopo("up", "-f", before, "--host", "h2")
	pid := h1.pidOf("ov6", "a")
	if got := h1.addr6Of("ov6-a", "eth0"); got != "" {
		t.Fatalf("a has IPv6 address %s on mesh before enable_ipv6", got)
	}

	file := writeFile(t, "ov6", overlay6File)
	upConverged(t, file, h1, h2)
	if got := h1.pidOf("ov6", "a"); got != pid || !h1.alive(pid) {
		t.Errorf("after enable_ipv6 in place, a's command is pid %d (alive %v), want %d still running", got, h1.alive(pid), pid)
	}

	// Addresses from the file alone: the derived subnet, the same on
	// both hosts, the gateway on both bridges, at once usable.
	const sub = "fd76:50a:e876:8e79::"
	if a, b := h1.addr6Of("ov6-a", "eth0"), h2.addr6Of("ov6-b", "eth0"); a != sub+"2" || b != sub+"b" {
		t.Errorf("a has %q, b %q; want %s2 (the first after the gateway) and %sb (fixed)", a, b, sub, sub)
	}
	br := names.Bridge("ov6", "mesh")
	for _, h := range []*host{h1, h2} {
		if out := h.mustSh("ip -6 addr show dev " + br); !strings.Contains(out, "inet6 "+sub+"1/64") {
			t.Errorf("mesh's bridge has not the IPv6 gateway:\n%s", out)
		}
	}
	if routes := h1.mustSh("ip -n ov6-a -6 route show default"); !strings.Contains(routes, "default via "+sub+"1 dev eth0") {
		t.Errorf("a's IPv6 default route: %q, want via %s1 dev eth0", routes, sub)
	}
	if out := h2.mustSh("ip -n ov6-b -6 addr show tentative"); strings.TrimSpace(out) != "" {
		t.Errorf("b has addresses still in duplicate address detection after up:\n%s", out)
	}

	// The remote containers' IPv6 neighbour entries on the VXLAN device.
	vx := names.VXLAN("ov6", "mesh")
	if out := h1.mustSh("ip -6 neigh show dev " + vx); !strings.Contains(out, sub+"b lladdr 02:42:0a:50:00:03 PERMANENT") {
		t.Errorf("h1's IPv6 neighbour entries of mesh:\n%s", out)
	}
	if out := h2.mustSh("ip -6 neigh show dev " + vx); !strings.Contains(out, sub+"2 lladdr 02:42:0a:50:00:02 PERMANENT") {
		t.Errorf("h2's IPv6 neighbour entries of mesh:\n%s", out)
	}

	b := serveNames(served{h1, "ov6-a", "a"}, served{h2, "ov6-b", "b"}, served{h1, "ov6-r1", "r1"}, served{h2, "ov6-r2", "r2"}, served{h1, "ov6-l1", "l1"})[1]
	h1.expect([]check{
		{From: "ov6-a", Proto: "tcp6", Addr: "b:80", Want: "b"},
		{From: "ov6-a", Proto: "udp6", Addr: "b:80", Want: "b"},
		{From: "ov6-r1", Proto: "tcp6", Addr: "r2:80", Want: "r2"},
		// Over IPv6, by address: red and mesh, across the hosts and on one.
		{From: "ov6-r1", Proto: "tcp6", Addr: "[" + sub + "b]:80"},
		{From: "ov6-r1", Proto: "udp6", Addr: "[" + sub + "b]:80"},
		{From: "ov6-a", Proto: "tcp6", Addr: "[fd81::3]:80"}, // r2
		{From: "ov6-a", Proto: "tcp6", Addr: "[fd81::2]:80"}, // r1
		// The bridge network and the overlays.
		{From: "ov6-l1", Proto: "tcp6", Addr: "[fd81::3]:80"},
		{From: "ov6-l1", Proto: "udp6", Addr: "[" + sub + "b]:80"},
		{From: "ov6-r1", Proto: "tcp6", Addr: "[fd83::2]:80"}, // l1
	})
	// Unanswered is not enough across hosts: h1 masquerades what leaves
	// a bridge, to a gateway address that h2's bridge holds too, which
	// takes the answer. The datagrams must not have reached b at all.
	for _, id := range []string{"4", "8"} {
		if b.heardProbe(id) {
			t.Errorf("b on h2 got datagram %s of the probes from h1's red and lan", id)
		}
	}
	if !eventually(func() bool { return b.heardProbe("1") }) {
		t.Errorf("b on h2 did not get a's datagram (probe 1), which it answered")
	}
	h2.expect([]check{
		{From: "ov6-b", Proto: "tcp6", Addr: "a:80", Want: "a"},
		{From: "ov6-b", Proto: "udp6", Addr: "a:80", Want: "a"},
		{From: "ov6-r2", Proto: "udp6", Addr: "r1:80", Want: "r1"},
		{From: "ov6-b", Proto: "tcp6", Addr: "[fd81::2]:80"},       // r1
		{From: "ov6-r2", Proto: "tcp6", Addr: "[" + sub + "2]:80"}, // a
		{From: "ov6-b", Proto: "tcp6", Addr: "[fd83::2]:80"},       // l1
	})

	// Each host's resolver answers for the other's containers: AAAA and
	// PTR, within the network.
	dig := func(h *host, ns, args string) string {
		return strings.TrimSpace(h.mustSh(in(ns, "dig +short +time=2 +tries=3 @127.0.0.11 "+args)))
	}
	if got := dig(h1, "ov6-a", "AAAA b"); got != sub+"b" {
		t.Errorf("a on h1: AAAA b = %q, want %sb", got, sub)
	}
	if got := dig(h2, "ov6-b", "-t AAAA -q a"); got != sub+"2" {
		t.Errorf("b on h2: AAAA a = %q, want %s2", got, sub)
	}
	if got := dig(h1, "ov6-a", "-x "+sub+"b"); got != "b.mesh." {
		t.Errorf("a on h1: PTR of %sb = %q, want b.mesh.", sub, got)
	}
	if got := dig(h1, "ov6-r1", "AAAA b"); got != "" {
		t.Errorf("r1 on h1: AAAA b = %q; b shares no network with r1", got)
	}

	// ps, graph and inspect on h1 show h2's container with its IPv6
	// address.
	if ps := h1.mustTopo("ps", "-f", file); !strings.Contains(ps, "mesh=10.80.0.3/24+"+sub+"b/64") {
		t.Errorf("ps on h1:\n%s", ps)
	}
	if g := h1.mustTopo("graph", "-f", file); !strings.Contains(g, sub+"b/64") || !strings.Contains(g, sub+"2/64") {
		t.Errorf("graph on h1 lacks a's or b's IPv6 address:\n%s", g)
	}
	var mesh view.NetworkDetail
	if err := json.Unmarshal([]byte(h1.mustTopo("inspect", "-f", file, "mesh", "--json")), &mesh); err != nil {
		t.Fatal(err)
	}
	if mesh.Subnet6 != sub+"/64" || len(mesh.Members) != 2 || mesh.Members[1].Host != "h2" || mesh.Members[1].Address6 != sub+"b/64" {
		t.Errorf("inspect mesh on h1: subnet6 %q, members %+v", mesh.Subnet6, mesh.Members)
	}

	// h2's part, planned on h1 against nothing, has the same IPv6
	// addresses and entries.
	if out := h1.mustTopo("plan", "-f", file, "--host", "h2"); !strings.Contains(out, "ip -n ov6-b addr add "+sub+"b/64 dev eth0 nodad") ||
		!strings.Contains(out, "ip neigh add "+sub+"2 lladdr 02:42:0a:50:00:02 dev "+vx+" nud permanent") {
		t.Errorf("plan --host h2 on h1:\n%s", out)
	}

	// Drift: an IPv6 neighbour entry deleted by hand.
	h1.mustSh("ip -6 neigh del " + sub + "b dev " + vx)
	out, _, code := h1.topo("plan", "-f", file, "--detailed-exitcode")
	if code != 2 || !strings.Contains(out, "+ ip neigh add "+sub+"b lladdr 02:42:0a:50:00:03 dev "+vx+" nud permanent") {
		t.Errorf("plan after the IPv6 entry went: exit %d\n%s", code, out)
	}
	h1.mustTopo("up", "-f", file)
	h1.expect([]check{{From: "ov6-a", Proto: "tcp6", Addr: "b:80", Want: "b"}})

	downClean6(t, file, "ov6", h1, h2)
}

// TestOverlayIPv6Underlay: hosts with IPv6 underlay addresses; VXLAN
// goes over IPv6 (the devices send from the host's IPv6 address, MTU
// the underlay's less 70), a dual-stack overlay and an IPv6-only one
// carry traffic between h1 and h2 by name over TCP and UDP, b's
// publish answers on h2's IPv6 address alone, and ip6tables takes VXLAN
// from the file's hosts alone: h3, on the underlay but not in the file,
// is dropped; down --all-hosts reaches the hosts over ssh at their IPv6
// addresses.
func TestOverlayIPv6Underlay(t *testing.T) {
	need(t, "ip6tables-save")
	w, hs := newWorldAt(t, "h1=fd00:192::11/64", "h2=fd00:192::12/64", "h3=fd00:192::13/64")
	h1, h2, h3 := hs["h1"], hs["h2"], hs["h3"]
	file := writeFile(t, "ovu", `name: ovu
hosts:
  h1: { address: "fd00:192::11" }
  h2: { address: "fd00:192::12" }
networks:
  mesh: { driver: overlay, subnet: 10.80.0.0/24, enable_ipv6: true }
  six: { driver: overlay, enable_ipv4: false, subnet: "fd82::/64" }
containers:
  a: { host: h1, networks: [mesh] }
  b: { host: h2, networks: [mesh], ports: ["8080:80"] }
  c: { host: h1, networks: [six] }
  d: { host: h2, networks: [six] }
`)
	upConverged(t, file, h1, h2)
	vx := names.VXLAN("ovu", "mesh")
	if out := h1.mustSh("ip -d link show " + vx); !strings.Contains(out, "local fd00:192::11") || !strings.Contains(out, "dstport 4789") || !strings.Contains(out, "mtu 1430") {
		t.Errorf("h1's vxlan device:\n%s", out)
	}
	if out := h1.mustSh("bridge fdb show dev " + vx); !strings.Contains(out, "00:00:00:00:00:00 dst fd00:192::12 self permanent") {
		t.Errorf("h1's forwarding entries of mesh:\n%s", out)
	}

	d := serveNames(served{h1, "ovu-a", "a"}, served{h2, "ovu-b", "b"}, served{h1, "ovu-c", "c"}, served{h2, "ovu-d", "d"})[3]
	h1.expect([]check{
		{From: "ovu-a", Proto: "tcp", Addr: "10.80.0.3:80", Want: "b"},
		{From: "ovu-a", Proto: "tcp6", Addr: "b:80", Want: "b"},
		{From: "ovu-a", Proto: "udp6", Addr: "b:80", Want: "b"},
		{From: "ovu-c", Proto: "tcp6", Addr: "d:80", Want: "d"},
		{From: "ovu-c", Proto: "udp6", Addr: "d:80", Want: "d"},
		{From: "ovu-c", Proto: "tcp6", Addr: "[fd82::3]:80", Want: "d"},
		{From: "ovu-a", Proto: "tcp6", Addr: "[fd82::3]:80"}, // d, on six
		{From: "ovu-a", Proto: "udp6", Addr: "[fd82::3]:80"},
		// b's publish is h2's, on its IPv6 address too: not h1's.
		{From: "", Proto: "tcp6", Addr: "[fd00:192::12]:8080", Want: "b"},
		{From: "", Proto: "tcp6", Addr: "[fd00:192::11]:8080"},
	})
	if d.heardProbe("7") {
		t.Errorf("d on h2 got a's datagram (probe 7): mesh reached six across the hosts")
	}
	h2.expect([]check{
		{From: "ovu-b", Proto: "udp", Addr: "a:80", Want: "a"},
		{From: "ovu-d", Proto: "tcp6", Addr: "c:80", Want: "c"},
	})

	// VXLAN over IPv6 from the file's hosts passed; h3's is dropped, by
	// ip6tables; iptables has no VXLAN rule at all.
	if n := vxlanDrops(t, h1, "ip6tables"); n != 0 {
		t.Errorf("h1 dropped %d VXLAN packets of the file's hosts", n)
	}
	h3.expect([]check{{From: "", Proto: "udp", Addr: "[fd00:192::11]:4789"}})
	if n := vxlanDrops(t, h1, "ip6tables"); n == 0 {
		t.Errorf("h1 dropped none of h3's VXLAN packets")
	}
	if out := h1.mustSh("iptables-save"); strings.Contains(out, "4789") {
		t.Errorf("iptables has a VXLAN rule on an IPv6 underlay:\n%s", out)
	}

	// down --all-hosts reaches the hosts at their IPv6 addresses.
	if out, code := allHosts(t, w, "down", "--all-hosts", "-f", file); code != 0 || !strings.Contains(out, "== h2 (fd00:192::12): down") {
		t.Errorf("down --all-hosts: exit %d\n%s", code, out)
	}
	downClean6(t, file, "ovu", h1, h2)
}

// downClean6 runs down on each host, which must leave it clean, in
// ip6tables too.
func downClean6(t *testing.T, file, project string, hs ...*host) {
	t.Helper()
	for _, h := range hs {
		h.mustTopo("down", "-f", file)
		assertClean(t, h, project)
		if rules := h.mustSh("ip6tables-save | grep -c TOPO || true"); strings.TrimSpace(rules) != "0" {
			t.Errorf("down left ip6tables rules:\n%s", h.mustSh("ip6tables-save"))
		}
	}
}

// upConverged runs up on each host, then plan, which must find nothing
// to change on any.
func upConverged(t *testing.T, file string, hs ...*host) {
	t.Helper()
	for _, h := range hs {
		h.mustTopo("up", "-f", file)
	}
	for _, h := range hs {
		if out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
			t.Errorf("plan right after up: exit %d, want no changes:\n%s", code, out)
		}
	}
}
