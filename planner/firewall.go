package planner

import (
	"net/netip"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/state"
)

// Default ephemeral range, as Linux's net.ipv4.ip_local_port_range, for
// snapshots that carry none.
const (
	defaultEphemeralLow  = 32768
	defaultEphemeralHigh = 60999
)

// FirewallInput is what package firewall generates the model's rules of
// family fam from: for IPv6, the networks with IPv6 and the publishes on
// IPv6 host addresses. The overlays' underlay is the family of the
// hosts' addresses, which their VXLAN packets are.
func FirewallInput(m *Model, fam firewall.Family) firewall.Input {
	in := firewall.Input{Family: fam, Project: m.Project}
	if m.Underlay != nil && m.Underlay.Local.Is6() == (fam == firewall.IPv6) {
		in.Underlay = m.Underlay
	}
	for _, n := range m.Networks {
		subnet := n.Subnet
		if fam == firewall.IPv6 {
			subnet = n.Subnet6
		}
		if !n.Driver.firewalled() || !subnet.IsValid() && (fam == firewall.IPv6 || !n.Subnet6.IsValid()) {
			continue
		}
		// An IPv6-only network is in IPv4's rules too, as one with no
		// IPv4 subnet: its bridge forwards no IPv4 at all.
		fn := firewall.Net{Name: n.Name, Bridge: n.Bridge, Subnet: subnet, Internal: n.Internal, Shared: n.External}
		if n.External {
			fn.Members = members(m, n.Name)
		}
		in.Networks = append(in.Networks, fn)
	}
	for _, c := range m.Containers {
		for _, p := range c.Publishes {
			if p.Addr.Is6() == (fam == firewall.IPv6) && !proxied(p) {
				in.Publishes = append(in.Publishes, p)
			}
		}
	}
	return in
}

// firewall plans the rules (one step per table, applied in one batch),
// the route_localnet of bridges with publishes, and IPv6 off on internal
// networks' bridges without IPv6 (on others topo leaves it as it is).
func (d *differ) firewall(m *Model) {
	published := map[string]bool{}
	for _, c := range m.Containers {
		for _, p := range c.Publishes {
			published[p.Network] = published[p.Network] || !proxied(p)
		}
	}
	sysctl := func(n *Network, key, want string) {
		have := "0"
		if d.bridges[n.Name] != nil {
			if v := d.obs.Sysctls[key]; v != "" {
				have = v
			}
		}
		if have != want {
			d.add(change(op.Network(n.Name), op.Sysctl{Key: key, Value: want}, op.Sysctl{Key: key, Value: have}))
		}
	}
	for _, n := range m.Networks {
		if !n.Driver.firewalled() || n.External {
			// No bridge of topo's: nothing of the host's to set.
			continue
		}
		localnet := "0"
		if published[n.Name] && !n.Internal && n.Subnet.IsValid() {
			localnet = "1"
		}
		sysctl(n, names.RouteLocalnet(n.Bridge), localnet)
		if n.Internal {
			// Off without IPv6; on again, before the bridge's IPv6
			// address comes, when the network gets IPv6 in place.
			off := "1"
			if n.Subnet6.IsValid() {
				off = "0"
			}
			sysctl(n, names.IPv6Off(n.Bridge), off)
			if off == "0" {
				d.needsIPv6On(n)
			}
		}
	}

	d.firewallOf(m, firewall.IPv4, d.obs.Firewall)
	d.firewallOf(m, firewall.IPv6, d.obs.Firewall6)
}

// firewallOf plans the rules of family fam against have, the tables of
// the family observed.
func (d *differ) firewallOf(m *Model, fam firewall.Family, have *state.Firewall) {
	want := firewall.Generate(FirewallInput(m, fam))
	for _, tc := range firewall.Diff(m.Project, want, have) {
		adds, dels := 0, 0
		for _, c := range tc.Changes {
			if c.Adds() {
				adds++
			} else {
				dels++
			}
		}
		action := op.Change
		switch {
		case dels == 0:
			action = op.Create
		case adds == 0:
			action = op.Destroy
		}
		d.add(step(action, op.Firewall(fam, tc.Table), op.FirewallBatch{Family: fam, Table: tc.Table, Changes: tc.Changes},
			op.FirewallBatch{Family: fam, Table: tc.Table, Changes: firewall.Invert(tc.Changes)}))
	}
}

// members are the addresses of the containers on network, in file order.
func members(m *Model, network string) []netip.Addr {
	var out []netip.Addr
	for _, c := range m.Containers {
		for _, e := range c.Endpoints {
			if e.Network == network && c.OwnsNamespace() && e.Addr.IsValid() {
				out = append(out, e.Addr.Addr())
			}
		}
	}
	return out
}

// needsIPv6On makes the IPv6 addresses planned for n's bridge wait for
// its IPv6 to be on (disable_ipv6 0), which the kernel refuses them
// without (EACCES).
func (d *differ) needsIPv6On(n *Network) {
	key := op.SysctlKey("", names.IPv6Off(n.Bridge))
	for i := range d.steps {
		if a, ok := d.steps[i].Op.(op.AddrAdd); ok && a.NS == "" && a.Link == n.Bridge && a.Addr.Addr().Is6() {
			d.steps[i].Needs = append(d.steps[i].Needs, key)
		}
	}
}
