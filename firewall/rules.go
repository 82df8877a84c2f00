// Package firewall generates, as plain data, the iptables rules that make
// port publishes, outbound NAT and network isolation work, diffs them
// against the rules observed in the kernel, and reads and writes the text
// formats of iptables-save and iptables-restore. It runs nothing: the
// planner calls it, and the kernel package applies its changes.
//
// The layout, modelled on Docker's bridge driver:
//
//	filter INPUT    -> TOPO-INPUT      internal networks: nothing new reaches the host
//	filter FORWARD  -> TOPO-USER       (the user's own rules; never flushed)
//	                -> TOPO-ISOLATION  internal networks: nothing leaves their bridges
//	                -> TOPO-INGRESS    -> TOPO-<h>-IN  per project: what may enter its bridges
//	                -> TOPO-EGRESS     -> TOPO-<h>-OUT per project: what may leave them
//	nat PREROUTING, OUTPUT (--dst-type LOCAL) -> TOPO-<h>-DNAT  publishes
//	nat POSTROUTING                            -> TOPO-<h>-SNAT  MASQUERADE
//
// <h> is a hash of the project name, as long as the longest of those names
// leaves room for in iptables' 28 bytes; every rule's comment names project
// and resource in full, and a chain whose rules carry another project's
// name is never taken for the project's own.
// All IN chains run before any OUT chain, so that a bridge of one project
// drops what another project's bridge would let out. The drops of
// internal networks, of every project, run before all of them, as
// Docker's DOCKER-ISOLATION-STAGE-1 runs before its accepts: an IN
// chain accepts what a publish DNATs to its bridge, wherever it comes
// from. TOPO-INPUT and TOPO-ISOLATION hold drops only, so their order
// does not matter and each project's rules sit in them directly.
package firewall

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/state"
)

// Tables topo writes, in the order they are applied.
const (
	TableFilter = "filter"
	TableNat    = "nat"
)

// Builtin lists the built-in chains of the tables topo writes.
var Builtin = map[string][]string{
	TableFilter: {"INPUT", "FORWARD", "OUTPUT"},
	TableNat:    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
}

// IsBuiltin reports whether chain is a built-in chain of table.
func IsBuiltin(table, chain string) bool {
	for _, c := range Builtin[table] {
		if c == chain {
			return true
		}
	}
	return false
}

// projectChains are the names the project's chains have, as topo names
// them now and as an earlier topo did. The name alone does not make a
// chain the project's: see othersIn.
func projectChains(project string) map[string]bool {
	out := make(map[string]bool, 8)
	for _, pre := range []string{names.ChainPrefixOf(project), names.LegacyChainPrefixOf(project)} {
		for _, suffix := range []string{names.SuffixIn, names.SuffixOut, names.SuffixDNAT, names.SuffixSNAT} {
			out[pre+suffix] = true
		}
	}
	return out
}

// IsProjectChain reports whether chain has the name of one of project's
// chains, now or as an earlier topo named them.
func IsProjectChain(project, chain string) bool { return projectChains(project)[chain] }

// Input is what the rules are generated from: the planner's model, with
// every name, address and host port resolved.
type Input struct {
	// Family is the tables' (IPv6: ip6tables'), whose addresses the
	// networks' subnets and the publishes' are.
	Family    Family
	Project   string
	Networks  []Net
	Publishes []Publish
	// Underlay is set on a host with overlay networks (vxlan.go).
	Underlay *Underlay
}

// Net is one network of the project.
type Net struct {
	Name   string
	Bridge string
	// Subnet is the network's of the family; none for the IPv4 of an
	// IPv6-only network, which gets drops alone.
	Subnet   netip.Prefix
	Internal bool
	// Shared says the bridge is not topo's (an external network's):
	// the rules then match Members, the addresses of topo's containers
	// on it, and leave the bridge's other hosts alone (shared.go).
	Shared  bool
	Members []netip.Addr
}

// Publish is one published port (a range is one Publish per port).
type Publish struct {
	Container string
	// Network and Bridge are those the traffic enters the container by.
	Network string
	Bridge  string
	// Addr is the container's address on Network.
	Addr netip.Addr
	// HostIP is 0.0.0.0 for every address of the host.
	HostIP   netip.Addr
	HostPort uint16
	// Random says topo picked HostPort: from the ephemeral range, or from
	// PickLow-PickHigh when the file gives a host range for one port
	// (8000-8010:80).
	Random            bool
	PickLow, PickHigh uint16
	Port              uint16
	Proto             string
}

// Key names the publish in rule comments: CONTAINER/HOSTIP:HOSTPORT:PORT/PROTO,
// with HOSTPORT empty when topo picked it from the ephemeral range, and
// LOW-HIGH when from a range of the file, so that the pick can be read
// back from the kernel and kept.
func (p Publish) Key() string {
	if p.Random && p.PickLow != 0 {
		return fmt.Sprintf("%s/%s:%d-%d:%d/%s", p.Container, p.HostIP, p.PickLow, p.PickHigh, p.Port, p.Proto)
	}
	return RandomKey(p.Container, p.HostIP, p.Port, p.Proto, p.Random, p.HostPort)
}

// RandomKey builds a publish key; hostPort is used only when !random.
func RandomKey(container string, hostIP netip.Addr, port uint16, proto string, random bool, hostPort uint16) string {
	hp := ""
	if !random {
		hp = fmt.Sprint(hostPort)
	}
	return fmt.Sprintf("%s/%s:%s:%d/%s", container, hostIP, hp, port, proto)
}

func comment(project string, kind names.Kind, name string) string {
	return fmt.Sprintf(`-m comment --comment "%s"`, names.NewMark(project, kind, name))
}

// Generate returns the rules the project needs, as iptables-save would
// print them, in the order they must have. The shared chains are part of
// it as soon as the project has a network of the family, or its
// overlays' underlay is of the family; a project with nothing needs
// nothing.
func Generate(in Input) *state.Firewall {
	if len(in.Networks) == 0 && in.Underlay == nil {
		return &state.Firewall{}
	}
	pre := names.ChainPrefixOf(in.Project)
	own := comment(in.Project, names.KindProject, in.Project)
	chIn, chOut, chDNAT, chSNAT := pre+names.SuffixIn, pre+names.SuffixOut, pre+names.SuffixDNAT, pre+names.SuffixSNAT

	filter := state.FwTable{Name: TableFilter}
	input, isolation := state.FwChain{Name: names.ChainInput}, state.FwChain{Name: names.ChainIsolation}
	in1, out1 := state.FwChain{Name: chIn}, state.FwChain{Name: chOut}
	nat := state.FwTable{Name: TableNat}
	dnat, snat := state.FwChain{Name: chDNAT}, state.FwChain{Name: chSNAT}

	pubsOn := map[string][]Publish{}
	for _, p := range in.Publishes {
		pubsOn[p.Network] = append(pubsOn[p.Network], p)
	}
	for _, n := range in.Networks {
		c := comment(in.Project, names.KindNetwork, n.Name)
		br := n.Bridge
		if !n.Subnet.IsValid() {
			// No address of the family (IPv4 of an IPv6-only network):
			// nothing of it is forwarded, into the bridge or out of it.
			in1.Rules = append(in1.Rules, rule("-o %s %s -j DROP", br, c))
			isolation.Rules = append(isolation.Rules, rule("-i %s %s -j DROP", br, c))
			continue
		}
		if n.Shared {
			sharedRules(n, c, pubsOn[n.Name], &chains{in: &in1, out: &out1, snat: &snat, isolation: &isolation, input: &input}, in.Project)
			continue
		}
		if !n.Internal {
			in1.Rules = append(in1.Rules, rule("-o %s -m conntrack --ctstate RELATED,ESTABLISHED %s -j ACCEPT", br, c))
		}
		for _, p := range pubsOn[n.Name] {
			in1.Rules = append(in1.Rules, rule("-d %s -o %s -p %s -m %s --dport %d -m conntrack --ctstate DNAT %s -j ACCEPT",
				host(p.Addr), br, p.Proto, p.Proto, p.Port, comment(in.Project, names.KindPort, p.Key())))
		}
		in1.Rules = append(in1.Rules,
			rule("-i %s -o %s %s -j ACCEPT", br, br, c),
			rule("-o %s %s -j DROP", br, c))
		if n.Internal {
			// Nothing routed out of the bridge, and nothing new to the
			// host (its addresses, on this bridge or any other): only
			// answers to what the host itself opened. Stricter than
			// Docker, whose internal networks reach the host's services.
			isolation.Rules = append(isolation.Rules, rule("-i %s ! -o %s %s -j DROP", br, br, c))
			if in.Family == IPv6 {
				// Neighbour discovery is ICMPv6, which conntrack does
				// not track (INVALID): the host's solicitations would
				// get no advertisement back. New connections drop, and
				// what conntrack cannot place but ICMPv6.
				input.Rules = append(input.Rules,
					rule("-i %s -m conntrack --ctstate NEW %s -j DROP", br, c),
					rule("-i %s ! -p ipv6-icmp -m conntrack --ctstate INVALID %s -j DROP", br, c))
				continue
			}
			input.Rules = append(input.Rules, rule("-i %s -m conntrack ! --ctstate RELATED,ESTABLISHED %s -j DROP", br, c))
			continue
		}
		out1.Rules = append(out1.Rules, rule("-i %s %s -j ACCEPT", br, c))
		snat.Rules = append(snat.Rules, rule("-s %s ! -o %s %s -j MASQUERADE", n.Subnet, br, c))
		if len(pubsOn[n.Name]) > 0 {
			// From the host through 127.0.0.1 (with route_localnet on the
			// bridge; IPv6 has no such way for ::1), and hairpin: a
			// container of the network reaching a publish of the network
			// through the host's address, whose answer must come back
			// through the host.
			if in.Family == IPv4 {
				snat.Rules = append(snat.Rules, rule("-s 127.0.0.0/8 -o %s %s -j MASQUERADE", br, c))
			}
			snat.Rules = append(snat.Rules, rule("-s %s -o %s -m conntrack --ctstate DNAT %s -j MASQUERADE", n.Subnet, br, c))
		}
	}
	for _, p := range in.Publishes {
		dst := ""
		if !p.HostIP.IsUnspecified() {
			dst = fmt.Sprintf("-d %s ", host(p.HostIP))
			if p.HostIP.IsLoopback() {
				// Only the host's own packets leave by lo: a packet from
				// another host sent to 127.0.0.1 never matches, unlike
				// Docker's publishes on 127.0.0.1 before v28.
				dst += "-o lo "
			}
		}
		dnat.Rules = append(dnat.Rules, rule("%s-p %s -m %s --dport %d %s -j DNAT --to-destination %s",
			dst, p.Proto, p.Proto, p.HostPort, comment(in.Project, names.KindPort, p.Key()), netip.AddrPortFrom(p.Addr, p.Port)))
	}
	input.Rules = append(input.Rules, vxlanRules(in.Project, in.Underlay)...)
	filter.Chains = append(filter.Chains, Shared()...)
	filter.Chains = append(filter.Chains, input, isolation,
		chain(names.ChainIngress, own+" -j "+chIn),
		chain(names.ChainEgress, own+" -j "+chOut),
		in1, out1)

	if len(dnat.Rules) > 0 {
		jump := "-m addrtype --dst-type LOCAL " + own + " -j " + chDNAT
		nat.Chains = append(nat.Chains, builtin("PREROUTING", jump), builtin("OUTPUT", jump))
	}
	if len(snat.Rules) > 0 {
		nat.Chains = append(nat.Chains, builtin("POSTROUTING", own+" -j "+chSNAT))
	}
	if len(dnat.Rules) > 0 {
		nat.Chains = append(nat.Chains, dnat)
	}
	if len(snat.Rules) > 0 {
		nat.Chains = append(nat.Chains, snat)
	}
	out := &state.Firewall{Tables: []state.FwTable{filter}}
	if len(nat.Chains) > 0 {
		out.Tables = append(out.Tables, nat)
	}
	return out
}

// Shared returns the jumps into the shared filter chains, first in INPUT
// and FORWARD, in order, and TOPO-USER. The other shared chains, whose
// rules are each project's, are in perProject.
func Shared() []state.FwChain {
	return []state.FwChain{
		{Name: "INPUT", Builtin: true, Rules: []state.FwRule{sharedJump(names.ChainInput)}},
		{Name: "FORWARD", Builtin: true, Rules: []state.FwRule{sharedJump(names.ChainUser), sharedJump(names.ChainIsolation), sharedJump(names.ChainIngress), sharedJump(names.ChainEgress)}},
		{Name: names.ChainUser},
	}
}

// perProject lists the shared chains that hold rules of every project,
// each marked with its project, in no order that matters.
var perProject = []string{names.ChainInput, names.ChainIsolation, names.ChainIngress, names.ChainEgress}

func isPerProject(chain string) bool { return slices.Contains(perProject, chain) }

func sharedJump(to string) state.FwRule {
	return state.FwRule{Spec: "-m comment --comment \"" + names.SharedComment + "\" -j " + to}
}

// host is a as a match of one address, as iptables-save prints it:
// 10.0.0.2/32, fd00::2/128.
func host(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

func rule(format string, args ...any) state.FwRule {
	return state.FwRule{Spec: fmt.Sprintf(format, args...)}
}

func chain(name string, specs ...string) state.FwChain {
	c := state.FwChain{Name: name}
	for _, s := range specs {
		c.Rules = append(c.Rules, state.FwRule{Spec: s})
	}
	return c
}

func builtin(name string, specs ...string) state.FwChain {
	c := chain(name, specs...)
	c.Builtin = true
	return c
}
