package view

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

// NetworkDetail is what `topo inspect NETWORK --json` prints.
type NetworkDetail struct {
	FormatVersion string `json:"format_version"`
	// Type is "network".
	Type    string `json:"type"`
	Name    string `json:"name"`
	Project string `json:"project"`
	State   string `json:"state"` // up or down
	// Driver is "bridge", "macvlan" or "external" (a host bridge topo
	// joins).
	Driver string `json:"driver"`
	// Bridge is the network's bridge, "" for macvlan; Parent the host
	// link a macvlan network's links are made on.
	Bridge  string `json:"bridge"`
	Parent  string `json:"parent,omitempty"`
	Subnet  string `json:"subnet"`
	Gateway string `json:"gateway"`
	// Subnet6 and Gateway6 are the IPv6 ones, of a network with IPv6.
	Subnet6  string `json:"subnet6,omitempty"`
	Gateway6 string `json:"gateway6,omitempty"`
	Internal bool   `json:"internal"`
	// MTU is the bridge's, as the kernel has it once the network is up;
	// the file's (1500 by default) before.
	MTU int `json:"mtu"`
	// VXLAN and VNI are an overlay network's VXLAN device and
	// identifier on this host.
	VXLAN string `json:"vxlan,omitempty"`
	VNI   int    `json:"vni,omitempty"`
	// Members are the containers attached, in file order.
	Members []Member `json:"members"`
}

// Member is a container's endpoint on a network.
type Member struct {
	Container string   `json:"container"`
	Interface string   `json:"interface"`
	HostLink  string   `json:"host_link"`
	Address   string   `json:"address"`
	Address6  string   `json:"address6,omitempty"`
	Aliases   []string `json:"aliases"`
	// Host is the file's host the container is on, in a file with
	// hosts; another host's members have the address the file gives.
	Host string `json:"host,omitempty"`
}

// ContainerDetail is what `topo inspect CONTAINER --json` prints: the
// container's ps line and more.
type ContainerDetail struct {
	FormatVersion string `json:"format_version"`
	// Type is "container".
	Type    string `json:"type"`
	Project string `json:"project"`
	Container
	Hostname  string     `json:"hostname"`
	Endpoints []Endpoint `json:"endpoints"`
	// Links are the container's ends of point-to-point links.
	Links []LinkEnd `json:"links,omitempty"`
	// Routes are the main-table routes of the container's namespace.
	Routes []state.Route `json:"routes"`
	// Sysctls are the net.* sysctls the file sets in the container's
	// namespace, as the kernel has them.
	Sysctls map[string]string `json:"sysctls,omitempty"`
	// SharedBy lists the containers whose network_mode is container:NAME.
	SharedBy []string `json:"shared_by"`
	PidFile  string   `json:"pid_file"`
	Log      string   `json:"log"`
}

// Endpoint is a container's veth pair on one network.
type Endpoint struct {
	Network   string `json:"network"`
	Interface string `json:"interface"`
	Address   string `json:"address"`
	Gateway   string `json:"gateway"`
	Address6  string `json:"address6,omitempty"`
	Gateway6  string `json:"gateway6,omitempty"`
	MAC       string `json:"mac"`
	HostLink  string `json:"host_link"`
	Bridge    string `json:"bridge"`
	// Parent is a macvlan's host link.
	Parent  string   `json:"parent,omitempty"`
	Aliases []string `json:"aliases"`
	// Impairment is the container end's qdisc, as tc would write it.
	Impairment string `json:"impairment,omitempty"`
}

// ErrNoSuchObject says a name is neither a network nor a container.
var ErrNoSuchObject = errors.New("no such network or container")

// Inspect finds NAME among the networks (kind "network"), the containers
// (kind "container") or both (kind ""), and returns its detail: a
// *NetworkDetail or a *ContainerDetail.
func Inspect(in *Input, name, kind string) (any, error) {
	n, c := in.network(name), in.container(name)
	if kind == "container" {
		n = nil
	}
	if kind == "network" {
		c = nil
	}
	switch {
	case n != nil && c != nil:
		return nil, fmt.Errorf("%s is both a network and a container of project %s; say which with --type", name, in.Model.Project)
	case n != nil:
		return in.networkDetail(n), nil
	case c != nil:
		return in.containerDetail(in.File.Container(name)), nil
	}
	return nil, fmt.Errorf("%s: %w in project %s", name, ErrNoSuchObject, in.Model.Project)
}

func (in *Input) networkDetail(n *planner.Network) *NetworkDetail {
	d := &NetworkDetail{FormatVersion: FormatVersion, Type: "network", Name: n.Name, Project: in.Model.Project, State: StateDown,
		Driver: n.DriverName(), Bridge: n.Bridge, Parent: n.Parent, Subnet: prefixText(n.Subnet), Gateway: addrText(n.Gateway), Internal: n.Internal, MTU: n.LinkMTU(), Members: []Member{}}
	if n.Subnet6.IsValid() {
		d.Subnet6, d.Gateway6 = n.Subnet6.String(), n.Gateway6.String()
	}
	if n.Overlay != nil {
		d.VXLAN, d.VNI = n.Overlay.Link, n.Overlay.VNI
	}
	switch l := in.Obs.Host.Link(n.Bridge); {
	case n.External && l != nil, n.Parent != "" && in.Obs.Host.Link(n.Parent) != nil:
		// Nothing of the network is topo's: it is up when what it is
		// made on is there.
		d.State = StateUp
	case l != nil && l.Alias == names.NewMark(in.Model.Project, names.KindNetwork, n.Name).String():
		d.State = StateUp
		// The kernel is the truth: a bridge holds the subnet it was given.
		if p, ok := l.Addr(false); ok {
			d.Subnet, d.Gateway = p.Masked().String(), p.Addr().String()
		}
		if l.MTU != 0 {
			d.MTU = l.MTU
		}
		if p, ok := l.Addr(true); ok {
			d.Subnet6, d.Gateway6 = p.Masked().String(), p.Addr().String()
		}
	}
	for _, sc := range in.File.Containers {
		mc := in.container(sc.Name)
		for _, e := range mc.Endpoints {
			if e.Network != n.Name {
				continue
			}
			addr, addr6 := "", ""
			switch {
			case in.remote(mc) && n.Overlay == nil:
				continue // another host's network of that name
			case in.remote(mc):
				addr, addr6 = prefixText(e.Addr), prefixText(e.Addr6)
			case in.nsUp(mc):
				addr, addr6 = in.observedAddrs(mc.NS, mc.Name, e.Network)
			}
			d.Members = append(d.Members, Member{Container: sc.Name, Interface: e.IfName, HostLink: e.HostLink,
				Address: addr, Address6: addr6, Aliases: aliasesOf(sc, e.Network), Host: mc.Host})
		}
	}
	if n.CNI != nil {
		in.cniMembers(n, d)
	}
	return d
}

// cniMembers are the attachments to a CNI network, as their results
// give them; the network is up when one is there.
func (in *Input) cniMembers(n *planner.Network, d *NetworkDetail) {
	d.Subnet, d.Gateway, d.MTU = "", "", 0
	d.Bridge = n.CNI.Bridge
	for _, sc := range in.File.Containers {
		mc := in.container(sc.Name)
		for _, a := range mc.CNI {
			if a.Network != n.Name {
				continue
			}
			o := in.cniResult(mc, a)
			addr, addr6, gw, _ := cniAddrs(o)
			if o != nil {
				d.State = StateUp
				if p, err := netip.ParsePrefix(addr); err == nil && d.Subnet == "" {
					d.Subnet, d.Gateway = p.Masked().String(), gw
				}
			}
			d.Members = append(d.Members, Member{Container: sc.Name, Interface: a.IfName, Address: addr, Address6: addr6, Aliases: aliasesOf(sc, n.Name)})
		}
	}
}

func (in *Input) containerDetail(sc *spec.Container) *ContainerDetail {
	mc := in.container(sc.Name)
	d := &ContainerDetail{FormatVersion: FormatVersion, Type: "container", Project: in.Model.Project, Container: in.psContainer(sc),
		Hostname: sc.Hostname, Endpoints: []Endpoint{}, Routes: []state.Route{}, SharedBy: []string{}}
	owner := in.File.Container(addressOwner(sc))
	if sc.Mode != spec.ModeHost && owner != nil {
		oc := in.container(owner.Name)
		for _, e := range oc.Endpoints {
			ep := Endpoint{Network: e.Network, Interface: e.IfName, HostLink: e.HostLink, Bridge: e.Bridge, Parent: e.Parent,
				Aliases: aliasesOf(owner, e.Network)}
			if n := in.network(e.Network); n != nil && !n.Internal {
				ep.Gateway = addrText(n.Gateway)
				if n.Gateway6.IsValid() {
					ep.Gateway6 = n.Gateway6.String()
				}
			}
			var l *state.Link
			switch {
			case in.remote(mc):
				ep.Address, ep.Address6 = prefixText(e.Addr), prefixText(e.Addr6)
			case in.nsUp(mc):
				ep.Address, l = in.observedAddr(mc.NS, oc.Name, e.Network)
				if l != nil {
					if p, ok := l.Addr(true); ok {
						ep.Address6 = p.String()
					}
				}
			}
			if a, err := netip.ParsePrefix(cmp.Or(ep.Address, ep.Address6)); err == nil {
				ep.MAC = names.MAC(a.Addr()).String()
			}
			if in.remote(mc) {
				ep.MAC = e.MACOf().String() // the file's mac_address too
			}
			if l != nil {
				ep.MAC = dash(l.MAC, ep.MAC)
				ep.Impairment = impairmentText(l.Qdisc)
			}
			d.Endpoints = append(d.Endpoints, ep)
		}
		for _, a := range oc.CNI {
			ep := Endpoint{Network: a.Network, Interface: a.IfName, Aliases: aliasesOf(owner, a.Network)}
			o := in.cniResult(mc, a)
			ep.Address, ep.Address6, ep.Gateway, ep.Gateway6 = cniAddrs(o)
			if o != nil {
				ep.MAC = o.MAC
			}
			if n := in.network(a.Network); n != nil {
				ep.Bridge = n.CNI.Bridge
			}
			d.Endpoints = append(d.Endpoints, ep)
		}
		sortByAttach(owner, d.Endpoints, func(e Endpoint) string { return e.Network })
	}
	if ns := in.Obs.Namespace(mc.NS); mc.NS != "" && ns != nil && in.nsUp(mc) {
		d.Routes = append(d.Routes, ns.Routes...)
	}
	if mc.OwnsNamespace() {
		d.Links = in.linkEnds(mc)
		d.Sysctls = in.namespaceSysctls(mc)
	}
	for _, other := range in.File.Containers {
		if other.Mode == spec.ModeContainer && other.ModeTarget == sc.Name {
			d.SharedBy = append(d.SharedBy, other.Name)
		}
	}
	if len(sc.Command) > 0 {
		d.PidFile, d.Log = in.runtime().PidFile(in.Model.Project, sc.Name), in.runtime().LogFile(in.Model.Project, sc.Name)
	}
	return d
}

// RenderNetwork writes a network's detail as text.
func (d *NetworkDetail) Render(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "network %s (project %s): %s\n", d.Name, d.Project, d.State)
	fmt.Fprintf(&b, "  driver    %s\n", d.Driver)
	if d.Parent != "" {
		fmt.Fprintf(&b, "  parent    %s\n", d.Parent)
	} else {
		fmt.Fprintf(&b, "  bridge    %s\n", d.Bridge)
	}
	fmt.Fprintf(&b, "  subnet    %s\n  gateway   %s\n", d.Subnet, d.Gateway)
	if d.Subnet6 != "" {
		fmt.Fprintf(&b, "  subnet6   %s\n  gateway6  %s\n", d.Subnet6, d.Gateway6)
	}
	fmt.Fprintf(&b, "  internal  %v\n  mtu       %d\n", d.Internal, d.MTU)
	if d.VXLAN != "" {
		fmt.Fprintf(&b, "  vxlan     %s id %d\n", d.VXLAN, d.VNI)
	}
	b.WriteString("  members\n")
	for _, m := range d.Members {
		fmt.Fprintf(&b, "    %-12s %-5s %-18s host %s", m.Container, m.Interface, dash(m.Address, "-"), dash(m.HostLink, "-"))
		if m.Address6 != "" {
			fmt.Fprintf(&b, "  ipv6 %s", m.Address6)
		}
		if m.Host != "" {
			fmt.Fprintf(&b, " on %s", m.Host)
		}
		if len(m.Aliases) > 0 {
			fmt.Fprintf(&b, "  aliases %s", strings.Join(m.Aliases, ","))
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Render writes a container's detail as text.
func (d *ContainerDetail) Render(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "container %s (project %s): %s\n", d.Name, d.Project, d.State)
	if d.Host != "" {
		fmt.Fprintf(&b, "  host          %s\n", d.Host)
	}
	fmt.Fprintf(&b, "  network_mode  %s\n  netns         %s\n  hostname      %s\n", d.NetworkMode, dash(d.Netns, "(host)"), d.Hostname)
	for _, e := range d.Endpoints {
		fmt.Fprintf(&b, "  endpoint      %s %s %s mac %s host %s on %s", e.Network, e.Interface, dash(e.Address, "-"), dash(e.MAC, "-"), dash(e.HostLink, "-"), dash(e.Bridge, e.Parent))
		if e.Address6 != "" {
			fmt.Fprintf(&b, " ipv6 %s", e.Address6)
		}
		if len(e.Aliases) > 0 {
			fmt.Fprintf(&b, " aliases %s", strings.Join(e.Aliases, ","))
		}
		if e.Impairment != "" {
			fmt.Fprintf(&b, " qdisc %s", e.Impairment)
		}
		b.WriteString("\n")
	}
	for _, l := range d.Links {
		fmt.Fprintf(&b, "  link          %s %s to %s mac %s mtu %d", l.Interface, dash(l.Address, "-"), l.Peer, dash(l.MAC, "-"), l.MTU)
		if l.Impairment != "" {
			fmt.Fprintf(&b, " qdisc %s", l.Impairment)
		}
		b.WriteString("\n")
	}
	for _, r := range d.Routes {
		fmt.Fprintf(&b, "  route         %s", r.Dst)
		if r.Gateway != "" {
			fmt.Fprintf(&b, " via %s", r.Gateway)
		}
		fmt.Fprintf(&b, " dev %s", r.Dev)
		if r.Metric != 0 {
			fmt.Fprintf(&b, " metric %d", r.Metric)
		}
		if r.Topo {
			fmt.Fprintf(&b, " proto %d", names.RouteProto)
		}
		b.WriteString("\n")
	}
	for _, k := range slices.Sorted(maps.Keys(d.Sysctls)) {
		fmt.Fprintf(&b, "  sysctl        %s=%s\n", k, dash(d.Sysctls[k], "-"))
	}
	for _, p := range d.Ports {
		fmt.Fprintf(&b, "  port          %s\n", p)
	}
	if len(d.SharedBy) > 0 {
		fmt.Fprintf(&b, "  shared_by     %s\n", strings.Join(d.SharedBy, ","))
	}
	if len(d.Command) > 0 {
		pid := "-"
		if d.PID != 0 {
			pid = fmt.Sprint(d.PID)
		}
		fmt.Fprintf(&b, "  command       %s\n  pid           %s\n  log           %s\n", op.ShellJoin(d.Command), pid, dash(d.Log, "-"))
	}
	if h := d.Health; h != nil {
		fmt.Fprintf(&b, "  health        %s, %d failing in a row", h.Status, h.FailingStreak)
		if out := strings.TrimSpace(h.LastOutput); out != "" || h.LastExitCode != 0 {
			fmt.Fprintf(&b, "; last exit %d: %s", h.LastExitCode, strings.ReplaceAll(out, "\n", " "))
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// addrText is a's text, "" for none (an external network whose bridge has
// no address in its subnet has no gateway).
func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// prefixText is p as text, "" for none (an IPv6-only network's IPv4).
func prefixText(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}
