package planner

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/ipam"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

// overlay is the driver of networks that span the file's hosts, with no
// control plane: on each host that has a container on it, a bridge as
// the bridge driver's (same gateway, same MAC, on every host: each
// host's containers go out through their own host), and a VXLAN device
// on the bridge whose every entry comes from the file. The address of
// every container is allocated from the file alone, so each host knows
// where every other host's containers are without asking: an all-zeros
// forwarding entry per other host carries broadcast and unknown unicast,
// and a forwarding and a neighbour entry per remote container carry
// unicast and answer ARP on the spot (the device's proxy), so that
// nothing learns, floods ARP or gossips.
type overlay struct{ bridge }

func init() { drivers[spec.Overlay] = overlay{} }

// Overlay is what an overlay network has on this host beyond a bridge.
type Overlay struct {
	// Link is the VXLAN device; VNI its identifier.
	Link string
	VNI  int
	// Local is this host's underlay address, Peers the other hosts'
	// that have a container on the network, sorted.
	Local netip.Addr
	Peers []netip.Addr
	// Remote are the endpoints of other hosts' containers on the
	// network, with the host's address each is behind.
	Remote []RemoteEndpoint
}

// RemoteEndpoint is an endpoint of a container on another host: its
// addresses (Addr6 on a network with IPv6, Addr invalid on an IPv6-only
// one), its MAC, and the host's underlay address it is behind.
type RemoteEndpoint struct {
	Container   string
	Addr, Addr6 netip.Addr
	MAC         net.HardwareAddr
	Host        netip.Addr
}

// addrs are the remote endpoint's addresses, IPv4's first.
func (r RemoteEndpoint) addrs() []netip.Addr {
	var out []netip.Addr
	for _, a := range []netip.Addr{r.Addr, r.Addr6} {
		if a.IsValid() {
			out = append(out, a)
		}
	}
	return out
}

// check: an overlay network takes no options, needs an IPv4 subnet
// unless it is IPv6-only (every host allocates from it alone, never from
// what it observes; the automatic IPv6 subnet is derived from the file,
// and the fixed IPv6 addresses must lie in it), and a VNI of its own,
// given or derived.
func (overlay) check(f *spec.File, n *spec.Network) []error {
	var errs []error
	for _, k := range sortedKeys(n.DriverOpts) {
		errs = append(errs, &spec.Error{Path: f.Path, Pos: n.DriverOptsPos, Msg: fmt.Sprintf(
			"network %q: driver_opts %q: the overlay driver takes no options", n.Name, k)})
	}
	if !n.Subnet.IsValid() && n.IPv4() {
		errs = append(errs, &spec.Error{Path: f.Path, Pos: n.DriverPos, Msg: fmt.Sprintf(
			"network %q: an overlay network needs subnet: (every host allocates its addresses from the file alone, the same on each); add one like subnet: 10.80.0.0/24", n.Name)})
	}
	if n.IPv6() && !n.Subnet6.IsValid() {
		s := ipam.OverlayULA(f.Project, n.Name)
		for _, c := range f.Containers {
			for _, a := range c.Networks {
				if a.Network != n.Name || !a.IPv6.IsValid() {
					continue
				}
				if problem := spec.AddressProblem6(s, a.IPv6, n.Name, overlayULAWhy); problem != "" {
					errs = append(errs, &spec.Error{Path: f.Path, Pos: a.IPv6Pos, Msg: fmt.Sprintf("container %q: ipv6_address %s %s", c.Name, a.IPv6, problem)})
				}
			}
		}
	}
	vni := vniOf(f, n)
	for _, o := range f.Networks {
		if o == n {
			break
		}
		if o.Driver == spec.Overlay && vniOf(f, o) == vni {
			errs = append(errs, &spec.Error{Path: f.Path, Pos: n.Pos, Msg: fmt.Sprintf(
				"network %q: its vni would be %d, like network %q's (%s); give one of them another vni:", n.Name, vni, o.Name, o.Pos.Ref(f.Path, n.Pos))})
		}
	}
	return errs
}

// vniOf is the VNI of an overlay network: the file's, else derived.
func vniOf(f *spec.File, n *spec.Network) int {
	if n.VNI != 0 {
		return n.VNI
	}
	return names.VNI(f.Project, n.Name)
}

// network makes the bridge as the bridge driver does, then the VXLAN
// device on it and its entries.
func (o overlay) network(d *differ, n *Network, have *state.Link) {
	o.bridge.network(d, n, have)
	ov := n.Overlay
	ref := op.Network(n.Name)
	mk := names.NewMark(d.project, names.KindTunnel, n.Name)
	want := op.VxlanAdd{Link: ov.Link, Master: n.Bridge, VNI: ov.VNI, Local: ov.Local, Port: names.VXLANPort, MTU: n.MTU, Mark: mk}
	fdb, neigh := ov.entries()
	vx := d.tunnels[n.Name]
	if vx != nil && !tunnelIntact(vx, want) {
		d.add(op.Step{Action: op.Destroy, Ref: ref, Op: op.LinkDel{Link: vx.Name, Mark: mk}, Undo: tunnelRebuild(ref, vx)})
		vx = nil
	}
	if vx == nil {
		d.add(create(ref, want, op.LinkDel{Link: ov.Link, Mark: mk}))
		for _, e := range fdb {
			d.add(create(ref, e, op.FdbDel(e)))
		}
		for _, e := range neigh {
			d.add(create(ref, e, op.NeighDel(e)))
		}
		return
	}
	if !vx.Up {
		d.linkUp(ref, "", vx.Name)
	}
	d.mtu(ref, "", vx, n.LinkMTU())
	haveFDB, haveNeigh := map[string]bool{}, map[string]bool{}
	for _, e := range vx.VXLAN.FDB {
		haveFDB[e] = true
	}
	for _, e := range vx.VXLAN.Neigh {
		haveNeigh[e] = true
	}
	for _, e := range fdb {
		if k := op.FdbEntry(e.MAC, e.Dst); haveFDB[k] {
			delete(haveFDB, k)
		} else {
			d.add(create(ref, e, op.FdbDel(e)))
		}
	}
	for _, e := range neigh {
		if k := op.NeighEntry(e.Addr, e.MAC); haveNeigh[k] {
			delete(haveNeigh, k)
		} else {
			d.add(create(ref, e, op.NeighDel(e)))
		}
	}
	for _, k := range sortedKeys(haveFDB) {
		if e, ok := parseFdb(vx.Name, k); ok {
			d.add(destroy(ref, op.FdbDel(e), e))
		}
	}
	for _, k := range sortedKeys(haveNeigh) {
		if e, ok := parseNeigh(vx.Name, k); ok {
			d.add(destroy(ref, op.NeighDel(e), e))
		}
	}
}

// broadcastMAC is the forwarding entry of broadcast and unknown unicast.
var broadcastMAC = net.HardwareAddr{0, 0, 0, 0, 0, 0}

// entries are the forwarding and neighbour entries the file wants on the
// network's VXLAN device: broadcast to every other host, and each remote
// container's MAC to its host and each of its addresses to its MAC (the
// device answers ARP and IPv6 neighbour solicitations from them alike).
func (ov *Overlay) entries() (fdb []op.FdbAdd, neigh []op.NeighAdd) {
	for _, p := range ov.Peers {
		fdb = append(fdb, op.FdbAdd{Link: ov.Link, MAC: broadcastMAC, Dst: p})
	}
	for _, r := range ov.Remote {
		fdb = append(fdb, op.FdbAdd{Link: ov.Link, MAC: r.MAC, Dst: r.Host})
		for _, a := range r.addrs() {
			neigh = append(neigh, op.NeighAdd{Link: ov.Link, Addr: a, MAC: r.MAC})
		}
	}
	return fdb, neigh
}

// tunnelIntact says the observed device is the one the file wants, in
// what cannot change in place.
func tunnelIntact(l *state.Link, want op.VxlanAdd) bool {
	v := l.VXLAN
	return v != nil && l.Kind == "vxlan" && l.Master == want.Master && v.VNI == want.VNI && v.Local == want.Local.String() &&
		v.Port == want.Port && !v.Learning && v.Proxy
}

// tunnelRebuild makes a VXLAN device again as it is, with its entries:
// the undo of its removal.
func tunnelRebuild(ref op.Ref, l *state.Link) *op.Step {
	mk, _ := names.ParseMark(l.Alias)
	v := l.VXLAN
	if v == nil {
		v = &state.VXLAN{}
	}
	local, _ := netip.ParseAddr(v.Local)
	parts := []op.Step{{Action: op.Create, Ref: ref, Op: op.VxlanAdd{Link: l.Name, Master: l.Master, VNI: v.VNI, Local: local, Port: v.Port, MTU: l.MTU, Mark: mk}}}
	for _, k := range v.FDB {
		if e, ok := parseFdb(l.Name, k); ok {
			parts = append(parts, op.Step{Action: op.Create, Ref: ref, Op: e})
		}
	}
	for _, k := range v.Neigh {
		if e, ok := parseNeigh(l.Name, k); ok {
			parts = append(parts, op.Step{Action: op.Create, Ref: ref, Op: e})
		}
	}
	if len(parts) == 1 {
		return &parts[0]
	}
	return &op.Step{Action: op.Create, Ref: ref, Op: op.Seq{Steps: parts}}
}

// tunnelsGone deletes the VXLAN devices of networks the file no longer
// has on this host (or has as another driver); their entries go with
// them, and their undo puts both back.
func (d *differ) tunnelsGone() {
	for _, name := range sortedKeys(d.tunnels) {
		if n := d.wantNet[name]; n != nil && n.Overlay != nil {
			continue
		}
		l := d.tunnels[name]
		ref := op.Network(name)
		mk, _ := names.ParseMark(l.Alias)
		d.add(op.Step{Action: op.Destroy, Ref: ref, Op: op.LinkDel{Link: l.Name, Mark: mk}, Undo: tunnelRebuild(ref, l)})
	}
}

// checkTunnels refuses VXLAN device names held by links topo did not make
// for the network.
func (d *differ) checkTunnels(m *Model) {
	for _, n := range m.Networks {
		if n.Overlay == nil {
			continue
		}
		if l := d.obs.Host.Link(n.Overlay.Link); l != nil && l.Alias != names.NewMark(m.Project, names.KindTunnel, n.Name).String() {
			d.errs = append(d.errs, fmt.Errorf("network %s: link %s already exists and %s; remove it or rename the network", n.Name, n.Overlay.Link, owner(l.Alias)))
		}
	}
}

func parseFdb(link, s string) (op.FdbAdd, bool) {
	m, d, ok := strings.Cut(s, " ")
	mac, err := net.ParseMAC(m)
	dst, err2 := netip.ParseAddr(d)
	return op.FdbAdd{Link: link, MAC: mac, Dst: dst}, ok && err == nil && err2 == nil
}

func parseNeigh(link, s string) (op.NeighAdd, bool) {
	a, m, ok := strings.Cut(s, " ")
	addr, err := netip.ParseAddr(a)
	mac, err2 := net.ParseMAC(m)
	return op.NeighAdd{Link: link, Addr: addr, MAC: mac}, ok && err == nil && err2 == nil
}

// ErrNotAHost says the machine has none of the file's hosts' addresses.
var ErrNotAHost = errors.New("this machine has none of the hosts' addresses")

// self is the host of the file this machine is: the one named (--host),
// else the one whose underlay address this machine has. It is "" for a
// file without hosts.
func selfHost(f *spec.File, obs *state.Snapshot, name string) (*spec.Host, error) {
	if len(f.Hosts) == 0 {
		if name != "" {
			return nil, fmt.Errorf("--host %s: the file has no hosts:; leave --host out", name)
		}
		return nil, nil
	}
	if name != "" {
		if h := f.Host(name); h != nil {
			return h, nil
		}
		return nil, fmt.Errorf("--host %s: the file's hosts are %s", name, hostList(f))
	}
	var mine []*spec.Host
	for _, h := range f.Hosts {
		if hostHas(obs, h.Address) {
			mine = append(mine, h)
		}
	}
	switch len(mine) {
	case 1:
		return mine[0], nil
	case 0:
		return nil, fmt.Errorf("%s: %w (%s): run topo on one of them, or say which host this is with --host NAME", f.Path, ErrNotAHost, hostList(f))
	}
	return nil, fmt.Errorf("%s: this machine has the addresses of hosts %s and %s: say which host this is with --host NAME", f.Path, mine[0].Name, mine[1].Name)
}

// DesireFor is Desire for the part of host (a file with hosts), from
// whichever machine.
func DesireFor(f *spec.File, obs *state.Snapshot, host string) (*Model, error) {
	m, _, err := desire(f, obs, host)
	return m, err
}

// hostSnapshot is what the part of host o.Host is planned against: obs
// when this machine is that host; an empty kernel, with o.Elsewhere,
// when it is not. Without Elsewhere, naming a host whose address this
// machine lacks is refused: up would make that host's containers here.
func hostSnapshot(f *spec.File, obs *state.Snapshot, o Options) (*state.Snapshot, error) {
	h := f.Host(o.Host)
	if h == nil || hostHas(obs, h.Address) {
		return obs, nil
	}
	if o.Elsewhere {
		return &state.Snapshot{}, nil
	}
	return nil, fmt.Errorf("--host %s: this machine does not have host %s's address %s: topo up applies the part of the host it runs on (topo plan --host %s shows that host's part)", h.Name, h.Name, h.Address, h.Name)
}

func hostList(f *spec.File) string {
	var parts []string
	for _, h := range f.Hosts {
		parts = append(parts, h.Name+" "+h.Address.String())
	}
	return strings.Join(parts, ", ")
}

// hostHas says whether the host namespace has address a.
func hostHas(obs *state.Snapshot, a netip.Addr) bool {
	return underlay(obs, a) != nil
}

// underlay is the host's link with address a, or nil.
func underlay(obs *state.Snapshot, a netip.Addr) *state.Link {
	for i := range obs.Host.Links {
		for _, p := range prefixes(obs.Host.Links[i].Addrs) {
			if p.Addr() == a {
				return &obs.Host.Links[i]
			}
		}
	}
	return nil
}

// overlayNetwork fills in what an overlay network dn has on this host
// that a bridge has not: its VXLAN device and VNI, the local address,
// and its MTU when the file gives none, the underlay's (the MTU of the
// link with the host's address, 1500 when this machine is not the host)
// less VXLAN's overhead on an underlay of that family.
func (ds *desirer) overlayNetwork(n *spec.Network, dn *Network) {
	if n.Driver != spec.Overlay || ds.self == nil {
		return
	}
	dn.Overlay = &Overlay{Link: names.VXLAN(ds.f.Project, n.Name), VNI: vniOf(ds.f, n), Local: ds.self.Address}
	if dn.MTU == 0 {
		mtu := names.DefaultMTU
		if l := underlay(ds.obs, ds.self.Address); l != nil && l.MTU > 0 {
			mtu = l.MTU
		}
		dn.MTU = mtu - names.VXLANOverheadOn(ds.self.Address)
	}
}

// split keeps in the model what this host makes: its own containers, and
// the networks they are on (a network no container is on, on the first
// host); the other hosts' containers on its overlay networks go to
// Remote, and into the overlays' entries. It returns the file of this
// host's containers, which ports are picked and checked for.
func (ds *desirer) split() *spec.File {
	f, m := ds.f, ds.m
	if ds.self == nil {
		return f
	}
	m.Host = ds.self.Name
	hostOf := map[string]string{}
	local := *f
	local.Containers = nil
	for _, c := range f.Containers {
		hostOf[c.Name] = f.HostOf(c)
		if hostOf[c.Name] == ds.self.Name {
			local.Containers = append(local.Containers, c)
		}
	}
	used := map[string]map[string]bool{} // network -> hosts with a container on it
	for _, c := range f.Containers {
		for _, a := range c.Networks {
			if used[a.Network] == nil {
				used[a.Network] = map[string]bool{}
			}
			used[a.Network][hostOf[c.Name]] = true
		}
	}
	var nets []*Network
	for _, n := range m.Networks {
		if used[n.Name][ds.self.Name] || (len(used[n.Name]) == 0 && f.Hosts[0] == ds.self) {
			nets = append(nets, n)
		}
		if n.Overlay == nil {
			continue
		}
		for _, h := range f.Hosts {
			if h != ds.self && used[n.Name][h.Name] {
				n.Overlay.Peers = append(n.Overlay.Peers, h.Address)
			}
		}
		slices.SortFunc(n.Overlay.Peers, func(a, b netip.Addr) int { return a.Compare(b) })
	}
	m.Networks = nets
	for _, n := range nets {
		if n.Overlay != nil {
			m.Underlay = &firewall.Underlay{Local: ds.self.Address}
			for _, h := range f.Hosts {
				if h != ds.self {
					m.Underlay.Peers = append(m.Underlay.Peers, h.Address)
				}
			}
			break
		}
	}
	var mine []*Container
	for _, c := range m.Containers {
		c.Host = hostOf[c.Name]
		if c.Host == ds.self.Name {
			mine = append(mine, c)
			continue
		}
		for _, e := range c.Endpoints {
			if n := ds.nets[e.Network]; n.Overlay != nil && c.Mode == spec.ModeBridge {
				n.Overlay.Remote = append(n.Overlay.Remote, RemoteEndpoint{Container: c.Name, Addr: e.Addr.Addr(), Addr6: e.Addr6.Addr(),
					MAC: e.MACOf(), Host: f.Host(c.Host).Address})
			}
		}
		m.Remote = append(m.Remote, c)
	}
	for _, n := range m.Networks {
		if n.Overlay != nil {
			slices.SortFunc(n.Overlay.Remote, func(a, b RemoteEndpoint) int { return cmp.Or(a.Addr.Compare(b.Addr), a.Addr6.Compare(b.Addr6)) })
		}
	}
	m.Containers = mine
	return &local
}

// onOverlay says whether the endpoint is on an overlay network, whose
// addresses come from the file alone, never from what a host holds.
func onOverlay(e *Endpoint) bool {
	_, ok := e.Driver.(overlay)
	return ok
}

// vxlan compares a VXLAN device's entries before and after a rollback,
// for Compare.
func (c *comparer) vxlan(name string, before, after *state.Link) {
	b, a := before.VXLAN, after.VXLAN
	if b == nil {
		return
	}
	if a == nil {
		a = &state.VXLAN{}
	}
	c.entries(name, "forwarding", b.FDB, a.FDB, func(e string) (op.Operation, op.Operation, bool) {
		f, ok := parseFdb(name, e)
		return f, op.FdbDel(f), ok
	})
	c.entries(name, "neighbour", b.Neigh, a.Neigh, func(e string) (op.Operation, op.Operation, bool) {
		n, ok := parseNeigh(name, e)
		return n, op.NeighDel(n), ok
	})
}

// entries reports the entries of a device that are missing or were not
// there, with the step that repairs each; ops makes an entry's addition
// and removal.
func (c *comparer) entries(name, what string, before, after []string, ops func(e string) (add, del op.Operation, ok bool)) {
	for _, e := range before {
		if add, _, ok := ops(e); ok && !slices.Contains(after, e) {
			c.add(&op.Step{Action: op.Create, Ref: check, Op: add}, "%s entry %s of %s on the host is missing", what, e, name)
		}
	}
	for _, e := range after {
		if _, del, ok := ops(e); ok && !slices.Contains(before, e) {
			c.add(&op.Step{Action: op.Destroy, Ref: check, Op: del}, "%s entry %s of %s on the host was not there", what, e, name)
		}
	}
}
