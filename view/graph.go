package view

import (
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
)

// Graph formats.
const (
	FormatDot     = "dot"
	FormatMermaid = "mermaid"
)

// graph is the drawing, independent of its notation.
type graph struct {
	title    string
	nodes    []node
	edges    []edge
	clusters []cluster // hosts, in a file with hosts (graph_hosts.go)
}

type nodeKind int

const (
	kindNetwork nodeKind = iota
	kindContainer
	kindHost
)

type node struct {
	id     string
	kind   nodeKind
	lines  []string
	dashed bool // internal networks; containers with no network
	// cluster is the id of the cluster the node is in; "" for none.
	cluster string
}

type edgeKind int

const (
	edgeAttach edgeKind = iota // container to network
	edgeShares                 // container:NAME
	edgeHost                   // network_mode: host
	edgePorts                  // host ports to a container
	edgeLink                   // a point-to-point link between containers
)

type edge struct {
	from, to string
	kind     edgeKind
	lines    []string
	// network is an attachment's, which orders a container's edges.
	network string
}

// buildGraph draws networks, containers with their addresses and aliases,
// shared namespaces, host mode and published ports, in file order. It uses
// the model's addresses: those containers hold, or will be given by up.
func (in *Input) buildGraph() *graph {
	if len(in.File.Hosts) > 0 {
		return in.hostsGraph()
	}
	g := &graph{title: in.Model.Project}
	for _, n := range in.Model.Networks {
		lines := []string{n.Name}
		for _, p := range []netip.Prefix{n.Subnet, n.Subnet6} {
			if p.IsValid() {
				lines = append(lines, p.String())
			}
		}
		if n.CNI != nil {
			lines = append(lines, cniChain(n))
		}
		switch {
		case n.External:
			lines = append(lines, "external "+n.Bridge)
		case n.Parent != "":
			lines = append(lines, "macvlan on "+n.Parent)
		}
		if n.Internal {
			lines = append(lines, "internal")
		}
		g.nodes = append(g.nodes, node{id: nodeID("net", n.Name), kind: kindNetwork, lines: lines, dashed: n.Internal})
	}
	needHost := false
	for _, sc := range in.File.Containers {
		if sc.Mode == spec.ModeHost || len(sc.Ports) > 0 {
			needHost = true
		}
	}
	if needHost {
		g.nodes = append(g.nodes, node{id: "host", kind: kindHost, lines: []string{"host"}})
	}
	for _, sc := range in.File.Containers {
		mc := in.container(sc.Name)
		lines := []string{sc.Name}
		if sc.Mode == spec.ModeNone {
			lines = append(lines, "network_mode: none")
		}
		g.nodes = append(g.nodes, node{id: nodeID("ctr", sc.Name), kind: kindContainer, lines: lines, dashed: sc.Mode == spec.ModeNone})
		switch sc.Mode {
		case spec.ModeContainer:
			g.edges = append(g.edges, edge{from: nodeID("ctr", sc.Name), to: nodeID("ctr", sc.ModeTarget), kind: edgeShares, lines: []string{"shares netns"}})
		case spec.ModeHost:
			g.edges = append(g.edges, edge{from: nodeID("ctr", sc.Name), to: "host", kind: edgeHost, lines: []string{"network_mode: host"}})
		}
		var attach []edge
		for _, e := range mc.Endpoints {
			lines := endpointLines(e)
			if al := aliasesOf(sc, e.Network); len(al) > 0 {
				lines = append(lines, strings.Join(al, ", "))
			}
			attach = append(attach, edge{from: nodeID("ctr", sc.Name), to: nodeID("net", e.Network), kind: edgeAttach, lines: lines, network: e.Network})
		}
		for _, a := range mc.CNI {
			// The chain's result, once it ran: the model has none.
			addr, addr6, _, _ := cniAddrs(in.cniResult(mc, a))
			lines := []string{strings.TrimSpace(a.IfName + " " + addr)}
			if addr6 != "" {
				lines = append(lines, addr6)
			}
			if al := aliasesOf(sc, a.Network); len(al) > 0 {
				lines = append(lines, strings.Join(al, ", "))
			}
			attach = append(attach, edge{from: nodeID("ctr", sc.Name), to: nodeID("net", a.Network), kind: edgeAttach, lines: lines, network: a.Network})
		}
		sortByAttach(sc, attach, func(e edge) string { return e.network })
		g.edges = append(g.edges, attach...)
		if ports := in.ports(sc); len(ports) > 0 {
			var lines []string
			for _, p := range ports {
				lines = append(lines, p.String())
			}
			g.edges = append(g.edges, edge{from: "host", to: nodeID("ctr", sc.Name), kind: edgePorts, lines: lines})
		}
	}
	for _, l := range in.Model.Links {
		g.edges = append(g.edges, edge{from: nodeID("ctr", l.Ends[0].Container), to: nodeID("ctr", l.Ends[1].Container), kind: edgeLink, lines: linkLabel(l)})
	}
	return g
}

// nodeID makes an identifier both notations accept: letters, digits and
// '_', with any other byte of name escaped, so that distinct names never
// meet.
func nodeID(prefix, name string) string {
	var b strings.Builder
	b.WriteString(prefix + "_")
	for _, c := range []byte(name) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "_%02x", c)
		}
	}
	return b.String()
}

// RenderGraph writes the project's graph in format (dot or mermaid).
func RenderGraph(w io.Writer, in *Input, format string) error {
	g := in.buildGraph()
	var s string
	switch format {
	case FormatDot:
		s = g.dot()
	case FormatMermaid:
		s = g.mermaid()
	default:
		return fmt.Errorf("unknown graph format %q: use dot or mermaid", format)
	}
	_, err := io.WriteString(w, s)
	return err
}

func dotQuote(lines []string) string {
	q := make([]string, len(lines))
	for i, l := range lines {
		q[i] = strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(l)
	}
	return `"` + strings.Join(q, `\n`) + `"`
}

func (g *graph) dot() string {
	var b strings.Builder
	fmt.Fprintf(&b, "graph %s {\n", dotQuote([]string{g.title}))
	fmt.Fprintf(&b, "  label=%s;\n  labelloc=t;\n  fontname=\"Helvetica\";\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n", dotQuote([]string{"topo project " + g.title}))
	for _, c := range append([]cluster{{}}, g.clusters...) {
		indent := "  "
		if c.id != "" {
			fmt.Fprintf(&b, "  subgraph %s {\n    label=%s;\n    style=rounded;\n", c.id, dotQuote([]string{c.label}))
			indent = "    "
		}
		for _, n := range g.nodes {
			if n.cluster == c.id {
				fmt.Fprintf(&b, "%s%s [label=%s, %s];\n", indent, n.id, dotQuote(n.lines), dotAttrs(n))
			}
		}
		if c.id != "" {
			b.WriteString("  }\n")
		}
	}
	for _, e := range g.edges {
		attrs := ""
		switch e.kind {
		case edgeShares, edgeHost:
			attrs = ", style=dashed"
		case edgePorts:
			attrs = ", color=\"#1a73e8\", fontcolor=\"#1a73e8\", dir=forward"
		case edgeLink:
			attrs = ", penwidth=2, color=\"#188038\", fontcolor=\"#188038\""
		}
		fmt.Fprintf(&b, "  %s -- %s [label=%s%s];\n", e.from, e.to, dotQuote(e.lines), attrs)
	}
	b.WriteString("}\n")
	return b.String()
}

// dotAttrs are a node's shape and style in dot.
func dotAttrs(n node) string {
	switch n.kind {
	case kindNetwork:
		if n.dashed {
			return "shape=box, style=\"rounded,filled,dashed\", fillcolor=\"#f4f4f4\""
		}
		return "shape=box, style=\"rounded,filled\", fillcolor=\"#e8f0fe\""
	case kindContainer:
		if n.dashed {
			return "shape=ellipse, style=dashed"
		}
		return "shape=ellipse"
	}
	return "shape=house, style=filled, fillcolor=\"#fff4d6\""
}

func mermaidQuote(lines []string) string {
	q := make([]string, len(lines))
	for i, l := range lines {
		q[i] = strings.NewReplacer(`"`, "#quot;", "<", "#lt;", ">", "#gt;").Replace(l)
	}
	return `"` + strings.Join(q, "<br/>") + `"`
}

func (g *graph) mermaid() string {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	for _, c := range append([]cluster{{}}, g.clusters...) {
		indent := "  "
		if c.id != "" {
			fmt.Fprintf(&b, "  subgraph %s [%s]\n", c.id, mermaidQuote([]string{c.label}))
			indent = "    "
		}
		for _, n := range g.nodes {
			if n.cluster != c.id {
				continue
			}
			l := mermaidQuote(n.lines)
			switch n.kind {
			case kindNetwork:
				fmt.Fprintf(&b, "%s%s[[%s]]\n", indent, n.id, l)
			case kindContainer:
				fmt.Fprintf(&b, "%s%s([%s])\n", indent, n.id, l)
			case kindHost:
				fmt.Fprintf(&b, "%s%s{{%s}}\n", indent, n.id, l)
			}
		}
		if c.id != "" {
			b.WriteString("  end\n")
		}
	}
	for _, e := range g.edges {
		arrow := "---"
		switch e.kind {
		case edgeShares, edgeHost:
			arrow = "-.-"
		case edgePorts:
			arrow = "==>"
		case edgeLink:
			arrow = "==="
		}
		fmt.Fprintf(&b, "  %s %s|%s| %s\n", e.from, arrow, mermaidQuote(e.lines), e.to)
	}
	for _, n := range g.nodes {
		if n.dashed {
			fmt.Fprintf(&b, "  style %s stroke-dasharray: 5 5\n", n.id)
		}
	}
	return b.String()
}

// endpointLines label an endpoint's edge: its interface and addresses,
// one a line.
func endpointLines(e *planner.Endpoint) []string {
	lines := []string{e.IfName}
	for i, a := range e.Addrs() {
		if i == 0 {
			lines[0] += " " + a.String()
		} else {
			lines = append(lines, a.String())
		}
	}
	return lines
}
