package spec

import (
	"fmt"
	"net/netip"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Host is one entry of hosts:, a machine that applies its part of the
// file: its containers, and the overlay networks they are on.
type Host struct {
	Name string
	Pos  Pos
	// Address is the host's underlay address: where the other hosts'
	// VXLAN packets reach it, and how topo finds which host it runs on.
	Address    netip.Addr
	AddressPos Pos
}

// Overlay is the driver of networks that span the file's hosts.
const Overlay = "overlay"

// Host returns the host called name, or nil.
func (f *File) Host(name string) *Host {
	for _, h := range f.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// HostOf is the host container c runs on: its host:, else the file's
// first host; "" in a file without hosts.
func (f *File) HostOf(c *Container) string {
	if c.Host != "" || len(f.Hosts) == 0 {
		return c.Host
	}
	return f.Hosts[0].Name
}

// hosts reads hosts:, a mapping of host names to their address.
func (p *parser) hosts(f *File, n *yaml.Node) {
	for _, e := range p.mapping(n, "hosts", "a mapping of host names to their address, like h1: {address: 192.0.2.11}", false) {
		h := &Host{Name: e.key.Value, Pos: p.pos(e.key)}
		if msg := nameMsg("host", h.Name); msg != "" {
			p.errorf(e.key, "%s", msg)
		}
		what := fmt.Sprintf("host %q", clip(h.Name))
		given := false
		for _, k := range p.mapping(e.val, what, "a mapping with address, like {address: 192.0.2.11}", false) {
			switch k.key.Value {
			case "address":
				given = true
				s, ok := p.str(k.val, what+": address", `"192.0.2.11"`)
				if !ok {
					continue
				}
				a, err := netip.ParseAddr(s)
				switch {
				case err != nil || a.Is4In6() || a.Zone() != "" || a.IsUnspecified() || a.IsLoopback() || a.IsMulticast():
					p.errorf(k.val, "%s: address %q is not a unicast address like 192.0.2.11 or \"2001:db8::11\": it is where the other hosts reach this one", what, clip(s))
					continue
				case a.Is6() && a.IsLinkLocalUnicast():
					// It would need its link (a zone), which is each
					// host's own.
					p.errorf(k.val, "%s: address %s is IPv6 link-local, which the other hosts cannot reach without naming their own link: give a unique local (fd00::/8) or global address of the host", what, a)
					continue
				}
				h.Address, h.AddressPos = a, p.pos(k.val)
			default:
				p.unknownKey(k.key, "host", "in "+what)
			}
		}
		if !given {
			p.errorf(e.key, "%s: address is missing: give the host's underlay address, like {address: 192.0.2.11}", what)
		}
		f.Hosts = append(f.Hosts, h)
	}
}

// host reads a container's host:.
func (p *parser) host(c *Container, v *yaml.Node, what string) {
	if s, ok := p.str(v, what+": host", `"h1"`); ok {
		c.Host, c.HostPos = s, p.pos(v)
	}
}

// vni reads an overlay network's vni:, its VXLAN network identifier.
func (p *parser) vni(nw *Network, n *yaml.Node, what string) {
	v := resolve(n)
	vni, err := strconv.Atoi(v.Value)
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || err != nil {
		p.errorf(n, "%s: vni must be a whole number like 4242, got %s", what, describe(v))
		return
	}
	if vni < 1 || vni > MaxVNI {
		p.errorf(n, "%s: vni %d is out of range: use 1 to %d (VXLAN's 24 bits)", what, vni, MaxVNI)
		return
	}
	nw.VNI, nw.VNIPos = vni, p.pos(n)
}

// MaxVNI is the largest VXLAN network identifier.
const MaxVNI = 1<<24 - 1

// checkHosts checks what hosts: and host: need of the whole file: the
// hosts' addresses unique and of one family (a VXLAN device sends from
// one local address to remotes of its family), every container's host
// one of them, vni: only on overlay networks and unique, and an overlay
// network only in a file with hosts.
func (p *parser) checkHosts(f *File) {
	byAddr := map[netip.Addr]*Host{}
	names := map[string]bool{}
	var ref *Host // the first host with an address, whose family the others take
	for _, h := range f.Hosts {
		names[h.Name] = true
		if !h.Address.IsValid() {
			continue
		}
		if ref == nil {
			ref = h
		} else if h.Address.Is6() != ref.Address.Is6() {
			p.add(h.AddressPos, "host %q: address %s is %s, and host %q's, %s (%s), is %s: the hosts' underlay addresses are all IPv4 or all IPv6; give host %q an address of that family",
				clip(h.Name), h.Address, family(h.Address), clip(ref.Name), ref.Address, ref.AddressPos.Ref(p.path, h.AddressPos), family(ref.Address), clip(h.Name))
			continue
		}
		if first := byAddr[h.Address]; first != nil {
			p.add(h.AddressPos, "host %q: address %s is host %q's too (%s): each host needs an address of its own", clip(h.Name), h.Address, clip(first.Name), first.Pos.Ref(p.path, h.AddressPos))
			continue
		}
		byAddr[h.Address] = h
	}
	for _, c := range f.Containers {
		switch {
		case c.Host == "":
		case len(f.Hosts) == 0:
			p.add(c.HostPos, "container %q: host %q is not defined: the file has no hosts:; add hosts: with each host's address, or remove host:", clip(c.Name), clip(c.Host))
		case !names[c.Host]:
			var known []string
			for _, h := range f.Hosts {
				known = append(known, h.Name)
			}
			p.add(c.HostPos, "container %q: host %q is not defined%s: the file's hosts are %s", clip(c.Name), clip(c.Host), didYouMean(c.Host, known), joinNames(known))
		}
	}
	for _, c := range f.Containers {
		if c.Mode != ModeContainer {
			continue // f.Container("") would read every container: N² for N containers
		}
		if t := f.Container(c.ModeTarget); t != nil && f.HostOf(t) != f.HostOf(c) {
			p.add(c.ModePos, "container %q: network_mode container:%s shares a namespace of host %q, and the container is on host %q: put both on one host", clip(c.Name), clip(t.Name), f.HostOf(t), f.HostOf(c))
		}
	}
	vnis := map[int]*Network{}
	for _, n := range f.Networks {
		if n.Driver == Overlay && len(f.Hosts) == 0 {
			p.add(n.DriverPos, "network %q: an overlay network spans hosts, and the file has no hosts:; add hosts: with each host's address, or use the bridge driver", clip(n.Name))
		}
		if n.VNI == 0 {
			continue
		}
		if n.Driver != Overlay {
			p.add(n.VNIPos, "network %q: vni is for overlay networks (driver: overlay); remove it", clip(n.Name))
			continue
		}
		if first := vnis[n.VNI]; first != nil {
			p.add(n.VNIPos, "network %q: vni %d is network %q's too (%s): each overlay network needs a vni of its own", clip(n.Name), n.VNI, clip(first.Name), first.VNIPos.Ref(p.path, n.VNIPos))
			continue
		}
		vnis[n.VNI] = n
	}
}

func family(a netip.Addr) string {
	if a.Is6() {
		return "IPv6"
	}
	return "IPv4"
}

func joinNames(names []string) string {
	out := ""
	for i, n := range names {
		if i > 0 {
			out += ", "
		}
		out += strconv.Quote(n)
	}
	return out
}
