package planner

import (
	"fmt"
	"slices"
	"strings"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

// Default ephemeral range, as Linux's net.ipv4.ip_local_port_range, for
// snapshots that carry none.
const (
	defaultEphemeralLow  = 32768
	defaultEphemeralHigh = 60999
)

// RouteLocalnet is the per-interface sysctl that lets the host reach a
// publish through 127.0.0.1: packets from 127.0.0.1 may then be routed
// out of the bridge (and are masqueraded on the way).
func RouteLocalnet(link string) string {
	return "net.ipv4.conf." + link + ".route_localnet"
}

// BridgeIPv6Off is the sysctl that turns IPv6 off on a bridge. An
// internal network's bridge has it on 1: its link-local address would be
// an address of the host that the network's containers reach, given an
// IPv6 address of their own, where no iptables rule of topo's looks.
func BridgeIPv6Off(link string) string {
	return "net.ipv6.conf." + link + ".disable_ipv6"
}

// assignPorts expands each container's ports: entries into one Publish
// per port, targeting the container's first non-internal network, and
// gives publishes without a host port one: the port they already have in
// the kernel while the container exists, else the lowest port of the
// host's ephemeral range that nothing uses (a socket, another publish of
// this file or of another project) and that the host does not reserve
// (net.ipv4.ip_local_reserved_ports); a host range onto one container
// port (8000-8010:80) gets the lowest port of the range that nothing
// uses, as Docker picks. Publishes that differ only in host address get
// one port for all, as Docker gives them.
func assignPorts(f *spec.File, m *Model, obs *state.Snapshot) error {
	type proto = string
	used := map[proto]map[int]bool{}
	next := map[proto]int{}
	low, high := defaultEphemeralLow, defaultEphemeralHigh
	var reserved []state.PortRange
	if hp := obs.Ports; hp != nil {
		if hp.EphemeralLow > 0 && hp.EphemeralHigh >= hp.EphemeralLow {
			low, high = hp.EphemeralLow, hp.EphemeralHigh
		}
		reserved = hp.Reserved
	}
	for _, pr := range spec.Protocols {
		used[pr] = map[int]bool{}
		next[pr] = low
	}
	if hp := obs.Ports; hp != nil {
		for _, s := range hp.Sockets {
			if used[s.Proto] != nil {
				used[s.Proto][s.Port] = true
			}
		}
	}
	// Publishes in the kernel: this project's random ones are kept, every
	// other one is taken.
	kept := map[string]int{}
	if nat := obs.Firewall.Table(firewall.TableNat); nat != nil {
		for _, c := range nat.Chains {
			if c.Builtin {
				continue
			}
			own := firewall.IsProjectChain(f.Project, c.Name)
			for _, r := range c.Rules {
				mk, ok := state.ParseMark(firewall.Comment(r.Spec))
				hp, hok := firewall.DestPort(r.Spec)
				if !ok || mk.Kind != state.KindPort || !hok {
					continue
				}
				port := int(hp)
				if own && mk.Project == f.Project {
					kept[mk.Name] = port
					continue
				}
				if u := used[mk.Name[strings.LastIndexByte(mk.Name, '/')+1:]]; u != nil {
					u[port] = true
				}
			}
		}
	}

	byName := map[string]*Container{}
	for _, c := range m.Containers {
		byName[c.Name] = c
	}
	nets := map[string]*Network{}
	for _, n := range m.Networks {
		nets[n.Name] = n
	}
	var pending []*firewall.Publish
	from := map[*firewall.Publish]*spec.Port{}
	var errs []error
	for _, sc := range f.Containers {
		if len(sc.Ports) == 0 || sc.Mode != spec.ModeBridge {
			continue
		}
		c := byName[sc.Name]
		var ep *Endpoint
		for _, e := range c.Endpoints {
			if !nets[e.Network].Internal {
				ep = e
				break
			}
		}
		if ep == nil {
			continue // all its networks are internal: spec noted it
		}
		var srcs []*spec.Port // the entry of each of c.Publishes
		for _, p := range sc.Ports {
			for i := 0; i <= int(p.ContainerEnd-p.ContainerStart); i++ {
				pub := firewall.Publish{Container: sc.Name, Network: ep.Network, Bridge: ep.Bridge, Addr: ep.Addr.Addr(),
					HostIP: p.HostIP, Port: p.ContainerStart + uint16(i), Proto: p.Proto}
				switch {
				case p.PicksHostPort():
					pub.Random, pub.PickLow, pub.PickHigh = true, p.HostStart, p.HostEnd
				case p.HostStart != 0:
					pub.HostPort = p.HostStart + uint16(i)
					used[p.Proto][int(pub.HostPort)] = true
				default:
					pub.Random = true
				}
				c.Publishes = append(c.Publishes, pub)
				srcs = append(srcs, p)
			}
		}
		for i := range c.Publishes {
			if c.Publishes[i].Random {
				pending = append(pending, &c.Publishes[i])
				from[&c.Publishes[i]] = srcs[i]
			}
		}
	}
	// Group, in file order, the random publishes of one container port
	// and protocol on different host addresses (Docker's needSamePort).
	type group []*firewall.Publish
	var groups []group
	filling := map[string]int{} // CONTAINER/PORT/PROTO/RANGE -> its last group
	for _, p := range pending {
		k := fmt.Sprintf("%s/%d/%s/%d-%d", p.Container, p.Port, p.Proto, p.PickLow, p.PickHigh)
		i, ok := filling[k]
		if !ok || slices.ContainsFunc(groups[i], func(q *firewall.Publish) bool { return q.HostIP == p.HostIP }) {
			i = len(groups)
			groups = append(groups, nil)
			filling[k] = i
		}
		groups[i] = append(groups[i], p)
	}
	give := func(g group, port int) {
		for _, p := range g {
			p.HostPort = uint16(port)
		}
		used[g[0].Proto][port] = true
	}
	// Ports the kernel already gives a group are kept first, so that no
	// new pick takes them.
	var rest []group
	for _, g := range groups {
		port := 0
		for _, p := range g {
			if k, ok := kept[p.Key()]; ok && !used[p.Proto][k] {
				port = k
				break
			}
		}
		if port == 0 {
			rest = append(rest, g)
			continue
		}
		give(g, port)
	}
	for _, g := range rest {
		pr := g[0].Proto
		if lo, hi := int(g[0].PickLow), int(g[0].PickHigh); lo != 0 {
			port := lo
			for port <= hi && used[pr][port] {
				port++
			}
			if port > hi {
				src := from[g[0]]
				errs = append(errs, &spec.Error{Path: f.Path, Pos: src.Pos, Msg: fmt.Sprintf(
					"container %s: port %q: no free %s port left in %d-%d: each one is in use or published; widen the range, or free one of its ports",
					g[0].Container, src.Raw, pr, lo, hi)})
				continue
			}
			give(g, port)
			continue
		}
		port := next[pr]
		for port <= high && (used[pr][port] || isReserved(port, reserved)) {
			port++
		}
		if port > high {
			errs = append(errs, fmt.Errorf("container %s: no free %s port left in the ephemeral range %d-%d for port %d; publish it on a fixed host port",
				g[0].Container, pr, low, high, g[0].Port))
			continue
		}
		give(g, port)
		next[pr] = port + 1
	}
	return spec.Join(errs...)
}

// isReserved reports whether port is in one of the ranges.
func isReserved(port int, ranges []state.PortRange) bool {
	for _, r := range ranges {
		if port >= r.Low && port <= r.High {
			return true
		}
	}
	return false
}

// FirewallInput is what package firewall generates the model's rules from.
func FirewallInput(m *Model) firewall.Input {
	in := firewall.Input{Project: m.Project}
	for _, n := range m.Networks {
		in.Networks = append(in.Networks, firewall.Net{Name: n.Name, Bridge: n.Bridge, Subnet: n.Subnet, Internal: n.Internal})
	}
	for _, c := range m.Containers {
		in.Publishes = append(in.Publishes, c.Publishes...)
	}
	return in
}

// firewall plans the rules (one step per table, applied in one batch),
// the route_localnet of bridges with publishes, and IPv6 off on internal
// networks' bridges (on others topo leaves it as it is).
func (d *differ) firewall(m *Model, bridges map[string]*state.Link) {
	published := map[string]bool{}
	for _, c := range m.Containers {
		for _, p := range c.Publishes {
			published[p.Network] = true
		}
	}
	sysctl := func(n *Network, key, want string) {
		have := "0"
		if bridges[n.Name] != nil {
			if v := d.obs.Sysctls[key]; v != "" {
				have = v
			}
		}
		if have == want {
			return
		}
		res := "network " + n.Name
		undo := Step{Action: Change, Op: OpSysctl, Resource: res, Key: key, Value: have}
		d.add(phaseFirewall, Step{Action: Change, Op: OpSysctl, Resource: res, Key: key, Value: want, Undo: &undo})
	}
	for _, n := range m.Networks {
		localnet := "0"
		if published[n.Name] && !n.Internal {
			localnet = "1"
		}
		sysctl(n, RouteLocalnet(n.Bridge), localnet)
		if n.Internal {
			sysctl(n, BridgeIPv6Off(n.Bridge), "1")
		}
	}

	want := firewall.Generate(FirewallInput(m))
	for _, tc := range firewall.Diff(m.Project, want, d.obs.Firewall) {
		adds, dels := 0, 0
		for _, c := range tc.Changes {
			if c.Adds() {
				adds++
			} else {
				dels++
			}
		}
		action := Change
		switch {
		case dels == 0:
			action = Create
		case adds == 0:
			action = Destroy
		}
		inv := firewall.Invert(tc.Changes)
		undoAction := Change
		switch action {
		case Create:
			undoAction = Destroy
		case Destroy:
			undoAction = Create
		}
		res := "firewall " + tc.Table
		undo := Step{Action: undoAction, Op: OpFirewall, Resource: res, Table: tc.Table, Rules: inv}
		phase := phaseFirewall
		if action == Destroy {
			phase = phaseFirewallGone
		}
		d.add(phase, Step{Action: action, Op: OpFirewall, Resource: res, Table: tc.Table, Rules: tc.Changes, Undo: &undo})
	}
}

// firewallLines renders a firewall step one line per change, each with its
// own glyph, so that a plan reads like the iptables commands it runs.
func firewallLines(s Step) string {
	var b strings.Builder
	for i, c := range s.Rules {
		if i > 0 {
			b.WriteString("\n  ")
		}
		glyph := '+'
		if !c.Adds() {
			glyph = '-'
		}
		fmt.Fprintf(&b, "%c %s  # %s", glyph, firewall.Command(s.Table, c), s.Resource)
	}
	return b.String()
}

// Headline is the step in one line, for messages: its command, or for a
// firewall step, which may hold thousands of rules, what it feeds to
// iptables-restore.
func (s Step) Headline() string {
	if s.Op == OpFirewall {
		return fmt.Sprintf("iptables-restore --noflush: %d changes to table %s", len(s.Rules), s.Table)
	}
	return s.Command()
}
