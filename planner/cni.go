package planner

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

// cniDriver is the driver of CNI networks (driver: cni): a plugin chain
// that makes each container's interface, its addresses and routes, run
// through libcni (package machine/cni). topo plans the chain's ADD and DEL
// of each attachment, not what the plugins do: an attachment is a step
// `cni add NETWORK CONTAINER` whose undo is `cni del`, and what it made
// is the plugins' result, which libcni caches (state.CNIAttachment). The
// addresses are known only once the chain ran, so the embedded DNS reads
// them from that cache (records.CNIRef), and the hosts file of a
// container on a CNI network is filled from it when written
// (op.FileWrite's CNI lines). The only link topo makes for the chain is
// the bridge of a bridge plugin, when the host has none of that name:
// marked as the network's, it goes with the network at down, which the
// plugin itself never does.
type cniDriver struct{}

func init() { drivers["cni"] = cniDriver{} }

// firewalled: the chain makes its own rules (a bridge plugin's ipMasq).
func (cniDriver) firewalled() bool { return false }

// check refuses what a chain's network does not take: the chain gives
// addresses, subnets and routes, so topo's keys of them are errors, not
// silently ignored.
func (cniDriver) check(f *spec.File, n *spec.Network) []error {
	var errs []error
	fail := func(pos spec.Pos, format string, args ...any) {
		errs = append(errs, &spec.Error{Path: f.Path, Pos: pos, Msg: fmt.Sprintf("network %q: ", n.Name) + fmt.Sprintf(format, args...)})
	}
	if n.CNI == nil {
		fail(n.DriverPos, "driver cni needs its plugin chain: add cni: {cniVersion: 1.0.0, plugins: [...]}, or cni: {config: FILE}")
	}
	if len(n.DriverOpts) > 0 {
		fail(n.DriverOptsPos, "driver_opts: a CNI network's options are its plugins': write them in cni:")
	}
	for _, k := range []struct {
		set  bool
		pos  spec.Pos
		name string
	}{
		{n.Subnet.IsValid() || n.SubnetPos != (spec.Pos{}), n.SubnetPos, "subnet"},
		{n.Gateway.IsValid(), n.GatewayPos, "gateway"},
		{n.IPRange.IsValid(), n.IPRangePos, "ip_range"},
		{n.MTU != 0, n.MTUPos, "mtu"},
		{n.EnableIPv6, n.EnableIPv6Pos, "enable_ipv6"},
	} {
		if k.set {
			fail(cmpPos(k.pos, n.Pos), "%s: a CNI network's addresses, routes and MTU are its plugins' (the ipam of cni:, a bridge's mtu): remove %s", k.name, k.name)
		}
	}
	if n.Internal {
		fail(n.Pos, "internal: topo makes no rules for a CNI network (its plugins do): remove internal, and leave out a plugin's ipMasq or default route instead")
	}
	for _, c := range f.Containers {
		for _, a := range c.Networks {
			if a.Network != n.Name {
				continue
			}
			what := fmt.Sprintf("container %q on network %q", c.Name, n.Name)
			switch {
			case a.IPv4.IsValid():
				errs = append(errs, &spec.Error{Path: f.Path, Pos: a.IPv4Pos, Msg: what + ": ipv4_address: a CNI network's addresses are its ipam plugin's: remove it (host-local's ranges take a rangeStart and rangeEnd)"})
			case a.IPv6.IsValid():
				errs = append(errs, &spec.Error{Path: f.Path, Pos: a.IPv6Pos, Msg: what + ": ipv6_address: a CNI network's addresses are its ipam plugin's: remove it"})
			case a.MAC != nil:
				errs = append(errs, &spec.Error{Path: f.Path, Pos: a.Pos, Msg: what + ": mac_address: the plugins give the interface its address: remove it (the tuning plugin sets one)"})
			case a.Impairment != nil:
				errs = append(errs, &spec.Error{Path: f.Path, Pos: a.Pos, Msg: what + ": impairment is not supported on a CNI network: use the bandwidth plugin in its chain"})
			}
			if c.Mode != spec.ModeBridge {
				errs = append(errs, &spec.Error{Path: f.Path, Pos: a.Pos, Msg: what + ": a CNI attachment needs a namespace of the container's own"})
			}
		}
	}
	return errs
}

// CNINetwork is what the model holds of a CNI network.
type CNINetwork struct {
	// Raw is the file's chain (spec.CNI.Config).
	Raw []byte
	// Bridge is the bridge a bridge plugin first in the chain is on
	// ("cni0" when it names none); "" for other chains.
	Bridge string
	// Forwards says the chain turns the host's forwarding on itself:
	// IPv4's, and IPv6's with Forwards6 (cniForwards).
	Forwards, Forwards6 bool
}

// CNIAttachment is a container's attachment to a CNI network.
type CNIAttachment struct {
	Network string
	// IfName is the interface the chain makes in the container.
	IfName  string
	Aliases []string
}

// cniNetwork resolves a CNI network: it has no bridge of topo's, subnet
// or gateway. A bridge its chain names that is topo's bridge of another
// project, or of another of its networks, is refused: the one that made
// it removes it at its down, under the other's containers.
func (ds *desirer) cniNetwork(n *spec.Network, dn *Network) {
	dn.Bridge = ""
	dn.CNI = &CNINetwork{Raw: n.CNI.Config, Bridge: cniBridge(n.CNI.Config)}
	dn.CNI.Forwards, dn.CNI.Forwards6 = cniForwards(n.CNI.Config)
	if l := ds.obs.Host.Link(dn.CNI.Bridge); l != nil && dn.CNI.Bridge != "" {
		if mk, ok := names.ParseMark(l.Alias); ok && (mk.Project != ds.f.Project || mk.Name != n.Name) {
			ds.fail(n.CNI.Pos, "network %s: the chain's bridge %s %s; name another bridge in the bridge plugin's bridge:", n.Name, dn.CNI.Bridge, owner(l.Alias))
		}
	}
}

// cniBridge is the bridge of a bridge plugin first in chain ("cni0"
// when it names none, the plugin's default); "" for other chains.
func cniBridge(chain []byte) string {
	var list struct {
		Plugins []struct {
			Type   string `json:"type"`
			Bridge string `json:"bridge"`
		} `json:"plugins"`
	}
	if json.Unmarshal(chain, &list) != nil || len(list.Plugins) == 0 || list.Plugins[0].Type != "bridge" {
		return ""
	}
	if list.Plugins[0].Bridge == "" {
		return "cni0"
	}
	return list.Plugins[0].Bridge
}

// cniForwards reports whether chain turns the host's IPv4 and IPv6
// forwarding on: the reference bridge plugin does with isGateway (which
// isDefaultGateway implies) and ptp always, given an IPAM, each for the
// families of the addresses its IPAM gives (ip.EnableForward), taken
// from a host-local or static IPAM's subnets; an IPAM that names none
// (dhcp, a third party's) is taken to give IPv4. Other plugins (macvlan,
// ipvlan, host-device, bandwidth, portmap, firewall, tuning) route
// nothing of the host's.
func cniForwards(chain []byte) (v4, v6 bool) {
	type subnet struct {
		Subnet  string `json:"subnet"`
		Address string `json:"address"`
	}
	var list struct {
		Plugins []struct {
			Type             string `json:"type"`
			IsGateway        bool   `json:"isGateway"`
			IsDefaultGateway bool   `json:"isDefaultGateway"`
			IPAM             struct {
				Type string `json:"type"`
				subnet
				Ranges    [][]subnet `json:"ranges"`
				Addresses []subnet   `json:"addresses"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if json.Unmarshal(chain, &list) != nil {
		return false, false
	}
	for _, p := range list.Plugins {
		if p.IPAM.Type == "" || p.Type != "ptp" && (p.Type != "bridge" || !p.IsGateway && !p.IsDefaultGateway) {
			continue // no IPAM: layer 2 alone
		}
		nets := append([]subnet{p.IPAM.subnet}, p.IPAM.Addresses...)
		for _, r := range p.IPAM.Ranges {
			nets = append(nets, r...)
		}
		named := false
		for _, s := range nets {
			if pf, err := netip.ParsePrefix(cmp.Or(s.Subnet, s.Address)); err == nil {
				named = true
				v4, v6 = v4 || pf.Addr().Is4(), v6 || pf.Addr().Is6()
			}
		}
		v4 = v4 || !named
	}
	return v4, v6
}

// checkCNIBridges refuses two CNI networks of a file whose chains' bridge
// plugins name one bridge: topo makes it for one of them.
func checkCNIBridges(f *spec.File) []error {
	var errs []error
	first := map[string]*spec.Network{}
	for _, n := range f.Networks {
		if n.Driver != "cni" || n.CNI == nil {
			continue
		}
		b := cniBridge(n.CNI.Config)
		if b == "" {
			continue
		}
		if o := first[b]; o != nil {
			errs = append(errs, &spec.Error{Path: f.Path, Pos: n.CNI.Pos, Msg: fmt.Sprintf(
				"network %q: its chain's bridge %s is network %q's too (%s): name another bridge in the bridge plugin's bridge:, or put the containers on one network", n.Name, b, o.Name, o.CNI.Pos.Ref(f.Path, n.CNI.Pos))})
			continue
		}
		first[b] = n
	}
	return errs
}

// cniConfig is the conflist topo runs for network n of project: the
// file's, named as the file's network (the cache's key, and host-local's
// folder), with host-local's leases under the project's runtime folder
// unless the chain gives a dataDir.
func (d *differ) cniConfig(n *Network) string {
	dec := json.NewDecoder(bytes.NewReader(n.CNI.Raw))
	dec.UseNumber()
	var list map[string]any
	if err := dec.Decode(&list); err != nil {
		return string(n.CNI.Raw) // spec checked it: cannot happen
	}
	list["name"] = n.Name
	plugins, _ := list["plugins"].([]any)
	for _, p := range plugins {
		pm, _ := p.(map[string]any)
		ipam, _ := pm["ipam"].(map[string]any)
		if ipam != nil && ipam["type"] == "host-local" && ipam["dataDir"] == nil {
			ipam["dataDir"] = d.rt.CNIIPAM(d.project)
		}
	}
	b, _ := json.Marshal(list)
	return string(b)
}

// network makes the bridge of a bridge plugin when the host has no link
// of its name, marked as the network's so that it goes with it; the
// plugin gives it its addresses, which topo leaves alone. A bridge the
// host had is the plugin's to join, never changed by topo.
//
// The bridge topo made for the chain before, when the chain now names
// another (or none), goes, after the DELs of the attachments on it.
func (cniDriver) network(d *differ, n *Network, have *state.Link) {
	b, ref := n.CNI.Bridge, op.Network(n.Name)
	mk := names.NewMark(d.project, names.KindNetwork, n.Name)
	if have != nil && have.Name != b {
		d.add(destroy(ref, op.LinkDel{Link: have.Name, Mark: mk}, op.BridgeAdd{Link: have.Name, MTU: keptMTU(have), Mark: mk}))
		have = nil
	}
	if b == "" || have != nil || d.obs.Host.Link(b) != nil {
		return
	}
	d.add(create(ref, op.BridgeAdd{Link: b, Mark: mk}, op.LinkDel{Link: b, Mark: mk}))
}

// A CNI network has no endpoints of topo's: its attachments are the
// chain's (cniAttachments).
func (cniDriver) create(*differ, op.Ref, *Container, *Endpoint)        {}
func (cniDriver) repair(*differ, op.Ref, *Endpoint, *observedEndpoint) {}
func (cniDriver) intact(*observedEndpoint, *Endpoint, string) bool     { return false }
func (cniDriver) rebuild(*observedEndpoint) (o2 op.Operation, ok bool) { return nil, false }

// cniKey names an attachment: network, namespace (the container ID),
// interface.
func cniKey(network, ns, ifname string) string { return network + "\x00" + ns + "\x00" + ifname }

// cniAttachments plans the chains' ADDs and DELs: an attachment the file
// no longer has, or has with another chain, or whose CHECK fails (drift:
// its interface deleted by hand), is deleted with its own cached config;
// one the kernel lacks, or that was deleted, is added. They are planned
// before the DNS, whose hosts lines and reload follow the ADDs.
func (d *differ) cniAttachments(m *Model) {
	type want struct {
		c   *Container
		a   *CNIAttachment
		cfg string
	}
	wants := map[string]want{}
	var order []string
	for _, c := range m.Containers {
		if !c.OwnsNamespace() {
			continue
		}
		for _, a := range c.CNI {
			k := cniKey(a.Network, c.NS, a.IfName)
			wants[k] = want{c, a, d.cniConfig(d.wantNet[a.Network])}
			order = append(order, k)
		}
	}
	kept := map[string]bool{}
	for _, o := range d.obs.CNI {
		k := cniKey(o.Network, o.ID, o.IfName)
		if w, ok := wants[k]; ok && w.cfg == o.Config && o.Check == "" {
			kept[k] = true
			continue
		}
		add := op.CNIAdd{Network: o.Network, Container: d.containerOf(o.ID), NS: o.ID, IfName: o.IfName, Config: o.Config, Cache: d.rt.CNI(d.project)}
		// The undo asks for the attachment as it is, not the IPAM's next.
		undo := add
		undo.IPs, undo.MAC = observedAddrs(o)
		d.add(destroy(op.Endpoint(names.Endpoint(add.Container, o.Network)), op.CNIDel(add), undo))
	}
	d.cniAdded = map[string]bool{}
	for _, k := range order {
		if kept[k] {
			continue
		}
		w := wants[k]
		add := op.CNIAdd{Network: w.a.Network, Container: w.c.Name, NS: w.c.NS, IfName: w.a.IfName, Config: w.cfg, Cache: d.rt.CNI(d.project)}
		s := create(op.Endpoint(names.Endpoint(w.c.Name, w.a.Network)), add, op.CNIDel(add))
		if b := d.wantNet[w.a.Network].CNI.Bridge; b != "" {
			s.Needs = append(s.Needs, op.LinkKey("", b))
		}
		d.add(s)
		d.cniAdded[k] = true
	}
}

// cniAddKeys are what the DNS steps wait for: every ADD of the plan.
func (d *differ) cniAddKeys() []op.Key {
	var out []op.Key
	for _, s := range d.steps {
		if a, ok := s.Op.(op.CNIAdd); ok && s.Action == op.Create {
			out = append(out, op.Provides(a)...)
		}
	}
	return out
}

// observedCNI is the kernel's attachment to network of namespace ns on
// ifname, when its CHECK passes and no ADD of the plan makes it again;
// nil otherwise.
func (d *differ) observedCNI(network, ns, ifname string) *state.CNIAttachment {
	if d.cniAdded[cniKey(network, ns, ifname)] {
		return nil
	}
	for i := range d.obs.CNI {
		o := &d.obs.CNI[i]
		if o.Network == network && o.ID == ns && o.IfName == ifname && o.Check == "" {
			return o
		}
	}
	return nil
}

// cniIfName says whether dev is one of c's CNI interfaces, whose routes
// are the chain's.
func (c *Container) cniIfName(dev string) bool {
	return slices.ContainsFunc(c.CNI, func(a *CNIAttachment) bool { return a.IfName == dev })
}

// cniHosts are the hosts files of want (by path) whose container has CNI
// attachments, as the writes that fill in their addresses.
func (d *differ) cniHosts(m *Model, want map[string]string) map[string]op.HostsWrite {
	out := map[string]op.HostsWrite{}
	inNS := byNamespace(m)
	for _, c := range m.Containers {
		if !c.OwnsNamespace() || len(c.CNI) == 0 {
			continue
		}
		p := names.NetnsFile(c.NS, names.Hosts)
		hw := op.HostsWrite{NS: c.NS, Path: p, Content: want[p]}
		for _, a := range c.CNI {
			hw.CNI = append(hw.CNI, op.CNIHostsLine{Cache: d.rt.CNI(d.project), Network: a.Network, ID: c.NS, IfName: a.IfName,
				Names: strings.Join(hostsNames(inNS[c.NS]), " ")})
		}
		out[p] = hw
	}
	return out
}

// hostsWrite plans a hosts file with CNI lines: unless every attachment
// it names is observed with a result (and no ADD makes it again), and the
// file is what those results fill in, it is written after the ADDs.
func (d *differ) hostsWrite(ref op.Ref, hw op.HostsWrite, old string, exists bool) {
	known := true
	filled := hw.Filled(func(l op.CNIHostsLine) []string {
		o := d.observedCNI(l.Network, l.ID, l.IfName)
		if o == nil {
			known = false
			return nil
		}
		return o.Addrs
	})
	if known && exists && old == filled {
		return
	}
	var s op.Step
	if exists {
		s = change(ref, hw, op.FileWrite{NS: hw.NS, Path: hw.Path, Content: old})
	} else {
		s = create(ref, hw, op.FileDel{NS: hw.NS, Path: hw.Path})
	}
	s.Needs = d.cniAddKeys()
	d.add(s)
}

// Endpoint is the container's endpoint on network, nil for none (a CNI
// attachment is none: see CNI).
func (c *Container) Endpoint(network string) *Endpoint {
	for _, e := range c.Endpoints {
		if e.Network == network {
			return e
		}
	}
	return nil
}

// observedAddrs are the addresses and hardware address of an observed
// attachment's result, those its chain's DEL gives up.
func observedAddrs(o state.CNIAttachment) ([]netip.Addr, net.HardwareAddr) {
	var ips []netip.Addr
	for _, a := range o.Addrs {
		if p, err := netip.ParsePrefix(a); err == nil {
			ips = append(ips, p.Addr())
		}
	}
	mac, _ := net.ParseMAC(o.MAC)
	return ips, mac
}
