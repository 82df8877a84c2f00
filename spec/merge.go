package spec

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// merge merges the document over into base, as Compose merges the files
// of one project (its merge section): later files override earlier ones.
// Mappings merge key by key, sequences append, other values are replaced;
// command and entrypoint are replaced whole; ports, expose, volumes,
// secrets and configs keep one entry per unique key, the later; a
// service's networks merge as a mapping (a list is a mapping to nothing),
// their aliases append without repeats; environment, labels and sysctls
// merge by variable; ipam configs by subnet. A value tagged !reset
// removes the key, one tagged !override replaces what was there. Topo's
// own files merge the same way, containers: as services:. The result
// shares the nodes it does not change with base and over, so positions
// still point into the files.
func (p *parser) merge(base, over *yaml.Node) *yaml.Node {
	if base == nil {
		base = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: over.Line, Column: over.Column}
	}
	out := p.mergeValue(base, over, nil)
	p.dropTags(out)
	return out
}

type mergeRule int

const (
	ruleDefault  mergeRule = iota
	ruleReplace            // the later value wins whole
	ruleUnique             // sequences: one entry per key, the later
	ruleMapping            // a list becomes a mapping first
	ruleKeyValue           // list_or_dict: KEY=VALUE lists become mappings
	ruleList               // string_or_list: a string is a list of one
	ruleBuild              // a string is {context: STRING}
	ruleSubnet             // ipam config entries, by subnet
)

var mergeRules = map[string]mergeRule{
	"services.*.command":                   ruleReplace,
	"services.*.entrypoint":                ruleReplace,
	"services.*.healthcheck.test":          ruleReplace,
	"services.*.ports":                     ruleUnique,
	"services.*.expose":                    ruleUnique,
	"services.*.volumes":                   ruleUnique,
	"services.*.secrets":                   ruleUnique,
	"services.*.configs":                   ruleUnique,
	"services.*.networks.*.aliases":        ruleUnique,
	"services.*.networks":                  ruleMapping,
	"services.*.depends_on":                ruleMapping,
	"services.*.environment":               ruleKeyValue,
	"services.*.labels":                    ruleKeyValue,
	"services.*.annotations":               ruleKeyValue,
	"services.*.sysctls":                   ruleKeyValue,
	"services.*.build.args":                ruleKeyValue,
	"services.*.deploy.labels":             ruleKeyValue,
	"networks.*.labels":                    ruleKeyValue,
	"services.*.dns":                       ruleList,
	"services.*.dns_search":                ruleList,
	"services.*.env_file":                  ruleList,
	"services.*.tmpfs":                     ruleList,
	"services.*.build":                     ruleBuild,
	"networks.*.ipam.config":               ruleSubnet,
	"services.*.networks.*.link_local_ips": ruleUnique,
}

// rulePath names the place of path in mergeRules: the names of services
// (or containers) and networks become "*".
func rulePath(path []string) string {
	segs := append([]string(nil), path...)
	if len(segs) > 0 && segs[0] == "containers" {
		segs[0] = "services"
	}
	if len(segs) > 1 {
		segs[1] = "*"
	}
	if len(segs) > 3 && segs[0] == "services" && segs[2] == "networks" {
		segs[3] = "*"
	}
	return strings.Join(segs, ".")
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func (p *parser) mergeValue(b, o *yaml.Node, path []string) *yaml.Node {
	if o.Tag == "!override" {
		return o // dropTags clears the tag
	}
	bv, ov := resolve(b), resolve(o)
	if isNull(ov) {
		return b
	}
	rule := mergeRules[rulePath(path)]
	switch rule {
	case ruleReplace:
		return o
	case ruleMapping:
		deps := rulePath(path) == "services.*.depends_on"
		bv, ov = p.listToMapping(bv, deps), p.listToMapping(ov, deps)
	case ruleKeyValue:
		bv, ov = p.keyValues(bv), p.keyValues(ov)
	case ruleList, ruleBuild:
		bv, ov = p.wrap(bv, rule), p.wrap(ov, rule)
	}
	switch {
	case bv.Kind == yaml.MappingNode && ov.Kind == yaml.MappingNode:
		return p.mergeMapping(bv, ov, path)
	case bv.Kind == yaml.SequenceNode && ov.Kind == yaml.SequenceNode:
		out := p.derive(&yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}, b)
		out.Content = append(append(out.Content, bv.Content...), ov.Content...)
		switch rule {
		case ruleUnique:
			out.Content = p.unique(out.Content, rulePath(path))
		case ruleSubnet:
			out.Content = p.bySubnet(bv.Content, ov.Content, path)
		}
		return out
	case bv.Kind == yaml.MappingNode || bv.Kind == yaml.SequenceNode:
		p.errorf(o, "%s: %s cannot override %s (%s)", strings.Join(path, "."), describe(ov), kindWord(bv), p.where(b))
		return b
	}
	return o
}

func kindWord(n *yaml.Node) string {
	if n.Kind == yaml.MappingNode {
		return "the mapping"
	}
	return "the list"
}

// where names a node's place for messages that point at another one.
func (p *parser) where(n *yaml.Node) string {
	pos := p.pos(n)
	file := pos.File
	if file == "" {
		file = p.path
	}
	return fmt.Sprintf("%s:%d", file, pos.Line)
}

// derive returns n, a new node, placed where from is.
func (p *parser) derive(n, from *yaml.Node) *yaml.Node {
	n.Line, n.Column = from.Line, from.Column
	if f, ok := p.origin[from]; ok {
		p.origin[n] = f
	}
	return n
}

func (p *parser) mergeMapping(b, o *yaml.Node, path []string) *yaml.Node {
	out := p.derive(&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, b)
	index := make(map[string]int)
	gone := make(map[int]bool)
	for _, e := range p.entries(b) {
		index[e.key.Value] = len(out.Content)
		out.Content = append(out.Content, e.key, e.val)
	}
	for _, e := range p.entries(o) {
		k := e.key.Value
		i, ok := index[k]
		switch {
		case e.val.Tag == "!reset":
			if ok {
				gone[i] = true
			}
		case ok:
			out.Content[i] = e.key
			out.Content[i+1] = p.mergeValue(out.Content[i+1], e.val, append(path[:len(path):len(path)], k))
		default:
			index[k] = len(out.Content)
			out.Content = append(out.Content, e.key, e.val)
		}
	}
	if len(gone) > 0 {
		kept := out.Content[:0]
		for i := 0; i < len(out.Content); i += 2 {
			if !gone[i] {
				kept = append(kept, out.Content[i], out.Content[i+1])
			}
		}
		out.Content = kept
	}
	return out
}

// listToMapping turns a list of names into a mapping of the names to
// nothing (service networks), or to Compose's defaults (depends_on).
func (p *parser) listToMapping(n *yaml.Node, dependsOn bool) *yaml.Node {
	if n.Kind != yaml.SequenceNode {
		return n
	}
	out := p.derive(&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, n)
	for _, item := range n.Content {
		k := resolve(item)
		var v *yaml.Node
		if dependsOn {
			v = p.derive(&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, k)
			v.Content = []*yaml.Node{
				p.scalar("condition", "!!str", k), p.scalar("service_started", "!!str", k),
				p.scalar("required", "!!str", k), p.scalar("true", "!!bool", k),
			}
		} else {
			v = p.scalar("", "!!null", k)
		}
		out.Content = append(out.Content, k, v)
	}
	return out
}

func (p *parser) scalar(value, tag string, at *yaml.Node) *yaml.Node {
	return p.derive(&yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}, at)
}

// keyValues turns a KEY=VALUE list (environment, labels, sysctls) into a
// mapping; a bare KEY maps to nothing.
func (p *parser) keyValues(n *yaml.Node) *yaml.Node {
	if n.Kind != yaml.SequenceNode {
		return n
	}
	out := p.derive(&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, n)
	for _, item := range n.Content {
		it := resolve(item)
		k, v, ok := strings.Cut(it.Value, "=")
		val := p.scalar(v, "!!str", it)
		if !ok {
			val = p.scalar("", "!!null", it)
		}
		out.Content = append(out.Content, p.scalar(k, "!!str", it), val)
	}
	return out
}

// wrap makes a string a list of one (string_or_list), or the mapping
// {context: STRING} (build).
func (p *parser) wrap(n *yaml.Node, rule mergeRule) *yaml.Node {
	if n.Kind != yaml.ScalarNode {
		return n
	}
	if rule == ruleBuild {
		out := p.derive(&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, n)
		out.Content = []*yaml.Node{p.scalar("context", "!!str", n), n}
		return out
	}
	out := p.derive(&yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}, n)
	out.Content = []*yaml.Node{n}
	return out
}

// unique keeps one entry per key, in the place of the first, with the
// value of the last.
func (p *parser) unique(items []*yaml.Node, where string) []*yaml.Node {
	var out []*yaml.Node
	at := make(map[string]int)
	for _, item := range items {
		k := uniqueKey(resolve(item), where)
		if i, ok := at[k]; ok {
			out[i] = item
			continue
		}
		at[k] = len(out)
		out = append(out, item)
	}
	return out
}

// uniqueKey is Compose's unique key of a sequence entry: for ports the
// host address, published port, target and protocol; for volumes,
// secrets and configs the target; otherwise the value.
func uniqueKey(n *yaml.Node, where string) string {
	field := func(name string) string {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == name {
				return resolve(n.Content[i+1]).Value
			}
		}
		return ""
	}
	switch where {
	case "services.*.ports":
		if n.Kind == yaml.MappingNode {
			return fmt.Sprintf("%s:%s:%s/%s", cmpOr(field("host_ip"), "0.0.0.0"), field("published"), field("target"), cmpOr(field("protocol"), "tcp"))
		}
		if port, msg := parsePort(n.Value); msg == "" {
			pub := ""
			if port.HostStart != 0 {
				pub = portRange(port.HostStart, port.HostEnd)
			}
			return fmt.Sprintf("%s:%s:%s/%s", port.HostIP, pub, portRange(port.ContainerStart, port.ContainerEnd), port.Proto)
		}
	case "services.*.volumes", "services.*.secrets", "services.*.configs":
		if n.Kind == yaml.MappingNode {
			return cmpOr(field("target"), field("source"))
		}
		if where == "services.*.volumes" {
			parts := strings.Split(n.Value, ":")
			if len(parts) > 1 {
				return parts[1]
			}
		}
	case "services.*.networks.*.aliases":
		return strings.ToLower(n.Value)
	}
	return n.Value
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func portRange(a, b uint16) string {
	if a == b {
		return fmt.Sprint(a)
	}
	return fmt.Sprintf("%d-%d", a, b)
}

// bySubnet merges ipam config entries: one of over with the subnet of one
// of base merges into it, others are appended.
func (p *parser) bySubnet(base, over []*yaml.Node, path []string) []*yaml.Node {
	subnet := func(n *yaml.Node) string {
		n = resolve(n)
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "subnet" {
				return resolve(n.Content[i+1]).Value
			}
		}
		return ""
	}
	out := append([]*yaml.Node(nil), base...)
next:
	for _, o := range over {
		for i, b := range out {
			if s := subnet(o); s != "" && s == subnet(b) && resolve(b).Kind == yaml.MappingNode && resolve(o).Kind == yaml.MappingNode {
				out[i] = p.mergeMapping(resolve(b), resolve(o), path)
				continue next
			}
		}
		out = append(out, o)
	}
	return out
}

// dropTags removes what !reset marks and clears !override, where merge
// left them: in a file's own values that merged with nothing.
func (p *parser) dropTags(root *yaml.Node) {
	seen := make(map[*yaml.Node]bool)
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil || seen[n] {
			return
		}
		seen[n] = true
		if n.Tag == "!override" {
			n.Tag = ""
		}
		if n.Kind == yaml.MappingNode {
			kept := n.Content[:0]
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i+1].Tag != "!reset" {
					kept = append(kept, n.Content[i], n.Content[i+1])
				}
			}
			n.Content = kept
		}
		if n.Kind == yaml.AliasNode {
			walk(n.Alias)
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(root)
}

// hasMergeTags reports whether a document uses !reset or !override.
func hasMergeTags(n *yaml.Node) bool {
	if n.Tag == "!reset" || n.Tag == "!override" {
		return true
	}
	for _, c := range n.Content {
		if hasMergeTags(c) {
			return true
		}
	}
	return false
}
