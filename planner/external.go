package planner

import (
	"fmt"
	"net/netip"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

// external is the driver of a network that exists already (external:
// true): a host bridge topo did not make (docker0, libvirt's virbr0, one
// the user made), which it joins as the bridge driver's containers join
// topo's, and never changes or deletes. Its firewall rules are topo's
// containers' only, by their addresses (firewall.Net.Members).
type external struct{ bridge }

// network: the bridge is the host's, as it is.
func (external) network(*differ, *Network, *state.Link) {}

// checkExternal refuses what an external network cannot have: a driver
// other than the bridge, driver_opts, mtu (the bridge's are its own), and
// a bridge that two networks of the file name.
func checkExternal(f *spec.File, n *spec.Network, seen map[string]*spec.Network) []error {
	var errs []error
	fail := func(pos spec.Pos, format string, args ...any) {
		errs = append(errs, &spec.Error{Path: f.Path, Pos: pos, Msg: fmt.Sprintf("network %q: ", n.Name) + fmt.Sprintf(format, args...)})
	}
	if n.Driver != "" && n.Driver != "bridge" {
		fail(n.DriverPos, "an external network is a host bridge topo joins: driver %q cannot be external; remove driver or external", n.Driver)
	}
	if len(n.DriverOpts) > 0 {
		fail(n.DriverOptsPos, "an external network takes no driver_opts: its bridge is as the host has it")
	}
	if n.MTU != 0 {
		fail(n.MTUPos, "an external network takes no mtu: its bridge's is its own, and topo's links on it take it")
	}
	if first := seen[n.ExternalName]; first != nil {
		fail(n.ExternalPos, "its bridge %s is network %q's too (%s): name it in one network", n.ExternalName, first.Name, first.Pos.Ref(f.Path, n.Pos))
	} else {
		seen[n.ExternalName] = n
	}
	return errs
}

// externalNetwork resolves an external network against the host: its
// bridge must be there, and be no one's of topo. Subnet and gateway are
// the bridge's address unless the file gives them; containers get none
// of the bridge's addresses, nor those of its neighbour table (the hosts
// on it the host has seen), and the links topo puts on it its MTU.
func (ds *desirer) externalNetwork(n *spec.Network, dn *Network) {
	dn.Bridge, dn.External = n.ExternalName, true
	pos := cmpPos(n.ExternalPos, n.Pos)
	l := ds.obs.Host.Link(dn.Bridge)
	if l == nil {
		ds.fail(pos, "network %s: the external bridge %s does not exist on this host: make it (ip link add %s type bridge), or name an existing one in name:", n.Name, dn.Bridge, dn.Bridge)
		return
	}
	if l.Kind != "bridge" {
		ds.fail(pos, "network %s: the external link %s is a %s, not a bridge: name a bridge in name:", n.Name, dn.Bridge, l.Kind)
		return
	}
	if mk, topo := names.ParseMark(l.Alias); topo {
		ds.fail(pos, "network %s: the external bridge %s is topo's, of network %s of project %s: join that network from its own project, or name another bridge", n.Name, dn.Bridge, mk.Name, mk.Project)
		return
	}
	if l.MTU != 0 && l.MTU != names.DefaultMTU {
		dn.MTU = l.MTU
	}
	var own netip.Prefix
	for _, p := range prefixes(l.Addrs) {
		if p.Addr().Is4() && !own.IsValid() {
			own = p
		}
		dn.taken = append(dn.taken, p.Addr())
	}
	for _, s := range l.Neighbours {
		if a, err := netip.ParseAddr(s); err == nil {
			dn.taken = append(dn.taken, a)
		}
	}
	switch {
	case dn.Subnet.IsValid():
	case own.IsValid():
		dn.Subnet = own.Masked()
		ds.picked[dn.Name] = "the subnet of its bridge " + dn.Bridge
	default:
		ds.fail(pos, "network %s: the external bridge %s has no IPv4 address to take the subnet from: give the network a subnet (and its gateway)", n.Name, dn.Bridge)
		return
	}
	dn.Gateway = n.Gateway
	if !dn.Gateway.IsValid() && own.IsValid() && dn.Subnet.Contains(own.Addr()) {
		dn.Gateway = own.Addr()
	}
	if owner := overlapsForeign(ds.obs, ds.f.Project, dn.Subnet); owner != "" {
		ds.fail(n.SubnetPos, "network %s: subnet %s overlaps %s; choose another subnet", n.Name, dn.Subnet, owner)
	}
}

// networkDriver is the driver of n: external's for an external network,
// else its driver:'s.
func networkDriver(n *spec.Network) driver {
	if n.External {
		return external{}
	}
	return driverOf(n.Driver)
}
