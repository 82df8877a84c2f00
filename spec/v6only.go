package spec

// IPv6-only networks: enable_ipv4: false (topo's key and Compose's, as
// Docker 27's --ipv4=false) with IPv6 (an IPv6 subnet, or enable_ipv6:
// true for one of the host's ULA prefix). Their containers get an IPv6
// address there and nothing of IPv4: no address, no route, no A record.

// IPv4 reports whether the network has IPv4: every network but an
// IPv6-only one.
func (n *Network) IPv4() bool { return !n.IPv4Off }

// checkIPv6Only refuses what an IPv6-only network cannot have: no IPv6
// either, a driver IPv6 is not made for, IPv4 settings (a subnet, a
// gateway, an ip_range), containers' ipv4_address on it, and publishes
// on a specific IPv4 host address to it (Docker binds nothing of them,
// silently: topo says so).
func (p *parser) checkIPv6Only(f *File, nets map[string]*Network) {
	for _, nw := range f.Networks {
		if !nw.IPv4Off {
			continue
		}
		name := clip(nw.Name)
		switch {
		case nw.IPv6Off:
			p.add(nw.EnableIPv4Pos, "network %q: enable_ipv4 and enable_ipv6 are both false: a network needs one of them; remove enable_ipv6: false for an IPv6-only network", name)
		case !nw.IPv6():
			p.add(nw.EnableIPv4Pos, "network %q: enable_ipv4: false makes an IPv6-only network, which needs IPv6: give it an IPv6 subnet (\"fd42:3::/64\") or enable_ipv6: true", name)
		}
		for _, s := range []struct {
			ok  bool
			pos Pos
			key string
			val string
		}{
			{nw.Subnet.IsValid(), nw.SubnetPos, "subnet", nw.Subnet.String()},
			{nw.Gateway.Is4(), nw.GatewayPos, "gateway", nw.Gateway.String()},
			{nw.IPRange.IsValid() && nw.IPRange.Addr().Is4(), nw.IPRangePos, "ip_range", nw.IPRange.String()},
		} {
			if s.ok {
				p.add(s.pos, "network %q: %s %s is IPv4, but enable_ipv4 is false (an IPv6-only network, line %d): remove one of them", name, s.key, s.val, nw.EnableIPv4Pos.Line)
			}
		}
	}
	for _, c := range f.Containers {
		for _, a := range c.Networks {
			if nw := nets[a.Network]; nw != nil && nw.IPv4Off && a.IPv4.IsValid() {
				p.add(a.IPv4Pos, "container %q: ipv4_address %s on network %q, which is IPv6-only (enable_ipv4: false, %s): give an ipv6_address instead, or let the network have IPv4",
					clip(c.Name), a.IPv4, clip(nw.Name), nw.EnableIPv4Pos.Ref(p.path, a.IPv4Pos))
			}
		}
		to := portNetwork(c, nets)
		if to == nil || !to.IPv4Off {
			continue
		}
		for _, pt := range c.Ports {
			if pt.HostIP.Is4() && !pt.HostIP.IsUnspecified() {
				p.add(pt.Pos, "container %q: port %q: host address %s is IPv4, but network %q, which the port forwards to, is IPv6-only (enable_ipv4: false): the container has no IPv4 address to forward to; publish on [::] or an IPv6 address of the host, or leave the host address out, which publishes on [::]",
					clip(c.Name), clip(pt.Raw), pt.HostIP, clip(to.Name))
			}
		}
	}
}

// portNetwork is the network c's publishes forward to: its first that is
// not internal, nil for none.
func portNetwork(c *Container, nets map[string]*Network) *Network {
	for _, a := range c.Networks {
		if nw := nets[a.Network]; nw != nil && !nw.Internal {
			return nw
		}
	}
	return nil
}
