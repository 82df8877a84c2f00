package spec

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/topolab/topo/names"

	"gopkg.in/yaml.v3"
)

// Load reads the topology file at path, with the .env file beside it, as
// LoadFiles does.
func Load(path string) (*File, error) {
	return LoadFiles(Options{Files: []string{path}})
}

// Read reads a topology file for Parse, which rejects it if it is too
// big: Read stops one byte past the limit, so that a wrong -f (a disk
// image, /dev/zero) is not read whole.
//
// The path "-" is standard input, as for Compose: `topo up -f -` (what up
// --all-hosts sends over ssh).
func Read(path string) ([]byte, error) {
	fd := os.Stdin
	if path != "-" {
		var err error
		if fd, err = os.Open(path); err != nil {
			return nil, fmt.Errorf("read topology file: %w", err)
		}
		defer fd.Close()
	}
	data, err := io.ReadAll(io.LimitReader(fd, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read topology file: %w", err)
	}
	return data, nil
}

// Parse parses, fills in defaults and validates a topology file (topo's
// own format or Compose's, told apart by their keys), its variables
// interpolated from the process's environment. path names the file in
// messages, and its folder gives the project name when the file has no
// name:. Parse reports every problem it finds, not just the first: the
// error is an errors.Join of *Error, one per line, in file order.
func Parse(path string, data []byte) (*File, error) {
	d, err := resolveFiles(Options{Files: []string{path}, EnvFiles: []string{}}, data)
	if err != nil {
		return nil, err
	}
	return d.File()
}

// validKeys are the keys each kind of object accepts, besides x-*
// extensions, in the order messages list them.
var validKeys = map[string][]string{
	"file":       {"name", "hosts", "networks", "containers", "links"},
	"host":       {"address"},
	"network":    {"driver", "driver_opts", "subnet", "gateway", "ip_range", "internal", "mtu", "enable_ipv6", "enable_ipv4", "external", "name", "vni", "cni"},
	"container":  append([]string{"hostname", "host", "networks", "network_mode", "ports", "command", "user", "cap_add", "cap_drop", "privileged", "routes", "sysctls"}, runtimeKeys...),
	"attachment": {"aliases", "ipv4_address", "ipv6_address", "interface_name", "mac_address", "impairment"},
	"link":       {"endpoints", "mtu", "impairment"},
	"linkEnd":    {"container", "interface", "address", "mac"},
	"route":      {"to", "via", "dev", "metric"},
	"impairment": {"rate", "delay", "jitter", "loss", "duplicate", "corrupt", "reorder"},
}

// ValidKeys returns the keys each kind of object in the file accepts,
// besides x-* extensions: "file" (the top level), "network", "container"
// and "attachment" (a container's entry under networks:). The schema tests
// hold topo.schema.json to it. The result is a fresh copy.
func ValidKeys() map[string][]string {
	out := make(map[string][]string, len(validKeys))
	for k, v := range validKeys {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// parser walks the YAML node tree, building the model and reporting
// problems. It checks what one value can show by itself; validate checks
// what needs the whole file.
type parser struct {
	*problems
	// keys remembers where a container's hostname:, networks: and ports: keys are,
	// for messages about combinations found later.
	keys map[*Container]*containerKeys
	// badSubnet names networks whose subnet: was rejected, so that their
	// containers' addresses are not checked against a missing subnet too.
	badSubnet map[string]bool
	// loader holds what reading several files needs (see load.go).
	*loader
}

type containerKeys struct {
	hostname, networks, ports *yaml.Node // nil when absent
}

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	p.add(p.pos(n), format, args...)
}

// resolve follows an alias to its anchored value. checkExpansion has already
// refused aliases that loop. Positions and messages about a whole value
// use the node before resolving: where this object uses the value, which
// for an alias is the *name, not the anchor shared by several objects.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// entry is one key: value of a mapping, the key resolved.
type entry struct{ key, val *yaml.Node }

// entries returns the entries of mapping n in file order, reporting
// duplicate keys and keys that are not names. Merge keys (<<: *anchor)
// work as in YAML 1.1 and Compose: the mapping's own keys win over merged
// ones, and earlier merge sources over later ones; merged entries come
// after the mapping's own.
func (p *parser) entries(n *yaml.Node) []entry {
	var out []entry
	seen := make(map[string]*yaml.Node)
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" {
			p.errorf(k, "expected a name as mapping key, got %s", describe(k))
			continue
		}
		// yaml.v3 keeps duplicates in the node tree, and a map decode
		// would silently keep the last; a repeated key is always a mistake.
		if first, dup := seen[k.Value]; dup {
			p.errorf(k, "key %q appears twice in this mapping (first at line %d): keep one", clip(k.Value), first.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, entry{k, v})
	}
	for _, m := range merges {
		m = resolve(m)
		sources := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			sources = sources[:0]
			for _, s := range m.Content {
				sources = append(sources, resolve(s))
			}
		}
		for _, s := range sources {
			if s.Kind != yaml.MappingNode {
				p.errorf(s, "the merge key << needs a mapping or a list of mappings, got %s", describe(s))
				continue
			}
			for _, e := range p.entries(s) {
				if _, ok := seen[e.key.Value]; !ok {
					seen[e.key.Value] = e.key
					out = append(out, e)
				}
			}
		}
	}
	return out
}

// mapping returns the entries of n, which should be a mapping (or null,
// meaning empty, when nullOK). Otherwise it reports "WHAT must be SHOULD".
func (p *parser) mapping(n *yaml.Node, what, should string, nullOK bool) []entry {
	v := resolve(n)
	switch {
	case v.Kind == yaml.MappingNode:
		return p.entries(v)
	case nullOK && v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null":
		return nil
	}
	p.errorf(n, "%s must be %s, got %s", what, should, describe(v))
	return nil
}

// str returns n's string value, or reports that WHAT must be a string.
func (p *parser) str(n *yaml.Node, what, example string) (string, bool) {
	v := resolve(n)
	if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" {
		return v.Value, true
	}
	msg := fmt.Sprintf("%s must be a string like %s, got %s", what, example, describe(v))
	if v.Kind == yaml.ScalarNode && v.ShortTag() != "!!null" {
		msg += fmt.Sprintf("; quote it if you mean the text: %q", clip(v.Value))
	}
	p.errorf(n, "%s", msg)
	return "", false
}

// boolean returns n's boolean value, or reports that WHAT must be one.
func (p *parser) boolean(n *yaml.Node, what string) (bool, bool) {
	v := resolve(n)
	if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!bool" {
		return v.Value == "true" || v.Value == "True" || v.Value == "TRUE", true
	}
	p.errorf(n, "%s must be true or false, got %s", what, describe(v))
	return false, false
}

// unknownKey reports a key the object does not have, unless it is an x-*
// extension, which Compose files use to hold anchors and tool settings.
func (p *parser) unknownKey(k *yaml.Node, kind, where string) {
	if strings.HasPrefix(k.Value, "x-") {
		return
	}
	valid := validKeys[kind]
	p.errorf(k, "unknown key %q %s%s: valid keys are %s, and x-* for extensions",
		clip(k.Value), where, didYouMean(k.Value, valid), strings.Join(valid, ", "))
}

func (p *parser) file(root *yaml.Node) *File {
	root = resolve(root)
	if root.Kind != yaml.MappingNode {
		p.errorf(root, "the file must be a mapping with name:, networks: and containers:, got %s", describe(root))
		return nil
	}
	f := &File{Path: p.path}
	named := false
	for _, e := range p.entries(root) {
		switch e.key.Value {
		case "name":
			named = true
			p.projectName(f, e.val)
		case "hosts":
			p.hosts(f, e.val)
		case "networks":
			p.networks(f, e.val)
		case "containers":
			p.containers(f, e.val)
		case "links":
			p.links(f, e.val)
		default:
			p.unknownKey(e.key, "file", "at the top of the file")
		}
	}
	if !named {
		dir := folderName(p.path)
		f.Project = normalizeProjectName(dir)
		if !isProjectName(f.Project) {
			p.add(Pos{}, "no project name: the folder name %q does not make one (Compose's rule: lowercase letters, digits, '-' and '_', at most 63); set name: in the file", clip(dir))
		}
	}
	return f
}

func (p *parser) projectName(f *File, n *yaml.Node) {
	f.ProjectPos = p.pos(n)
	s, ok := p.str(n, "name", `"shop"`)
	if !ok {
		return
	}
	f.Project = s
	if err := CheckProjectName(s); err != nil {
		p.errorf(n, "%s", err)
	}
}

func (p *parser) networks(f *File, n *yaml.Node) {
	for _, e := range p.mapping(n, "networks", "a mapping of network names to their settings", false) {
		nw := &Network{Name: e.key.Value, Pos: p.pos(e.key), Driver: "bridge"}
		if msg := nameMsg("network", nw.Name); msg != "" {
			p.errorf(e.key, "%s", msg)
		}
		f.Networks = append(f.Networks, nw)
		p.network(nw, e.val)
	}
}

func (p *parser) network(nw *Network, n *yaml.Node) {
	what := fmt.Sprintf("network %q", clip(nw.Name))
	var name *yaml.Node
	for _, e := range p.mapping(n, what, "a mapping of driver, driver_opts, subnet, internal, mtu, enable_ipv6 and enable_ipv4, or empty", true) {
		switch e.key.Value {
		case "driver":
			// Which drivers there are is the planner's (planner.Check).
			if s, ok := p.str(e.val, what+": driver", `"bridge"`); ok {
				nw.Driver, nw.DriverPos = s, p.pos(e.val)
			}
		case "driver_opts":
			p.driverOpts(nw, e, what)
		case "subnet":
			p.subnets(nw, e.val, what)
		case "enable_ipv6":
			p.enableIPv6(nw, e.val, what)
		case "enable_ipv4":
			p.enableIPv4(nw, e.val, what)
		case "internal":
			if b, ok := p.boolean(e.val, what+": internal"); ok {
				nw.Internal = b
			}
		case "mtu":
			p.mtu(nw, e.val, what)
		case "gateway":
			p.gateway(nw, e.val, what)
		case "ip_range":
			p.ipRange(nw, e.val, what)
		case "external":
			p.external(nw, e.val, what)
		case "name":
			name = e.key
			p.externalName(nw, e.val, what)
		case "vni":
			p.vni(nw, e.val, what)
		case "cni":
			p.cni(nw, e, what)
		default:
			p.unknownKey(e.key, "network", "in "+what)
		}
	}
	p.networkDone(nw, what, name)
}

// MTU limits: the least IPv4 allows (RFC 791), the most a Linux link
// takes (ETH_MAX_MTU).
const (
	minMTU = 68
	maxMTU = 65535
)

// mtu sets nw.MTU from n, or reports why it cannot.
func (p *parser) mtu(nw *Network, n *yaml.Node, what string) {
	v := resolve(n)
	mtu, err := strconv.Atoi(v.Value)
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || err != nil {
		p.errorf(n, "%s: mtu must be a whole number of bytes like 1400, got %s", what, describe(v))
		return
	}
	if mtu < minMTU || mtu > maxMTU {
		p.errorf(n, "%s: mtu %d is out of range: use %d to %d (1500 is Ethernet's, and the default)", what, mtu, minMTU, maxMTU)
		return
	}
	nw.MTU, nw.MTUPos = mtu, p.pos(n)
}

// subnet sets nw.Subnet from n, or reports why it cannot.
func (p *parser) subnet(nw *Network, n *yaml.Node, what string) bool {
	nw.SubnetPos = p.pos(n)
	s, ok := p.str(n, what+": subnet", `"10.42.1.0/24"`)
	if !ok {
		return false
	}
	pfx, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		p.errorf(n, "%s: subnet %q is not an IPv4 CIDR block like \"10.42.1.0/24\"", what, clip(s))
	case !pfx.Addr().Is4():
		p.errorf(n, "%s: subnet %q is not an IPv4 CIDR block like \"10.42.1.0/24\"", what, clip(s))
	case pfx.Bits() > 30:
		p.errorf(n, "%s: subnet %q has prefix length /%d: use /8 to /30 (a /31 or /32 has no room for a container once the network, gateway and broadcast addresses are taken; Docker accepts it, and fails when the first container joins)", what, s, pfx.Bits())
	case pfx.Bits() < 8:
		p.errorf(n, "%s: subnet %q has prefix length /%d: use /8 to /30 (a block larger than a /8 takes in the kernel's special blocks and the host's own networks, whose routes the bridge's would shadow; Docker accepts it)", what, s, pfx.Bits())
	case pfx.Masked() != pfx:
		p.errorf(n, "%s: subnet %q is not a network address: write %q", what, s, pfx.Masked().String())
	case reservedBlock(pfx) != nil:
		r, verb := reservedBlock(pfx), "overlaps"
		if r.block.Bits() <= pfx.Bits() {
			verb = "is in"
		}
		p.errorf(n, "%s: subnet %s %s the %s block %s, which the kernel treats specially: use a private block (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)", what, pfx, verb, r.what, r.block)
	default:
		nw.Subnet = pfx
		return true
	}
	return false
}

// reserved are the IPv4 blocks a bridge network must not overlap: the
// kernel gives them meanings of their own (RFC 6890), so that a bridge
// holding them breaks the host's loopback, link-local or multicast, or
// cannot work at all. The limited broadcast comes before the block that
// holds it, to be named.
var reserved = []struct {
	block netip.Prefix
	what  string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), `"this network"`},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("255.255.255.0/24"), "limited broadcast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
}

// reservedBlock returns the first reserved block p overlaps, or nil.
func reservedBlock(p netip.Prefix) *struct {
	block netip.Prefix
	what  string
} {
	for i := range reserved {
		if reserved[i].block.Overlaps(p) {
			return &reserved[i]
		}
	}
	return nil
}

func (p *parser) containers(f *File, n *yaml.Node) {
	for _, e := range p.mapping(n, "containers", "a mapping of container names to their settings", false) {
		c := &Container{Name: e.key.Value, Pos: p.pos(e.key)}
		if msg := nameMsg("container", c.Name); msg != "" {
			p.errorf(e.key, "%s", msg)
		}
		f.Containers = append(f.Containers, c)
		p.container(c, e.val)
	}
}

func (p *parser) container(c *Container, n *yaml.Node) {
	keys := &containerKeys{}
	p.keys[c] = keys
	what := fmt.Sprintf("container %q", clip(c.Name))
	var rn runtimeNodes
	defer p.finishRuntime(c, &rn, what)
	for _, e := range p.mapping(n, what, "a mapping of hostname, networks, network_mode, ports, command and the other container keys, or empty", true) {
		if p.runtimeKey(c, e.key, e.val, what, &rn) {
			continue
		}
		switch e.key.Value {
		case "hostname":
			keys.hostname = e.key
			p.hostname(c, e.val, what)
		case "networks":
			keys.networks = e.key
			p.attachments(c, e.val, what)
		case "host":
			p.host(c, e.val, what)
		case "network_mode":
			p.networkMode(c, e.val, what)
		case "ports":
			keys.ports = e.key
			p.ports(c, e.val, what)
		case "command":
			p.command(c, e.val, what)
		case "user", "cap_add", "cap_drop", "privileged":
			p.privilege(c, e.key.Value, e.val, what)
		case "routes":
			p.routes(c, e.val, what)
		case "sysctls":
			p.sysctls(c, e.val, what, "")
		default:
			p.unknownKey(e.key, "container", "in "+what)
		}
	}
}

func (p *parser) hostname(c *Container, v *yaml.Node, what string) {
	if s, ok := p.str(v, what+": hostname", `"web.example"`); ok {
		c.Hostname = strings.ToLower(s)
		if !isDNSName(c.Hostname) {
			p.errorf(v, "%s: hostname %q is not a valid DNS name: use labels of %s, joined by dots", what, clip(s), labelRule)
		} else if len(c.Hostname) > names.HostnameMax {
			p.errorf(v, "%s: hostname %q is %d bytes: the kernel holds at most %d in a hostname", what, clip(s), len(s), names.HostnameMax)
		}
	}
}

func (p *parser) attachments(c *Container, n *yaml.Node, what string) {
	v := resolve(n)
	switch v.Kind {
	case yaml.SequenceNode:
		seen := make(map[string]bool)
		for _, item := range v.Content {
			it := resolve(item)
			name, ok := p.str(it, what+": each entry of networks", `"front"`)
			if !ok {
				continue
			}
			if seen[name] {
				p.errorf(it, "%s: network %q is listed twice: list it once", what, clip(name))
				continue
			}
			seen[name] = true
			c.Networks = append(c.Networks, &Attachment{Network: name, Pos: p.pos(it)})
		}
	case yaml.MappingNode:
		for _, e := range p.entries(v) {
			a := &Attachment{Network: e.key.Value, Pos: p.pos(e.key)}
			p.attachment(a, e.val, fmt.Sprintf("%s: network %q", what, clip(a.Network)))
			c.Networks = append(c.Networks, a)
		}
	default:
		p.errorf(n, "%s: networks must be a list of network names, or a mapping of network names to {aliases, ipv4_address, ipv6_address}, got %s", what, describe(v))
	}
}

func (p *parser) attachment(a *Attachment, n *yaml.Node, what string) {
	for _, e := range p.mapping(n, what, "a mapping of aliases, ipv4_address, ipv6_address, interface_name, mac_address and impairment, or empty", true) {
		switch e.key.Value {
		case "aliases":
			p.aliases(a, e.val, what)
		case "ipv4_address":
			p.ipv4Address(a, e.val, what)
		case "interface_name":
			if s, ok := p.str(e.val, what+": interface_name", `"lan"`); ok {
				if msg := ifNameMsg(s); msg != "" {
					p.errorf(e.val, "%s: interface_name %q %s", what, clip(s), msg)
				} else {
					a.IfName, a.IfNamePos = s, p.pos(e.val)
				}
			}
		case "mac_address":
			a.MAC = p.mac(e.val, what+": mac_address")
		case "impairment":
			a.Impairment = p.impairment(e.val, what)
		case "ipv6_address":
			p.ipv6Address(a, e.val, what)
		default:
			p.unknownKey(e.key, "attachment", "in "+what)
		}
	}
}

func (p *parser) ipv4Address(a *Attachment, v *yaml.Node, what string) {
	s, ok := p.str(v, what+": ipv4_address", `"10.42.1.10"`)
	if !ok {
		return
	}
	addr, err := netip.ParseAddr(s)
	if err != nil || !addr.Is4() {
		p.errorf(v, "%s: ipv4_address %q is not an IPv4 address like \"10.42.1.10\"", what, clip(s))
		return
	}
	a.IPv4, a.IPv4Pos = addr, p.pos(v)
}

func (p *parser) aliases(a *Attachment, n *yaml.Node, what string) {
	v := resolve(n)
	if v.Kind != yaml.SequenceNode {
		p.errorf(n, "%s: aliases must be a list of DNS names like [www], got %s", what, describe(v))
		return
	}
	seen := make(map[string]bool)
	for _, item := range v.Content {
		it := resolve(item)
		s, ok := p.str(it, what+": each alias", `"www"`)
		if !ok {
			continue
		}
		// DNS is case-insensitive; store the form the resolver compares.
		alias := strings.ToLower(s)
		switch {
		case !isDNSName(alias):
			p.errorf(it, "%s: alias %q is not a valid DNS name: use labels of %s, joined by dots", what, clip(s), labelRule)
		case seen[alias]:
			p.errorf(it, "%s: alias %q is listed twice: list it once", what, clip(s))
		default:
			seen[alias] = true
			a.Aliases = append(a.Aliases, alias)
		}
	}
}

const modeForms = `"bridge" (the default), "host", "none" or "container:NAME"`

func (p *parser) networkMode(c *Container, n *yaml.Node, what string) {
	c.ModePos = p.pos(n)
	s, ok := p.str(n, what+": network_mode", `"none"`)
	if !ok {
		return
	}
	switch {
	case s == "bridge":
		c.Mode = ModeBridge
	case s == "host":
		c.Mode = ModeHost
	case s == "none":
		c.Mode = ModeNone
	case strings.HasPrefix(s, "container:"):
		c.Mode, c.ModeTarget = ModeContainer, strings.TrimPrefix(s, "container:")
		if c.ModeTarget == "" {
			p.errorf(n, "%s: network_mode %q names no container: write \"container:NAME\"", what, s)
		}
	case strings.HasPrefix(s, "service:"):
		p.errorf(n, "%s: network_mode %q: topo has containers, not services; write %q", what, clip(s), clip("container:"+strings.TrimPrefix(s, "service:")))
	default:
		p.errorf(n, "%s: network_mode %q is not valid: use %s", what, clip(s), modeForms)
	}
}

func (p *parser) ports(c *Container, n *yaml.Node, what string) {
	v := resolve(n)
	if v.Kind != yaml.SequenceNode {
		p.errorf(n, "%s: ports must be a list like [\"8080:80\"], got %s", what, describe(v))
		return
	}
	for _, item := range v.Content {
		p.port(c, resolve(item), what)
	}
}

// port adds one ports: entry in the short syntax.
func (p *parser) port(c *Container, it *yaml.Node, what string) {
	// "- 80" is a YAML integer; Compose accepts it, and so do we.
	if it.Kind != yaml.ScalarNode || (it.ShortTag() != "!!str" && it.ShortTag() != "!!int") {
		p.errorf(it, "%s: each port must be a string like \"8080:80\" or a port number, got %s", what, describe(it))
		return
	}
	port, msg := parsePort(it.Value)
	if msg != "" {
		p.errorf(it, "%s: %s", what, msg)
		return
	}
	port.Pos = p.pos(it)
	c.Ports = append(c.Ports, port)
}

const commandExample = `["sleep", "infinity"]`

func (p *parser) command(c *Container, n *yaml.Node, what string) {
	c.CommandPos = p.pos(n)
	args, ok := p.argv(n, "command", what)
	if !ok {
		return
	}
	c.Command = args
	switch {
	case len(c.Command) == 0:
		p.errorf(n, "%s: command is empty: give the program and its arguments, like %s, or leave command out", what, commandExample)
	case c.Command[0] == "":
		p.errorf(n, "%s: command: the program name is empty", what)
	}
}

// argv reads a command (key names it in messages): a list of arguments,
// or a string split as Compose splits it. ok is false after a problem.
func (p *parser) argv(n *yaml.Node, key, what string) (args []string, ok bool) {
	v := resolve(n)
	switch {
	case v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str":
		args, msg := splitCommand(v.Value)
		if msg != "" {
			p.errorf(n, "%s: %s: %s", what, key, msg)
			return nil, false
		}
		ok = true
		for i, arg := range args {
			ok = p.noNUL(n, arg, key, i, what) && ok
		}
		return args, ok
	case v.Kind == yaml.SequenceNode:
		ok = true
		for i, item := range v.Content {
			it := resolve(item)
			// Numbers and booleans are taken as written: [sleep, 10].
			if it.Kind != yaml.ScalarNode || it.ShortTag() == "!!null" {
				p.errorf(it, "%s: %s argument %d must be a string, got %s", what, key, i, describe(it))
				ok = false
				continue
			}
			ok = p.noNUL(it, it.Value, key, i, what) && ok
			args = append(args, it.Value)
		}
		return args, ok
	default:
		p.errorf(n, "%s: %s must be a list of arguments like %s or a string, got %s", what, key, commandExample, describe(v))
		return nil, false
	}
}

// noNUL reports an argument holding a NUL byte: the kernel ends an
// argument at its first NUL, so that exec would refuse it at up, or the
// program would see less than was written.
func (p *parser) noNUL(n *yaml.Node, arg, key string, i int, what string) bool {
	if strings.IndexByte(arg, 0) < 0 {
		return true
	}
	p.errorf(n, "%s: %s argument %d (%q) holds a NUL byte, which no program argument can: remove it", what, key, i, clip(arg))
	return false
}

// splitCommand splits a command string into argv as Compose does (with
// go-shellwords): blanks separate words, single quotes keep text as it
// is, double quotes keep blanks, and a backslash outside single quotes
// takes the next character as it is. Nothing is expanded and no shell
// runs, so '$X' and '*' are plain characters. An unquoted ';', '&', '|',
// '<' or '>' is refused: Compose silently drops the rest of the string
// there, and with no shell it would not mean what it says; write
// ["sh", "-c", "..."] for a shell.
func splitCommand(s string) ([]string, string) {
	var args []string
	var cur strings.Builder
	inWord, escaped := false, false
	var quote byte // the open quote, or 0
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case escaped:
			cur.WriteByte(ch)
			escaped, inWord = false, true
		case ch == '\\' && quote != '\'':
			escaped = true
		case quote != 0:
			if ch == quote {
				quote = 0
			} else {
				cur.WriteByte(ch)
			}
		case ch == '\'' || ch == '"':
			quote, inWord = ch, true
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		case strings.IndexByte(";&|<>", ch) >= 0:
			return nil, fmt.Sprintf("%q outside quotes: no shell runs the command (Compose would drop what follows it); quote it, or write [\"sh\", \"-c\", \"...\"] for a shell", string(ch))
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	switch {
	case escaped:
		return nil, "the string ends with a lone backslash"
	case quote == '\'':
		return nil, "a single quote is not closed"
	case quote == '"':
		return nil, "a double quote is not closed"
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, ""
}
