package links

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/state"
)

// Fake is an in-memory Links: namespaces with their links and routes. It
// refuses what the kernel refuses (a veth whose master is missing, an
// address on a missing link, a route through no address), checks each
// operation whole before it changes anything, and says what goes with a
// namespace or a link (OnNetnsGone, OnLinkGone), for the fakes of the
// mechanisms that depend on them.
type Fake struct {
	mu    sync.Mutex
	ns    map[string]*fakeNS // "" is the host
	socks []state.Socket
	// OnNetnsGone and OnLinkGone, when set, hear of a namespace or a
	// link that is gone, after the change.
	OnNetnsGone func(ns string)
	OnLinkGone  func(ns, link string)
	// HasNetem says the fake kernel has the netem qdisc.
	HasNetem bool
}

var _ machine.Links = (*Fake)(nil)

type fakeNS struct {
	mark   string
	links  map[string]*fakeLink
	routes []state.Route
}

type fakeLink struct {
	state.Link
	peerNS, peer string // a veth's other end
}

// NewFake returns a fake holding initial's namespaces (which may be nil).
// Veth pairs are not recorded in a snapshot, so seeded veths have no peer.
func NewFake(initial *state.Snapshot) *Fake {
	f := &Fake{ns: map[string]*fakeNS{"": {links: map[string]*fakeLink{}}}}
	f.ns[""].links["lo"] = &fakeLink{Link: state.Link{Name: "lo", Kind: "device", Up: true, Addrs: []string{"127.0.0.1/8"}, MTU: 65536}}
	if initial == nil {
		return f
	}
	load := func(dst *fakeNS, src state.Namespace) {
		dst.mark = src.Mark
		for _, l := range src.Links {
			l.Addrs = slices.Clone(l.Addrs)
			l.VXLAN = l.VXLAN.Clone()
			if l.Qdisc != nil {
				q := *l.Qdisc
				l.Qdisc = &q
			}
			dst.links[l.Name] = &fakeLink{Link: l}
		}
		dst.routes = append(dst.routes, src.Routes...)
	}
	load(f.ns[""], initial.Host)
	for _, n := range initial.Namespaces {
		ns := &fakeNS{links: map[string]*fakeLink{}}
		f.ns[n.Name] = ns
		load(ns, n)
	}
	if initial.Ports != nil {
		f.socks = slices.Clone(initial.Ports.Sockets)
	}
	return f
}

// HasNamespace reports whether the named namespace exists.
func (f *Fake) HasNamespace(ns string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ns[ns] != nil
}

// HasLink reports whether the link exists in namespace ns.
func (f *Fake) HasLink(ns, link string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.ns[ns]
	return n != nil && n.links[link] != nil
}

// Observe fills snap as the real mechanism would: the host, every
// namespace's name, and the content of the namespaces marked for project.
func (f *Fake) Observe(_ context.Context, project string, snap *state.Snapshot, own func(ns string) error) error {
	f.mu.Lock()
	snap.Host = f.ns[""].export("")
	var mine []string
	for _, name := range slices.Sorted(maps.Keys(f.ns)) {
		if name == "" {
			continue
		}
		n := f.ns[name]
		mk, ok := names.ParseMark(n.mark)
		switch {
		case ok && mk.Project == project:
			snap.Namespaces = append(snap.Namespaces, n.export(name))
			if mk.Kind == names.KindNamespace {
				mine = append(mine, name)
			}
		case ok:
			snap.Namespaces = append(snap.Namespaces, state.Namespace{Name: name, Mark: n.mark})
		default:
			snap.Namespaces = append(snap.Namespaces, state.Namespace{Name: name})
		}
	}
	f.mu.Unlock()
	for _, ns := range mine {
		if err := own(ns); err != nil {
			return err
		}
	}
	return nil
}

// Sockets are the sockets the fake was seeded with.
func (f *Fake) Sockets() ([]state.Socket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.socks), nil
}

// SetSockets makes socks the host's sockets.
func (f *Fake) SetSockets(socks []state.Socket) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.socks = slices.Clone(socks)
}

func (n *fakeNS) export(name string) state.Namespace {
	out := state.Namespace{Name: name, Mark: n.mark}
	for _, ln := range slices.Sorted(maps.Keys(n.links)) {
		l := n.links[ln].Link
		l.Addrs = slices.Clone(l.Addrs)
		if l.Qdisc != nil {
			q := *l.Qdisc
			l.Qdisc = &q
		}
		slices.Sort(l.Addrs)
		l.VXLAN = l.VXLAN.Clone()
		out.Links = append(out.Links, l)
	}
	out.Routes = append(out.Routes, n.routes...)
	slices.SortFunc(out.Routes, func(a, b state.Route) int {
		return strings.Compare(a.Dst+a.Gateway+a.Dev, b.Dst+b.Gateway+b.Dev)
	})
	return out
}

// NetnsAdd makes a namespace with lo up and marked.
func (f *Fake) NetnsAdd(o op.NetnsAdd) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ns[o.NS] != nil {
		return fmt.Errorf("namespace %s: %w", o.NS, machine.ErrExist)
	}
	lo := &fakeLink{Link: state.Link{Name: "lo", Kind: "device", Alias: o.Mark.String(), Up: true, Addrs: []string{"127.0.0.1/8"}, MTU: 65536}}
	f.ns[o.NS] = &fakeNS{mark: o.Mark.String(), links: map[string]*fakeLink{"lo": lo}}
	return nil
}

// NetnsDel deletes namespaces, then bridges, one by one.
func (f *Fake) NetnsDel(nss []op.NetnsDel, bridges []op.LinkDel, errs []error) {
	failed := false
	for i, o := range nss {
		errs[i] = f.netnsDel(o)
		failed = failed || errs[i] != nil
	}
	for i, b := range bridges {
		if failed {
			errs[len(nss)+i] = fmt.Errorf("%w: a namespace deletion of the same batch failed", op.ErrNotRun)
			continue
		}
		errs[len(nss)+i] = f.linkDel(b)
	}
}

func (f *Fake) netnsDel(o op.NetnsDel) error {
	f.mu.Lock()
	ns := f.ns[o.NS]
	if ns == nil {
		f.mu.Unlock()
		return nil
	}
	if want := o.Mark.String(); want != "" && ns.mark != want {
		f.mu.Unlock()
		return fmt.Errorf("namespace %s is marked %q, not %q: not topo's to delete", o.NS, ns.mark, want)
	}
	// Veths die with their namespace, and so do their peers.
	var gone [][2]string
	for _, l := range ns.links {
		if p := f.dropPeer(l); p != nil {
			gone = append(gone, *p)
		}
	}
	delete(f.ns, o.NS)
	f.mu.Unlock()
	for _, g := range gone {
		f.linkGone(g[0], g[1])
	}
	if f.OnNetnsGone != nil {
		f.OnNetnsGone(o.NS)
	}
	return nil
}

// LinkDel deletes links one by one.
func (f *Fake) LinkDel(ls []op.LinkDel, errs []error) {
	for i, o := range ls {
		errs[i] = f.linkDel(o)
	}
}

func (f *Fake) linkDel(o op.LinkDel) error {
	f.mu.Lock()
	ns := f.ns[o.NS]
	if ns == nil || ns.links[o.Link] == nil {
		f.mu.Unlock()
		return nil
	}
	l := ns.links[o.Link]
	if want := o.Mark.String(); want != "" && l.Alias != want {
		f.mu.Unlock()
		return fmt.Errorf("link %s is marked %q, not %q: not topo's to delete", o.Link, l.Alias, want)
	}
	gone := [][2]string{{o.NS, o.Link}}
	if p := f.dropPeer(l); p != nil {
		gone = append(gone, *p)
	}
	ns.dropLink(o.Link)
	if o.NS == "" {
		// Macvlans go with their parent, as in the kernel.
		for name, n := range f.ns {
			for ln, ml := range n.links {
				if ml.Kind == "macvlan" && ml.Parent == o.Link {
					n.dropLink(ln)
					gone = append(gone, [2]string{name, ln})
				}
			}
		}
	}
	// Ports of a deleted bridge are released, as the kernel does.
	for _, p := range ns.links {
		if p.Master == o.Link {
			p.Master, p.Hairpin = "", false
		}
	}
	f.mu.Unlock()
	for _, g := range gone {
		f.linkGone(g[0], g[1])
	}
	return nil
}

func (f *Fake) linkGone(ns, link string) {
	if f.OnLinkGone != nil {
		f.OnLinkGone(ns, link)
	}
}

// dropPeer deletes l's peer, if any, and names it.
func (f *Fake) dropPeer(l *fakeLink) *[2]string {
	if l.peer == "" {
		return nil
	}
	if pn := f.ns[l.peerNS]; pn != nil && pn.links[l.peer] != nil {
		pn.dropLink(l.peer)
		return &[2]string{l.peerNS, l.peer}
	}
	return nil
}

// in returns the namespace o runs in, locked; unlock when done.
func (f *Fake) in(ns string) (*fakeNS, func(), error) {
	f.mu.Lock()
	n := f.ns[ns]
	if n == nil {
		f.mu.Unlock()
		return nil, nil, fmt.Errorf("namespace %q: %w", ns, machine.ErrNotExist)
	}
	return n, f.mu.Unlock, nil
}

// link returns a link of n, or ErrNotExist.
func (n *fakeNS) link(name string) (*fakeLink, error) {
	if l := n.links[name]; l != nil {
		return l, nil
	}
	return nil, fmt.Errorf("link %q: %w", name, machine.ErrNotExist)
}

// BridgeAdd makes a bridge, up.
func (f *Fake) BridgeAdd(o op.BridgeAdd) error {
	ns, unlock, err := f.in(o.NS)
	if err != nil {
		return err
	}
	defer unlock()
	if ns.links[o.Link] != nil {
		return fmt.Errorf("link %s: %w", o.Link, machine.ErrExist)
	}
	mac := ""
	if len(o.MAC) > 0 {
		mac = o.MAC.String()
	}
	ns.links[o.Link] = &fakeLink{Link: state.Link{Name: o.Link, Kind: "bridge", Alias: o.Mark.String(), Up: true, MAC: mac, MTU: mtu(o.MTU)}}
	return nil
}

func mtu(m int) int {
	if m == 0 {
		return names.DefaultMTU
	}
	return m
}

// VethAdd makes a veth pair: a port of its master, and its peer in
// PeerNS.
func (f *Fake) VethAdd(o op.VethAdd) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	ns := f.ns[o.NS]
	if ns == nil {
		return fmt.Errorf("namespace %q: %w", o.NS, machine.ErrNotExist)
	}
	if ns.links[o.Link] != nil {
		return fmt.Errorf("link %s: %w", o.Link, machine.ErrExist)
	}
	// No master is a pair on its own, as the real mechanism makes it.
	if m := ns.links[o.Master]; o.Master != "" && (m == nil || m.Kind != "bridge") {
		return fmt.Errorf("master %q: %w", o.Master, machine.ErrNotExist)
	}
	peerNS := f.ns[o.PeerNS]
	if peerNS == nil {
		return fmt.Errorf("namespace %q: %w", o.PeerNS, machine.ErrNotExist)
	}
	if peerNS.links[o.Peer] != nil {
		return fmt.Errorf("peer %q: %w", o.Peer, machine.ErrExist)
	}
	ns.links[o.Link] = &fakeLink{Link: state.Link{Name: o.Link, Kind: "veth", Alias: o.Mark.String(), Master: o.Master, Up: true, Hairpin: o.Master != "", MTU: mtu(o.MTU)},
		peerNS: o.PeerNS, peer: o.Peer}
	peerNS.links[o.Peer] = &fakeLink{Link: state.Link{Name: o.Peer, Kind: "veth", Alias: o.Mark.String(), Up: true, MTU: mtu(o.MTU)}, peerNS: o.NS, peer: o.Link}
	// The hardware address of a link's ends and of an endpoint's
	// container end is observed, as the kernel's is: the one given, else
	// one the kernel picks.
	if o.Mark.Kind == names.KindLink {
		ns.links[o.Link].MAC = fakeMAC(o.LinkMAC, o.NS, o.Link)
	}
	if o.Mark.Kind == names.KindLink || o.Mark.Kind == names.KindEndpoint && o.PeerNS != "" {
		peerNS.links[o.Peer].MAC = fakeMAC(o.MAC, o.PeerNS, o.Peer)
	}
	return nil
}

// MacvlanAdd makes a macvlan of a host link in a namespace, up. As the
// kernel, it refuses a missing parent, and a passthru macvlan beside any
// other on one parent.
func (f *Fake) MacvlanAdd(o op.MacvlanAdd) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	parent := f.ns[""].links[o.Parent]
	if parent == nil {
		return fmt.Errorf("parent %q: %w", o.Parent, machine.ErrNotExist)
	}
	if !slices.Contains(op.MacvlanModes, o.Mode) {
		return fmt.Errorf("macvlan mode %q: invalid argument", o.Mode)
	}
	ns := f.ns[o.NS]
	if ns == nil {
		return fmt.Errorf("namespace %q: %w", o.NS, machine.ErrNotExist)
	}
	if ns.links[o.Link] != nil {
		return fmt.Errorf("link %s: %w", o.Link, machine.ErrExist)
	}
	for _, n := range f.ns {
		for _, l := range n.links {
			if l.Parent == o.Parent && (l.MacvlanMode == "passthru" || o.Mode == "passthru") {
				return fmt.Errorf("parent %s has a passthru macvlan, or a macvlan already: device or resource busy", o.Parent)
			}
		}
	}
	m := o.MTU
	if m == 0 {
		m = mtu(parent.MTU)
	}
	mac := "" // the kernel's observation reads MACs in containers' namespaces only
	if o.NS != "" {
		mac = fakeMAC(o.MAC, o.NS, o.Link)
	}
	ns.links[o.Link] = &fakeLink{Link: state.Link{Name: o.Link, Kind: "macvlan", Alias: o.Mark.String(), Up: true, MTU: m, MAC: mac, Parent: o.Parent, MacvlanMode: o.Mode}}
	return nil
}

// fakeMAC is mac, or for none a locally administered address made from
// the end's name, as the kernel makes a random one.
func fakeMAC(mac net.HardwareAddr, ns, link string) string {
	if len(mac) > 0 {
		return mac.String()
	}
	h := fnv.New32a()
	h.Write([]byte(ns + "/" + link))
	s := h.Sum32()
	return net.HardwareAddr{0x0a, 0x58, byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s)}.String()
}

// change runs fn on a link of namespace ns.
func (f *Fake) change(ns, link string, fn func(l *fakeLink) error) error {
	n, unlock, err := f.in(ns)
	if err != nil {
		return err
	}
	defer unlock()
	l, err := n.link(link)
	if err != nil {
		return err
	}
	return fn(l)
}

// LinkSetMAC sets a bridge's or a link end's hardware address (other
// links' are not tracked).
func (f *Fake) LinkSetMAC(o op.LinkSetMAC) error {
	return f.change(o.NS, o.Link, func(l *fakeLink) error {
		if mk, _ := names.ParseMark(l.Alias); l.Kind == "bridge" || l.MAC != "" && (mk.Kind == names.KindLink || mk.Kind == names.KindEndpoint) {
			l.MAC = o.MAC.String()
		}
		return nil
	})
}

// LinkSetMTU sets a link's MTU.
func (f *Fake) LinkSetMTU(o op.LinkSetMTU) error {
	if o.MTU < 68 || o.MTU > 65535 {
		return fmt.Errorf("mtu %d: invalid argument", o.MTU)
	}
	return f.change(o.NS, o.Link, func(l *fakeLink) error {
		l.MTU = o.MTU
		return nil
	})
}

// Hairpin sets a bridge port's hairpin mode.
func (f *Fake) Hairpin(o op.Hairpin) error {
	return f.change(o.NS, o.Link, func(l *fakeLink) error {
		if l.Master == "" {
			return fmt.Errorf("link %s is not a bridge port", o.Link)
		}
		l.Hairpin = o.On
		return nil
	})
}

// LinkSetUp sets a link up or down.
func (f *Fake) LinkSetUp(ns, link string, up bool) error {
	return f.change(ns, link, func(l *fakeLink) error {
		l.Up = up
		return nil
	})
}

// AddrAdd adds an address.
func (f *Fake) AddrAdd(o op.AddrAdd) error {
	return f.change(o.NS, o.Link, func(l *fakeLink) error {
		a := o.Addr.String()
		if slices.Contains(l.Addrs, a) {
			return fmt.Errorf("address %s: %w", a, machine.ErrExist)
		}
		l.Addrs = append(l.Addrs, a)
		return nil
	})
}

// AddrDel removes an address; a missing one, link or namespace is
// success. As the kernel does when a link loses its last address of a
// family, every route of that family through it goes too.
func (f *Fake) AddrDel(o op.AddrDel) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	ns := f.ns[o.NS]
	if ns == nil || ns.links[o.Link] == nil {
		return nil
	}
	l := ns.links[o.Link]
	if i := slices.Index(l.Addrs, o.Addr.String()); i >= 0 {
		l.Addrs = slices.Delete(l.Addrs, i, i+1)
	}
	v4 := o.Addr.Addr().Is4()
	if !slices.ContainsFunc(l.Addrs, func(a string) bool { p, err := netip.ParsePrefix(a); return err == nil && p.Addr().Is4() == v4 }) {
		ns.routes = slices.DeleteFunc(ns.routes, func(r state.Route) bool { return r.Dev == o.Link && routeIs4(r) == v4 })
	}
	return nil
}

// routeIs4 says r is an IPv4 route.
func routeIs4(r state.Route) bool {
	dst, err := op.ParseDst(r.Dst)
	return err != nil || dst.Addr().Is4()
}

// RouteAdd adds a route through the up link whose addresses cover its
// gateway, or on-link through its up link when it has no gateway.
func (f *Fake) RouteAdd(o op.RouteAdd) error {
	ns, unlock, err := f.in(o.NS)
	if err != nil {
		return err
	}
	defer unlock()
	dst := op.DstString(o.Dst)
	for _, r := range ns.routes {
		if r.Dst == dst && r.Metric == o.Metric {
			return fmt.Errorf("route %s: %w", dst, machine.ErrExist)
		}
	}
	dev := ns.reach(o.Gateway, o.Link)
	if l := ns.links[o.Link]; !o.Gateway.IsValid() && l != nil && l.Up {
		dev = o.Link // a route out of a link, without a gateway
	}
	if dev == "" {
		return fmt.Errorf("gateway %s: network is unreachable", o.Gateway)
	}
	gw := ""
	if o.Gateway.IsValid() {
		gw = o.Gateway.String()
	}
	ns.routes = append(ns.routes, state.Route{Dst: dst, Gateway: gw, Dev: dev, Metric: o.Metric, Topo: o.Proto == names.RouteProto})
	return nil
}

// QdiscSet makes a link's root qdisc the impairment's.
func (f *Fake) QdiscSet(o op.QdiscSet) error {
	if o.Imp.Kind() == "netem" && !f.HasNetem {
		return fmt.Errorf("qdisc netem: no such file or directory (the kernel has no sch_netem)")
	}
	return f.change(o.NS, o.Link, func(l *fakeLink) error {
		i := o.Imp
		l.Qdisc = &state.Qdisc{Kind: i.Kind(), Rate: i.Rate, Delay: int64(i.Delay), Jitter: int64(i.Jitter),
			Loss: i.Loss, Duplicate: i.Duplicate, Corrupt: i.Corrupt, Reorder: i.Reorder}
		return nil
	})
}

// QdiscDel removes a link's root qdisc; a missing one, link or namespace
// is success.
func (f *Fake) QdiscDel(o op.QdiscDel) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ns := f.ns[o.NS]; ns != nil && ns.links[o.Link] != nil {
		ns.links[o.Link].Qdisc = nil
	}
	return nil
}

// Netem is HasNetem.
func (f *Fake) Netem() bool { return f.HasNetem }

// RouteDel removes a route; a missing one or namespace is success.
func (f *Fake) RouteDel(o op.RouteDel) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	ns := f.ns[o.NS]
	if ns == nil {
		return nil
	}
	dst := op.DstString(o.Dst)
	for i, r := range ns.routes {
		if r.Dst == dst && (!o.Gateway.IsValid() || r.Gateway == o.Gateway.String()) && r.Metric == o.Metric &&
			(o.Proto == 0 || r.Topo == (o.Proto == names.RouteProto)) {
			ns.routes = slices.Delete(ns.routes, i, i+1)
			break
		}
	}
	return nil
}

// Settle has nothing to wait for.
func (f *Fake) Settle(context.Context) {}

// reach returns the up link whose addresses cover gw (dev when given).
func (n *fakeNS) reach(gw netip.Addr, dev string) string {
	if !gw.IsValid() {
		return ""
	}
	for _, name := range slices.Sorted(maps.Keys(n.links)) {
		l := n.links[name]
		if (dev != "" && name != dev) || !l.Up {
			continue
		}
		for _, a := range l.Addrs {
			if p, err := netip.ParsePrefix(a); err == nil && p.Masked().Contains(gw) {
				return name
			}
		}
	}
	return ""
}

func (n *fakeNS) dropLink(name string) {
	delete(n.links, name)
	n.dropRoutesVia(name)
}

func (n *fakeNS) dropRoutesVia(link string) {
	n.routes = slices.DeleteFunc(n.routes, func(r state.Route) bool { return r.Dev == link })
}

// Dump renders the namespaces as sorted text, one object per line.
func (f *Fake) Dump(b *strings.Builder) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(f.ns)) {
		n := f.ns[name]
		label := name
		if label == "" {
			label = "(host)"
		}
		fmt.Fprintf(b, "netns %s mark=%q\n", label, n.mark)
		ex := n.export(name)
		for _, l := range ex.Links {
			fmt.Fprintf(b, "  link %s kind=%s alias=%q master=%q up=%v mtu=%d addrs=%v\n", l.Name, l.Kind, l.Alias, l.Master, l.Up, l.MTU, l.Addrs)
			if v := l.VXLAN; v != nil {
				fmt.Fprintf(b, "    vxlan id=%d local=%s port=%d fdb=%q neigh=%q\n", v.VNI, v.Local, v.Port, v.FDB, v.Neigh)
			}
			if l.MAC != "" && l.Kind != "bridge" {
				fmt.Fprintf(b, "    mac %s\n", l.MAC)
			}
			if q := l.Qdisc; q != nil {
				fmt.Fprintf(b, "    qdisc %+v\n", *q)
			}
		}
		for _, r := range ex.Routes {
			fmt.Fprintf(b, "  route %s via %s dev %s metric %d topo %v\n", r.Dst, r.Gateway, r.Dev, r.Metric, r.Topo)
		}
	}
}
