package planner

import (
	"cmp"
	"fmt"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

// bridge is the driver of Docker's bridge networks: a Linux bridge
// holding the gateway address, and per container a veth pair whose host
// end is a port of the bridge (in hairpin mode) and whose other end is
// the container's interface.
type bridge struct{}

func init() { drivers["bridge"] = bridge{} }

func (bridge) firewalled() bool { return true }

// check: the bridge driver takes no options.
func (bridge) check(f *spec.File, n *spec.Network) []error {
	var errs []error
	for _, k := range sortedKeys(n.DriverOpts) {
		errs = append(errs, &spec.Error{Path: f.Path, Pos: n.DriverOptsPos, Msg: fmt.Sprintf(
			"network %q: driver_opts %q: the bridge driver takes no options", n.Name, k)})
	}
	return errs
}

// network makes the bridge with its gateway's hardware address, MTU and
// address, or puts them back.
func (bridge) network(d *differ, n *Network, have *state.Link) {
	ref := op.Network(n.Name)
	gws := n.GatewayAddrs()
	mk := names.NewMark(d.project, names.KindNetwork, n.Name)
	if have == nil {
		d.add(create(ref, op.BridgeAdd{Link: n.Bridge, MAC: n.gatewayMAC(), MTU: n.MTU, Mark: mk}, op.LinkDel{Link: n.Bridge, Mark: mk}))
		for _, gw := range gws {
			d.addrAdd(ref, "", n.Bridge, gw)
		}
		return
	}
	if !have.Up {
		d.linkUp(ref, "", n.Bridge)
	}
	if want := n.gatewayMAC(); have.MAC != want.String() {
		// Made by an earlier topo, or changed by hand: put back, so
		// that the gateway's address stops following the ports'.
		d.add(change(ref, op.LinkSetMAC{Link: n.Bridge, MAC: want}, op.LinkSetMAC{Link: n.Bridge, MAC: parseMAC(have.MAC)}))
	}
	d.mtu(ref, "", have, n.LinkMTU())
	d.syncAddrs(ref, "", n.Bridge, have.Addrs, gws...)
}

// create makes the veth pair: the host end on the bridge, the other end
// in the container's namespace with the MAC of its address.
func (bridge) create(d *differ, ref op.Ref, c *Container, e *Endpoint) {
	mk := names.NewMark(d.project, names.KindEndpoint, names.Endpoint(c.Name, e.Network))
	d.add(create(ref, op.VethAdd{Link: e.HostLink, Master: e.Bridge, Peer: e.IfName, PeerNS: c.NS, MAC: e.MACOf(), MTU: e.MTU, Mark: mk},
		op.LinkDel{Link: e.HostLink, Mark: mk}))
}

// repair puts the host end back up, in hairpin mode, at the MTU.
func (bridge) repair(d *differ, ref op.Ref, e *Endpoint, have *observedEndpoint) {
	if !have.host.Up {
		d.linkUp(ref, "", have.host.Name)
	}
	if !have.host.Hairpin {
		d.add(change(ref, op.Hairpin{Link: have.host.Name, On: true}, op.Hairpin{Link: have.host.Name, On: false}))
	}
	d.mtu(ref, "", have.host, cmp.Or(e.MTU, names.DefaultMTU))
}

// intact: both ends there, the host end a veth on the network's bridge
// under its name, the other the container's interface in its namespace.
func (bridge) intact(o *observedEndpoint, e *Endpoint, ns string) bool {
	return o.host != nil && o.inner != nil && o.host.Kind == "veth" &&
		o.host.Master == e.Bridge && o.inner.Name == e.IfName && o.ns == ns && o.host.Name == e.HostLink
}

// rebuild is the veth pair of an endpoint as it is: when both ends are
// there.
func (bridge) rebuild(o *observedEndpoint) (op.Operation, bool) {
	if o.host == nil || o.inner == nil {
		return nil, false
	}
	mk, _ := names.ParseMark(o.host.Alias)
	mac := parseMAC(o.inner.MAC)
	if mac == nil {
		mac = addrMAC(o.inner.Addrs)
	}
	return op.VethAdd{Link: o.host.Name, Master: o.host.Master, Peer: o.inner.Name, PeerNS: o.ns,
		MAC: mac, MTU: keptMTU(o.inner), Mark: mk}, true
}

// bridgesGone deletes the bridges the file no longer has; their
// addresses go with them, and their undo puts them back.
func (d *differ) bridgesGone() {
	for _, name := range sortedKeys(d.bridges) {
		if d.wantNet[name] != nil {
			continue
		}
		l := d.bridges[name]
		if l.Kind == "macvlan" {
			d.hostLinkGone(name, l) // a macvlan network's host_link
			continue
		}
		ref := op.Network(name)
		mk, _ := names.ParseMark(l.Alias)
		mac := parseMAC(l.MAC)
		if mac == nil {
			mac = addrMAC(l.Addrs)
		}
		add := op.Step{Action: op.Create, Ref: ref, Op: op.BridgeAdd{Link: l.Name, MAC: mac, MTU: keptMTU(l), Mark: mk}}
		undo := &add
		parts := []op.Step{add}
		// A new bridge has its sysctls off: the undo sets those topo set
		// on (IPv6 off before the addresses, which it would take away).
		for _, key := range []string{names.IPv6Off(l.Name), names.RouteLocalnet(l.Name)} {
			if d.obs.Sysctls[key] == "1" {
				parts = append(parts, op.Step{Action: op.Change, Ref: ref, Op: op.Sysctl{Key: key, Value: "1"}})
			}
		}
		for _, a := range prefixes(l.Addrs) {
			parts = append(parts, op.Step{Action: op.Create, Ref: ref, Op: op.AddrAdd{Link: l.Name, Addr: a}})
		}
		if len(parts) > 1 {
			undo = &op.Step{Action: op.Create, Ref: ref, Op: op.Seq{Steps: parts}}
		}
		d.add(op.Step{Action: op.Destroy, Ref: ref, Op: op.LinkDel{Link: l.Name, Mark: mk}, Undo: undo})
	}
}
