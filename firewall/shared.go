package firewall

import (
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/state"
)

// chains are the project's chains that a network's rules go in.
type chains struct {
	in, out, snat, isolation, input *state.FwChain
}

// sharedRules are the rules of a network on a bridge topo does not own
// (external: true): those of a network of topo's bridge, each matching
// one of topo's containers by its address instead of the whole bridge,
// so that the bridge's other hosts and their traffic are as they were.
// The bridge's own traffic (port to port) does not go through iptables
// unless br_netfilter is loaded; then -i BR -o BR accepts it for topo's
// containers as for a bridge of topo's. No rule for publishes reached
// through 127.0.0.1: that needs route_localnet on the bridge, which is
// not topo's to set.
func sharedRules(n Net, c string, pubs []Publish, ch *chains, project string) {
	br := n.Bridge
	for _, a := range n.Members {
		if !n.Internal {
			ch.in.Rules = append(ch.in.Rules, rule("-d %s/32 -o %s -m conntrack --ctstate RELATED,ESTABLISHED %s -j ACCEPT", a, br, c))
		}
		for _, p := range pubs {
			if p.Addr == a {
				ch.in.Rules = append(ch.in.Rules, rule("-d %s/32 -o %s -p %s -m %s --dport %d -m conntrack --ctstate DNAT %s -j ACCEPT",
					p.Addr, br, p.Proto, p.Proto, p.Port, comment(project, names.KindPort, p.Key())))
			}
		}
		ch.in.Rules = append(ch.in.Rules,
			rule("-d %s/32 -i %s -o %s %s -j ACCEPT", a, br, br, c),
			rule("-d %s/32 -o %s %s -j DROP", a, br, c))
		if n.Internal {
			ch.isolation.Rules = append(ch.isolation.Rules, rule("-s %s/32 -i %s ! -o %s %s -j DROP", a, br, br, c))
			ch.input.Rules = append(ch.input.Rules, rule("-s %s/32 -i %s -m conntrack ! --ctstate RELATED,ESTABLISHED %s -j DROP", a, br, c))
			continue
		}
		ch.out.Rules = append(ch.out.Rules, rule("-s %s/32 -i %s %s -j ACCEPT", a, br, c))
		ch.snat.Rules = append(ch.snat.Rules, rule("-s %s/32 ! -o %s %s -j MASQUERADE", a, br, c))
		if len(pubs) > 0 {
			// Hairpin: a container reaching a publish of its network
			// through the host's address.
			ch.snat.Rules = append(ch.snat.Rules, rule("-s %s/32 -o %s -m conntrack --ctstate DNAT %s -j MASQUERADE", a, br, c))
		}
	}
}
