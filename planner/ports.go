package planner

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
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
	pk := newPortPicker(f.Project, obs)
	pending, from := pk.expand(f, m)
	var rest []portGroup
	// Ports the kernel already gives a group are kept first, so that no
	// new pick takes them.
	for _, g := range groupPublishes(pending) {
		if !pk.keep(g) {
			rest = append(rest, g)
		}
	}
	var errs []error
	for _, g := range rest {
		if err := pk.pick(f, g, from[g[0]]); err != nil {
			errs = append(errs, err)
		}
	}
	return spec.Join(errs...)
}

// portPicker is what host ports are taken, by protocol, and where a pick
// of the ephemeral range goes on from.
type portPicker struct {
	used      map[string]map[int]bool
	next      map[string]int
	low, high int
	reserved  []state.PortRange
	// kept are the host ports the project's random publishes have in the
	// kernel, by publish key.
	kept map[string]int
}

// newPortPicker reads the host's ports: its ephemeral range, reserved
// ports and sockets, and the publishes in the kernel (this project's
// random ones are kept, every other one is taken).
func newPortPicker(project string, obs *state.Snapshot) *portPicker {
	pk := &portPicker{used: map[string]map[int]bool{}, next: map[string]int{}, low: defaultEphemeralLow, high: defaultEphemeralHigh, kept: map[string]int{}}
	if hp := obs.Ports; hp != nil {
		if hp.EphemeralLow > 0 && hp.EphemeralHigh >= hp.EphemeralLow {
			pk.low, pk.high = hp.EphemeralLow, hp.EphemeralHigh
		}
		pk.reserved = hp.Reserved
	}
	for _, pr := range spec.Protocols {
		pk.used[pr] = map[int]bool{}
		pk.next[pr] = pk.low
	}
	if hp := obs.Ports; hp != nil {
		for _, s := range hp.Sockets {
			if pk.used[s.Proto] != nil && !resolverSocket(obs.Resolver, s) {
				pk.used[s.Proto][s.Port] = true
			}
		}
	}
	for _, fw := range []*state.Firewall{obs.Firewall, obs.Firewall6} {
		pk.readPublished(project, fw.Table(firewall.TableNat))
	}
	pk.readProxies(obs.Resolver)
	return pk
}

// readPublished reads the publishes of a nat table: this project's
// random ones are kept, every other one is taken.
func (pk *portPicker) readPublished(project string, nat *state.FwTable) {
	if nat == nil {
		return
	}
	for _, c := range nat.Chains {
		if c.Builtin {
			continue
		}
		own := firewall.IsProjectChain(project, c.Name)
		for _, r := range c.Rules {
			mk, ok := names.ParseMark(firewall.Comment(r.Spec))
			hp, hok := firewall.DestPort(r.Spec)
			if !ok || mk.Kind != names.KindPort || !hok {
				continue
			}
			port := int(hp)
			if own && mk.Project == project {
				pk.kept[mk.Name] = port
				continue
			}
			if u := pk.used[mk.Name[strings.LastIndexByte(mk.Name, '/')+1:]]; u != nil {
				u[port] = true
			}
		}
	}
}

// expand gives each container of the model its publishes, one per port
// of its ports: entries, and returns those left for topo to pick a host
// port for, with the entry each comes from. Fixed host ports are taken.
func (pk *portPicker) expand(f *spec.File, m *Model) (pending []*firewall.Publish, from map[*firewall.Publish]*spec.Port) {
	byName := map[string]*Container{}
	for _, c := range m.Containers {
		byName[c.Name] = c
	}
	nets := map[string]*Network{}
	for _, n := range m.Networks {
		nets[n.Name] = n
	}
	from = map[*firewall.Publish]*spec.Port{}
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
				for _, pub := range publishesOf(sc.Name, ep, p.HostIP) {
					pub.Port, pub.Proto = p.ContainerStart+uint16(i), p.Proto
					switch {
					case p.PicksHostPort():
						pub.Random, pub.PickLow, pub.PickHigh = true, p.HostStart, p.HostEnd
					case p.HostStart != 0:
						pub.HostPort = p.HostStart + uint16(i)
						pk.used[p.Proto][int(pub.HostPort)] = true
					default:
						pub.Random = true
					}
					c.Publishes = append(c.Publishes, pub)
					srcs = append(srcs, p)
				}
			}
		}
		for i := range c.Publishes {
			if c.Publishes[i].Random {
				pending = append(pending, &c.Publishes[i])
				from[&c.Publishes[i]] = srcs[i]
			}
		}
	}
	return pending, from
}

// publishesOf are what a ports: entry on hostIP publishes of endpoint ep:
// an IPv4 address to its IPv4 address, an IPv6 one to its IPv6 address,
// [::1] to its IPv4 address when it has no IPv6 one,
// and 0.0.0.0 to both, [::] for IPv6, as Docker publishes on a dual-stack
// network (one host port for both), to the IPv6 one alone on an IPv6-only
// network.
func publishesOf(container string, ep *Endpoint, hostIP netip.Addr) []firewall.Publish {
	pub := firewall.Publish{Container: container, Network: ep.Network, Bridge: ep.Bridge, Addr: ep.Addr.Addr(), HostIP: hostIP}
	if hostIP.Is6() {
		// [::1] to an IPv4-only network's endpoint is its IPv4
		// address: the proxy forwards it (planner/proxy.go).
		if ep.Addr6.IsValid() || hostIP != netip.IPv6Loopback() {
			pub.Addr = ep.Addr6.Addr()
		}
		return []firewall.Publish{pub}
	}
	var out []firewall.Publish
	if ep.Addr.IsValid() {
		out = append(out, pub)
	}
	// On an IPv6-only network (no IPv4 address: spec refuses any
	// other IPv4 host address), [::] alone, as Docker 27 binds it.
	if hostIP.IsUnspecified() && ep.Addr6.IsValid() {
		pub.HostIP, pub.Addr = netip.IPv6Unspecified(), ep.Addr6.Addr()
		out = append(out, pub)
	}
	return out
}

// portGroup are publishes that get one host port.
type portGroup []*firewall.Publish

// groupPublishes groups, in file order, the random publishes of one
// container port and protocol on different host addresses (Docker's
// needSamePort).
func groupPublishes(pending []*firewall.Publish) []portGroup {
	var groups []portGroup
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
	return groups
}

func (pk *portPicker) give(g portGroup, port int) {
	for _, p := range g {
		p.HostPort = uint16(port)
	}
	pk.used[g[0].Proto][port] = true
}

// keep gives g the port the kernel gives one of its publishes, if that is
// free; it reports whether it did.
func (pk *portPicker) keep(g portGroup) bool {
	for _, p := range g {
		if k, ok := pk.kept[p.Key()]; ok && !pk.used[p.Proto][k] {
			pk.give(g, k)
			return true
		}
	}
	return false
}

// pick gives g the lowest free port of its range, or of the ephemeral
// range; src is the entry of its first publish.
func (pk *portPicker) pick(f *spec.File, g portGroup, src *spec.Port) error {
	pr := g[0].Proto
	if lo, hi := int(g[0].PickLow), int(g[0].PickHigh); lo != 0 {
		port := lo
		for port <= hi && pk.used[pr][port] {
			port++
		}
		if port > hi {
			return &spec.Error{Path: f.Path, Pos: src.Pos, Msg: fmt.Sprintf(
				"container %s: port %q: no free %s port left in %d-%d: each one is in use or published; widen the range, or free one of its ports",
				g[0].Container, src.Raw, pr, lo, hi)}
		}
		pk.give(g, port)
		return nil
	}
	port := pk.next[pr]
	for port <= pk.high && (pk.used[pr][port] || isReserved(port, pk.reserved)) {
		port++
	}
	if port > pk.high {
		return fmt.Errorf("container %s: no free %s port left in the ephemeral range %d-%d for port %d; publish it on a fixed host port",
			g[0].Container, pr, pk.low, pk.high, g[0].Port)
	}
	pk.give(g, port)
	pk.next[pr] = port + 1
	return nil
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
