package planner

import (
	"net/netip"

	"github.com/topolab/topo/ipam"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/spec"
)

// IPv6 beside IPv4, on networks that have it (spec.Network.IPv6): a
// subnet (the file's, the one the bridge has, else the first free /64 of
// the host's ULA prefix; an overlay's, the file's or one derived from
// the file, ipam.OverlayULA), the bridge's gateway, the first address, and
// container addresses, sequential from the one after, kept while a
// container holds them. Steps carry them as they carry IPv4's.

// networks6 resolves the IPv6 subnets and gateways of the networks with
// IPv6, as networks does IPv4's; used is what the host's addresses and
// routes take.
func (ds *desirer) networks6(used []netip.Prefix) {
	f, obs, m := ds.f, ds.obs, ds.m
	ds.picked6 = map[string]string{}
	current := currentSubnets(obs, f.Project, true)
	var want []*Network
	for i, n := range f.Networks {
		if !n.IPv6() {
			continue
		}
		dn := m.Networks[i]
		want = append(want, dn)
		if !n.Subnet6.IsValid() && n.Driver == spec.Overlay {
			// Every host derives the same subnet from the file alone:
			// not the host's ULA prefix, nor what its bridge has.
			p := ipam.OverlayULA(f.Project, n.Name)
			if owner := overlapsForeign(obs, f.Project, p); owner != "" {
				ds.fail(n.Pos, "network %s: IPv6 subnet %s (%s) overlaps %s; give the network an IPv6 subnet of its own", n.Name, p, overlayULAWhy, owner)
			} else if why := overlapsHost(obs, p); why != "" {
				ds.fail(n.Pos, "network %s: IPv6 subnet %s (%s) %s; give the network an IPv6 subnet of its own", n.Name, p, overlayULAWhy, why)
			}
			dn.Subnet6, ds.picked6[dn.Name] = p, overlayULAWhy
			continue
		}
		if !n.Subnet6.IsValid() {
			if p, ok := current[dn.Name]; ok && !overlaps6(p, m.Networks) {
				dn.Subnet6 = p
				ds.picked6[dn.Name] = "the subnet its bridge " + dn.Bridge + " has"
			}
			continue
		}
		if owner := overlapsForeign(obs, f.Project, n.Subnet6); owner != "" {
			ds.fail(n.Subnet6Pos, "network %s: subnet %s overlaps %s; choose another subnet", n.Name, n.Subnet6, owner)
		} else if why := overlapsHost(obs, n.Subnet6); why != "" {
			ds.fail(n.Subnet6Pos, "network %s: subnet %s %s; choose another subnet", n.Name, n.Subnet6, why)
		}
		dn.Subnet6 = n.Subnet6
	}
	for _, dn := range want {
		if !dn.Subnet6.IsValid() {
			taken := append([]netip.Prefix(nil), used...)
			for _, other := range m.Networks {
				if other.Subnet6.IsValid() {
					taken = append(taken, other.Subnet6)
				}
			}
			p, err := ipam.PickSubnet(ipam.ULAPools(obs.MachineID), taken)
			if err != nil {
				ds.fail(f.Network(dn.Name).Pos, "network %s: IPv6: %v", dn.Name, err)
				continue
			}
			dn.Subnet6 = p
			ds.picked6[dn.Name] = "a free /64 of this host's unique local prefix " + ipam.ULA(obs.MachineID).String()
		}
		dn.Gateway6 = ipam.Gateway(dn.Subnet6)
	}
}

// overlayULAWhy says where an overlay network's automatic IPv6 subnet
// comes from (ipam.OverlayULA).
const overlayULAWhy = "the /64 topo derives from the project's and the network's names, the same on every host"

func overlaps6(p netip.Prefix, nets []*Network) bool {
	for _, n := range nets {
		if n.Subnet6.IsValid() && n.Subnet6.Overlaps(p) {
			return true
		}
	}
	return false
}

// addresses6 gives the endpoints on networks with IPv6 their IPv6
// addresses: fixed ones first, then those the containers hold, then the
// lowest free in file order.
func (ds *desirer) addresses6() {
	f := ds.f
	alloc := map[string]*ipam.Allocator{}
	for _, dn := range ds.m.Networks {
		if dn.Subnet6.IsValid() {
			alloc[dn.Name] = ipam.NewAllocator(dn.Subnet6)
		}
	}
	var todo []pendingAddr
	for i, c := range f.Containers {
		dc := ds.m.Containers[i]
		for _, a := range c.Networks {
			al, dn, ep := alloc[a.Network], ds.nets[a.Network], dc.Endpoint(a.Network)
			if al == nil || ep == nil {
				continue
			}
			if !a.IPv6.IsValid() {
				todo = append(todo, pendingAddr{ep, names.Endpoint(c.Name, a.Network)})
				continue
			}
			if how := ds.picked6[a.Network]; how != "" {
				if problem := spec.AddressProblem6(dn.Subnet6, a.IPv6, a.Network, how); problem != "" {
					ds.fail(a.IPv6Pos, "container %s: ipv6_address %s %s", c.Name, a.IPv6, problem)
					continue
				}
			}
			if !al.Reserve(a.IPv6) {
				ds.fail(a.IPv6Pos, "container %s: ipv6_address %s is not free in network %s (%s)", c.Name, a.IPv6, a.Network, dn.Subnet6)
			}
			ep.Addr6 = netip.PrefixFrom(a.IPv6, dn.Subnet6.Bits())
		}
	}
	ds.assign(todo, alloc, true)
}

// GatewayAddrs are the addresses the network's bridge carries: the
// gateway of each family it has, in CIDR form.
func (n *Network) GatewayAddrs() []netip.Prefix {
	var out []netip.Prefix
	if n.Gateway.IsValid() {
		out = append(out, netip.PrefixFrom(n.Gateway, n.Subnet.Bits()))
	}
	if n.Gateway6.IsValid() {
		out = append(out, netip.PrefixFrom(n.Gateway6, n.Subnet6.Bits()))
	}
	return out
}

// Addrs are the endpoint's addresses: its IPv4 one, and its IPv6 one on
// a network with IPv6 (its only one on an IPv6-only network).
func (e *Endpoint) Addrs() []netip.Prefix {
	var out []netip.Prefix
	if e.Addr.IsValid() {
		out = append(out, e.Addr)
	}
	if e.Addr6.IsValid() {
		out = append(out, e.Addr6)
	}
	return out
}
