package spec

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"gopkg.in/yaml.v3"
)

// applyDefaults fills in what the file leaves out, as Compose does.
func (p *parser) applyDefaults(f *File) {
	var needDefault *Container
	onLink := map[string]bool{}
	for _, l := range f.Links {
		for _, e := range l.Ends {
			onLink[e.Container] = true
		}
	}
	for _, c := range f.Containers {
		if c.Hostname == "" {
			c.Hostname = c.Name
		}
		if c.Mode != ModeBridge {
			continue
		}
		// Like Compose, a bridge container with no networks (none given,
		// or an empty list) joins the project's "default" network; one
		// on a link needs none (a router with only links).
		if len(c.Networks) == 0 && !onLink[c.Name] {
			c.Networks = []*Attachment{{Network: "default", Pos: c.Pos}}
		}
		// Naming "default" explicitly needs no definition either.
		for _, a := range c.Networks {
			if a.Network == "default" && needDefault == nil {
				needDefault = c
			}
		}
	}
	if needDefault != nil && f.Network("default") == nil {
		f.Networks = append(f.Networks, &Network{Name: "default", Pos: needDefault.Pos, Driver: "bridge", Implicit: true})
	}
}

// validate checks what needs more than one value: references between
// objects and conflicts between them.
func (p *parser) validate(f *File) {
	p.checkSubnets(f)
	p.checkHosts(f)
	p.checkIPv6(f)
	var networkNames, containerNames []string
	for _, n := range f.Networks {
		if !n.Implicit {
			networkNames = append(networkNames, n.Name)
		}
	}
	// Maps, not f.Network and f.Container: a hostile file can hold
	// thousands of each.
	networks := make(map[string]*Network, len(f.Networks))
	for _, n := range f.Networks {
		if networks[n.Name] == nil {
			networks[n.Name] = n
		}
	}
	containers := make(map[string]*Container, len(f.Containers))
	for _, c := range f.Containers {
		containerNames = append(containerNames, c.Name)
		if containers[c.Name] == nil {
			containers[c.Name] = c
		}
	}
	// taken maps network and address to the first container given it.
	type netAddr struct {
		network string
		addr    netip.Addr
	}
	type holder struct {
		c *Container
		a *Attachment
	}
	taken := make(map[netAddr]holder)
	members := make(map[*Network][]*Container)
	// overPorts is, per bridge network, the first attachment past what a
	// bridge holds.
	overPorts := make(map[*Network]*Attachment)
	for _, c := range f.Containers {
		what := fmt.Sprintf("container %q", clip(c.Name))
		keys := p.keys[c]
		c.Ports = mergeSame(c.Ports)
		if c.Mode != ModeBridge {
			if keys.networks != nil {
				p.errorf(keys.networks, "%s: networks cannot be combined with network_mode %q (%s): remove one of them", what, modeString(c), p.ref(c.ModePos, keys.networks))
			}
			switch {
			case keys.ports == nil:
			case c.Mode == ModeHost:
				// Docker warns and publishes nothing; so does topo.
				p.note(keys.ports, "%s: published ports are discarded when using host network mode (%s): the command listens on the host's own addresses", what, p.ref(c.ModePos, keys.ports))
				c.Ports = nil
			default:
				p.errorf(keys.ports, "%s: ports cannot be published with network_mode %q (%s): %s", what, modeString(c), p.ref(c.ModePos, keys.ports), portsHint(c))
			}
		}
		if c.Mode == ModeContainer && c.ModeTarget != "" {
			p.checkTarget(containers, c, containerNames, what)
			if keys.hostname != nil {
				// The hostname is the namespace's: Docker refuses it too.
				p.errorf(keys.hostname, "%s: conflicting options: hostname and the network mode %q (%s): the container has the hostname of %q, whose namespace it shares; remove hostname",
					what, modeString(c), p.ref(c.ModePos, keys.hostname), clip(c.ModeTarget))
			}
		}
		if c.Mode != ModeBridge {
			continue
		}
		allInternal, allKnown := true, true
		for _, a := range c.Networks {
			nw := networks[a.Network]
			if nw == nil {
				allKnown = false
				if len(networkNames) == 0 {
					p.add(a.Pos, "%s: network %q is not defined: the file defines no networks; add it under networks:", what, clip(a.Network))
				} else {
					p.add(a.Pos, "%s: network %q is not defined%s: defined networks are %s", what, clip(a.Network), didYouMean(a.Network, networkNames), quoteList(networkNames))
				}
				continue
			}
			allInternal = allInternal && nw.Internal
			members[nw] = append(members[nw], c)
			if len(members[nw]) == MaxBridgePorts+1 && isBridge(nw) {
				overPorts[nw] = a
			}
			if !a.IPv4.IsValid() || p.badSubnet[nw.Name] {
				continue
			}
			if !p.checkAddress(nw, a, what) {
				continue
			}
			k := netAddr{nw.Name, a.IPv4}
			if first, ok := taken[k]; ok {
				p.add(a.IPv4Pos, "%s: ipv4_address %s on network %q is already given to container %q (%s): pick another",
					what, a.IPv4, clip(nw.Name), clip(first.c.Name), first.a.IPv4Pos.Ref(p.path, a.IPv4Pos))
				continue
			}
			taken[k] = holder{c, a}
		}
		if len(c.Ports) > 0 && allKnown && allInternal {
			// Docker accepts the ports and makes no binding: nothing
			// outside an internal network reaches into it.
			p.note(keys.ports, "%s: published ports are unreachable: all its networks are internal, and nothing outside an internal network reaches into it; no rule is made for them (attach the container to a network without internal: true to publish them)", what)
			c.Ports = nil
		}
	}
	p.checkRoom(f, members)
	p.checkPorts(f, members, overPorts)
	p.checkPublishes(f)
	p.checkRuntime(f, containers, containerNames)
	p.checkLabs(f, containers, networks)
}

// checkRoom reports networks whose subnet has fewer addresses than
// containers join it: IPAM gives the gateway the first address and leaves
// the network and broadcast addresses, as Docker does.
func (p *parser) checkRoom(f *File, members map[*Network][]*Container) {
	for _, nw := range f.Networks {
		cs := members[nw]
		if !nw.Subnet.IsValid() || p.badSubnet[nw.Name] || len(cs) <= room(nw.Subnet.Bits()) {
			continue
		}
		bits := nw.Subnet.Bits()
		for bits > 8 && room(bits) < len(cs) {
			bits--
		}
		names := make([]string, 0, len(cs))
		for _, c := range cs {
			names = append(names, c.Name)
		}
		holds := fmt.Sprintf("%d containers", room(nw.Subnet.Bits()))
		if room(nw.Subnet.Bits()) == 1 {
			holds = "1 container"
		}
		p.add(nw.SubnetPos, "network %q: subnet %s holds %s (%d addresses less the network, gateway and broadcast addresses), but %d join it (%s): use a /%d or larger",
			clip(nw.Name), nw.Subnet, holds, 1<<(32-nw.Subnet.Bits()), len(cs), quoteList(names), bits)
	}
}

// MaxBridgePorts is how many containers one bridge network holds: the
// kernel numbers a bridge's ports from 1 below BR_MAX_PORTS (1024), and
// refuses the veth past them with "exchange full" half way through an up.
const MaxBridgePorts = 1023

// isBridge says whether nw's containers are ports of one bridge on this
// host: topo's own bridge, or the host's that an external network joins.
func isBridge(nw *Network) bool { return nw.Driver == "" || nw.Driver == "bridge" }

// checkPorts reports the bridge networks that more containers join than
// a bridge has ports, at the first container past the limit.
func (p *parser) checkPorts(f *File, members map[*Network][]*Container, over map[*Network]*Attachment) {
	for _, nw := range f.Networks {
		a := over[nw]
		if a == nil {
			continue
		}
		cs := members[nw]
		where := ""
		if !nw.Implicit {
			where = " (" + nw.Pos.Ref(p.path, a.Pos) + ")"
		}
		p.add(a.Pos, "network %q%s: %d containers join it, and a bridge holds at most %d (the kernel's %d ports, less port 0): container %q is the %dth; spread the containers over %d or more networks",
			clip(nw.Name), where, len(cs), MaxBridgePorts, MaxBridgePorts+1, clip(cs[MaxBridgePorts].Name), MaxBridgePorts+1, (len(cs)+MaxBridgePorts-1)/MaxBridgePorts)
	}
}

// room is how many containers a subnet of prefix length bits (8 to 30)
// holds.
func room(bits int) int { return 1<<(32-bits) - 3 }

// ref names pos for a message about the key at n (see Pos.Ref).
func (p *parser) ref(pos Pos, n *yaml.Node) string { return pos.Ref(p.path, p.pos(n)) }

func modeString(c *Container) string {
	if c.Mode == ModeContainer {
		return clip("container:" + c.ModeTarget)
	}
	return string(c.Mode)
}

func portsHint(c *Container) string {
	if c.Mode == ModeContainer {
		return fmt.Sprintf("the namespace is %q's, so publish the ports there", clip(c.ModeTarget))
	}
	return "the container has only loopback"
}

// mergeSame keeps the first of ports: entries that publish the same
// (Port.publishes), as Compose merges entries of one unique key:
// "9080:80" twice is one publish, not a collision.
func mergeSame(ports []*Port) []*Port {
	seen := make(map[publishKey]bool, len(ports))
	out := ports[:0]
	for _, p := range ports {
		if k := p.publishes(); !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	return out
}

// checkTarget checks network_mode: container:NAME as Docker does: NAME must
// be another container, and one that has a namespace of its own.
func (p *parser) checkTarget(containers map[string]*Container, c *Container, names []string, what string) {
	t := containers[c.ModeTarget]
	switch {
	case c.ModeTarget == c.Name:
		p.add(c.ModePos, "%s: network_mode %q names the container itself: name another container", what, modeString(c))
	case t == nil:
		p.add(c.ModePos, "%s: network_mode %q names no container%s: defined containers are %s", what, modeString(c), didYouMean(c.ModeTarget, names), quoteList(names))
	case t.Mode == ModeContainer:
		// Suggest the container that owns the namespace, when it is one
		// step further; longer chains and loops get a general hint.
		hint := "point both at a container with a namespace of its own"
		switch owner := containers[t.ModeTarget]; {
		case owner == c:
			hint = "the two form a loop; give one of them a namespace of its own"
		case owner != nil && owner.Mode != ModeContainer:
			hint = fmt.Sprintf("write %q", "container:"+clip(owner.Name))
		}
		p.add(c.ModePos, "%s: network_mode %q names a container that itself shares the namespace of %q: %s", what, modeString(c), clip(t.ModeTarget), hint)
	}
}

// checkAddress checks a fixed address against its network's subnet, as
// Docker does when it reserves the address. It reports false for a
// problem. Without a subnet in the file there is nothing to check it
// against yet: the planner checks it against the subnet it picks.
func (p *parser) checkAddress(nw *Network, a *Attachment, what string) bool {
	if !nw.Subnet.IsValid() {
		return true
	}
	if gw := nw.Gateway; gw.IsValid() && gw != nw.Subnet.Addr().Next() {
		// A gateway elsewhere than the first address (a macvlan's
		// router) leaves the first to containers.
		switch a.IPv4 {
		case gw:
			p.add(a.IPv4Pos, "%s: ipv4_address %s is the gateway of network %q (%s): pick another", what, a.IPv4, clip(nw.Name), nw.GatewayPos.Ref(p.path, a.IPv4Pos))
			return false
		case nw.Subnet.Addr().Next():
			return true
		}
	}
	if problem := AddressProblem(nw.Subnet, a.IPv4, nw.Name, ""); problem != "" {
		p.add(a.IPv4Pos, "%s: ipv4_address %s %s", what, a.IPv4, problem)
		return false
	}
	return true
}

// AddressProblem says why a is no address for a container of network
// (subnet s), and which are, or returns "": a must lie inside s and be
// neither its network, gateway (first) nor broadcast address. picked,
// when not "", says where s came from, for a subnet the file leaves out.
func AddressProblem(s netip.Prefix, a netip.Addr, network, picked string) string {
	gw, bcast := s.Addr().Next(), lastAddr(s)
	first, last := gw.Next(), bcast.Prev()
	usable := fmt.Sprintf("use one from %s to %s", first, last)
	if first == last {
		usable = fmt.Sprintf("use %s", first)
	}
	name := clip(network)
	of := fmt.Sprintf("network %q", name)
	if picked != "" {
		of = fmt.Sprintf("network %q (subnet %s, %s)", name, s, picked)
	}
	switch {
	case !s.Contains(a):
		if picked != "" {
			return fmt.Sprintf("is outside subnet %s, which network %q gets (%s): give the network a subnet that holds the address (subnet:, or in a Compose file ipam.config subnet), or %s", s, name, picked, usable)
		}
		return fmt.Sprintf("is outside subnet %s of network %q: %s", s, name, usable)
	case a == s.Addr():
		return fmt.Sprintf("is the network address of %s: %s", of, usable)
	case a == gw:
		return fmt.Sprintf("is the gateway of %s, which its bridge holds: %s", of, usable)
	case a == bcast:
		return fmt.Sprintf("is the broadcast address of %s: %s", of, usable)
	}
	return ""
}

// lastAddr is the last (broadcast) address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	u := binary.BigEndian.Uint32(b[:]) | (1<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(b[:], u)
	return netip.AddrFrom4(b)
}

// checkSubnets reports networks whose subnets overlap: Docker refuses them
// too, since routes to the two bridges would collide. It sorts by first
// address and keeps the block reaching furthest so far, so that a huge file
// costs n log n, not n².
func (p *parser) checkSubnets(f *File) {
	type block struct {
		nw    *Network
		idx   int
		first netip.Addr
		last  netip.Addr
	}
	var blocks []block
	for i, nw := range f.Networks {
		if nw.Subnet.IsValid() {
			blocks = append(blocks, block{nw, i, nw.Subnet.Addr(), lastAddr(nw.Subnet)})
		}
	}
	slices.SortStableFunc(blocks, func(a, b block) int { return a.first.Compare(b.first) })
	var far *block
	for i := range blocks {
		b := &blocks[i]
		if far != nil && b.first.Compare(far.last) <= 0 {
			// Report at whichever comes later in the file.
			at, other := b, far
			if at.idx < other.idx {
				at, other = other, at
			}
			p.add(at.nw.SubnetPos, "network %q: subnet %s overlaps subnet %s of network %q (%s): networks need address blocks of their own",
				clip(at.nw.Name), at.nw.Subnet, other.nw.Subnet, clip(other.nw.Name), other.nw.SubnetPos.Ref(p.path, at.nw.SubnetPos))
		}
		if far == nil || b.last.Compare(far.last) > 0 {
			far = b
		}
	}
}

// checkPublishes reports two publishes of one host port: same protocol,
// overlapping host port ranges, and the same host address, where 0.0.0.0
// is every address. Ports left to topo (0) never collide. Like
// checkSubnets, a sweep over publishes sorted by first host port.
func (p *parser) checkPublishes(f *File) {
	// Each host publishes its own containers' ports on its own
	// addresses: ports collide only on one host.
	hosts := map[string][]*Container{}
	var order []string
	for _, c := range f.Containers {
		h := f.HostOf(c)
		if hosts[h] == nil {
			order = append(order, h)
		}
		hosts[h] = append(hosts[h], c)
	}
	for _, h := range order {
		p.checkPublishesOn(hosts[h])
	}
}

// checkPublishesOn is checkPublishes on the containers of one host.
func (p *parser) checkPublishesOn(containers []*Container) {
	type pub struct {
		c   *Container
		p   *Port
		idx int
	}
	var pubs []pub
	for _, c := range containers {
		if c.Mode != ModeBridge {
			continue // already reported; they publish nothing
		}
		for _, port := range c.Ports {
			// A range topo picks one port of does not hold all of it.
			if port.HostStart != 0 && !port.PicksHostPort() {
				pubs = append(pubs, pub{c, port, len(pubs)})
			}
		}
	}
	slices.SortStableFunc(pubs, func(a, b pub) int {
		return cmp.Or(cmp.Compare(a.p.Proto, b.p.Proto), cmp.Compare(a.p.HostStart, b.p.HostStart), cmp.Compare(a.idx, b.idx))
	})
	// For the current protocol: the publish reaching furthest so far on
	// any address, on 0.0.0.0, and on each address.
	var proto string
	var farAll, farWild *pub
	farIP := make(map[netip.Addr]*pub)
	reaches := func(q *pub, port uint16) bool { return q != nil && q.p.HostEnd >= port }
	further := func(cur, q *pub) *pub {
		if cur == nil || q.p.HostEnd > cur.p.HostEnd {
			return q
		}
		return cur
	}
	for i := range pubs {
		x := &pubs[i]
		if x.p.Proto != proto {
			proto, farAll, farWild = x.p.Proto, nil, nil
			clear(farIP)
		}
		wild := x.p.HostIP.IsUnspecified()
		var hit *pub
		switch {
		case wild && reaches(farAll, x.p.HostStart):
			hit = farAll
		case !wild && reaches(farIP[x.p.HostIP], x.p.HostStart):
			hit = farIP[x.p.HostIP]
		case !wild && reaches(farWild, x.p.HostStart):
			hit = farWild
		}
		if hit != nil {
			at, other := x, hit
			if at.idx < other.idx {
				at, other = other, at
			}
			ip := at.p.HostIP
			if ip.IsUnspecified() {
				ip = other.p.HostIP
			}
			p.add(at.p.Pos, "container %q: port %q collides with port %q of container %q (%s): both publish %s:%d/%s; use another host port or address",
				clip(at.c.Name), clip(at.p.Raw), clip(other.p.Raw), clip(other.c.Name), other.p.Pos.Ref(p.path, at.p.Pos), ip, x.p.HostStart, proto)
		}
		farAll = further(farAll, x)
		if wild {
			farWild = further(farWild, x)
		} else {
			farIP[x.p.HostIP] = further(farIP[x.p.HostIP], x)
		}
	}
}
