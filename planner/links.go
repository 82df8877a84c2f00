package planner

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

// Link is a point-to-point link as it will exist in the kernel: a veth
// pair, one end in each container's namespace, no bridge. Both ends carry
// its mark, whose name is the two ends (names.Link).
type Link struct {
	Mark names.Mark
	Ends [2]*LinkEnd
	// MTU is both ends' (0 when the file gives none: 1500).
	MTU int
	// Imp is both ends' impairment, so both directions'.
	Imp op.Impairment
}

// LinkMTU is the MTU the link's ends have.
func (l *Link) LinkMTU() int { return cmp.Or(l.MTU, names.DefaultMTU) }

// LinkEnd is one end of a link: an interface of a container.
type LinkEnd struct {
	Container string
	NS        string
	IfName    string
	// Addr is the zero Prefix for an end without an address.
	Addr netip.Prefix
	// MAC is the file's, else the one of Addr; nil for the kernel's.
	MAC net.HardwareAddr
	// Link is the link the end is of.
	Link *Link
}

// impairment is the operations' form of the file's impairment.
func impairment(i *spec.Impairment) op.Impairment {
	if i == nil {
		return op.Impairment{}
	}
	// The kernel keeps rates in bytes a second.
	return op.Impairment{Rate: i.Rate - i.Rate%8, Delay: i.Delay, Jitter: i.Jitter, Loss: i.Loss, Duplicate: i.Duplicate, Corrupt: i.Corrupt, Reorder: i.Reorder}
}

// observedImpairment is what a link's root qdisc does, as an operation
// would make it; zero for none.
func observedImpairment(q *state.Qdisc) op.Impairment {
	if q == nil {
		return op.Impairment{}
	}
	return op.Impairment{Rate: q.Rate, Delay: time.Duration(q.Delay), Jitter: time.Duration(q.Jitter),
		Loss: q.Loss, Duplicate: q.Duplicate, Corrupt: q.Corrupt, Reorder: q.Reorder}
}

// labs resolves the file's links, routes and their next hops: a route's
// via must be on a prefix of one of the container's interfaces, which
// for a subnet IPAM picked is known only now.
func (ds *desirer) labs() {
	f := ds.f
	byName := make(map[string]*Container, len(ds.m.Containers))
	for _, c := range ds.m.Containers {
		byName[c.Name] = c
	}
	for _, l := range f.Links {
		a, b := l.Ends[0], l.Ends[1]
		dl := &Link{
			Mark: names.NewMark(f.Project, names.KindLink, names.Link(a.Container, a.Interface, b.Container, b.Interface)),
			MTU:  l.MTU,
			Imp:  impairment(l.Impairment),
		}
		for i, e := range l.Ends {
			mac := e.MAC
			if mac == nil && e.Addr.IsValid() {
				mac = names.MAC(e.Addr.Addr())
			}
			c := byName[e.Container]
			end := &LinkEnd{Container: e.Container, NS: c.NS, IfName: e.Interface, Addr: e.Addr, MAC: mac, Link: dl}
			dl.Ends[i] = end
			c.Links = append(c.Links, end)
		}
		ds.m.Links = append(ds.m.Links, dl)
	}
	for _, c := range f.Containers {
		dc := byName[c.Name]
		for _, r := range c.Routes {
			ds.route(dc, r)
		}
	}
}

// prefixes lists the container's interfaces with the prefix of their
// address, in order: its endpoints, then its ends of links.
func (c *Container) prefixes() []ifacePrefix {
	var out []ifacePrefix
	for _, e := range c.Endpoints {
		out = append(out, ifacePrefix{e.IfName, e.Addr})
	}
	for _, l := range c.Links {
		out = append(out, ifacePrefix{l.IfName, l.Addr})
	}
	return out
}

type ifacePrefix struct {
	name   string
	prefix netip.Prefix // zero for none
}

// LinkEnd returns the container's end of a link called ifname, or nil.
func (c *Container) LinkEnd(ifname string) *LinkEnd {
	for _, l := range c.Links {
		if l.IfName == ifname {
			return l
		}
	}
	return nil
}

// Peer is the other end of the end's link.
func (e *LinkEnd) Peer() *LinkEnd {
	if e.Link.Ends[0] == e {
		return e.Link.Ends[1]
	}
	return e.Link.Ends[0]
}

// linkEnds indexes the ends of the project's links in its namespaces, by
// the name of their mark: the links the kernel holds.
func (d *differ) linkEnds() map[string][]observedEnd {
	out := map[string][]observedEnd{}
	for _, ns := range sortedKeys(d.ownNS) {
		n := d.ownNS[ns]
		for i := range n.Links {
			l := &n.Links[i]
			if mk, ok := names.ParseMark(l.Alias); ok && mk.Project == d.project && mk.Kind == names.KindLink {
				out[mk.Name] = append(out[mk.Name], observedEnd{ns: ns, link: l, routes: topoRoutesVia(n, l.Name)})
			}
		}
	}
	return out
}

// observedEnd is an end of a link in the kernel.
type observedEnd struct {
	ns     string
	link   *state.Link
	routes []state.Route
}

// topoRoutesVia are the routes of the file's (topo's protocol) out of
// link in n.
func topoRoutesVia(n *state.Namespace, link string) []state.Route {
	var out []state.Route
	for _, r := range n.Routes {
		if r.Topo && r.Dev == link {
			out = append(out, r)
		}
	}
	return out
}

// links plans the project's links: those the file no longer has, or has
// otherwise, go (with the routes through them, each with its undo, and
// before their namespaces); new ones are made; intact ones are repaired
// in place: up, MTU, MAC, addresses and impairment.
func (d *differ) links(m *Model) {
	have := d.linkEnds()
	want := map[string]*Link{}
	for _, l := range m.Links {
		want[l.Mark.Name] = l
	}
	for _, name := range sortedKeys(have) {
		if l := want[name]; d.linksGone[name] || l != nil && d.linkIntact(l, have[name]) {
			continue
		}
		d.destroyLink(name, have[name])
	}
	for _, l := range m.Links {
		ends := have[l.Mark.Name]
		if !d.linkIntact(l, ends) {
			d.createLink(l)
			continue
		}
		for _, e := range l.Ends {
			for _, o := range ends {
				if o.ns == e.NS && o.link.Name == e.IfName {
					d.repairLinkEnd(l, e, o)
				}
			}
		}
	}
}

// linkIntact reports whether the kernel's ends of a link are the link l
// wants: two veth ends, named and in the namespaces the file says, each
// in a namespace that stays.
func (d *differ) linkIntact(l *Link, ends []observedEnd) bool {
	if len(ends) != 2 {
		return false
	}
	for _, e := range l.Ends {
		if !slices.ContainsFunc(ends, func(o observedEnd) bool {
			return o.ns == e.NS && o.link.Name == e.IfName && o.link.Kind == "veth" && d.wantNS[o.ns] != nil
		}) {
			return false
		}
	}
	return true
}

// createLink makes the veth pair of l between its ends' namespaces, then
// each end's address and impairment.
func (d *differ) createLink(l *Link) {
	a, b := l.Ends[0], l.Ends[1]
	ref := linkRef(l.Mark.Name)
	d.add(create(ref, op.VethAdd{NS: a.NS, Link: a.IfName, LinkMAC: a.MAC, Peer: b.IfName, PeerNS: b.NS, MAC: b.MAC, MTU: l.MTU, Mark: l.Mark},
		op.LinkDel{NS: a.NS, Link: a.IfName, Mark: l.Mark}))
	for _, e := range l.Ends {
		if e.Addr.IsValid() {
			d.addrAdd(ref, e.NS, e.IfName, e.Addr)
		}
		if !l.Imp.IsZero() {
			d.add(create(ref, op.QdiscSet{NS: e.NS, Link: e.IfName, Imp: l.Imp}, op.QdiscDel{NS: e.NS, Link: e.IfName}))
		}
	}
}

// repairLinkEnd puts an intact end back as the file wants it.
func (d *differ) repairLinkEnd(l *Link, e *LinkEnd, o observedEnd) {
	ref := linkRef(l.Mark.Name)
	if !o.link.Up {
		d.linkUp(ref, e.NS, e.IfName)
	}
	d.mtu(ref, e.NS, o.link, l.LinkMTU())
	if e.MAC != nil && o.link.MAC != "" && o.link.MAC != e.MAC.String() {
		d.add(change(ref, op.LinkSetMAC{NS: e.NS, Link: e.IfName, MAC: e.MAC}, op.LinkSetMAC{NS: e.NS, Link: e.IfName, MAC: parseMAC(o.link.MAC)}))
	}
	addrs := prefixes(o.link.Addrs)
	if slices.ContainsFunc(addrs, func(a netip.Prefix) bool { return a != e.Addr }) {
		// Every address goes before the new one comes, and the kernel
		// takes the routes through the end with the last: they go
		// first, each with its undo, and the routes plan adds them again.
		for _, r := range o.routes {
			d.routeDel(ref, e.NS, r)
		}
	}
	for _, a := range addrs {
		if a != e.Addr {
			d.add(destroy(ref, op.AddrDel{NS: e.NS, Link: e.IfName, Addr: a}, op.AddrAdd{NS: e.NS, Link: e.IfName, Addr: a}))
		}
	}
	if e.Addr.IsValid() && !slices.Contains(addrs, e.Addr) {
		d.addrAdd(ref, e.NS, e.IfName, e.Addr)
	}
	d.impair(ref, e.NS, e.IfName, o.link.Qdisc, l.Imp)
}

// linksGoneWithNamespaces leaves to the deletion of their namespaces the
// links whose two ends' namespaces both go (a down): deleting a link is a
// wait of the kernel's each, deleting namespaces one wait for them all.
// The rebuild of such a link, with the routes through it, is part of the
// undo of the first of its namespaces by name, which then needs the
// other: so that one goes first, and comes back last.
func (d *differ) linksGoneWithNamespaces(rebuild map[string][]op.Step) {
	have := d.linkEnds()
	for _, name := range sortedKeys(have) {
		ends := have[name]
		if len(ends) != 2 || d.wantNS[ends[0].ns] != nil || d.wantNS[ends[1].ns] != nil {
			continue
		}
		if d.linksGone == nil {
			d.linksGone = map[string]bool{}
		}
		d.linksGone[name] = true
		parts := linkRebuild(name, ends)
		for _, o := range ends {
			for _, r := range o.routes {
				dst, gw := route(r)
				parts = append(parts, op.Step{Action: op.Create, Ref: linkRef(name), Op: op.RouteAdd{NS: o.ns, Link: r.Dev, Dst: dst, Gateway: gw, Metric: r.Metric, Proto: routeProto(r)}})
			}
		}
		rebuild[ends[0].ns] = append(rebuild[ends[0].ns], parts...)
	}
}

// linkRebuild makes an observed link again as it was: both ends' names,
// MACs, MTU, addresses and impairment.
func linkRebuild(name string, ends []observedEnd) []op.Step {
	ref := linkRef(name)
	first, peer := ends[0], ends[1]
	mk, _ := names.ParseMark(first.link.Alias)
	parts := []op.Step{{Action: op.Create, Ref: ref, Op: op.VethAdd{
		NS: first.ns, Link: first.link.Name, LinkMAC: parseMAC(first.link.MAC),
		Peer: peer.link.Name, PeerNS: peer.ns, MAC: parseMAC(peer.link.MAC), MTU: keptMTU(first.link), Mark: mk}}}
	for _, o := range ends {
		for _, a := range prefixes(o.link.Addrs) {
			parts = append(parts, op.Step{Action: op.Create, Ref: ref, Op: op.AddrAdd{NS: o.ns, Link: o.link.Name, Addr: a}})
		}
		if q := observedImpairment(o.link.Qdisc); !q.IsZero() {
			parts = append(parts, op.Step{Action: op.Create, Ref: ref, Op: op.QdiscSet{NS: o.ns, Link: o.link.Name, Imp: q}})
		}
	}
	return parts
}

// destroyLink removes a link the kernel holds: the routes through its
// ends, each with its undo, then the pair, whose undo makes it again as
// it was.
func (d *differ) destroyLink(name string, ends []observedEnd) {
	ref := linkRef(name)
	for _, o := range ends {
		for _, r := range o.routes {
			d.routeDel(ref, o.ns, r)
		}
	}
	first := ends[0]
	mk, _ := names.ParseMark(first.link.Alias)
	del := op.LinkDel{NS: first.ns, Link: first.link.Name, Mark: mk}
	if len(ends) != 2 {
		// A lone end cannot be made again as it was: no undo.
		for _, o := range ends {
			d.add(op.Step{Action: op.Destroy, Ref: ref, Op: op.LinkDel{NS: o.ns, Link: o.link.Name, Mark: mk}})
		}
		return
	}
	parts := linkRebuild(name, ends)
	undo := &op.Step{Action: op.Create, Ref: ref, Op: op.Seq{Steps: parts}}
	if len(parts) == 1 {
		undo = &parts[0]
	}
	d.add(op.Step{Action: op.Destroy, Ref: ref, Op: del, Undo: undo})
}

// impair makes a link's root qdisc the impairment want (none when zero)
// from have.
func (d *differ) impair(ref op.Ref, ns, link string, have *state.Qdisc, want op.Impairment) {
	got := observedImpairment(have)
	switch {
	case got == want:
	case want.IsZero():
		d.add(destroy(ref, op.QdiscDel{NS: ns, Link: link}, op.QdiscSet{NS: ns, Link: link, Imp: got}))
	case got.IsZero():
		d.add(create(ref, op.QdiscSet{NS: ns, Link: link, Imp: want}, op.QdiscDel{NS: ns, Link: link}))
	default:
		d.add(change(ref, op.QdiscSet{NS: ns, Link: link, Imp: want}, op.QdiscSet{NS: ns, Link: link, Imp: got}))
	}
}

// linkRef is the Ref of a link's steps.
func linkRef(name string) op.Ref { return op.Link(name) }

// checkNetem refuses, before any step, impairment the kernel's qdiscs
// cannot make: delay, jitter, loss, duplication, corruption and
// reordering need netem.
func checkNetem(f *spec.File, obs *state.Snapshot) error {
	if obs.Netem == nil || *obs.Netem {
		return nil
	}
	var errs []error
	refuse := func(i *spec.Impairment, what string) {
		if i != nil && i.NeedsNetem() {
			errs = append(errs, &spec.Error{Path: f.Path, Pos: i.Pos, Msg: fmt.Sprintf(
				"%s: impairment: delay, jitter, loss, duplicate, corrupt and reorder need the netem qdisc, which this kernel lacks (kernel module sch_netem: modprobe sch_netem, or a kernel built with CONFIG_NET_SCH_NETEM); rate alone works without it (a tbf qdisc)", what)})
		}
	}
	// In file order: containers come before links in most files.
	for _, c := range f.Containers {
		for _, a := range c.Networks {
			refuse(a.Impairment, fmt.Sprintf("container %s: network %s", c.Name, a.Network))
		}
	}
	for _, l := range f.Links {
		refuse(l.Impairment, fmt.Sprintf("link %d", l.N))
	}
	return spec.Join(errs...)
}

// endpointMAC puts an endpoint's container end's hardware address back
// to the file's mac_address, or to topo's when the file has none and the
// kernel's is not one topo derives from an address. One it derived from
// another address is left: an address change keeps the MAC, as it did
// before MACs were observed.
func (d *differ) endpointMAC(ref op.Ref, ns string, e *Endpoint, have *state.Link) {
	if have.MAC == "" {
		return // not observed: a snapshot from before topo read them
	}
	want := e.MACOf()
	if have.MAC == want.String() {
		return
	}
	if e.MAC == nil && names.IsAddrMAC(parseMAC(have.MAC)) {
		return
	}
	d.add(change(ref, op.LinkSetMAC{NS: ns, Link: have.Name, MAC: want}, op.LinkSetMAC{NS: ns, Link: have.Name, MAC: parseMAC(have.MAC)}))
}
