package spec

import (
	"fmt"
	"net/netip"

	"gopkg.in/yaml.v3"
)

// What the file says of IPv6: a network's enable_ipv6 and its IPv6
// subnet, a container's ipv6_address on it. A network is dual stack
// when it says enable_ipv6: true or gives an IPv6 subnet; without one,
// the planner picks a /64 of the host's ULA prefix.

// IPv6 reports whether the network has IPv6: enable_ipv6: true, or an
// IPv6 subnet.
func (n *Network) IPv6() bool { return n.EnableIPv6 || n.Subnet6.IsValid() }

// subnets reads subnet:, one CIDR or a list of them, one of each family
// at most (a single subnet: keeps working).
func (p *parser) subnets(nw *Network, n *yaml.Node, what string) {
	v := resolve(n)
	if v.Kind != yaml.SequenceNode {
		p.subnetOfFamily(nw, n, what)
		return
	}
	if len(v.Content) == 0 || len(v.Content) > 2 {
		p.errorf(n, "%s: subnet lists one or two subnets, an IPv4 and an IPv6 one, like [10.42.1.0/24, \"fd42:1::/64\"], got %d", what, len(v.Content))
		p.badSubnet[nw.Name] = true
		return
	}
	var first *yaml.Node
	for _, it := range v.Content {
		six := isIPv6Text(resolve(it).Value)
		if first != nil && six == isIPv6Text(resolve(first).Value) {
			p.errorf(it, "%s: subnet %q is of the same family as %q (%s): give at most one IPv4 and one IPv6 subnet", what, clip(resolve(it).Value), clip(resolve(first).Value), p.pos(first).Ref(p.path, p.pos(it)))
			p.badSubnet[nw.Name] = true
			continue
		}
		first = it
		p.subnetOfFamily(nw, it, what)
	}
}

// subnetOfFamily reads one subnet, as IPv6 when it has a colon.
func (p *parser) subnetOfFamily(nw *Network, n *yaml.Node, what string) {
	v := resolve(n)
	ok := false
	if v.Kind == yaml.ScalarNode && isIPv6Text(v.Value) {
		ok = p.subnet6(nw, n, what)
	} else {
		ok = p.subnet(nw, n, what)
	}
	if !ok {
		p.badSubnet[nw.Name] = true
	}
}

func isIPv6Text(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return true
		}
	}
	return false
}

// IPv6 subnet sizes: a /64 is what an Ethernet link has (RFC 4291);
// topo takes up to a /120, whose 256 addresses still hold a network,
// and from a /32.
const (
	minIPv6Bits = 32
	maxIPv6Bits = 120
)

// subnet6 sets nw.Subnet6 from n, or reports why it cannot.
func (p *parser) subnet6(nw *Network, n *yaml.Node, what string) bool {
	nw.Subnet6Pos = p.pos(n)
	s, ok := p.str(n, what+": subnet", `"fd42:1::/64"`)
	if !ok {
		return false
	}
	pfx, err := netip.ParsePrefix(s)
	switch {
	case err != nil || !pfx.Addr().Is6() || pfx.Addr().Is4In6() || pfx.Addr().Zone() != "":
		p.errorf(n, "%s: subnet %q is not an IPv6 CIDR block like \"fd42:1::/64\"", what, clip(s))
	case pfx.Bits() < minIPv6Bits || pfx.Bits() > maxIPv6Bits:
		p.errorf(n, "%s: subnet %q has prefix length /%d: use /%d to /%d (a /64 is the usual size of a link)", what, s, pfx.Bits(), minIPv6Bits, maxIPv6Bits)
	case pfx.Masked() != pfx:
		p.errorf(n, "%s: subnet %q is not a network address: write %q", what, s, pfx.Masked().String())
	case pfx.Addr().IsLinkLocalUnicast() || pfx.Addr().IsMulticast() || pfx.Addr().IsLoopback() || pfx.Addr().IsUnspecified():
		p.errorf(n, "%s: subnet %s is a block the kernel treats specially (loopback, link-local or multicast): use a unique local block (fd00::/8) or one of your global prefix", what, pfx)
	default:
		nw.Subnet6 = pfx
		return true
	}
	return false
}

// enableIPv6 reads enable_ipv6:.
func (p *parser) enableIPv6(nw *Network, n *yaml.Node, what string) {
	if b, ok := p.boolean(n, what+": enable_ipv6"); ok {
		nw.EnableIPv6, nw.EnableIPv6Pos = b, p.pos(n)
		nw.IPv6Off = !b
	}
}

// enableIPv4 reads enable_ipv4: (false is an IPv6-only network).
func (p *parser) enableIPv4(nw *Network, n *yaml.Node, what string) {
	if b, ok := p.boolean(n, what+": enable_ipv4"); ok {
		nw.IPv4Off, nw.EnableIPv4Pos = !b, p.pos(n)
	}
}

// ipv6Address reads ipv6_address:.
func (p *parser) ipv6Address(a *Attachment, v *yaml.Node, what string) {
	s, ok := p.str(v, what+": ipv6_address", `"fd42:1::10"`)
	if !ok {
		return
	}
	addr, err := netip.ParseAddr(s)
	if err != nil || !addr.Is6() || addr.Is4In6() || addr.Zone() != "" {
		p.errorf(v, "%s: ipv6_address %q is not an IPv6 address like \"fd42:1::10\"", what, clip(s))
		return
	}
	a.IPv6, a.IPv6Pos = addr, p.pos(v)
}

// checkIPv6 checks what of a network's IPv6 needs the whole file: a
// subnet against enable_ipv6: false, IPv6 subnets that overlap, and
// fixed IPv6 addresses (on a network with IPv6, inside its subnet, not
// given twice).
// ipv6Unsupported names the kind of nw when it is one IPv6 is not
// made for yet (a macvlan's LAN, an external bridge), "" for a bridge
// or overlay network of topo's.
func ipv6Unsupported(nw *Network) string {
	switch {
	case nw.External:
		return "external"
	case nw.Driver == "macvlan":
		return nw.Driver
	}
	return ""
}

func (p *parser) checkIPv6(f *File) {
	nets := make(map[string]*Network, len(f.Networks))
	for i, nw := range f.Networks {
		if nets[nw.Name] == nil {
			nets[nw.Name] = nw
		}
		if kind := ipv6Unsupported(nw); kind != "" && nw.IPv6() {
			pos := nw.EnableIPv6Pos
			if !nw.EnableIPv6 {
				pos = nw.Subnet6Pos
			}
			p.add(pos, "network %q: IPv6 is not supported yet on %s networks: remove enable_ipv6 and the IPv6 subnet, or use the bridge driver", clip(nw.Name), kind)
		}
		if nw.IPv6Off && nw.Subnet6.IsValid() {
			p.add(nw.EnableIPv6Pos, "network %q: enable_ipv6 is false, but subnet %s is IPv6: remove one of them", clip(nw.Name), nw.Subnet6)
		}
		for _, other := range f.Networks[:i] {
			if nw.Subnet6.IsValid() && other.Subnet6.IsValid() && nw.Subnet6.Overlaps(other.Subnet6) {
				p.add(nw.Subnet6Pos, "network %q: subnet %s overlaps subnet %s of network %q (%s): networks need address blocks of their own",
					clip(nw.Name), nw.Subnet6, other.Subnet6, clip(other.Name), other.Subnet6Pos.Ref(p.path, nw.Subnet6Pos))
			}
		}
	}
	p.checkIPv6Only(f, nets)
	for _, c := range f.Containers {
		p.checkPorts6(c, nets)
	}
	type holder struct {
		c   string
		pos Pos
	}
	taken := map[string]holder{}
	for _, c := range f.Containers {
		for _, a := range c.Networks {
			nw := nets[a.Network]
			if !a.IPv6.IsValid() || nw == nil || p.badSubnet[nw.Name] {
				continue
			}
			what := fmt.Sprintf("container %q", clip(c.Name))
			switch {
			case !nw.IPv6():
				p.add(a.IPv6Pos, "%s: ipv6_address %s on network %q, which has no IPv6: give the network enable_ipv6: true or an IPv6 subnet", what, a.IPv6, clip(nw.Name))
				continue
			case nw.Subnet6.IsValid():
				if problem := AddressProblem6(nw.Subnet6, a.IPv6, nw.Name, ""); problem != "" {
					p.add(a.IPv6Pos, "%s: ipv6_address %s %s", what, a.IPv6, problem)
					continue
				}
			}
			k := nw.Name + " " + a.IPv6.String()
			if first, ok := taken[k]; ok {
				p.add(a.IPv6Pos, "%s: ipv6_address %s on network %q is already given to container %q (%s): pick another",
					what, a.IPv6, clip(nw.Name), clip(first.c), first.pos.Ref(p.path, a.IPv6Pos))
				continue
			}
			taken[k] = holder{c.Name, a.IPv6Pos}
		}
	}
}

// AddressProblem6 says why a is no IPv6 address for a container of
// network (subnet s), or returns "": a must lie inside s and be neither
// its first (the subnet-router anycast address) nor its gateway (the one
// after it). picked, when not "", says where s came from.
func AddressProblem6(s netip.Prefix, a netip.Addr, network, picked string) string {
	gw := s.Addr().Next()
	name := clip(network)
	switch {
	case !s.Contains(a):
		if picked != "" {
			return fmt.Sprintf("is outside subnet %s, which network %q gets (%s): give the network an IPv6 subnet that holds the address, or use one from %s on", s, name, picked, gw.Next())
		}
		return fmt.Sprintf("is outside subnet %s of network %q: use one from %s on", s, name, gw.Next())
	case a == s.Addr():
		return fmt.Sprintf("is the subnet-router address of %s of network %q: use one from %s on", s, name, gw.Next())
	case a == gw:
		return fmt.Sprintf("is the gateway of network %q, which its bridge holds: use one from %s on", name, gw.Next())
	}
	return ""
}

// checkPorts6 refuses publishes on an IPv6 host address of a container
// whose port forwards to a network without IPv6: the first of its
// networks that is not internal, as for IPv4.
func (p *parser) checkPorts6(c *Container, nets map[string]*Network) {
	for _, pt := range c.Ports {
		if pt.HostIP == netip.IPv6Loopback() && pt.Proto == "sctp" {
			// A publish on ::1 is a proxy of the resolver process's
			// (planner/proxy.go), which forwards TCP and UDP.
			p.add(pt.Pos, "container %q: port %q: SCTP on ::1 is not supported: topo forwards publishes on ::1 with a proxy, for tcp and udp; publish SCTP on [::] or 127.0.0.1", clip(c.Name), clip(pt.Raw))
		}
	}
	to := portNetwork(c, nets)
	if to == nil || to.IPv6() {
		return
	}
	for _, pt := range c.Ports {
		// [::1] is a proxy's, which forwards to an IPv4 address too.
		if pt.HostIP.Is6() && pt.HostIP != netip.IPv6Loopback() {
			p.add(pt.Pos, "container %q: port %q: host address %s is IPv6, but network %q, which the port forwards to, has no IPv6: give it enable_ipv6: true, or publish on an IPv4 address or [::1]", clip(c.Name), clip(pt.Raw), pt.HostIP, clip(to.Name))
		}
	}
}

// ipamConfig6 reads a Compose ipam.config entry of an IPv6 subnet: the
// subnet, a gateway only if it is the one topo's bridge holds, and no
// ip_range or aux_addresses yet.
func (p *parser) ipamConfig6(nw *Network, subnet, gateway, ipRange, aux *yaml.Node, what, path string) {
	if nw.Subnet6.IsValid() {
		p.errorf(subnet, "%s: a second IPv6 subnet (the first is at %s): topo networks have one IPv6 subnet", what, p.ref(nw.Subnet6Pos, subnet))
		return
	}
	if !p.subnet6(nw, subnet, what) {
		p.badSubnet[nw.Name] = true
		return
	}
	if gateway != nil {
		if s, ok := p.str(gateway, what+": gateway", `"fd42:1::1"`); ok {
			a, err := netip.ParseAddr(s)
			if want := nw.Subnet6.Addr().Next(); err != nil || a != want {
				p.errorf(gateway, "%s: gateway %s is not supported yet: topo's bridge holds the IPv6 subnet's first address after the subnet-router one, %s; write that or leave gateway out", what, clip(s), want)
			}
		}
	}
	for _, x := range []*yaml.Node{ipRange, aux} {
		if x != nil {
			p.note(x, "%s: ip_range and aux_addresses of an IPv6 subnet are not supported yet: ignored", path)
		}
	}
}
