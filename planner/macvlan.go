package planner

import (
	"fmt"
	"slices"
	"strings"

	"github.com/topolab/topo/ipam"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

// macvlan is the driver of Docker's macvlan networks: per container a
// macvlan link of a host link (the parent, on the LAN), made directly in
// the container's namespace, with its own hardware address on the LAN.
// Nothing of the network is on the host: no bridge, no gateway (the
// LAN's router is), no firewall rules. As everywhere with macvlan, the
// host cannot reach its own macvlan containers through the parent: the
// kernel delivers what the parent sends to the wire, never to the
// parent's macvlans.
type macvlan struct{}

func init() { drivers["macvlan"] = macvlan{} }

// macvlanOpts are the options of driver_opts, Docker's names.
var macvlanOpts = []string{"parent", "macvlan_mode"}

func (macvlan) firewalled() bool { return false }

// check refuses options it does not take, a missing parent and mode
// topo does not know, a network without its LAN's subnet, and a
// passthru network that more than one container joins (passthru gives
// the parent's whole port to one macvlan).
func (macvlan) check(f *spec.File, n *spec.Network) []error {
	var errs []error
	fail := func(pos spec.Pos, format string, args ...any) {
		errs = append(errs, &spec.Error{Path: f.Path, Pos: pos, Msg: fmt.Sprintf("network %q: ", n.Name) + fmt.Sprintf(format, args...)})
	}
	for _, k := range sortedKeys(n.DriverOpts) {
		if k == "host_link" {
			fail(n.DriverOptsPos, "driver_opts host_link is not supported yet: the host cannot reach the network's containers through the parent; reach them from another machine of the LAN")
			continue
		}
		if !slices.Contains(macvlanOpts, k) {
			fail(n.DriverOptsPos, "driver_opts %q: the macvlan driver takes %s", k, strings.Join(macvlanOpts, " and "))
		}
	}
	parent := n.DriverOpts["parent"]
	switch {
	case parent == "":
		fail(cmpPos(n.DriverOptsPos, n.DriverPos), "the macvlan driver needs driver_opts parent: the host's link on the LAN (ip link lists them), as in driver_opts: {parent: eth1}")
	case strings.ContainsAny(parent, "/: ") || len(parent) > 15:
		fail(n.DriverOptsPos, "driver_opts parent %q is not an interface name", parent)
	}
	if m, ok := n.DriverOpts["macvlan_mode"]; ok && !slices.Contains(op.MacvlanModes, m) {
		fail(n.DriverOptsPos, "driver_opts macvlan_mode %q is not a macvlan mode: use one of %s", m, strings.Join(op.MacvlanModes, ", "))
	}
	if !n.Subnet.IsValid() && n.SubnetPos == (spec.Pos{}) {
		fail(n.Pos, "a macvlan network needs the LAN's subnet: add subnet (and gateway, the LAN's router, if it is not the subnet's first address)")
	}
	if macvlanMode(n) == "passthru" {
		var on []string
		for _, c := range f.Containers {
			if slices.ContainsFunc(c.Networks, func(a *spec.Attachment) bool { return a.Network == n.Name }) {
				on = append(on, c.Name)
			}
		}
		if len(on) > 1 {
			fail(n.DriverOptsPos, "macvlan_mode passthru gives the parent to one container, and %d join the network (%s): use another mode, or one container", len(on), strings.Join(on, ", "))
		}
	}
	return errs
}

// cmpPos is the first of positions that is set.
func cmpPos(ps ...spec.Pos) spec.Pos {
	for _, p := range ps {
		if p != (spec.Pos{}) {
			return p
		}
	}
	return spec.Pos{}
}

// macvlanMode is the network's macvlan mode: bridge by default, as
// Docker's.
func macvlanMode(n *spec.Network) string {
	if m := n.DriverOpts["macvlan_mode"]; m != "" {
		return m
	}
	return "bridge"
}

// network: a macvlan network has nothing of its own on the host.
func (macvlan) network(*differ, *Network, *state.Link) {}

// create makes the macvlan in the container's namespace, with the MAC of
// its address.
func (macvlan) create(d *differ, ref op.Ref, c *Container, e *Endpoint) {
	mk := names.NewMark(d.project, names.KindEndpoint, names.Endpoint(c.Name, e.Network))
	d.add(create(ref, op.MacvlanAdd{NS: c.NS, Link: e.IfName, Parent: e.Parent, Mode: e.Mode, MAC: names.MAC(e.Addr.Addr()), MTU: e.MTU, Mark: mk},
		op.LinkDel{NS: c.NS, Link: e.IfName, Mark: mk}))
}

// repair: a macvlan has no part of its own to repair; a changed parent
// or mode makes it another (intact).
func (macvlan) repair(*differ, op.Ref, *Endpoint, *observedEndpoint) {}

// intact: a macvlan of the parent, in the mode, under the container's
// interface name, and no host end.
func (macvlan) intact(o *observedEndpoint, e *Endpoint, ns string) bool {
	return o.host == nil && o.inner != nil && o.inner.Kind == "macvlan" && o.inner.Name == e.IfName && o.ns == ns &&
		o.inner.Parent == e.Parent && o.inner.MacvlanMode == e.Mode
}

// rebuild is the macvlan as it is.
func (macvlan) rebuild(o *observedEndpoint) (op.Operation, bool) {
	if o.host != nil || o.inner == nil || o.inner.Kind != "macvlan" || o.inner.Parent == "" {
		return nil, false
	}
	mk, _ := names.ParseMark(o.inner.Alias)
	return op.MacvlanAdd{NS: o.ns, Link: o.inner.Name, Parent: o.inner.Parent, Mode: o.inner.MacvlanMode,
		MAC: addrMAC(o.inner.Addrs), MTU: keptMTU(o.inner), Mark: mk}, true
}

// macvlanNetwork resolves a macvlan network against the host: its parent
// must be there; when the host has an address on the parent, the subnet
// must be that LAN's, and containers get neither it nor the gateway.
// The subnet is the LAN's, which the host's own routes cover: it is not
// checked against them as a bridge's is.
func (ds *desirer) macvlanNetwork(n *spec.Network, dn *Network) {
	dn.Bridge, dn.Parent, dn.Mode = "", n.DriverOpts["parent"], macvlanMode(n)
	dn.Gateway = n.Gateway
	if !dn.Gateway.IsValid() && dn.Subnet.IsValid() {
		dn.Gateway = ipam.Gateway(dn.Subnet)
	}
	l := ds.obs.Host.Link(dn.Parent)
	if l == nil {
		ds.fail(n.DriverOptsPos, "network %s: parent %s does not exist on this host: name one of its links (ip link lists them) in driver_opts parent", n.Name, dn.Parent)
		return
	}
	if mk, ok := names.ParseMark(l.Alias); ok && mk.Kind == names.KindEndpoint {
		ds.fail(n.DriverOptsPos, "network %s: parent %s is the host end of topo's endpoint %s of project %s: name a link of the LAN", n.Name, dn.Parent, mk.Name, mk.Project)
		return
	}
	if dn.MTU == 0 && l.MTU != 0 && l.MTU != names.DefaultMTU {
		dn.MTU = l.MTU // a macvlan has its parent's MTU
	}
	if !dn.Subnet.IsValid() {
		return
	}
	var lans []string
	for _, p := range prefixes(l.Addrs) {
		if dn.Subnet.Contains(p.Addr()) {
			dn.taken = append(dn.taken, p.Addr())
			continue
		}
		lans = append(lans, p.Masked().String())
	}
	if len(lans) > 0 && len(dn.taken) == 0 {
		ds.fail(n.SubnetPos, "network %s: subnet %s is not the LAN of parent %s, which the host has on %s: give the parent's LAN as subnet", n.Name, dn.Subnet, dn.Parent, strings.Join(lans, ", "))
	}
	if owner := overlapsForeign(ds.obs, ds.f.Project, dn.Subnet); owner != "" {
		ds.fail(n.SubnetPos, "network %s: subnet %s overlaps %s; choose another subnet", n.Name, dn.Subnet, owner)
	}
}

// checkPublishes refuses ports of a container whose publishes would go
// to a network without the host's firewall, a macvlan: a macvlan
// container is reachable at its own address on the LAN, not through the
// host's.
func checkPublishes(f *spec.File) []error {
	var errs []error
	for _, c := range f.Containers {
		if len(c.Ports) == 0 || c.Mode != spec.ModeBridge {
			continue
		}
		n := publishNetwork(f, c)
		if n == nil || driverOf(n.Driver).firewalled() {
			continue
		}
		errs = append(errs, &spec.Error{Path: f.Path, Pos: c.Ports[0].Pos, Msg: fmt.Sprintf(
			"container %q: ports: its publishes would go to network %q, a %s network, whose containers are reached at their own address on the LAN, not through the host's: remove ports, or attach the container to a bridge network first",
			c.Name, n.Name, n.Driver)})
	}
	return errs
}

// publishNetwork is the network a container's publishes go to: its first
// that is not internal (nil for none).
func publishNetwork(f *spec.File, c *spec.Container) *spec.Network {
	for _, a := range c.Networks {
		if n := f.Network(a.Network); n != nil && !n.Internal {
			return n
		}
	}
	return nil
}
