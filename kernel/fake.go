package kernel

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"

	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/rundir"
	"github.com/topolab/topo/state"
)

// Fake is an in-memory kernel. It applies each step to a copy of its state
// and keeps the copy only if the step succeeds, rejects steps that refer to
// missing objects as the kernel does, and dumps its state as deterministic
// text. Planner, applier and rollback tests run on it without root.
type Fake struct {
	mu sync.Mutex
	st fakeState
	// FailOn, when set, is asked before each step; a non-nil error fails
	// the step without changing anything.
	FailOn func(planner.Step) error
	// Applied counts the steps that succeeded.
	Applied int
	// Missing lists programs the fake treats as absent: a proc-start of one
	// fails as the real kernel's does for a command not found.
	Missing []string
	// Ports is returned as the snapshot's host ports.
	Ports *state.HostPorts
	// Nameservers are returned as the host's resolv.conf nameservers.
	Nameservers []string
}

var _ Kernel = (*Fake)(nil)

type fakeState struct {
	ns      map[string]*fakeNS // "" is the host
	sysctls map[string]string
	fakeProcs
	fw map[string]*fakeTable // iptables tables by name
	// DNS (fake_dns.go): files by path, resolvers by project.
	files       map[string]string
	resolvers   map[string]*fakeResolver
	resolverPID int
}

type fakeNS struct {
	mark   string
	links  map[string]*fakeLink
	routes []state.Route
}

type fakeLink struct {
	state.Link
	peerNS, peer string // a veth's other end
}

// NewFake returns a fake kernel holding initial (which may be nil). Veth
// pairs are not recorded in a snapshot, so seeded veths have no peer.
func NewFake(initial *state.Snapshot) *Fake {
	f := &Fake{st: fakeState{ns: map[string]*fakeNS{"": {links: map[string]*fakeLink{}}}, sysctls: map[string]string{planner.IPForward: "0"}, fw: newFakeTables(),
		files: map[string]string{}, resolvers: map[string]*fakeResolver{}}}
	f.st.ns[""].links["lo"] = &fakeLink{Link: state.Link{Name: "lo", Kind: "device", Up: true, Addrs: []string{"127.0.0.1/8"}}}
	if initial == nil {
		return f
	}
	load := func(dst *fakeNS, src state.Namespace) {
		dst.mark = src.Mark
		for _, l := range src.Links {
			l.Addrs = append([]string(nil), l.Addrs...)
			dst.links[l.Name] = &fakeLink{Link: l}
		}
		dst.routes = append(dst.routes, src.Routes...)
	}
	load(f.st.ns[""], initial.Host)
	for _, n := range initial.Namespaces {
		ns := &fakeNS{links: map[string]*fakeLink{}}
		f.st.ns[n.Name] = ns
		load(ns, n)
	}
	for k, v := range initial.Sysctls {
		f.st.sysctls[k] = v
	}
	f.st.loadProcs(initial.Processes)
	loadFirewall(f.st.fw, initial.Firewall)
	f.Ports, f.Nameservers = initial.Ports, initial.Nameservers
	return f
}

// Observe returns what the real kernel would: the host, every namespace's
// name, and the content of the namespaces marked for project.
func (f *Fake) Observe(_ context.Context, project string) (*state.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &state.Snapshot{Host: f.st.ns[""].export(""), Sysctls: map[string]string{}}
	for _, name := range sortedNames(f.st.ns) {
		if name == "" {
			continue
		}
		n := f.st.ns[name]
		mk, ok := state.ParseMark(n.mark)
		switch {
		case ok && mk.Project == project:
			s.Namespaces = append(s.Namespaces, n.export(name))
		case ok:
			s.Namespaces = append(s.Namespaces, state.Namespace{Name: name, Mark: n.mark})
		default:
			s.Namespaces = append(s.Namespaces, state.Namespace{Name: name})
		}
	}
	for k, v := range f.st.sysctls {
		s.Sysctls[k] = v
	}
	for _, k := range observedSysctls {
		if v, ok := f.st.files[rundir.SysctlRecord(k)]; ok {
			if s.SysctlsBefore == nil {
				s.SysctlsBefore = map[string]string{}
			}
			s.SysctlsBefore[k] = strings.TrimSpace(v)
		}
	}
	// As the real kernel's observe does, report route_localnet and
	// disable_ipv6 of the project's bridges, which every interface has (0
	// until set).
	for _, l := range s.Host.Links {
		if mk, ok := state.ParseMark(l.Alias); ok && mk.Project == project && mk.Kind == state.KindNetwork {
			for _, key := range []string{planner.RouteLocalnet(l.Name), planner.BridgeIPv6Off(l.Name)} {
				if s.Sysctls[key] == "" {
					s.Sysctls[key] = "0"
				}
			}
		}
	}
	s.Processes = f.st.observeProcs(project)
	fw, err := f.st.observeFirewall()
	if err != nil {
		return nil, err
	}
	s.Firewall, s.Ports, s.Nameservers = fw, f.Ports, f.Nameservers
	f.st.observeDNS(project, s)
	return s, nil
}

func (n *fakeNS) export(name string) state.Namespace {
	out := state.Namespace{Name: name, Mark: n.mark}
	for _, ln := range sortedNames(n.links) {
		l := n.links[ln].Link
		l.Addrs = append([]string(nil), l.Addrs...)
		sort.Strings(l.Addrs)
		out.Links = append(out.Links, l)
	}
	out.Routes = append(out.Routes, n.routes...)
	sort.Slice(out.Routes, func(i, j int) bool {
		a, b := out.Routes[i], out.Routes[j]
		return a.Dst+a.Gateway+a.Dev < b.Dst+b.Gateway+b.Dev
	})
	return out
}

// Apply performs one step on a copy of the state and keeps it on success.
func (f *Fake) Apply(_ context.Context, s planner.Step) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.FailOn != nil {
		if err := f.FailOn(s); err != nil {
			return err
		}
	}
	next := f.st.clone()
	if err := next.apply(s, f.Missing); err != nil {
		return fmt.Errorf("%s (%s): %w", s.Command(), s.Resource, err)
	}
	f.st = next
	f.Applied++
	return nil
}

func (st *fakeState) apply(s planner.Step, missing []string) error {
	if s.Op == planner.OpSeq {
		// All parts on the one copy: the sequence is kept whole or not at all.
		for _, part := range s.Steps {
			if err := st.apply(part, missing); err != nil {
				return fmt.Errorf("%s: %w", part.Command(), err)
			}
		}
		return nil
	}
	if ok, err := st.applyDNS(s); ok {
		return err
	}
	switch s.Op {
	case planner.OpProcStart, planner.OpProcStop:
		return st.applyProc(s, missing)
	case planner.OpSysctl:
		// Per-interface keys exist only while the interface does.
		if link, ok := sysctlLink(s.Key); ok {
			if link != "all" && link != "default" && st.ns[s.NS].links[link] == nil {
				return fmt.Errorf("sysctl %s: %w", s.Key, ErrNotExist)
			}
			if s.Value == "0" {
				// The kernel's default: kept as no entry, as for a new link.
				delete(st.sysctls, s.Key)
				return nil
			}
		}
		st.sysctls[s.Key] = s.Value
		return nil
	case planner.OpFirewall:
		return st.applyFirewall(s)
	case planner.OpNetnsAdd:
		if st.ns[s.NS] != nil {
			return ErrExist
		}
		lo := &fakeLink{Link: state.Link{Name: "lo", Kind: "device", Alias: s.Alias, Up: true, Addrs: []string{"127.0.0.1/8"}}}
		st.ns[s.NS] = &fakeNS{mark: s.Alias, links: map[string]*fakeLink{"lo": lo}}
		return nil
	case planner.OpNetnsDel:
		ns := st.ns[s.NS]
		if ns == nil {
			return nil
		}
		if s.Alias != "" && ns.mark != s.Alias {
			return fmt.Errorf("namespace %s is marked %q, not %q: not topo's to delete", s.NS, ns.mark, s.Alias)
		}
		// Veths die with their namespace, and so do their peers.
		for _, l := range ns.links {
			st.dropPeer(l)
		}
		delete(st.ns, s.NS)
		st.netnsGone(s.NS)
		return nil
	}
	ns := st.ns[s.NS]
	if ns == nil {
		return fmt.Errorf("namespace %q: %w", s.NS, ErrNotExist)
	}
	switch s.Op {
	case planner.OpBridgeAdd:
		if ns.links[s.Link] != nil {
			return ErrExist
		}
		ns.links[s.Link] = &fakeLink{Link: state.Link{Name: s.Link, Kind: "bridge", Alias: s.Alias, Up: true, MAC: s.MAC}}
	case planner.OpVethAdd:
		if ns.links[s.Link] != nil {
			return ErrExist
		}
		m := ns.links[s.Master]
		if m == nil || m.Kind != "bridge" {
			return fmt.Errorf("master %q: %w", s.Master, ErrNotExist)
		}
		peerNS := st.ns[s.PeerNS]
		if peerNS == nil {
			return fmt.Errorf("namespace %q: %w", s.PeerNS, ErrNotExist)
		}
		if peerNS.links[s.Peer] != nil {
			return fmt.Errorf("peer %q: %w", s.Peer, ErrExist)
		}
		ns.links[s.Link] = &fakeLink{Link: state.Link{Name: s.Link, Kind: "veth", Alias: s.Alias, Master: s.Master, Up: true, Hairpin: true}, peerNS: s.PeerNS, peer: s.Peer}
		peerNS.links[s.Peer] = &fakeLink{Link: state.Link{Name: s.Peer, Kind: "veth", Alias: s.Alias, Up: true}, peerNS: s.NS, peer: s.Link}
	case planner.OpLinkDel:
		l := ns.links[s.Link]
		if l == nil {
			return nil
		}
		if s.Alias != "" && l.Alias != s.Alias {
			return fmt.Errorf("link %s is marked %q, not %q: not topo's to delete", s.Link, l.Alias, s.Alias)
		}
		st.dropPeer(l)
		ns.dropLink(s.Link)
		if s.NS == "" {
			for k := range st.sysctls {
				if link, ok := sysctlLink(k); ok && link == s.Link {
					delete(st.sysctls, k)
				}
			}
		}
		// Ports of a deleted bridge are released, as the kernel does.
		for _, o := range ns.links {
			if o.Master == s.Link {
				o.Master, o.Hairpin = "", false
			}
		}
	case planner.OpLinkMAC:
		l := ns.links[s.Link]
		if l == nil {
			return fmt.Errorf("link %q: %w", s.Link, ErrNotExist)
		}
		if l.Kind == "bridge" {
			l.MAC = s.MAC
		}
	case planner.OpHairpin:
		l := ns.links[s.Link]
		if l == nil {
			return fmt.Errorf("link %q: %w", s.Link, ErrNotExist)
		}
		if l.Master == "" {
			return fmt.Errorf("link %s is not a bridge port", s.Link)
		}
		l.Hairpin = s.Value == "on"
	case planner.OpLinkUp, planner.OpLinkDown:
		l := ns.links[s.Link]
		if l == nil {
			return fmt.Errorf("link %q: %w", s.Link, ErrNotExist)
		}
		l.Up = s.Op == planner.OpLinkUp
	case planner.OpAddrAdd:
		l := ns.links[s.Link]
		if l == nil {
			return fmt.Errorf("link %q: %w", s.Link, ErrNotExist)
		}
		if _, err := netip.ParsePrefix(s.Addr); err != nil {
			return err
		}
		for _, a := range l.Addrs {
			if a == s.Addr {
				return ErrExist
			}
		}
		l.Addrs = append(l.Addrs, s.Addr)
	case planner.OpAddrDel:
		l := ns.links[s.Link]
		if l == nil {
			return nil
		}
		for i, a := range l.Addrs {
			if a == s.Addr {
				l.Addrs = append(l.Addrs[:i], l.Addrs[i+1:]...)
				break
			}
		}
		if len(l.Addrs) == 0 {
			// As the kernel does when a link loses its last IPv4
			// address: every route through it goes too.
			ns.dropRoutesVia(s.Link)
		}
	case planner.OpRouteAdd:
		for _, r := range ns.routes {
			if r.Dst == s.Dst {
				return ErrExist
			}
		}
		dev := ns.reach(s.Gateway, s.Link)
		if dev == "" {
			return fmt.Errorf("gateway %s: network is unreachable", s.Gateway)
		}
		ns.routes = append(ns.routes, state.Route{Dst: s.Dst, Gateway: s.Gateway, Dev: dev})
	case planner.OpRouteDel:
		for i, r := range ns.routes {
			if r.Dst == s.Dst && (s.Gateway == "" || r.Gateway == s.Gateway) {
				ns.routes = append(ns.routes[:i], ns.routes[i+1:]...)
				break
			}
		}
	default:
		return fmt.Errorf("unknown op %q", s.Op)
	}
	return nil
}

// reach returns the up link whose addresses cover gw (dev when given).
func (n *fakeNS) reach(gw, dev string) string {
	g, err := netip.ParseAddr(gw)
	if err != nil {
		return ""
	}
	for _, name := range sortedNames(n.links) {
		l := n.links[name]
		if (dev != "" && name != dev) || !l.Up {
			continue
		}
		for _, a := range l.Addrs {
			if p, err := netip.ParsePrefix(a); err == nil && p.Masked().Contains(g) {
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
	kept := n.routes[:0]
	for _, r := range n.routes {
		if r.Dev != link {
			kept = append(kept, r)
		}
	}
	n.routes = kept
}

func (st *fakeState) dropPeer(l *fakeLink) {
	if l.peer == "" {
		return
	}
	if pn := st.ns[l.peerNS]; pn != nil {
		pn.dropLink(l.peer)
	}
}

func (st fakeState) clone() fakeState {
	out := fakeState{ns: map[string]*fakeNS{}, sysctls: map[string]string{}, fw: map[string]*fakeTable{},
		files: map[string]string{}, resolvers: map[string]*fakeResolver{}, resolverPID: st.resolverPID}
	for k, v := range st.sysctls {
		out.sysctls[k] = v
	}
	for k, t := range st.fw {
		out.fw[k] = t.clone()
	}
	for k, v := range st.files {
		out.files[k] = v
	}
	for k, r := range st.resolvers {
		out.resolvers[k] = r.clone()
	}
	for name, n := range st.ns {
		c := &fakeNS{mark: n.mark, links: map[string]*fakeLink{}, routes: append([]state.Route(nil), n.routes...)}
		for ln, l := range n.links {
			cl := *l
			cl.Addrs = append([]string(nil), l.Addrs...)
			c.links[ln] = &cl
		}
		out.ns[name] = c
	}
	out.fakeProcs = st.fakeProcs.clone()
	return out
}

// Dump renders the whole state as sorted text, one object per line, for
// comparing kernels in tests.
func (f *Fake) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, k := range sortedNames(f.st.sysctls) {
		fmt.Fprintf(&b, "sysctl %s=%s\n", k, f.st.sysctls[k])
	}
	for _, name := range sortedNames(f.st.ns) {
		n := f.st.ns[name]
		label := name
		if label == "" {
			label = "(host)"
		}
		fmt.Fprintf(&b, "netns %s mark=%q\n", label, n.mark)
		ex := n.export(name)
		for _, l := range ex.Links {
			fmt.Fprintf(&b, "  link %s kind=%s alias=%q master=%q up=%v addrs=%v\n", l.Name, l.Kind, l.Alias, l.Master, l.Up, l.Addrs)
		}
		for _, r := range ex.Routes {
			fmt.Fprintf(&b, "  route %s via %s dev %s\n", r.Dst, r.Gateway, r.Dev)
		}
	}
	f.st.dumpProcs(&b)
	for _, line := range strings.Split(strings.TrimSuffix(f.st.save(), "\n"), "\n") {
		fmt.Fprintf(&b, "iptables %s\n", line)
	}
	f.st.dumpDNS(&b)
	return b.String()
}

func sortedNames[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sysctlLink is the interface of a per-interface key
// (net.ipv4.conf.LINK.KEY, net.ipv6.conf.LINK.KEY).
func sysctlLink(key string) (string, bool) {
	for _, pre := range []string{"net.ipv4.conf.", "net.ipv6.conf."} {
		if rest, ok := strings.CutPrefix(key, pre); ok {
			link, _, _ := strings.Cut(rest, ".")
			return link, true
		}
	}
	return "", false
}
