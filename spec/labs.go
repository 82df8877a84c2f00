package spec

import (
	"fmt"
	"maps"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// What network labs add to the file: point-to-point links between
// containers, static routes, namespace sysctls, interface names and MACs
// of network attachments, and the impairment of an interface (a rate
// limit, delay, loss).

// Link is one entry of links:: a veth pair between two containers'
// namespaces, no bridge.
type Link struct {
	Pos Pos
	// N is the link's number in the file's links:, from 1, for messages.
	N    int
	Ends [2]*LinkEnd
	// MTU is both ends'; 0 when the file gives none (1500).
	MTU    int
	MTUPos Pos
	// Impairment applies to both ends, so to both directions.
	Impairment *Impairment
}

// LinkEnd is one end of a link: an interface of a container.
type LinkEnd struct {
	Pos       Pos
	Container string
	Interface string
	// Addr is the zero Prefix when the end has no address.
	Addr    netip.Prefix
	AddrPos Pos
	// MAC is nil when the kernel picks one.
	MAC net.HardwareAddr
}

// Route is one entry of a container's routes:: a static route of its
// namespace's main table.
type Route struct {
	Pos Pos
	// To is the destination; 0.0.0.0/0 for default.
	To    netip.Prefix
	ToPos Pos
	Via   netip.Addr
	// ViaPos is where via: is, for messages about an address no
	// interface of the container reaches.
	ViaPos Pos
	// Dev is the interface the route leaves by, "" for the one that
	// reaches Via.
	Dev    string
	DevPos Pos
	Metric int
}

// IsDefault reports whether the route is the default route.
func (r *Route) IsDefault() bool { return r.To.Bits() == 0 }

// Sysctl is one net.* key of a container's sysctls:.
type Sysctl struct {
	Key, Value string
	Pos        Pos
}

// Impairment is what an interface does to the packets it sends: a rate
// limit (a tbf qdisc) and delay, jitter, loss, duplication, corruption
// and reordering (a netem qdisc, which then takes the rate too).
type Impairment struct {
	Pos Pos
	// Rate is in bits per second; 0 for no limit.
	Rate          uint64
	Delay, Jitter time.Duration
	// Loss, Duplicate, Corrupt and Reorder are percentages.
	Loss, Duplicate, Corrupt, Reorder float64
}

// NeedsNetem reports whether the impairment takes more than a rate: a
// netem qdisc, which not every kernel has.
func (i *Impairment) NeedsNetem() bool {
	return i.Delay != 0 || i.Jitter != 0 || i.Loss != 0 || i.Duplicate != 0 || i.Corrupt != 0 || i.Reorder != 0
}

// maxIfName is the longest interface name the kernel takes (IFNAMSIZ
// less its NUL).
const maxIfName = 15

// ifNameMsg says why s is not an interface name, or "".
func ifNameMsg(s string) string {
	switch {
	case s == "":
		return "is empty"
	case len(s) > maxIfName:
		return fmt.Sprintf("is %d bytes long: the kernel takes at most %d", len(s), maxIfName)
	case s == "." || s == ".." || s == "lo":
		return "is reserved"
	case strings.ContainsAny(s, "/: \t\n\x00"):
		return "holds '/', ':', a blank or a NUL, which an interface name cannot"
	}
	return ""
}

func (p *parser) links(f *File, n *yaml.Node) {
	v := resolve(n)
	if v.Kind != yaml.SequenceNode {
		p.errorf(n, "links must be a list of {endpoints: [...]}, got %s", describe(v))
		return
	}
	for i, item := range v.Content {
		l := &Link{Pos: p.pos(item), N: i + 1}
		what := fmt.Sprintf("link %d", i+1)
		ok := true
		for _, e := range p.mapping(item, what, "a mapping of endpoints, mtu and impairment", false) {
			switch e.key.Value {
			case "endpoints":
				ok = p.linkEnds(l, e.val, what) && ok
			case "mtu":
				if mtu, good := p.mtuValue(e.val, what); good {
					l.MTU, l.MTUPos = mtu, p.pos(e.val)
				}
			case "impairment":
				l.Impairment = p.impairment(e.val, what)
			default:
				p.unknownKey(e.key, "link", "in "+what)
			}
		}
		if l.Ends[0] == nil && ok {
			p.errorf(item, "%s: endpoints is missing: give the two ends, like [\"r1:eth1\", \"r2:eth1\"]", what)
			continue
		}
		if l.Ends[0] != nil {
			f.Links = append(f.Links, l)
		}
	}
}

func (p *parser) linkEnds(l *Link, n *yaml.Node, what string) bool {
	v := resolve(n)
	if v.Kind != yaml.SequenceNode {
		p.errorf(n, "%s: endpoints must be a list of two ends, like [\"r1:eth1\", \"r2:eth1\"], got %s", what, describe(v))
		return false
	}
	if len(v.Content) != 2 {
		p.errorf(n, "%s: endpoints has %d ends: a link has two (a veth pair), like [\"r1:eth1\", \"r2:eth1\"]", what, len(v.Content))
		return false
	}
	// Both ends or none: a link with one end is no link, and the checks
	// after parsing take both for given.
	var ends [2]*LinkEnd
	for i, item := range v.Content {
		if ends[i] = p.linkEnd(item, fmt.Sprintf("%s, end %d", what, i+1)); ends[i] == nil {
			return false
		}
	}
	l.Ends = ends
	return true
}

// linkEnd reads "CONTAINER:INTERFACE" or {container, interface, address, mac}.
func (p *parser) linkEnd(n *yaml.Node, what string) *LinkEnd {
	v := resolve(n)
	end := &LinkEnd{Pos: p.pos(n)}
	switch {
	case v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str":
		c, iface, found := strings.Cut(v.Value, ":")
		if !found {
			p.errorf(n, "%s: %q is not CONTAINER:INTERFACE, like \"r1:eth1\"", what, clip(v.Value))
			return nil
		}
		end.Container, end.Interface = c, iface
	case v.Kind == yaml.MappingNode:
		for _, e := range p.entries(v) {
			switch e.key.Value {
			case "container":
				end.Container, _ = p.str(e.val, what+": container", `"r1"`)
			case "interface":
				end.Interface, _ = p.str(e.val, what+": interface", `"eth1"`)
			case "address":
				s, ok := p.str(e.val, what+": address", `"10.0.12.0/31"`)
				if !ok {
					continue
				}
				a, err := netip.ParsePrefix(s)
				if err != nil || !a.Addr().Is4() {
					p.errorf(e.val, "%s: address %q is not an IPv4 address with its prefix length, like \"10.0.12.0/31\"", what, clip(s))
					continue
				}
				if msg := linkAddrProblem(a); msg != "" {
					p.errorf(e.val, "%s: address %s %s", what, a, msg)
					continue
				}
				end.Addr, end.AddrPos = a, p.pos(e.val)
			case "mac":
				end.MAC = p.mac(e.val, what+": mac")
			default:
				p.unknownKey(e.key, "linkEnd", "in "+what)
			}
		}
	default:
		p.errorf(n, "%s must be \"CONTAINER:INTERFACE\" or a mapping of container, interface, address and mac, got %s", what, describe(v))
		return nil
	}
	if end.Container == "" {
		p.errorf(n, "%s: container is missing", what)
		return nil
	}
	if msg := ifNameMsg(end.Interface); msg != "" {
		p.errorf(n, "%s: interface name %q %s", what, clip(end.Interface), msg)
		return nil
	}
	return end
}

// linkAddrProblem says what is wrong with the address of a link end, or
// "". A /31 has no network or broadcast address (RFC 3021): both of its
// addresses are hosts'.
func linkAddrProblem(a netip.Prefix) string {
	switch bits := a.Bits(); {
	case bits == 32:
		return "is a /32, which leaves no address for the other end: use a /31 or /30"
	case bits < 8:
		return "has a prefix shorter than /8"
	case bits == 31:
		return ""
	case a.Addr() == a.Masked().Addr():
		return "is the network address of its prefix: pick a host address (or use a /31, which has no network address)"
	case a.Addr() == lastAddr(a):
		return "is the broadcast address of its prefix: pick a host address (or use a /31, which has no broadcast address)"
	}
	return ""
}

// mac reads a unicast Ethernet address.
func (p *parser) mac(n *yaml.Node, what string) net.HardwareAddr {
	s, ok := p.str(n, what, `"02:00:00:00:01:01"`)
	if !ok {
		return nil
	}
	m, err := net.ParseMAC(s)
	switch {
	case err != nil || len(m) != 6:
		p.errorf(n, "%s: %q is not an Ethernet address like \"02:00:00:00:01:01\"", what, clip(s))
	case m[0]&1 != 0:
		p.errorf(n, "%s: %s is a multicast address, which no interface can have: clear the lowest bit of the first byte", what, m)
	case m.String() == "00:00:00:00:00:00":
		p.errorf(n, "%s: the all-zero address is not an interface's", what)
	default:
		return m
	}
	return nil
}

// mtuValue reads an MTU, as a network's mtu: takes it.
func (p *parser) mtuValue(n *yaml.Node, what string) (int, bool) {
	nw := &Network{}
	p.mtu(nw, n, what)
	return nw.MTU, nw.MTU != 0
}

// impairment reads {rate, delay, jitter, loss, duplicate, corrupt, reorder}.
func (p *parser) impairment(n *yaml.Node, what string) *Impairment {
	what += ": impairment"
	imp := &Impairment{Pos: p.pos(n)}
	for _, e := range p.mapping(n, what, "a mapping of rate, delay, jitter, loss, duplicate, corrupt and reorder", false) {
		k := e.key.Value
		switch k {
		case "rate":
			s := scalarText(e.val)
			r, err := ParseRate(s)
			if err != nil {
				p.errorf(e.val, "%s: rate %q %v", what, clip(s), err)
				continue
			}
			imp.Rate = r
		case "delay", "jitter":
			s := scalarText(e.val)
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 || d > time.Hour {
				p.errorf(e.val, "%s: %s %q is not a duration like \"20ms\" (0 to 1h)", what, k, clip(s))
				continue
			}
			if k == "delay" {
				imp.Delay = d
			} else {
				imp.Jitter = d
			}
		case "loss", "duplicate", "corrupt", "reorder":
			s := scalarText(e.val)
			pct, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
			if err != nil || pct < 0 || pct > 100 || math.IsNaN(pct) {
				p.errorf(e.val, "%s: %s %q is not a percentage like \"0.5%%\" (0 to 100)", what, k, clip(s))
				continue
			}
			switch k {
			case "loss":
				imp.Loss = pct
			case "duplicate":
				imp.Duplicate = pct
			case "corrupt":
				imp.Corrupt = pct
			default:
				imp.Reorder = pct
			}
		default:
			p.unknownKey(e.key, "impairment", "in "+what)
		}
	}
	if imp.Jitter != 0 && imp.Delay == 0 {
		p.errorf(n, "%s: jitter needs a delay to vary", what)
	}
	if imp.Reorder != 0 && imp.Delay == 0 {
		p.errorf(n, "%s: reorder needs a delay (netem sends the reordered packets at once, the rest delayed)", what)
	}
	return imp
}

func scalarText(n *yaml.Node) string {
	if v := resolve(n); v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

// ParseRate reads a rate as tc writes it: bits per second, with k, m or
// g (powers of 1000) and an optional "bit" or "bps" (bytes) suffix:
// "20mbit", "100k", "1gbit", "500kbps".
func ParseRate(s string) (uint64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := 1.0
	switch {
	case strings.HasSuffix(t, "bps"):
		t, mult = strings.TrimSuffix(t, "bps"), 8
	case strings.HasSuffix(t, "bit"):
		t = strings.TrimSuffix(t, "bit")
	}
	for _, u := range []struct {
		suffix string
		f      float64
	}{{"k", 1e3}, {"m", 1e6}, {"g", 1e9}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), mult*u.f
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("is not a rate like \"20mbit\" (bits per second, with k, m or g)")
	}
	r := v * mult
	if r < 8 || r > 1e12 {
		return 0, fmt.Errorf("is out of range: use 8bit to 1000gbit")
	}
	return uint64(r), nil
}

func (p *parser) routes(c *Container, n *yaml.Node, what string) {
	v := resolve(n)
	if v.Kind != yaml.SequenceNode {
		p.errorf(n, "%s: routes must be a list like [{to: 10.2.0.0/24, via: 10.1.0.1}], got %s", what, describe(v))
		return
	}
	for _, item := range v.Content {
		r := &Route{Pos: p.pos(item)}
		w := what + ": route"
		hasTo, hasVia, badTo := false, false, false
		for _, e := range p.mapping(item, w, "a mapping of to, via, dev and metric", false) {
			switch e.key.Value {
			case "to":
				s, ok := p.str(e.val, w+": to", `"10.2.0.0/24"`)
				if !ok {
					continue
				}
				hasTo, r.ToPos = true, p.pos(e.val)
				if s == "default" {
					r.To = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
					continue
				}
				pfx, err := netip.ParsePrefix(s)
				if err != nil {
					if a, aerr := netip.ParseAddr(s); aerr == nil && a.Is4() {
						pfx = netip.PrefixFrom(a, 32)
						err = nil
					}
				}
				switch {
				case err != nil || !pfx.Addr().Is4():
					p.errorf(e.val, "%s: to %q is not an IPv4 prefix like \"10.2.0.0/24\", nor default", w, clip(s))
					badTo = true
				case pfx.Masked() != pfx:
					p.errorf(e.val, "%s: to %q is not a network address: write %q", w, s, pfx.Masked().String())
					badTo = true
				default:
					r.To = pfx
				}
			case "via":
				s, ok := p.str(e.val, w+": via", `"10.1.0.1"`)
				if !ok {
					continue
				}
				a, err := netip.ParseAddr(s)
				if err != nil || !a.Is4() {
					p.errorf(e.val, "%s: via %q is not an IPv4 address like \"10.1.0.1\"", w, clip(s))
					continue
				}
				r.Via, r.ViaPos, hasVia = a, p.pos(e.val), true
			case "dev":
				if s, ok := p.str(e.val, w+": dev", `"eth1"`); ok {
					r.Dev, r.DevPos = s, p.pos(e.val)
				}
			case "metric":
				m, err := strconv.Atoi(scalarText(e.val))
				if resolve(e.val).ShortTag() != "!!int" || err != nil || m < 0 || m > math.MaxUint32 {
					p.errorf(e.val, "%s: metric must be a whole number from 0, got %s", w, describe(resolve(e.val)))
					continue
				}
				r.Metric = m
			default:
				p.unknownKey(e.key, "route", "in "+w)
			}
		}
		switch {
		case badTo:
		case !hasTo:
			p.errorf(item, "%s: to is missing: give a prefix like 10.2.0.0/24, or default", w)
		case !hasVia && r.Dev == "":
			p.errorf(item, "%s: via is missing: give the next hop's address (or dev for a route out of an interface)", w)
		default:
			for _, o := range c.Routes {
				if o.To == r.To && o.Metric == r.Metric {
					p.errorf(item, "%s: %s is routed twice (line %d) with metric %d: keep one, or give them different metrics", w, routeTo(r), o.Pos.Line, r.Metric)
					break
				}
			}
			c.Routes = append(c.Routes, r)
		}
	}
}

func routeTo(r *Route) string {
	if r.IsDefault() {
		return "default"
	}
	return r.To.String()
}

// sysctls reads a container's sysctls. Of a Compose service (path is
// its services.NAME), keys of other namespaces than the network's (IPC's
// kernel.*, which Docker takes) are notes: topo has no IPC namespace.
func (p *parser) sysctls(c *Container, n *yaml.Node, what, path string) {
	v := resolve(n)
	var entries [][2]*yaml.Node
	switch v.Kind {
	case yaml.MappingNode:
		for _, e := range p.entries(v) {
			entries = append(entries, [2]*yaml.Node{e.key, e.val})
		}
	case yaml.SequenceNode:
		// Compose's list form: ["net.ipv4.ip_forward=1"].
		for _, item := range v.Content {
			s, ok := p.str(item, what+": each sysctl", `"net.ipv4.ip_forward=1"`)
			if !ok {
				continue
			}
			k, val, found := strings.Cut(s, "=")
			if !found {
				p.errorf(item, "%s: sysctl %q is not KEY=VALUE", what, clip(s))
				continue
			}
			kn := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k, Line: item.Line, Column: item.Column}
			vn := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: val, Line: item.Line, Column: item.Column}
			entries = append(entries, [2]*yaml.Node{kn, vn})
		}
	default:
		p.errorf(n, "%s: sysctls must be a mapping like {net.ipv4.ip_forward: 1}, got %s", what, describe(v))
		return
	}
	seen := map[string]bool{}
	for _, e := range entries {
		k, val := e[0].Value, resolve(e[1])
		switch {
		case !strings.HasPrefix(k, "net.") && path != "":
			p.note(e[0], "%s.sysctls.%s is not a net.* key: topo makes only the network namespace: ignored", path, clip(k))
			continue
		case !strings.HasPrefix(k, "net."):
			p.errorf(e[0], "%s: sysctl %q is not a net.* key: only the network namespace's own keys can be set for a container (as with Docker's --sysctl)", what, clip(k))
			continue
		case !sysctlKeyOK(k):
			p.errorf(e[0], "%s: sysctl %q is not a key like net.ipv4.ip_forward", what, clip(k))
			continue
		case seen[k]:
			p.errorf(e[0], "%s: sysctl %q is set twice", what, clip(k))
			continue
		case val.Kind != yaml.ScalarNode || val.ShortTag() == "!!null" || val.Value == "" || strings.ContainsAny(val.Value, "\n\x00"):
			p.errorf(e[1], "%s: sysctl %q needs a value like 1, got %s", what, clip(k), describe(val))
			continue
		}
		seen[k] = true
		value := val.Value
		if val.ShortTag() == "!!bool" {
			value = map[bool]string{true: "1", false: "0"}[strings.EqualFold(value, "true")]
		}
		c.Sysctls = append(c.Sysctls, &Sysctl{Key: k, Value: value, Pos: p.pos(e[0])})
	}
}

func sysctlKeyOK(k string) bool {
	for _, part := range strings.Split(k, ".") {
		if part == "" || part == ".." || strings.ContainsAny(part, "/\x00 =") {
			return false
		}
	}
	return true
}

// checkLabs checks what links, routes and interface names need of the
// whole file: containers that exist and have a namespace of their own,
// no interface name twice in one container, link addresses that agree,
// next hops that one of the container's interfaces reaches.
func (p *parser) checkLabs(f *File, containers map[string]*Container, networks map[string]*Network) {
	type iface struct {
		pos    Pos
		prefix netip.Prefix // zero for none
		// pending: the subnet is left to IPAM, which the planner checks.
		pending bool
		what    string
	}
	ifaces := map[*Container]map[string]iface{}
	claim := func(c *Container, name string, pos Pos, prefix netip.Prefix, pending bool, what string) {
		m := ifaces[c]
		if m == nil {
			m = map[string]iface{}
			ifaces[c] = m
		}
		if first, ok := m[name]; ok {
			p.add(pos, "container %q: interface %s is already %s (%s): give this one another name", clip(c.Name), name, first.what, first.pos.Ref(p.path, pos))
			return
		}
		m[name] = iface{pos, prefix, pending, what}
	}
	for _, c := range f.Containers {
		if c.Mode != ModeBridge {
			continue
		}
		for i, a := range c.Networks {
			name := a.IfName
			if name == "" {
				name = fmt.Sprintf("eth%d", i)
			}
			var pfx netip.Prefix
			pending := true
			if nw := networks[a.Network]; nw != nil && nw.Subnet.IsValid() {
				pfx, pending = nw.Subnet, false
			}
			claim(c, name, a.Pos, pfx, pending, fmt.Sprintf("its interface on network %q", clip(a.Network)))
		}
	}
	for _, l := range f.Links {
		what := fmt.Sprintf("link %d", l.N)
		ok := true
		for _, end := range l.Ends {
			c := containers[end.Container]
			switch {
			case c == nil:
				p.add(end.Pos, "%s: container %q is not defined", what, clip(end.Container))
				ok = false
			case c.Mode == ModeHost || c.Mode == ModeContainer:
				p.add(end.Pos, "%s: container %q has network_mode %q (%s): a link needs a namespace of the container's own (bridge, the default, or none)", what, clip(c.Name), modeString(c), c.ModePos.Ref(p.path, end.Pos))
				ok = false
			default:
				claim(c, end.Interface, end.Pos, end.Addr.Masked(), false, what+"'s end")
			}
		}
		a, b := l.Ends[0], l.Ends[1]
		if ok && a.Addr.IsValid() && b.Addr.IsValid() {
			switch {
			case a.Addr.Masked() != b.Addr.Masked():
				p.add(b.AddrPos, "%s: address %s is not in the prefix of the other end's, %s (%s): both ends of a link are on one prefix", what, b.Addr, a.Addr, a.AddrPos.Ref(p.path, b.AddrPos))
			case a.Addr.Addr() == b.Addr.Addr():
				p.add(b.AddrPos, "%s: both ends have address %s", what, b.Addr.Addr())
			}
		}
		if a.MAC != nil && b.MAC != nil && a.MAC.String() == b.MAC.String() {
			p.add(b.Pos, "%s: both ends have MAC %s", what, a.MAC)
		}
	}
	for _, c := range f.Containers {
		if (c.Mode == ModeHost || c.Mode == ModeContainer) && (len(c.Routes) > 0 || len(c.Sysctls) > 0) {
			p.add(c.ModePos, "container %q: routes and sysctls need a namespace of the container's own, not network_mode %q", clip(c.Name), modeString(c))
			continue
		}
		for _, r := range c.Routes {
			if r.Dev != "" {
				if _, ok := ifaces[c][r.Dev]; !ok {
					p.add(r.DevPos, "container %q: route to %s: dev %s is not an interface of the container (its networks' and links')", clip(c.Name), routeTo(r), clip(r.Dev))
					continue
				}
			}
			if !r.Via.IsValid() {
				continue
			}
			reach, unknown := false, false
			for name, i := range ifaces[c] {
				if r.Dev != "" && name != r.Dev {
					continue
				}
				unknown = unknown || i.pending
				reach = reach || i.prefix.IsValid() && i.prefix.Contains(r.Via)
			}
			if !reach && !unknown {
				p.add(r.ViaPos, "container %q: route to %s: via %s is on none of the container's interfaces (%s): give an address of a network or link it is on", clip(c.Name), routeTo(r), r.Via, ifaceList(ifaces[c], func(i iface) netip.Prefix { return i.prefix }))
			}
		}
	}
}

// ifaceList renders a container's interfaces with their prefixes, sorted.
func ifaceList[T any](m map[string]T, prefix func(T) netip.Prefix) string {
	if len(m) == 0 {
		return "it has none"
	}
	out := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if p := prefix(m[k]); p.IsValid() {
			k += " " + p.String()
		} else {
			k += " without address"
		}
		out = append(out, k)
	}
	return strings.Join(out, ", ")
}
