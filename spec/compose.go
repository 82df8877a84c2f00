package spec

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// This file reads Compose files (the Compose Specification) into the model
// topo's own format gives: services are containers, and the network keys
// map onto topo's. What topo cannot honour is accepted with a note, never
// an error, so that a project's compose.yaml works as it is.

const noImages = "topo runs no images"

// composeIgnored are the service keys that belong to the container engine,
// with why topo leaves them out.
var composeIgnored = map[string]string{
	"restart":        "topo starts each command once, on up",
	"scale":          "topo makes one container per service",
	"links":          "services reach each other by name on the networks they share",
	"external_links": "topo reaches no containers outside the project",
	"pull_policy":    noImages, "platform": noImages, "image": noImages, "build": "topo builds no images",
}

func init() {
	for _, k := range []string{"annotations", "attach", "blkio_config", "cgroup", "cgroup_parent",
		"configs", "cpu_count", "cpu_percent", "cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime",
		"cpu_shares", "cpus", "cpuset", "credential_spec", "deploy", "develop", "device_cgroup_rules", "devices",
		"gpus", "group_add", "init", "ipc", "isolation", "label_file", "labels", "logging", "mem_limit",
		"mem_reservation", "mem_swappiness", "memswap_limit", "models", "oom_kill_disable", "oom_score_adj",
		"pid", "pids_limit", "post_start", "pre_stop", "provider", "read_only", "runtime",
		"secrets", "security_opt", "shm_size", "stdin_open", "stop_grace_period", "stop_signal", "storage_opt",
		"tmpfs", "tty", "ulimits", "use_api_socket", "userns_mode", "uts", "volumes", "volumes_from"} {
		composeIgnored[k] = noImages
	}
}

// composeLater are service keys whose behaviour other work brings: noted
// as not supported yet.
var composeLater = []string{"mac_address"}

// composeServiceKeys are the keys a service has in topo's reading, for
// "did you mean" hints.
var composeServiceKeys = append([]string{"command", "container_name", "entrypoint", "expose", "hostname",
	"network_mode", "networks", "ports", "profiles", "user", "cap_add", "cap_drop", "privileged", "sysctls"}, runtimeKeys...)

func (p *parser) composeFile(root *yaml.Node) *File {
	root = resolve(root)
	if root.Kind != yaml.MappingNode {
		p.errorf(root, "the file must be a mapping with services: and networks:, got %s", describe(root))
		return nil
	}
	f := &File{Path: p.path}
	named := false
	var svcs *yaml.Node
	for _, e := range p.entries(root) {
		k := e.key.Value
		switch {
		case k == "version":
			p.note(e.key, "version is obsolete and ignored, as in Compose")
		case k == "name":
			named = true
			p.projectName(f, e.val)
		case k == "services":
			svcs = e.val
		case k == "networks":
			p.composeNetworks(f, e.val)
		case k == "volumes" || k == "secrets" || k == "configs" || k == "models":
			if v := resolve(e.val); v.Kind != yaml.MappingNode || len(v.Content) > 0 {
				p.note(e.key, "%s is ignored: %s", k, noImages)
			}
		case strings.HasPrefix(k, "x-"):
		default:
			valid := []string{"name", "services", "networks", "volumes", "secrets", "configs", "include", "version"}
			p.errorf(e.key, "unknown key %q at the top of the file%s: a Compose file has %s, and x-* for extensions",
				clip(k), didYouMean(k, valid), strings.Join(valid, ", "))
		}
	}
	if svcs != nil {
		p.services(f, svcs)
	}
	if v, ok := p.env("COMPOSE_PROJECT_NAME"); ok && v != "" {
		f.Project, f.ProjectPos = v, Pos{}
		if err := CheckProjectName(v); err != nil {
			p.add(Pos{}, "COMPOSE_PROJECT_NAME: %s", err)
		}
		return f
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

func (p *parser) composeNetworks(f *File, n *yaml.Node) {
	for _, e := range p.mapping(n, "networks", "a mapping of network names to their settings", true) {
		nw := &Network{Name: e.key.Value, Pos: p.pos(e.key), Driver: "bridge"}
		if msg := nameMsg("network", nw.Name); msg != "" {
			p.errorf(e.key, "%s", msg)
		}
		f.Networks = append(f.Networks, nw)
		p.composeNetwork(nw, e.val)
	}
}

var composeNetworkKeys = []string{"driver", "driver_opts", "ipam", "internal", "external", "name",
	"enable_ipv4", "enable_ipv6", "attachable", "labels"}

func (p *parser) composeNetwork(nw *Network, n *yaml.Node) {
	what := fmt.Sprintf("network %q", clip(nw.Name))
	path := "networks." + clip(nw.Name)
	var name, opts *entry
	for _, e := range p.mapping(n, what, "a mapping of driver, ipam, internal and the other network keys, or empty", true) {
		k := e.key.Value
		switch k {
		case "driver":
			// Which drivers there are is the planner's (planner.Check).
			if s, ok := p.str(e.val, what+": driver", `"bridge"`); ok {
				nw.Driver, nw.DriverPos = s, p.pos(e.val)
			}
		case "driver_opts":
			opts = &e // read once the driver is known
		case "enable_ipv4":
			if b, ok := p.boolish(e.val, what+": enable_ipv4"); ok {
				nw.IPv4Off, nw.EnableIPv4Pos = !b, p.pos(e.val)
			}
		case "enable_ipv6":
			if b, ok := p.boolish(e.val, what+": enable_ipv6"); ok {
				nw.EnableIPv6, nw.IPv6Off, nw.EnableIPv6Pos = b, !b, p.pos(e.val)
			}
		case "internal":
			if b, ok := p.boolish(e.val, what+": internal"); ok {
				nw.Internal = b
			}
		case "external":
			p.composeExternal(nw, e.val, what)
		case "name":
			name = &e
		case "attachable", "labels":
			p.note(e.key, "%s.%s is ignored: %s", path, k, noImages)
		case "ipam":
			p.ipam(nw, e.val, what, path)
		default:
			if !strings.HasPrefix(k, "x-") {
				p.errorf(e.key, "unknown key %q in %s%s: valid keys are %s, and x-* for extensions", clip(k), what, didYouMean(k, composeNetworkKeys), strings.Join(composeNetworkKeys, ", "))
			}
		}
	}
	switch {
	case name != nil && nw.External:
		p.externalName(nw, name.val, what)
	case name != nil:
		p.note(name.key, "%s.name is ignored: topo names the network's bridge br-<hash>, and the network is %q in the file", path, clip(nw.Name))
	}
	switch {
	case opts == nil:
	case nw.Driver == "bridge" && !nw.External:
		// Docker's bridge options: its MTU is the network's.
		p.composeDriverOpts(nw, opts.val, what, path)
	default:
		// The driver's, which checks them (planner.Check).
		p.driverOpts(nw, *opts, what)
	}
	if nw.Subnet6.IsValid() && !nw.EnableIPv6 {
		// As Docker, whose IPv6 pools need enable_ipv6.
		p.notes.add(nw.Subnet6Pos, "%s: IPv6 subnet %s is ignored: the network has no enable_ipv6: true, so it is IPv4 only", path, nw.Subnet6)
		nw.Subnet6 = netip.Prefix{}
	}
	p.networkDone(nw, what, nil)
}

// composeExternal reads external: true or false, or Compose's older
// external: {name: NAME}.
func (p *parser) composeExternal(nw *Network, n *yaml.Node, what string) {
	v := resolve(n)
	if v.Kind == yaml.MappingNode {
		nw.External, nw.ExternalPos = true, p.pos(n)
		for _, e := range p.mapping(v, what+": external", "true, false or a mapping of name", false) {
			if e.key.Value != "name" {
				p.errorf(e.key, "unknown key %q in %s: external: the only key is name", clip(e.key.Value), what)
				continue
			}
			p.externalName(nw, e.val, what)
		}
		return
	}
	if b, ok := p.boolish(n, what+": external"); ok {
		nw.External, nw.ExternalPos = b, p.pos(n)
	}
}

// composeMTU is the bridge driver's option that sets the network's MTU.
const composeMTU = "com.docker.network.driver.mtu"

// composeDriverOpts reads a network's driver_opts: Docker's MTU option
// is the network's mtu:; others are noted.
func (p *parser) composeDriverOpts(nw *Network, n *yaml.Node, what, path string) {
	for _, o := range p.mapping(n, what+": driver_opts", "a mapping of option names to values", true) {
		if o.key.Value != composeMTU {
			p.note(o.key, "%s.driver_opts.%s is not supported yet: ignored (topo takes %s)", path, clip(o.key.Value), composeMTU)
			continue
		}
		v := resolve(o.val)
		if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" {
			// Compose's options are strings: "1400".
			if _, err := strconv.Atoi(v.Value); err == nil {
				c := *v
				c.Tag = "!!int"
				if file, ok := p.origin[v]; ok {
					p.origin[&c] = file
				}
				v = &c
			}
		}
		p.mtu(nw, v, what+": driver_opts "+composeMTU)
	}
}

// boolValue reads a boolean as Compose does: YAML's, or the strings it
// casts (interpolated values are strings).
func boolValue(v *yaml.Node) (bool, bool) {
	if v.Kind != yaml.ScalarNode {
		return false, false
	}
	if v.ShortTag() == "!!bool" {
		return strings.EqualFold(v.Value, "true"), true
	}
	if v.ShortTag() == "!!str" {
		switch strings.ToLower(v.Value) {
		case "true", "yes", "y", "on":
			return true, true
		case "false", "no", "n", "off":
			return false, true
		}
	}
	return false, false
}

func (p *parser) boolish(n *yaml.Node, what string) (bool, bool) {
	if b, ok := boolValue(resolve(n)); ok {
		return b, true
	}
	p.errorf(n, "%s must be true or false, got %s", what, describe(resolve(n)))
	return false, false
}

func (p *parser) ipam(nw *Network, n *yaml.Node, what, path string) {
	for _, e := range p.mapping(n, what+": ipam", "a mapping of driver, config and options", true) {
		switch k := e.key.Value; k {
		case "driver":
			if s, ok := p.str(e.val, what+": ipam.driver", `"default"`); ok && s != "default" {
				p.note(e.val, "%s.ipam.driver %q is ignored: topo assigns addresses itself, as Docker's default driver does", path, clip(s))
			}
		case "options":
			p.note(e.key, "%s.ipam.options is ignored: topo's address management has none", path)
		case "config":
			v := resolve(e.val)
			if v.Kind != yaml.SequenceNode {
				p.errorf(e.val, "%s: ipam.config must be a list of {subnet, ip_range, gateway, aux_addresses}, got %s", what, describe(v))
				continue
			}
			var seen *yaml.Node
			for _, item := range v.Content {
				p.ipamConfig(nw, item, what, path, &seen)
			}
		default:
			if !strings.HasPrefix(k, "x-") {
				p.errorf(e.key, "unknown key %q in %s: ipam: valid keys are driver, config and options", clip(k), what)
			}
		}
	}
}

// ipamConfig reads one entry of ipam.config. topo networks have one IPv4
// subnet: an IPv6 entry is noted, a second IPv4 one refused.
func (p *parser) ipamConfig(nw *Network, item *yaml.Node, what, path string, seen **yaml.Node) {
	entries := p.mapping(item, what+": each ipam.config entry", "a mapping of subnet, ip_range, gateway and aux_addresses", false)
	var subnet, gateway, ipRange, aux *yaml.Node
	for _, e := range entries {
		switch e.key.Value {
		case "subnet":
			subnet = e.val
		case "gateway":
			gateway = e.val
		case "ip_range":
			ipRange = e.val
		case "aux_addresses":
			aux = e.val
		default:
			if !strings.HasPrefix(e.key.Value, "x-") {
				p.errorf(e.key, "unknown key %q in %s: ipam.config: valid keys are subnet, ip_range, gateway and aux_addresses", clip(e.key.Value), what)
			}
		}
	}
	if subnet != nil {
		if s := resolve(subnet); s.Kind == yaml.ScalarNode && isIPv6Text(s.Value) {
			p.ipamConfig6(nw, subnet, gateway, ipRange, aux, what, path)
			return
		}
		if *seen != nil {
			p.errorf(subnet, "%s: a second IPv4 subnet (the first is at %s): topo networks have one IPv4 subnet", what, p.ref(p.pos(*seen), subnet))
			return
		}
		*seen = subnet
		if !p.subnet(nw, subnet, what) {
			p.badSubnet[nw.Name] = true
			return
		}
	}
	for _, x := range []*yaml.Node{gateway, ipRange, aux} {
		if x != nil && subnet == nil {
			p.errorf(x, "%s: ipam.config needs a subnet for gateway, ip_range and aux_addresses", what)
			return
		}
	}
	// Both are checked against the subnet and the driver in networkDone.
	if gateway != nil {
		p.gateway(nw, gateway, what)
	}
	if ipRange != nil {
		p.ipRange(nw, ipRange, what)
	}
	if aux != nil {
		for _, e := range p.mapping(aux, what+": aux_addresses", "a mapping of host names to IPv4 addresses", true) {
			s, ok := p.str(e.val, what+": aux_addresses."+clip(e.key.Value), `"10.42.1.5"`)
			if !ok {
				continue
			}
			a, err := netip.ParseAddr(s)
			switch {
			case err != nil || !a.Is4():
				p.errorf(e.val, "%s: aux address %q is not an IPv4 address", what, clip(s))
			case !nw.Subnet.Contains(a):
				p.errorf(e.val, "%s: aux address %s is outside subnet %s", what, a, nw.Subnet)
			default:
				nw.Reserved = append(nw.Reserved, a)
			}
		}
	}
}

func (p *parser) services(f *File, n *yaml.Node) {
	for _, e := range p.mapping(n, "services", "a mapping of service names to their settings", true) {
		c := &Container{Name: e.key.Value, Pos: p.pos(e.key)}
		if msg := nameMsg("service", c.Name); msg != "" {
			p.errorf(e.key, "%s", msg)
		}
		f.Containers = append(f.Containers, c)
		p.service(c, e.val)
	}
}

func (p *parser) service(c *Container, n *yaml.Node) {
	keys := &containerKeys{}
	p.keys[c] = keys
	what := fmt.Sprintf("service %q", clip(c.Name))
	path := "services." + clip(c.Name)
	var entrypoint, command *yaml.Node
	var rn runtimeNodes
	defer p.finishRuntime(c, &rn, what)
	for _, e := range p.mapping(n, what, "a mapping of the service's settings, or empty", true) {
		k := e.key.Value
		if p.runtimeKey(c, e.key, e.val, what, &rn) {
			continue
		}
		switch {
		case k == "hostname":
			keys.hostname = e.key
			p.hostname(c, e.val, what)
		case k == "networks":
			keys.networks = e.key
			p.serviceNetworks(c, e.val, what, path)
		case k == "network_mode":
			p.serviceMode(c, e.val, what)
		case k == "ports":
			keys.ports = e.key
			p.composePorts(c, e.val, what)
		case k == "command":
			command = e.val
		case k == "user", k == "cap_add", k == "cap_drop", k == "privileged":
			p.privilege(c, k, e.val, what)
		case k == "sysctls":
			p.sysctls(c, e.val, what, path)
		case k == "entrypoint":
			entrypoint = e.val
		case k == "expose", k == "profiles":
			// expose: every port is reachable inside a network anyway.
			if v := resolve(e.val); v.Kind != yaml.SequenceNode {
				p.errorf(e.val, "%s: %s must be a list, got %s", what, k, describe(v))
			}
		case k == "container_name":
			if s, ok := p.str(e.val, what+": container_name", `"web-1"`); ok {
				if msg := nameMsg("container_name", s); msg != "" {
					p.errorf(e.val, "%s: %s", what, msg)
				}
				p.containerNames[c] = s
			}
		case slices.Contains(composeLater, k):
			p.note(e.key, "%s.%s is not supported yet: ignored", path, k)
		case composeIgnored[k] != "":
			p.note(e.key, "%s.%s is ignored: %s", path, k, composeIgnored[k])
		case strings.HasPrefix(k, "x-"):
		default:
			p.note(e.key, "%s.%s is not a service key topo knows%s: ignored", path, clip(k), didYouMean(k, composeServiceKeys))
		}
	}
	p.serviceCommand(c, entrypoint, command, what)
}

// serviceCommand makes the container's command of a service's entrypoint
// and command, as Docker runs them: the entrypoint's words, then the
// command's. Either may be a string, split as Compose splits it, or a
// list; empty or null means none.
func (p *parser) serviceCommand(c *Container, entrypoint, command *yaml.Node, what string) {
	for _, part := range []struct {
		n   *yaml.Node
		key string
	}{{entrypoint, "entrypoint"}, {command, "command"}} {
		if part.n == nil || isNull(resolve(part.n)) {
			continue
		}
		if c.CommandPos.Line == 0 {
			c.CommandPos = p.pos(part.n)
		}
		args, ok := p.argv(part.n, part.key, what)
		if !ok {
			return
		}
		c.Command = append(c.Command, args...)
	}
	if len(c.Command) > 0 && c.Command[0] == "" {
		p.add(c.CommandPos, "%s: the program name of its command is empty", what)
	}
}

var attachmentKeys = []string{"aliases", "ipv4_address", "ipv6_address", "link_local_ips", "mac_address",
	"interface_name", "driver_opts", "priority", "gw_priority"}

// serviceNetworks reads a service's networks, a list of names or a
// mapping of names to settings, and puts them in attach order: by
// priority, highest first, then in file order.
func (p *parser) serviceNetworks(c *Container, n *yaml.Node, what, path string) {
	v := resolve(n)
	priority := map[*Attachment]float64{}
	switch v.Kind {
	case yaml.SequenceNode:
		p.attachments(c, n, what)
		return
	case yaml.MappingNode:
		for _, e := range p.entries(v) {
			a := &Attachment{Network: e.key.Value, Pos: p.pos(e.key)}
			aw := fmt.Sprintf("%s: network %q", what, clip(a.Network))
			ap := path + ".networks." + clip(a.Network)
			for _, ae := range p.mapping(e.val, aw, "a mapping of aliases, ipv4_address, priority and the other attachment keys, or empty", true) {
				switch k := ae.key.Value; k {
				case "aliases":
					p.aliases(a, ae.val, aw)
				case "ipv4_address":
					p.ipv4Address(a, ae.val, aw)
				case "priority":
					priority[a] = p.number(ae.val, aw+": priority")
				case "gw_priority":
					a.GwPriority = int(p.number(ae.val, aw+": gw_priority"))
				case "interface_name", "mac_address":
					p.attachment(a, &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{ae.key, ae.val}}, aw)
				case "ipv6_address":
					p.ipv6Address(a, ae.val, aw)
				case "link_local_ips", "driver_opts":
					p.note(ae.key, "%s.%s is not supported yet: ignored", ap, k)
				default:
					if !strings.HasPrefix(k, "x-") {
						p.errorf(ae.key, "unknown key %q in %s%s: valid keys are %s, and x-* for extensions", clip(k), aw, didYouMean(k, attachmentKeys), strings.Join(attachmentKeys, ", "))
					}
				}
			}
			c.Networks = append(c.Networks, a)
		}
	default:
		p.errorf(n, "%s: networks must be a list of network names, or a mapping of network names to {aliases, ipv4_address, priority, ...}, got %s", what, describe(v))
	}
	slices.SortStableFunc(c.Networks, func(a, b *Attachment) int {
		switch pa, pb := priority[a], priority[b]; {
		case pa > pb:
			return -1
		case pa < pb:
			return 1
		}
		return 0
	})
}

// number reads a whole number (Compose's priorities).
func (p *parser) number(n *yaml.Node, what string) float64 {
	v := resolve(n)
	if v.Kind == yaml.ScalarNode && (v.ShortTag() == "!!int" || v.ShortTag() == "!!str") {
		if x, err := strconv.Atoi(v.Value); err == nil {
			return float64(x)
		}
	}
	p.errorf(n, "%s must be a whole number, got %s", what, describe(v))
	return 0
}

// serviceMode reads network_mode: Compose's service:NAME is topo's
// container:NAME; "bridge" (Docker's default network) is the project's
// default network.
func (p *parser) serviceMode(c *Container, n *yaml.Node, what string) {
	v := resolve(n)
	if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" {
		switch s := v.Value; {
		case strings.HasPrefix(s, "service:"):
			target := strings.TrimPrefix(s, "service:")
			c.Mode, c.ModeTarget, c.ModePos = ModeContainer, target, p.pos(n)
			if profiles, off := p.disabled[target]; off {
				p.errorf(n, "%s: network_mode %q names a service of profile %s, which is not enabled: enable it with --profile %s", what, clip(s), quoteList(profiles), profiles[0])
			}
			if target == "" {
				p.errorf(n, "%s: network_mode %q names no service: write \"service:NAME\"", what, s)
			}
			return
		case s == "bridge":
			p.note(n, "%s: network_mode bridge joins the project's default network: topo has no docker0", what)
		}
	}
	p.networkMode(c, n, what)
}

var longPortKeys = []string{"target", "published", "host_ip", "protocol", "mode", "name", "app_protocol"}

// composePorts reads ports in the short syntax and the long one.
func (p *parser) composePorts(c *Container, n *yaml.Node, what string) {
	v := resolve(n)
	if v.Kind != yaml.SequenceNode {
		p.errorf(n, "%s: ports must be a list like [\"8080:80\"], got %s", what, describe(v))
		return
	}
	for _, item := range v.Content {
		it := resolve(item)
		if it.Kind == yaml.MappingNode {
			p.longPort(c, it, what)
			continue
		}
		p.port(c, it, what)
	}
}

// longPort reads {target, published, host_ip, protocol, mode} as the
// short form it stands for.
func (p *parser) longPort(c *Container, n *yaml.Node, what string) {
	var target, published, hostIP, proto string
	ok := true
	scalar := func(v *yaml.Node, key, example string) string {
		r := resolve(v)
		if r.Kind == yaml.ScalarNode && (r.ShortTag() == "!!str" || r.ShortTag() == "!!int") {
			return r.Value
		}
		p.errorf(v, "%s: ports: %s must be a string like %s, got %s", what, key, example, describe(r))
		ok = false
		return ""
	}
	for _, e := range p.entries(n) {
		switch k := e.key.Value; k {
		case "target":
			target = scalar(e.val, k, `"80"`)
		case "published":
			published = scalar(e.val, k, `"8080" or "8000-8010"`)
		case "host_ip":
			hostIP = scalar(e.val, k, `"127.0.0.1"`)
			if a, err := netip.ParseAddr(hostIP); err == nil && a.Is6() {
				// The short syntax's form of an IPv6 host address.
				hostIP = "[" + a.String() + "]"
			}
		case "protocol":
			proto = scalar(e.val, k, `"tcp"`)
		case "mode":
			if m := scalar(e.val, k, `"host"`); m != "host" && m != "ingress" {
				p.errorf(e.val, "%s: ports: mode %q is not valid: use host or ingress", what, clip(m))
				ok = false
			}
		case "name", "app_protocol":
		default:
			if !strings.HasPrefix(k, "x-") {
				p.errorf(e.key, "unknown key %q in a port of %s%s: valid keys are %s", clip(k), what, didYouMean(k, longPortKeys), strings.Join(longPortKeys, ", "))
				ok = false
			}
		}
	}
	if !ok {
		return
	}
	if target == "" {
		p.errorf(n, "%s: ports: the entry has no target (the container's port)", what)
		return
	}
	raw := target
	switch {
	case hostIP != "":
		raw = hostIP + ":" + published + ":" + target
	case published != "":
		raw = published + ":" + target
	}
	if proto != "" {
		raw += "/" + proto
	}
	port, msg := parsePort(raw)
	if msg != "" {
		p.errorf(n, "%s: %s", what, msg)
		return
	}
	port.Pos = p.pos(n)
	c.Ports = append(c.Ports, port)
}

// containerNameAliases makes each service's container_name one more of
// its names on every network, as Docker's DNS answers to it.
func (p *parser) containerNameAliases(f *File) {
	for c, name := range p.containerNames {
		alias := strings.ToLower(name)
		if alias == strings.ToLower(c.Name) {
			continue
		}
		for _, a := range c.Networks {
			if !slices.Contains(a.Aliases, alias) {
				a.Aliases = append(a.Aliases, alias)
			}
		}
	}
}
