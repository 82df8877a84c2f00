package planner

import (
	"fmt"
	"slices"
	"strings"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

// Default ephemeral range, as Linux's net.ipv4.ip_local_port_range, for
// snapshots that carry none.
const (
	defaultEphemeralLow  = 32768
	defaultEphemeralHigh = 60999
)

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
				mk, ok := names.ParseMark(firewall.Comment(r.Spec))
				hp, hok := firewall.DestPort(r.Spec)
				if !ok || mk.Kind != names.KindPort || !hok {
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
		if n.Driver.firewalled() {
			in.Networks = append(in.Networks, firewall.Net{Name: n.Name, Bridge: n.Bridge, Subnet: n.Subnet, Internal: n.Internal})
		}
	}
	for _, c := range m.Containers {
		in.Publishes = append(in.Publishes, c.Publishes...)
	}
	return in
}

// firewall plans the rules (one step per table, applied in one batch),
// the route_localnet of bridges with publishes, and IPv6 off on internal
// networks' bridges (on others topo leaves it as it is).
func (d *differ) firewall(m *Model) {
	published := map[string]bool{}
	for _, c := range m.Containers {
		for _, p := range c.Publishes {
			published[p.Network] = true
		}
	}
	sysctl := func(n *Network, key, want string) {
		have := "0"
		if d.bridges[n.Name] != nil {
			if v := d.obs.Sysctls[key]; v != "" {
				have = v
			}
		}
		if have != want {
			d.add(change(op.Network(n.Name), op.Sysctl{Key: key, Value: want}, op.Sysctl{Key: key, Value: have}))
		}
	}
	for _, n := range m.Networks {
		localnet := "0"
		if published[n.Name] && !n.Internal {
			localnet = "1"
		}
		sysctl(n, names.RouteLocalnet(n.Bridge), localnet)
		if n.Internal {
			sysctl(n, names.IPv6Off(n.Bridge), "1")
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
		action := op.Change
		switch {
		case dels == 0:
			action = op.Create
		case adds == 0:
			action = op.Destroy
		}
		d.add(step(action, op.Firewall(tc.Table), op.FirewallBatch{Table: tc.Table, Changes: tc.Changes},
			op.FirewallBatch{Table: tc.Table, Changes: firewall.Invert(tc.Changes)}))
	}
}
