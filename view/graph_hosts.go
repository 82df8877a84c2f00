package view

import (
	"fmt"
	"strings"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/spec"
)

// cluster is a box of nodes: a host of a file with hosts.
type cluster struct {
	id, label string
}

// hostsGraph draws a file with hosts: each host a cluster of its
// containers, its bridge networks and its ports; the overlay networks
// outside every cluster, across them. Addresses are the model's where
// every host agrees on them (this host's containers, overlays, and
// subnets the file gives); a bridge network another host picks a subnet
// for shows none.
func (in *Input) hostsGraph() *graph {
	f := in.File
	g := &graph{title: in.Model.Project}
	for _, n := range f.Networks {
		if n.Driver != spec.Overlay {
			continue
		}
		vni := n.VNI
		if vni == 0 {
			vni = names.VNI(f.Project, n.Name)
		}
		g.nodes = append(g.nodes, node{id: nodeID("net", n.Name), kind: kindNetwork, lines: []string{n.Name, n.Subnet.String(), fmt.Sprintf("overlay vni %d", vni)}})
	}
	used := map[string]map[string]bool{} // network -> hosts with a container on it
	for _, sc := range f.Containers {
		for _, a := range sc.Networks {
			if used[a.Network] == nil {
				used[a.Network] = map[string]bool{}
			}
			used[a.Network][f.HostOf(sc)] = true
		}
	}
	netID := func(host string, n *spec.Network) string {
		if n.Driver == spec.Overlay {
			return nodeID("net", n.Name)
		}
		return nodeID("net", host+"/"+n.Name)
	}
	for i, h := range f.Hosts {
		cl := nodeID("cluster", h.Name)
		g.clusters = append(g.clusters, cluster{id: cl, label: h.Name + " " + h.Address.String()})
		for _, n := range f.Networks {
			if n.Driver == spec.Overlay || !(used[n.Name][h.Name] || (i == 0 && len(used[n.Name]) == 0)) {
				continue
			}
			lines := []string{n.Name}
			if mn := in.network(n.Name); mn != nil && h.Name == in.Model.Host {
				lines = append(lines, mn.Subnet.String())
			} else if n.Subnet.IsValid() {
				lines = append(lines, n.Subnet.String())
			}
			if n.Internal {
				lines = append(lines, "internal")
			}
			g.nodes = append(g.nodes, node{id: netID(h.Name, n), kind: kindNetwork, lines: lines, dashed: n.Internal, cluster: cl})
		}
		hostNode := nodeID("host", h.Name)
		needHost := false
		for _, sc := range f.Containers {
			if f.HostOf(sc) != h.Name {
				continue
			}
			needHost = needHost || sc.Mode == spec.ModeHost || len(sc.Ports) > 0
			lines := []string{sc.Name}
			if sc.Mode == spec.ModeNone {
				lines = append(lines, "network_mode: none")
			}
			id := nodeID("ctr", sc.Name)
			g.nodes = append(g.nodes, node{id: id, kind: kindContainer, lines: lines, dashed: sc.Mode == spec.ModeNone, cluster: cl})
			switch sc.Mode {
			case spec.ModeContainer:
				g.edges = append(g.edges, edge{from: id, to: nodeID("ctr", sc.ModeTarget), kind: edgeShares, lines: []string{"shares netns"}})
			case spec.ModeHost:
				g.edges = append(g.edges, edge{from: id, to: hostNode, kind: edgeHost, lines: []string{"network_mode: host"}})
			}
			mc := in.container(sc.Name)
			for _, a := range sc.Networks {
				n := f.Network(a.Network)
				lines := []string{}
				switch e := endpointOf(mc, a.Network); {
				case e == nil:
				case h.Name == in.Model.Host || n.Driver == spec.Overlay:
					// An overlay's addresses, both families, are the file's.
					lines = append(lines, endpointLines(e)...)
				case n.Subnet.IsValid():
					lines = append(lines, e.IfName+" "+e.Addr.String())
				}
				if len(a.Aliases) > 0 {
					lines = append(lines, strings.Join(a.Aliases, ", "))
				}
				g.edges = append(g.edges, edge{from: id, to: netID(h.Name, n), kind: edgeAttach, lines: lines})
			}
			if len(sc.Ports) > 0 {
				var lines []string
				if h.Name == in.Model.Host {
					for _, p := range in.ports(sc) {
						lines = append(lines, p.String())
					}
				} else {
					for _, p := range sc.Ports {
						lines = append(lines, p.Raw)
					}
				}
				g.edges = append(g.edges, edge{from: hostNode, to: id, kind: edgePorts, lines: lines})
			}
		}
		if needHost {
			g.nodes = append(g.nodes, node{id: hostNode, kind: kindHost, lines: []string{"host " + h.Name}, cluster: cl})
		}
	}
	return g
}
