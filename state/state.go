// Package state holds what topo observes of the live kernel: the snapshot
// the planner diffs against the file. It is plain data, filled by the real
// kernel or by the in-memory fake, and it serialises to stable JSON so that
// planner tests can keep observed states in golden folders.
package state

import "net/netip"

// Snapshot is the kernel as topo sees it at one moment.
type Snapshot struct {
	// Host is the namespace topo runs in.
	Host Namespace `json:"host"`
	// Namespaces are the named namespaces under /run/netns, sorted by name.
	// Foreign ones carry only their name, so that collisions can be seen.
	Namespaces []Namespace `json:"namespaces,omitempty"`
	// Sysctls holds the host sysctls topo cares about, by dotted name.
	Sysctls map[string]string `json:"sysctls,omitempty"`
	// SysctlsBefore holds, by dotted name, the value a host sysctl had
	// before topo first changed it, as recorded in the runtime root (see
	// names.Runtime.SysctlRecord) for the last project's down to put back.
	SysctlsBefore map[string]string `json:"sysctls_before,omitempty"`
	// Processes are the project's container commands, from their pid files
	// (see process.go), sorted by container.
	Processes []Process `json:"processes,omitempty"`
	// UTS are the UTS namespaces of the project's containers, sorted by
	// path (see uts.go).
	UTS []UTS `json:"uts,omitempty"`
	// Firewall holds topo's iptables chains and the jumps into them;
	// Firewall6 the same of ip6tables (nil on a host without them).
	Firewall  *Firewall `json:"firewall,omitempty"`
	Firewall6 *Firewall `json:"firewall6,omitempty"`
	// Ports is the host's ports: what publishes without a host port are
	// picked from, and the sockets a publish must not take over.
	Ports *HostPorts `json:"ports,omitempty"`
	// Netem says whether the kernel has the netem qdisc (sch_netem),
	// which impairment beyond a rate needs; nil when not read.
	Netem *bool `json:"netem,omitempty"`
	// Nameservers are the IPv4 nameservers of the host's resolv.conf,
	// which automatic subnets do not cover.
	Nameservers []string `json:"nameservers,omitempty"`
	// MachineID is the host's machine ID, from which its IPv6 ULA
	// prefix is derived (see ipam.ULA); "" when it has none.
	MachineID string `json:"machine_id,omitempty"`
	// Resolver is the project's DNS resolver; nil when it has none.
	Resolver *Resolver `json:"resolver,omitempty"`
	// CNI are the project's CNI attachments, sorted by network, ID and
	// interface (cni.go).
	CNI []CNIAttachment `json:"cni,omitempty"`
	// Files are the project's files under /etc/netns/NS/ (resolv.conf,
	// hosts) of its namespaces, by path.
	Files map[string]string `json:"files,omitempty"`
}

// Namespace is a network namespace and what topo read inside it.
type Namespace struct {
	Name string `json:"name,omitempty"`
	// Mark is the ownership mark on the namespace's lo ("" when foreign).
	Mark   string  `json:"mark,omitempty"`
	Links  []Link  `json:"links,omitempty"`
	Routes []Route `json:"routes,omitempty"`
	// Sysctls are the values, in this namespace, of the keys its record
	// names (names.Runtime.NetnsSysctls): those topo set. SysctlsBefore
	// are the values a new namespace has of them, which they had before
	// topo set them in the namespace it made.
	Sysctls       map[string]string `json:"sysctls,omitempty"`
	SysctlsBefore map[string]string `json:"sysctls_before,omitempty"`
}

// Link is a network interface.
type Link struct {
	Name string `json:"name"`
	// Kind is netlink's kind: "bridge", "veth", "device" for others.
	Kind string `json:"kind"`
	// Alias is IFLA_IFALIAS; topo's ownership marks live here.
	Alias  string `json:"alias,omitempty"`
	Master string `json:"master,omitempty"`
	Up     bool   `json:"up,omitempty"`
	// MAC is the hardware address of a bridge, of an end of a link and of
	// an endpoint's container end, which topo sets; "" for other
	// links, whose addresses topo does not track.
	MAC string `json:"mac,omitempty"`
	// MTU is the link's MTU; 0 when not observed (a snapshot written
	// before topo read MTUs), which plans take as what topo wants.
	MTU int `json:"mtu,omitempty"`
	// Hairpin says a bridge port may send a frame back out of the port it
	// came in by; false for links that are not bridge ports.
	Hairpin bool `json:"hairpin,omitempty"`
	// Addrs are the link's addresses of both families in CIDR form,
	// sorted: the kernel's own IPv6 link-local ones (fe80::/10) too.
	Addrs []string `json:"addrs,omitempty"`
	// Parent and MacvlanMode are a macvlan's: the host link it is made
	// on, and its mode (bridge, private, vepa, passthru).
	Parent      string `json:"parent,omitempty"`
	MacvlanMode string `json:"macvlan_mode,omitempty"`
	// Neighbours are, on a host bridge topo did not make, the IPv4
	// addresses of its neighbour table (the hosts seen on it), sorted:
	// what an external network gives no container.
	Neighbours []string `json:"neighbours,omitempty"`
	// VXLAN is a VXLAN device's settings and entries, read for topo's
	// own (a mark of the project); nil for other links.
	VXLAN *VXLAN `json:"vxlan,omitempty"`
	// Qdisc is the link's root qdisc when it is a tbf or a netem (what
	// impairment makes); nil for the kernel's default or another kind.
	Qdisc *Qdisc `json:"qdisc,omitempty"`
}

// Qdisc is a root qdisc of a link that impairs it.
type Qdisc struct {
	// Kind is "tbf" or "netem".
	Kind string `json:"kind"`
	// Rate is in bits per second; 0 for none.
	Rate uint64 `json:"rate,omitempty"`
	// Delay and Jitter are in nanoseconds.
	Delay  int64 `json:"delay,omitempty"`
	Jitter int64 `json:"jitter,omitempty"`
	// Loss, Duplicate, Corrupt and Reorder are percentages.
	Loss      float64 `json:"loss,omitempty"`
	Duplicate float64 `json:"duplicate,omitempty"`
	Corrupt   float64 `json:"corrupt,omitempty"`
	Reorder   float64 `json:"reorder,omitempty"`
}

// Route is a route of the main table, IPv4 or IPv6.
type Route struct {
	// Dst is "default" (IPv4's), "::/0" (IPv6's default) or a CIDR.
	Dst     string `json:"dst"`
	Gateway string `json:"gateway,omitempty"`
	Dev     string `json:"dev,omitempty"`
	// Metric is the route's priority; 0 for the kernel's.
	Metric int `json:"metric,omitempty"`
	// Topo says the route carries topo's protocol number
	// (names.RouteProto): one of a file's routes:.
	Topo bool `json:"topo,omitempty"`
}

// Addr returns the first of the link's addresses of the family (IPv6
// when v6) that is not link-local: the one topo gave it.
func (l *Link) Addr(v6 bool) (netip.Prefix, bool) {
	for _, a := range l.Addrs {
		p, err := netip.ParsePrefix(a)
		if err == nil && p.Addr().Is6() == v6 && !p.Addr().IsLinkLocalUnicast() {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// Namespace returns the named namespace, or nil.
func (s *Snapshot) Namespace(name string) *Namespace {
	for i := range s.Namespaces {
		if s.Namespaces[i].Name == name {
			return &s.Namespaces[i]
		}
	}
	return nil
}

// Link returns the link called name, or nil.
func (n *Namespace) Link(name string) *Link {
	for i := range n.Links {
		if n.Links[i].Name == name {
			return &n.Links[i]
		}
	}
	return nil
}
