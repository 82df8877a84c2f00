// Package spec turns a topology file into a typed, validated model. Every
// value keeps the line and column it came from, so that problems found later
// (by IPAM or the planner) can still point into the file.
package spec

import (
	"net"
	"net/netip"
	"strconv"

	"github.com/topolab/topo/privilege"
)

// Pos is a 1-based line and column in the topology file.
type Pos struct {
	Line int `json:"line"`
	Col  int `json:"col"`
	// File is the file the position is in when it is not File.Path: a
	// second -f file, or one that include: names; "" for the first.
	File string `json:"file,omitempty"`
}

// Ref names pos for a message about a problem at from: "line N" when
// both are in one file, else "FILE:N" (path is the first file's, which
// File leaves empty), so that a message about two -f files says which.
func (pos Pos) Ref(path string, from Pos) string {
	if pos.File == from.File {
		return "line " + strconv.Itoa(pos.Line)
	}
	file := pos.File
	if file == "" {
		file = path
	}
	return file + ":" + strconv.Itoa(pos.Line)
}

// File is a parsed and validated topology file.
type File struct {
	// Path is the file as given on the command line; messages name it.
	Path string
	// Project is the project name: the file's name:, else the folder's name,
	// normalised to what Compose accepts ([a-z0-9][a-z0-9_-]*).
	Project string
	// ProjectPos is where name: was set; zero when it came from the folder.
	ProjectPos Pos
	// Networks in file order. The implicit "default" network, when some
	// container needs it, is appended with Implicit set.
	Networks []*Network
	// Containers in file order.
	Containers []*Container
	// Hosts are the machines the file spans (hosts:), in file order;
	// none for a file of one machine. See hosts.go.
	Hosts []*Host
	// Links are the point-to-point links between containers (labs.go).
	Links []*Link
	// Notes are what the file asks for that topo accepts but does not do
	// (a Compose service's image:, say), and variables it interpolates
	// that are not set: one line each on standard error, never an error.
	Notes []*Error
}

// Network is one entry of networks:.
type Network struct {
	Name string
	Pos  Pos
	// Driver is the network's driver:, "bridge" by default; the planner
	// says which drivers there are (planner.Check).
	Driver    string
	DriverPos Pos
	// DriverOpts are its driver_opts:, which the driver reads.
	DriverOpts    map[string]string
	DriverOptsPos Pos
	// Subnet is the zero Prefix when the file leaves it to IPAM.
	Subnet    netip.Prefix
	SubnetPos Pos
	// Gateway is the file's gateway: (a Compose ipam gateway), the
	// zero Addr when it gives none: a bridge's is the subnet's first
	// address, a macvlan's the LAN's router.
	Gateway    netip.Addr
	GatewayPos Pos
	// Subnet6 is the IPv6 subnet of subnet:, the zero Prefix when the
	// file gives none (see IPv6).
	Subnet6    netip.Prefix
	Subnet6Pos Pos
	// EnableIPv6 is enable_ipv6: true; IPv6Off is enable_ipv6: false.
	EnableIPv6    bool
	IPv6Off       bool
	EnableIPv6Pos Pos
	// IPv4Off is enable_ipv4: false: an IPv6-only network, with no IPv4
	// subnet, gateway or address at all (v6only.go).
	IPv4Off       bool
	EnableIPv4Pos Pos
	// Internal networks get no default route, no NAT and no publishes.
	Internal bool
	// IPRange, when valid, is the part of Subnet that addresses are
	// picked from (ip_range, a Compose ipam ip_range); fixed ones may be
	// anywhere.
	IPRange    netip.Prefix
	IPRangePos Pos
	// External says the network exists already (external: true): topo
	// attaches to the host bridge ExternalName (name:, by default the
	// network's name) and never changes or deletes it.
	External     bool
	ExternalPos  Pos
	ExternalName string
	// Reserved addresses are never given to a container (a Compose
	// ipam's aux_addresses).
	Reserved []netip.Addr
	// MTU is the file's mtu:, the MTU of the bridge and of every veth
	// end on the network; 0 when the file gives none (1500).
	MTU    int
	MTUPos Pos
	// VNI is an overlay network's vni:; 0 when the file gives none
	// (names.VNI derives it).
	VNI    int
	VNIPos Pos
	// CNI is the plugin chain of a driver: cni network (cni.go); nil
	// for other drivers.
	CNI *CNI
	// Implicit marks the "default" network that topo adds on demand.
	Implicit bool
}

// Mode is a container's network_mode.
type Mode string

// Network modes, as Docker names them. ModeBridge is the default: the
// container has its own namespace attached to its networks.
const (
	ModeBridge    Mode = ""
	ModeHost      Mode = "host"
	ModeNone      Mode = "none"
	ModeContainer Mode = "container"
)

// Container is one entry of containers:.
type Container struct {
	Name string
	Pos  Pos
	// Hostname defaults to Name.
	Hostname string
	// Networks in attach order: eth0 is the first.
	Networks []*Attachment
	Mode     Mode
	// ModeTarget is the NAME of network_mode: container:NAME.
	ModeTarget string
	ModePos    Pos
	Ports      []*Port
	// Command is argv; empty means no process is started.
	Command    []string
	CommandPos Pos
	// Privileges are the command's user:, cap_add, cap_drop and
	// privileged; UserPos is where user: is, for messages about a user
	// the host does not have.
	Privileges privilege.Settings
	UserPos    Pos
	// Env is the command's environment beyond PATH, HOME and TERM:
	// NAME=VALUE each, sorted by name (env_file's, then environment's).
	Env    []string
	EnvPos Pos
	// WorkingDir is the command's working folder; "" is /.
	WorkingDir    string
	WorkingDirPos Pos
	// DNS are the embedded resolver's upstreams for this container's
	// namespace, instead of the host's; DNSSearch and DNSOptions go into
	// its resolv.conf.
	DNS        []netip.Addr
	DNSSearch  []string
	DNSOptions []string
	// ExtraHosts are lines of its hosts file, in file order.
	ExtraHosts []*ExtraHost
	// Domainname is the file's domainname: the hosts file names the
	// container HOSTNAME.DOMAINNAME too.
	Domainname string
	// DependsOn are the containers whose commands start before this one's.
	DependsOn []*Dependency
	// Healthcheck is nil when there is none (or it is disabled).
	Healthcheck *Healthcheck
	// Host is the file's host: for the container, "" when it gives
	// none (File.HostOf says which host that is).
	Host    string
	HostPos Pos
	// Routes and Sysctls are the container's static routes and net.*
	// sysctls, in file order (labs.go).
	Routes  []*Route
	Sysctls []*Sysctl
}

// Attachment is a container's membership of one network.
type Attachment struct {
	Network string
	Pos     Pos
	Aliases []string
	// IPv4 is the zero Addr when IPAM picks the address.
	IPv4    netip.Addr
	IPv4Pos Pos
	// IPv6 is ipv6_address, the zero Addr when IPAM picks it (on a
	// network with IPv6).
	IPv6    netip.Addr
	IPv6Pos Pos
	// GwPriority chooses the default route (a Compose gw_priority): it
	// goes through the non-internal network whose attachment has the
	// highest, the first in attach order among equals.
	GwPriority int
	// IfName is the container's interface on the network; "" for
	// topo's, eth0, eth1… in attach order.
	IfName    string
	IfNamePos Pos
	// MAC is the interface's hardware address; nil for topo's, derived
	// from its address.
	MAC net.HardwareAddr
	// Impairment is what the container's side does to what it sends.
	Impairment *Impairment
}

// Port is one ports: entry,
// [HOST_IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/PROTO].
type Port struct {
	Raw string
	Pos Pos
	// HostIP is 0.0.0.0 when the entry names none.
	HostIP netip.Addr
	// HostStart and HostEnd are 0 when the host port is left to topo (a free
	// port of the ephemeral range). A host range onto one container port
	// (8000-8010:80) publishes it on one free port of the range.
	HostStart, HostEnd           uint16
	ContainerStart, ContainerEnd uint16
	// Proto is "tcp", "udp" or "sctp".
	Proto string
}

// PicksHostPort reports whether the port is a host range onto one
// container port, which publishes it on one free port of the range.
func (p *Port) PicksHostPort() bool {
	return p.HostEnd > p.HostStart && p.ContainerStart == p.ContainerEnd
}

// Network returns the network called name, or nil.
func (f *File) Network(name string) *Network {
	for _, n := range f.Networks {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Container returns the container called name, or nil.
func (f *File) Container(name string) *Container {
	for _, c := range f.Containers {
		if c.Name == name {
			return c
		}
	}
	return nil
}
