package spec

import (
	"fmt"
	"net/netip"

	"gopkg.in/yaml.v3"
)

// The keys of a network that drivers other than the bridge use: the
// gateway (a macvlan's is the LAN's router), the block addresses are
// picked from, and external: with name:, a host bridge that topo joins
// and does not own. Compose's ipam config and external map onto the same
// fields.

// gateway sets nw.Gateway from n; the subnet is checked against it once
// the whole network is read (networkDone).
func (p *parser) gateway(nw *Network, n *yaml.Node, what string) {
	s, ok := p.str(n, what+": gateway", `"10.42.1.1"`)
	if !ok {
		return
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		p.errorf(n, "%s: gateway %q is not an IPv4 address like \"10.42.1.1\"", what, clip(s))
		return
	}
	nw.Gateway, nw.GatewayPos = a, p.pos(n)
}

// ipRange sets nw.IPRange from n; it is checked against the subnet in
// networkDone.
func (p *parser) ipRange(nw *Network, n *yaml.Node, what string) {
	s, ok := p.str(n, what+": ip_range", `"10.42.1.128/25"`)
	if !ok {
		return
	}
	r, err := netip.ParsePrefix(s)
	switch {
	case err != nil || !r.Addr().Is4():
		p.errorf(n, "%s: ip_range %q is not an IPv4 CIDR block like \"10.42.1.128/25\"", what, clip(s))
	case r.Masked() != r:
		p.errorf(n, "%s: ip_range %q is not a network address: write %q", what, s, r.Masked().String())
	default:
		nw.IPRange, nw.IPRangePos = r, p.pos(n)
	}
}

// networkDone checks what of a network needs all its keys: the gateway
// and ip_range inside the subnet (a bridge's gateway is the subnet's
// first address, which the bridge holds), and name: only with external.
func (p *parser) networkDone(nw *Network, what string, name *yaml.Node) {
	if nw.Gateway.IsValid() || nw.IPRange.IsValid() {
		if !nw.Subnet.IsValid() && !p.badSubnet[nw.Name] && !nw.External {
			pos := nw.GatewayPos
			if !nw.Gateway.IsValid() {
				pos = nw.IPRangePos
			}
			p.add(pos, "%s: gateway and ip_range need the network's subnet: add subnet", what)
		}
	}
	if s := nw.Subnet; s.IsValid() {
		if r := nw.IPRange; r.IsValid() && (!s.Contains(r.Addr()) || r.Bits() < s.Bits()) {
			p.add(nw.IPRangePos, "%s: ip_range %s is not inside subnet %s", what, r, s)
			nw.IPRange = netip.Prefix{}
		}
		if gw := nw.Gateway; gw.IsValid() {
			first := s.Addr().Next()
			switch {
			case !s.Contains(gw) || gw == s.Addr() || gw == lastAddr(s):
				p.add(nw.GatewayPos, "%s: gateway %s is not an address of subnet %s: use one from %s to %s", what, gw, s, first, lastAddr(s).Prev())
			case (nw.Driver == "bridge" || nw.Driver == "") && !nw.External && gw != first:
				p.add(nw.GatewayPos, "%s: gateway %s is not supported yet: topo's bridge holds the subnet's first address, %s; write that or leave gateway out", what, gw, first)
			}
		}
	}
	if name != nil && !nw.External {
		p.errorf(name, "%s: name: is the host bridge of an external network: add external: true, or remove name (topo names its own bridges br-<hash>)", what)
	}
	if nw.CNI != nil && nw.Driver != "cni" {
		p.add(nw.CNI.Pos, "%s: cni: is the plugin chain of a CNI network: add driver: cni, or remove cni", what)
	}
	if nw.External && nw.ExternalName == "" {
		nw.ExternalName = nw.Name
	}
}

// external reads external: (true or false).
func (p *parser) external(nw *Network, n *yaml.Node, what string) {
	if b, ok := p.boolean(n, what+": external"); ok {
		nw.External, nw.ExternalPos = b, p.pos(n)
	}
}

// externalName reads name:, the host bridge of an external network.
func (p *parser) externalName(nw *Network, n *yaml.Node, what string) {
	s, ok := p.str(n, what+": name", `"br-lab"`)
	if !ok {
		return
	}
	if msg := linkNameProblem(s); msg != "" {
		p.errorf(n, "%s: name %q %s", what, clip(s), msg)
		return
	}
	nw.ExternalName = s
}

// linkNameProblem says why s cannot name a Linux interface, or "".
func linkNameProblem(s string) string {
	switch {
	case s == "" || s == "." || s == "..":
		return "is not an interface name"
	case len(s) > 15:
		return fmt.Sprintf("is %d bytes long: a Linux interface name has at most 15", len(s))
	}
	for _, r := range s {
		if r == '/' || r == ':' || r <= ' ' || r > '~' {
			return fmt.Sprintf("holds %q, which an interface name cannot", r)
		}
	}
	return ""
}

// driverOpts reads driver_opts:, which the network's driver checks
// (planner.Check).
func (p *parser) driverOpts(nw *Network, e entry, what string) {
	nw.DriverOptsPos = p.pos(e.key)
	for _, o := range p.mapping(e.val, what+": driver_opts", "a mapping of option names to values", true) {
		// Numbers too, as Compose takes them (mtu: 1400).
		v, ok := resolve(o.val).Value, resolve(o.val).Kind == yaml.ScalarNode && resolve(o.val).ShortTag() != "!!null"
		if !ok {
			v, ok = p.str(o.val, what+": driver_opts: "+clip(o.key.Value), `"value"`)
		}
		if ok {
			if nw.DriverOpts == nil {
				nw.DriverOpts = map[string]string{}
			}
			nw.DriverOpts[o.key.Value] = v
		}
	}
}
