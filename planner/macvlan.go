package planner

import (
	"fmt"
	"net/netip"
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
var macvlanOpts = []string{"parent", "macvlan_mode", "host_link"}

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
		if !slices.Contains(macvlanOpts, k) {
			fail(n.DriverOptsPos, "driver_opts %q: the macvlan driver takes %s", k, strings.Join(macvlanOpts, ", "))
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
	switch h, ok := n.DriverOpts["host_link"]; {
	case !ok || h == "false":
	case h != "true":
		fail(n.DriverOptsPos, "driver_opts host_link %q: write true or false", h)
	case macvlanMode(n) != "bridge":
		fail(n.DriverOptsPos, "driver_opts host_link needs macvlan_mode bridge: the host's macvlan reaches the containers' only in bridge mode")
	case !n.IPRange.IsValid():
		fail(n.DriverOptsPos, "driver_opts host_link needs ip_range: the host routes it to the containers through its macvlan, and the rest of the subnet through the parent")
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

// network: a macvlan network has nothing of its own on the host but,
// with host_link, the host's macvlan on the parent (in bridge mode, so
// that it reaches the containers' macvlans), its address, and the route
// of ip_range through it, which is more specific than the parent's route
// of the subnet. have is what the kernel has, made again when it is not
// that macvlan.
func (macvlan) network(d *differ, n *Network, have *state.Link) {
	ref := op.Network(n.Name)
	if have != nil && (n.HostLink == "" || have.Kind != "macvlan" || have.Name != n.HostLink || have.Parent != n.Parent || have.MacvlanMode != "bridge") {
		d.hostLinkGone(n.Name, have)
		have = nil
	}
	if n.HostLink == "" {
		return
	}
	if have == nil {
		mk := names.NewMark(d.project, names.KindNetwork, n.Name)
		d.add(create(ref, op.MacvlanAdd{Link: n.HostLink, Parent: n.Parent, Mode: "bridge", MAC: names.MAC(n.HostAddr.Addr()), Mark: mk},
			op.LinkDel{Link: n.HostLink, Mark: mk}))
		d.addrAdd(ref, "", n.HostLink, n.HostAddr)
	} else {
		if !have.Up {
			d.linkUp(ref, "", have.Name)
		}
		d.syncAddrs(ref, "", have.Name, have.Addrs, n.HostAddr)
	}
	if have == nil || !slices.Contains(d.obs.Host.Routes, state.Route{Dst: n.HostRoute.String(), Dev: n.HostLink}) {
		d.add(create(ref, op.RouteAdd{Link: n.HostLink, Dst: n.HostRoute}, op.RouteDel{Link: n.HostLink, Dst: n.HostRoute}))
	}
}

// hostLinkGone deletes a host macvlan of the project's (host_link); its
// undo makes it again with its addresses and the routes through it,
// which go with it.
func (d *differ) hostLinkGone(network string, l *state.Link) {
	ref := op.Network(network)
	mk, _ := names.ParseMark(l.Alias)
	parts := []op.Step{{Action: op.Create, Ref: ref, Op: op.MacvlanAdd{Link: l.Name, Parent: l.Parent, Mode: l.MacvlanMode, MAC: addrMAC(l.Addrs), MTU: keptMTU(l), Mark: mk}}}
	for _, a := range prefixes(l.Addrs) {
		parts = append(parts, op.Step{Action: op.Create, Ref: ref, Op: op.AddrAdd{Link: l.Name, Addr: a}})
	}
	for _, r := range d.obs.Host.Routes {
		if r.Dev == l.Name {
			dst, gw := route(r)
			parts = append(parts, op.Step{Action: op.Create, Ref: ref, Op: op.RouteAdd{Link: l.Name, Dst: dst, Gateway: gw}})
		}
	}
	d.add(op.Step{Action: op.Destroy, Ref: ref, Op: op.LinkDel{Link: l.Name, Mark: mk}, Undo: &op.Step{Action: op.Create, Ref: ref, Op: op.Seq{Steps: parts}}})
}

// hostLinkAddr gives the host's macvlan of dn its address: the one it has
// when it is in ip_range, else the highest free of ip_range, away from
// the containers' picks from the lowest.
func (ds *desirer) hostLinkAddr(dn *Network, a *ipam.Allocator) {
	if l := ds.obs.Host.Link(dn.HostLink); l != nil {
		for _, p := range prefixes(l.Addrs) {
			if dn.HostRoute.Contains(p.Addr()) && a.Reserve(p.Addr()) {
				dn.HostAddr = netip.PrefixFrom(p.Addr(), 32)
				return
			}
		}
	}
	addr, err := a.Last()
	if err != nil {
		ds.fail(ds.f.Network(dn.Name).DriverOptsPos, "network %s: no address left for the host's macvlan (host_link): %v; use a larger ip_range", dn.Name, err)
		return
	}
	dn.HostAddr = netip.PrefixFrom(addr, 32)
}

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
	if n.DriverOpts["host_link"] == "true" {
		dn.HostLink, dn.HostRoute = names.MacvlanHost(ds.f.Project, n.Name), n.IPRange
		if l := ds.obs.Host.Link(dn.HostLink); l != nil && l.Alias != names.NewMark(ds.f.Project, names.KindNetwork, n.Name).String() {
			ds.fail(n.DriverOptsPos, "network %s: link %s (for host_link) already exists and %s; remove it or rename the network", n.Name, dn.HostLink, owner(l.Alias))
		}
	}
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
		why := "whose containers are reached at their own address on the LAN, not through the host's"
		if n.Driver == "cni" {
			why = "whose chain makes its own rules (CNI's portmap plugin publishes ports)"
		}
		errs = append(errs, &spec.Error{Path: f.Path, Pos: c.Ports[0].Pos, Msg: fmt.Sprintf(
			"container %q: ports: its publishes would go to network %q, a %s network, %s: remove ports, or attach the container to a bridge network first",
			c.Name, n.Name, n.Driver, why)})
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
