package view

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"

	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

// A CNI attachment is no endpoint of topo's: its interface, addresses and
// MAC are its chain's result, as libcni cached it (state.CNIAttachment).

// endpointOf is mc's endpoint on network, nil for none.
func endpointOf(mc *planner.Container, network string) *planner.Endpoint {
	if mc == nil {
		return nil
	}
	return mc.Endpoint(network)
}

// aliasesOf are sc's aliases on network.
func aliasesOf(sc *spec.Container, network string) []string {
	for _, a := range sc.Networks {
		if a.Network == network {
			return nonNil(a.Aliases)
		}
	}
	return []string{}
}

// attachIndex is the place of network among sc's networks, which lists
// of a container's networks follow.
func attachIndex(sc *spec.Container, network string) int {
	return slices.IndexFunc(sc.Networks, func(a *spec.Attachment) bool { return a.Network == network })
}

// cniResult is the kernel's attachment of mc to network, nil when its
// namespace is down or it has none.
func (in *Input) cniResult(mc *planner.Container, a *planner.CNIAttachment) *state.CNIAttachment {
	if !in.nsUp(mc) {
		return nil
	}
	for i := range in.Obs.CNI {
		o := &in.Obs.CNI[i]
		if o.Network == a.Network && o.ID == mc.NS && o.IfName == a.IfName {
			return o
		}
	}
	return nil
}

// cniAddrs are an attachment's first IPv4 and IPv6 addresses and their
// gateways, "" for each it has not.
func cniAddrs(o *state.CNIAttachment) (addr, addr6, gw, gw6 string) {
	if o == nil {
		return
	}
	for i, a := range o.Addrs {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			continue
		}
		g := ""
		if i < len(o.Gateways) {
			g = o.Gateways[i]
		}
		switch {
		case p.Addr().Is4() && addr == "":
			addr, gw = a, g
		case p.Addr().Is6() && addr6 == "":
			addr6, gw6 = a, g
		}
	}
	return
}

// sortByAttach orders xs, one per network of sc, as sc lists them.
func sortByAttach[T any](sc *spec.Container, xs []T, network func(T) string) {
	slices.SortStableFunc(xs, func(a, b T) int { return attachIndex(sc, network(a)) - attachIndex(sc, network(b)) })
}

// cniChain names a chain by its plugins' types: "cni bridge, bandwidth".
func cniChain(n *planner.Network) string {
	var list struct {
		Plugins []struct {
			Type string `json:"type"`
		} `json:"plugins"`
	}
	_ = json.Unmarshal(n.CNI.Raw, &list)
	var types []string
	for _, p := range list.Plugins {
		types = append(types, p.Type)
	}
	return "cni " + strings.Join(types, ", ")
}
