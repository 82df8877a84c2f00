// Package planner computes, without touching anything, the ordered steps
// that make the kernel match a topology file: (file, observed snapshot) in,
// Plan out. The same inputs always give the same plan, byte for byte.
package planner

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/ipam"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/privilege"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

// Model is the kernel state the file asks for, with every name and address
// resolved. It is what the planner diffs against the snapshot, and what
// commands like ps and inspect show.
type Model struct {
	Project string
	// Host is the host of the file this is the part of (overlay.go);
	// "" for a file without hosts.
	Host       string
	Networks   []*Network
	Containers []*Container
	// Remote are the other hosts' containers; the embedded DNS answers
	// for those on this host's overlay networks too.
	Remote []*Container
	// Underlay is the host's and its peers' addresses when it has an
	// overlay network, for the firewall.
	Underlay *firewall.Underlay
	// Links are the point-to-point links between containers (links.go).
	Links []*Link
}

// Network is a network as it will exist in the kernel.
type Network struct {
	Name string
	// Driver makes its links (driver.go).
	Driver  driver
	Bridge  string
	Subnet  netip.Prefix
	Gateway netip.Addr
	// Subnet6 and Gateway6 are the network's IPv6 ones; invalid for an
	// IPv4-only network.
	Subnet6  netip.Prefix
	Gateway6 netip.Addr
	Internal bool
	// MTU is the file's mtu: (0 when it gives none, which is
	// names.DefaultMTU): the bridge's and every veth end's on it. An
	// external bridge's, or a macvlan parent's, when not the default.
	MTU int
	// Parent and Mode are a macvlan network's: the host link its
	// containers' macvlans are made on, and their mode. HostLink, when
	// set (driver_opts host_link), is the host's own macvlan on Parent,
	// with HostAddr, through which the host routes HostRoute (ip_range)
	// to the containers.
	Parent, Mode string
	HostLink     string
	HostAddr     netip.Prefix
	HostRoute    netip.Prefix
	// External says Bridge is the host's, not topo's (external: true).
	External bool
	// taken are addresses no container gets: the host's on the LAN or
	// the external bridge, and the bridge's neighbours.
	taken []netip.Addr
	// Overlay is what an overlay network has beyond a bridge; nil for
	// other drivers.
	Overlay *Overlay
	// CNI is a CNI network's chain (cni.go); nil for other drivers.
	CNI *CNINetwork
}

// LinkMTU is the MTU the network's bridge and veth ends have.
func (n *Network) LinkMTU() int { return cmp.Or(n.MTU, names.DefaultMTU) }

// Container is a container as it will exist in the kernel.
type Container struct {
	Name string
	// Host is the file's host the container runs on; "" in a file
	// without hosts.
	Host string
	// NS is the named namespace the container's processes run in: its own,
	// or for network_mode container:NAME the one of NAME; "" for host.
	NS        string
	Mode      spec.Mode
	Endpoints []*Endpoint
	// CNI are its attachments to CNI networks, whose interfaces the
	// chains make (cni.go).
	CNI []*CNIAttachment
	// Hostname is the file's hostname (the name by default); the embedded
	// DNS answers to it, as to the name.
	Hostname string
	// DefaultGW is the gateway of the first non-internal network, if any,
	// or of the one with the highest gw_priority; DefaultGW6 the same of
	// the networks with IPv6.
	DefaultGW  netip.Addr
	DefaultGW6 netip.Addr
	// Command is the argv started in NS on up; empty for none.
	Command []string
	// Privileges are the command's user and capabilities.
	Privileges privilege.Settings
	// Publishes are the container's ports: entries, one per port, with
	// host ports resolved.
	Publishes []firewall.Publish
	// Links are the container's ends of links, Routes its static routes
	// and Sysctls its net.* sysctls, in file order (links.go, routes.go,
	// sysctls.go).
	Links   []*LinkEnd
	Routes  []*Route
	Sysctls []*spec.Sysctl
	// Env and WorkingDir are the command's environment (beyond PATH,
	// HOME and TERM) and working folder ("" is /).
	Env        []string
	WorkingDir string
	// Domainname is the file's domainname. With Hostname it is what the
	// hosts file names the container; a UTS namespace of the container's
	// would take both (sethostname, setdomainname) from here.
	Domainname string
	// DNS are its namespace's upstream resolvers (the file's dns:, HOST:53
	// each); DNSSearch and DNSOptions go into its resolv.conf.
	DNS                   []string
	DNSSearch, DNSOptions []string
	// ExtraHosts are lines of its hosts file (extra_hosts), host-gateway
	// resolved to the gateway of its first network.
	ExtraHosts []HostLine
	// DependsOn are the containers whose commands start before its own.
	DependsOn []Dependency
	// Healthcheck, of a container with a command, is run by the
	// project's resolver process (package health); nil for none.
	Healthcheck *spec.Healthcheck
}

// Dependency is one of a container's depends_on.
type Dependency struct {
	Container string
	// Await, when not zero, bounds the wait for the container to be
	// healthy before the command starts (service_healthy).
	Await time.Duration
	// Completed: the command starts once the container's has ended with
	// status 0 (service_completed_successfully).
	Completed bool
}

// HostLine is one line of a hosts file: an address and its name.
type HostLine struct {
	Addr netip.Addr
	Name string
}

// Endpoint is a container's interface on a network: with the bridge
// driver, a veth pair.
type Endpoint struct {
	Network string
	// Driver is the network's.
	Driver driver
	Bridge string
	// MTU is the network's MTU (see Network.MTU).
	MTU int
	// Parent and Mode are a macvlan's (see Network).
	Parent, Mode string
	// HostLink is the host end, "" for a macvlan; IfName the container
	// end (eth0, eth1, …).
	HostLink string
	IfName   string
	Addr     netip.Prefix
	// Addr6 is its IPv6 address, on a network with IPv6.
	Addr6 netip.Prefix
	// Aliases are the extra DNS names of the container on this network.
	Aliases []string
	// MAC is the file's mac_address; nil for the one of Addr (MACOf).
	MAC net.HardwareAddr
	// Imp is the impairment of the container's end; zero for none.
	Imp op.Impairment
}

// MACOf is the hardware address of the endpoint's container end: the
// file's, else the one topo derives from its address.
func (e *Endpoint) MACOf() net.HardwareAddr {
	if e.MAC != nil {
		return e.MAC
	}
	if !e.Addr.IsValid() {
		return names.MAC(e.Addr6.Addr()) // IPv6 only
	}
	return names.MAC(e.Addr.Addr())
}

// Check reports, with positions, what of the file topo cannot plan
// whatever the kernel holds: a driver it does not have or options its
// driver does not take, and interface names that two networks, or two
// endpoints, of the file would share: bridge and veth names are hashes cut
// to the kernel's 15 bytes, and two that agree there would otherwise meet
// as "file exists" halfway through an up. It needs no kernel: validate
// runs it.
func Check(f *spec.File) error {
	errs := append(checkDrivers(f), checkPublishes(f)...)
	errs = append(errs, checkCNIBridges(f)...)
	bridges := make(map[string]*spec.Network, len(f.Networks))
	for _, n := range f.Networks {
		if n.External || driverOf(n.Driver) != (bridge{}) {
			continue // no bridge of topo's
		}
		b := names.Bridge(f.Project, n.Name)
		if first := bridges[b]; first != nil {
			errs = append(errs, &spec.Error{Path: f.Path, Pos: n.Pos, Msg: fmt.Sprintf(
				"network %q: its bridge would be named %s, like network %q's (%s): the hashes of the two names agree in the %d digits a bridge name holds; rename one of the networks",
				n.Name, b, first.Name, first.Pos.Ref(f.Path, n.Pos), names.BridgeDigits)})
			continue
		}
		bridges[b] = n
	}
	type endpoint struct {
		c *spec.Container
		a *spec.Attachment
	}
	veths := map[string]endpoint{}
	for _, c := range f.Containers {
		if c.Mode != spec.ModeBridge {
			continue
		}
		for _, a := range c.Networks {
			v := names.Veth(f.Project, c.Name, a.Network)
			if first, ok := veths[v]; ok {
				errs = append(errs, &spec.Error{Path: f.Path, Pos: a.Pos, Msg: fmt.Sprintf(
					"container %q: its veth to network %q would be named %s, like container %q's to network %q (%s): the hashes of the two agree in the %d digits a veth name holds; rename one of the containers",
					c.Name, a.Network, v, first.c.Name, first.a.Network, first.a.Pos.Ref(f.Path, a.Pos), names.VethDigits)})
				continue
			}
			veths[v] = endpoint{c, a}
		}
	}
	return spec.Join(errs...)
}

// Desire resolves the file against what is observed: bridge and interface
// names, subnets (kept if a bridge already has one, else picked from the
// pools), and container addresses (kept while the container holds them,
// else the lowest free). Problems are reported together, with positions.
//
// In a file with hosts, the model is the part of this machine's host
// (which its addresses say): see overlay.go.
func Desire(f *spec.File, obs *state.Snapshot) (*Model, error) {
	m, _, err := desire(f, obs, "")
	return m, err
}

// desire is Desire for the host named host ("" for the one this machine
// is); it returns the file of the host's own containers too.
func desire(f *spec.File, obs *state.Snapshot, host string) (*Model, *spec.File, error) {
	if err := Check(f); err != nil {
		return nil, nil, err
	}
	self, err := selfHost(f, obs, host)
	if err != nil {
		return nil, nil, err
	}
	ds := &desirer{f: f, obs: obs, self: self, m: &Model{Project: f.Project}, nets: map[string]*Network{}, picked: map[string]string{}}
	ds.networks()
	if len(ds.errs) > 0 {
		return nil, nil, spec.Join(ds.errs...)
	}
	ds.containers()
	ds.extraHosts()
	if len(ds.errs) > 0 {
		return nil, nil, spec.Join(ds.errs...)
	}
	if ds.self != nil && len(ds.f.Links) > 0 {
		// A link is a veth pair: both its ends are on one machine.
		ds.fail(ds.f.Links[0].Pos, "links are not supported in a file with hosts: yet; put the linked containers on a network instead")
	}
	ds.labs()
	if len(ds.errs) > 0 {
		return nil, nil, spec.Join(ds.errs...)
	}
	local := ds.split()
	if err := assignPorts(local, ds.m, obs); err != nil {
		return nil, nil, err
	}
	return ds.m, local, nil
}

// desirer resolves one file against the snapshot into a model.
type desirer struct {
	f   *spec.File
	obs *state.Snapshot
	// self is the host the model is for; nil in a file without hosts.
	self *spec.Host
	m    *Model
	nets map[string]*Network
	// picked says, of a subnet the file leaves out, where it came from,
	// for a fixed address that must fall in it; picked6 of an IPv6 one.
	picked, picked6 map[string]string
	errs            []error
}

func (ds *desirer) fail(pos spec.Pos, format string, args ...any) {
	ds.errs = append(ds.errs, &spec.Error{Path: ds.f.Path, Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// networks resolves the networks and their subnets: the file's, checked
// against the host and other projects; then those the bridges carry;
// then the first free blocks of the pools.
func (ds *desirer) networks() {
	f, obs, m := ds.f, ds.obs, ds.m
	used := hostPrefixes(obs, f.Project)
	current := currentSubnets(obs, f.Project, false)
	for _, n := range f.Networks {
		dn := &Network{Name: n.Name, Driver: networkDriver(n), Bridge: names.Bridge(f.Project, n.Name), Internal: n.Internal, Subnet: n.Subnet, MTU: n.MTU}
		m.Networks = append(m.Networks, dn)
		ds.nets[n.Name] = dn
		ds.overlayNetwork(n, dn)
		switch {
		case n.External:
			ds.externalNetwork(n, dn)
		case n.Driver == "macvlan":
			ds.macvlanNetwork(n, dn)
		case n.Driver == "cni":
			ds.cniNetwork(n, dn)
		case n.Subnet.IsValid():
			if owner := overlapsForeign(obs, f.Project, n.Subnet); owner != "" {
				ds.fail(n.SubnetPos, "network %s: subnet %s overlaps %s; choose another subnet", n.Name, n.Subnet, owner)
			} else if why := overlapsHost(obs, n.Subnet); why != "" {
				ds.fail(n.SubnetPos, "network %s: subnet %s %s; choose another subnet", n.Name, n.Subnet, why)
			}
		}
	}
	// Fixed subnets and subnets that bridges already carry are claimed
	// before any new one is picked, so a new network never takes them.
	// As with Docker, which refuses a fixed address on a network without
	// a configured subnet, the address never chooses the subnet: the
	// pick is the same with or without it.
	for i, dn := range m.Networks {
		if !dn.Subnet.IsValid() && f.Networks[i].IPv4() && dn.CNI == nil {
			if p, ok := current[dn.Name]; ok && !overlapsAny(p, m.Networks) {
				dn.Subnet = p
				ds.picked[dn.Name] = "the subnet its bridge " + dn.Bridge + " has"
			}
		}
	}
	for i, dn := range m.Networks {
		if dn.Subnet.IsValid() || !f.Networks[i].IPv4() || dn.CNI != nil {
			continue // IPv6 only, or a CNI network, whose addresses are its chain's
		}
		taken := append([]netip.Prefix(nil), used...)
		for _, other := range m.Networks {
			if other.Subnet.IsValid() {
				taken = append(taken, other.Subnet)
			}
		}
		p, err := ipam.PickSubnet(ipam.DefaultPools, taken)
		if err != nil {
			ds.fail(f.Network(dn.Name).Pos, "network %s: %v", dn.Name, err)
			continue
		}
		dn.Subnet = p
		ds.picked[dn.Name] = "the first free block of the pools on this host"
	}
	for _, dn := range m.Networks {
		if dn.Subnet.IsValid() && !dn.Gateway.IsValid() && !dn.External {
			dn.Gateway = ipam.Gateway(dn.Subnet)
		}
	}
	ds.networks6(used)
}

// pendingAddr is an endpoint whose address is not fixed, by its mark name.
type pendingAddr struct {
	ep  *Endpoint
	key string
}

// containers resolves the containers, their namespaces and endpoints,
// and the endpoints' addresses: fixed ones first, then those containers
// already hold, then the lowest free in file order.
func (ds *desirer) containers() {
	f := ds.f
	alloc := map[string]*ipam.Allocator{}
	for i, dn := range ds.m.Networks {
		if !dn.Subnet.IsValid() {
			continue // IPv6 only (addresses6 gives its addresses), or CNI (its chain)
		}
		a := ipam.NewAllocator(dn.Subnet)
		if n := f.Networks[i]; n.IPRange.IsValid() {
			a.Limit(n.IPRange)
		}
		if dn.Gateway.IsValid() {
			a.SetGateway(dn.Gateway)
		}
		for _, r := range f.Networks[i].Reserved {
			a.Reserve(r)
		}
		alloc[dn.Name] = a
	}
	var todo []pendingAddr
	for _, c := range f.Containers {
		todo = append(todo, ds.container(c, alloc)...)
	}
	ds.addresses6()
	ds.assign(todo, alloc, false)
}

// assign gives the endpoints of todo their address of a family (IPv6
// when v6): the one the container holds, if free, else the lowest free,
// in the order given.
func (ds *desirer) assign(todo []pendingAddr, alloc map[string]*ipam.Allocator, v6 bool) {
	set := func(p pendingAddr, a netip.Addr) {
		if n := ds.nets[p.ep.Network]; v6 {
			p.ep.Addr6 = netip.PrefixFrom(a, n.Subnet6.Bits())
		} else {
			p.ep.Addr = netip.PrefixFrom(a, n.Subnet.Bits())
		}
	}
	held := heldAddresses(ds.obs, ds.f.Project, v6)
	var rest []pendingAddr
	for _, p := range todo {
		a, ok := held[p.key]
		if ok && !onOverlay(p.ep) && alloc[p.ep.Network].Reserve(a) {
			set(p, a)
			continue
		}
		rest = append(rest, p)
	}
	// What the host holds on the LAN or the external bridge, and the
	// bridge's neighbours, after the addresses the containers hold: the
	// host's neighbour table soon lists those too. IPv4 only: those
	// drivers have no IPv6 yet (spec refuses it).
	for _, dn := range ds.m.Networks {
		if v6 {
			break
		}
		for _, r := range dn.taken {
			alloc[dn.Name].Reserve(r)
		}
		if dn.HostLink != "" {
			ds.hostLinkAddr(dn, alloc[dn.Name])
		}
	}
	for _, p := range rest {
		a, err := alloc[p.ep.Network].Next()
		if err != nil {
			ds.fail(ds.f.Network(p.ep.Network).Pos, "network %s: %v; use a larger subnet", p.ep.Network, err)
			continue
		}
		set(p, a)
	}
}

// container adds c to the model with its endpoints and their fixed
// addresses, and returns the endpoints whose address is left to pick.
func (ds *desirer) container(c *spec.Container, alloc map[string]*ipam.Allocator) []pendingAddr {
	f := ds.f
	dc := &Container{Name: c.Name, Mode: c.Mode, Command: c.Command, Privileges: c.Privileges, Hostname: c.Hostname, Sysctls: c.Sysctls,
		Env: c.Env, WorkingDir: c.WorkingDir, Domainname: c.Domainname, DNSSearch: c.DNSSearch, DNSOptions: c.DNSOptions}
	for _, a := range c.DNS {
		dc.DNS = append(dc.DNS, netip.AddrPortFrom(a, 53).String())
	}
	if len(c.Command) > 0 {
		dc.Healthcheck = c.Healthcheck
	}
	for _, d := range c.DependsOn {
		dep := Dependency{Container: d.Container}
		if t := f.Container(d.Container); d.Condition == spec.ServiceHealthy && t != nil && len(t.Command) > 0 && t.Healthcheck != nil {
			dep.Await = awaitBound(t.Healthcheck)
		}
		dep.Completed = d.Condition == spec.ServiceCompletedSuccessfully
		dc.DependsOn = append(dc.DependsOn, dep)
	}
	switch c.Mode {
	case spec.ModeHost:
		// Runs in the host's namespace: nothing to create.
	case spec.ModeContainer:
		dc.NS = names.Namespace(f.Project, c.ModeTarget)
	default:
		dc.NS = names.Namespace(f.Project, c.Name)
	}
	ds.m.Containers = append(ds.m.Containers, dc)
	var todo []pendingAddr
	gwPriority, gw6Priority := 0, 0
	for i, a := range c.Networks {
		dn := ds.nets[a.Network]
		if dn.CNI != nil {
			dc.CNI = append(dc.CNI, &CNIAttachment{Network: a.Network, IfName: cmp.Or(a.IfName, names.IfName(i)), Aliases: a.Aliases})
			continue
		}
		ep := &Endpoint{
			Network:  a.Network,
			Driver:   dn.Driver,
			Bridge:   dn.Bridge,
			MTU:      dn.MTU,
			Parent:   dn.Parent,
			Mode:     dn.Mode,
			HostLink: names.Veth(f.Project, c.Name, a.Network),
			IfName:   cmp.Or(a.IfName, names.IfName(i)),
			Aliases:  a.Aliases,
			MAC:      a.MAC,
			Imp:      impairment(a.Impairment),
		}
		if dn.Parent != "" {
			ep.HostLink = "" // a macvlan has no host end
		}
		dc.Endpoints = append(dc.Endpoints, ep)
		if !dn.Internal && dn.Gateway.IsValid() && (!dc.DefaultGW.IsValid() || a.GwPriority > gwPriority) {
			dc.DefaultGW, gwPriority = dn.Gateway, a.GwPriority
		}
		if !dn.Internal && dn.Gateway6.IsValid() && (!dc.DefaultGW6.IsValid() || a.GwPriority > gw6Priority) {
			dc.DefaultGW6, gw6Priority = dn.Gateway6, a.GwPriority
		}
		if !dn.Subnet.IsValid() {
			continue // IPv6 only (spec refuses an ipv4_address on it)
		}
		if !a.IPv4.IsValid() {
			todo = append(todo, pendingAddr{ep, names.Endpoint(c.Name, a.Network)})
			continue
		}
		if how := ds.picked[a.Network]; how != "" {
			if problem := spec.AddressProblem(dn.Subnet, a.IPv4, a.Network, how); problem != "" {
				ds.fail(a.IPv4Pos, "container %s: ipv4_address %s %s", c.Name, a.IPv4, problem)
				continue
			}
		}
		if !alloc[a.Network].Reserve(a.IPv4) {
			ds.fail(a.IPv4Pos, "container %s: ipv4_address %s is not free in network %s (%s)", c.Name, a.IPv4, a.Network, dn.Subnet)
		}
		ep.Addr = netip.PrefixFrom(a.IPv4, dn.Subnet.Bits())
	}
	return todo
}

func overlapsAny(p netip.Prefix, nets []*Network) bool {
	for _, n := range nets {
		if n.Subnet.IsValid() && n.Subnet.Overlaps(p) {
			return true
		}
	}
	return false
}

// hostPrefixes lists what a new subnet must not overlap, as Docker's
// InferReservedNetworks: the nameservers of the host's resolv.conf and
// its on-link routes, and its addresses, except those of this project's
// own bridges, which are re-planned. Routes through a gateway do not
// count, nor a full-tunnel VPN's halves of the default route
// (0.0.0.0/1, 128.0.0.0/1): they say where traffic goes, not which
// addresses are in use, and a bridge's own more specific route wins over
// them.
func hostPrefixes(obs *state.Snapshot, project string) []netip.Prefix {
	var out []netip.Prefix
	own := ownBridges(obs, project)
	for _, l := range obs.Host.Links {
		if own[l.Name] {
			continue
		}
		for _, a := range l.Addrs {
			if p, err := netip.ParsePrefix(a); err == nil {
				out = append(out, p.Masked())
			}
		}
	}
	for _, r := range obs.Host.Routes {
		if p, ok := onLink(r); ok && !own[r.Dev] {
			out = append(out, p)
		}
	}
	for _, ns := range obs.Nameservers {
		if a, err := netip.ParseAddr(ns); err == nil && a.Is4() {
			out = append(out, netip.PrefixFrom(a, 32))
		}
	}
	return out
}

// ownBridges are the names of the project's bridges on the host.
func ownBridges(obs *state.Snapshot, project string) map[string]bool {
	own := map[string]bool{}
	for _, l := range obs.Host.Links {
		if mk, ok := names.ParseMark(l.Alias); ok && mk.Project == project && mk.Kind == names.KindNetwork {
			own[l.Name] = true
		}
	}
	return own
}

// onLink returns the destination of an on-link route: through a link,
// not a gateway, and narrower than half the address space.
func onLink(r state.Route) (netip.Prefix, bool) {
	if r.Dst == "default" || r.Gateway != "" || r.Dev == "" {
		return netip.Prefix{}, false
	}
	p, err := netip.ParsePrefix(r.Dst)
	if err != nil || p.Bits() <= 1 {
		return netip.Prefix{}, false
	}
	return p.Masked(), true
}

// overlapsHost says what of the host, not topo's, a subnet overlaps: an
// address of the host inside it, or an on-link route; "" for nothing.
// Bridges of topo networks are left to overlapsForeign and to re-planning.
func overlapsHost(obs *state.Snapshot, subnet netip.Prefix) string {
	topo := map[string]bool{}
	addrOf := map[string]string{}
	for _, l := range obs.Host.Links {
		if mk, ok := names.ParseMark(l.Alias); ok && mk.Kind == names.KindNetwork {
			topo[l.Name] = true
			continue
		}
		for _, a := range l.Addrs {
			if addrOf[l.Name] == "" {
				addrOf[l.Name] = a
			}
			if p, err := netip.ParsePrefix(a); err == nil && subnet.Contains(p.Addr()) {
				return fmt.Sprintf("contains the host's address %s on %s: the bridge or a container would take it", a, l.Name)
			}
		}
	}
	for _, r := range obs.Host.Routes {
		p, ok := onLink(r)
		if !ok || topo[r.Dev] || !p.Overlaps(subnet) {
			continue
		}
		dev := r.Dev
		if a := addrOf[r.Dev]; a != "" {
			dev += fmt.Sprintf(" (address %s)", a)
		}
		return fmt.Sprintf("overlaps %s, which the host reaches on-link through %s: the bridge's route and the host's would claim the same addresses", p, dev)
	}
	return ""
}

// overlapsForeign names another project's network whose bridge address
// overlaps p, or returns "".
func overlapsForeign(obs *state.Snapshot, project string, p netip.Prefix) string {
	for _, l := range obs.Host.Links {
		mk, ok := names.ParseMark(l.Alias)
		if !ok || mk.Kind != names.KindNetwork || mk.Project == project {
			continue
		}
		for _, a := range l.Addrs {
			if q, err := netip.ParsePrefix(a); err == nil && q.Masked().Overlaps(p) {
				return fmt.Sprintf("network %s of project %s (bridge %s, %s)", mk.Name, mk.Project, l.Name, q.Masked())
			}
		}
	}
	return ""
}

// currentSubnets are the subnets of a family (IPv6 when v6) this
// project's bridges carry, by network.
func currentSubnets(obs *state.Snapshot, project string, v6 bool) map[string]netip.Prefix {
	out := map[string]netip.Prefix{}
	for _, l := range obs.Host.Links {
		mk, ok := names.ParseMark(l.Alias)
		if !ok || mk.Project != project || mk.Kind != names.KindNetwork {
			continue
		}
		if p, ok := l.Addr(v6); ok {
			out[mk.Name] = p.Masked()
		}
	}
	return out
}

// heldAddresses are the addresses of a family (IPv6 when v6) the
// project's containers hold now, by endpoint name (CONTAINER/NETWORK).
func heldAddresses(obs *state.Snapshot, project string, v6 bool) map[string]netip.Addr {
	out := map[string]netip.Addr{}
	for _, ns := range obs.Namespaces {
		if mk, ok := names.ParseMark(ns.Mark); !ok || mk.Project != project {
			continue
		}
		for _, l := range ns.Links {
			mk, ok := names.ParseMark(l.Alias)
			if !ok || mk.Project != project || mk.Kind != names.KindEndpoint {
				continue
			}
			if p, ok := l.Addr(v6); ok {
				out[mk.Name] = p.Addr()
			}
		}
	}
	return out
}

// OwnsNamespace reports whether the container has a namespace of its own:
// not for network_mode host, nor container:NAME, which uses NAME's.
func (c *Container) OwnsNamespace() bool {
	return c.NS != "" && c.Mode != spec.ModeContainer
}
