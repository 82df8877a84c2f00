package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/topolab/topo/names"

	"gopkg.in/yaml.v3"
)

// This file reads the keys of a container's command and of the files its
// namespace sees, the same in topo's files and Compose's: environment,
// env_file, working_dir, dns, dns_search, dns_opt, extra_hosts,
// domainname, depends_on and healthcheck.

// runtimeKeys are those keys.
var runtimeKeys = []string{"environment", "env_file", "working_dir", "dns", "dns_search", "dns_opt",
	"extra_hosts", "domainname", "depends_on", "healthcheck"}

// ExtraHost is one extra_hosts entry: a line of the container's hosts
// file. Gateway says the address is host-gateway: the host's address on
// the container's first network, which the planner knows.
type ExtraHost struct {
	Name    string
	Addr    netip.Addr
	Gateway bool
	Pos     Pos
}

// Conditions of depends_on, as Compose names them.
const (
	ServiceStarted               = "service_started"
	ServiceHealthy               = "service_healthy"
	ServiceCompletedSuccessfully = "service_completed_successfully"
)

// Dependency is one depends_on entry: Container's command starts before
// this one's, and with ServiceHealthy this one waits until it is healthy
// (ServiceCompletedSuccessfully is noted, and orders the start alone).
type Dependency struct {
	Container string
	Condition string
	// Required false: a dependency the project lacks is skipped with a
	// note, as Compose warns.
	Required bool
	Pos      Pos
}

// Healthcheck is a container's healthcheck, as Docker runs it: Test every
// Interval (StartInterval during StartPeriod while not yet healthy), each
// run cut at Timeout; Retries failures in a row make it unhealthy.
type Healthcheck struct {
	// Test is the argv run in the container's namespace: CMD's words, or
	// /bin/sh -c for CMD-SHELL and a string.
	Test                                          []string
	Interval, Timeout, StartPeriod, StartInterval time.Duration
	Retries                                       int
	Pos                                           Pos
}

// Docker's healthcheck defaults.
const (
	DefaultHealthInterval      = 30 * time.Second
	DefaultHealthTimeout       = 30 * time.Second
	DefaultHealthStartInterval = 5 * time.Second
	DefaultHealthRetries       = 3
)

// runtimeNodes are the nodes of a container's runtime keys, read once the
// whole mapping is: env_file's entries come before environment's.
type runtimeNodes struct {
	env, envFile *yaml.Node
}

// runtimeKey reads key k of container c, or reports false when k is not
// one of runtimeKeys.
func (p *parser) runtimeKey(c *Container, k *yaml.Node, v *yaml.Node, what string, rn *runtimeNodes) bool {
	switch k.Value {
	case "environment":
		rn.env = v
	case "env_file":
		rn.envFile = v
	case "working_dir":
		if s, ok := p.str(v, what+": working_dir", `"/srv/app"`); ok {
			switch {
			case !strings.HasPrefix(s, "/"):
				p.errorf(v, "%s: working_dir %q is not an absolute path: write one like \"/srv/app\"", what, clip(s))
			case strings.IndexByte(s, 0) >= 0:
				p.errorf(v, "%s: working_dir %q holds a NUL byte, which no path can: remove it", what, clip(s))
			default:
				c.WorkingDir, c.WorkingDirPos = s, p.pos(v)
			}
		}
	case "dns":
		for _, it := range p.strList(v, what+": dns", `["10.0.0.53"]`) {
			a, err := netip.ParseAddr(it.Value)
			if err != nil || a.Zone() != "" {
				p.errorf(it, "%s: dns %q is not an IP address like \"10.0.0.53\"", what, clip(it.Value))
				continue
			}
			c.DNS = append(c.DNS, a)
		}
	case "dns_search":
		for _, it := range p.strList(v, what+": dns_search", `["lab.example"]`) {
			d := strings.ToLower(strings.TrimSuffix(it.Value, "."))
			if d != "" && !isDNSName(d) {
				p.errorf(it, "%s: dns_search %q is not a domain name: use labels of %s, joined by dots", what, clip(it.Value), labelRule)
				continue
			}
			if d == "" {
				d = "."
			}
			c.DNSSearch = append(c.DNSSearch, d)
		}
	case "dns_opt":
		for _, it := range p.strList(v, what+": dns_opt", `["ndots:2"]`) {
			if it.Value == "" || strings.ContainsAny(it.Value, " \t\r\n\x00") {
				p.errorf(it, "%s: dns_opt %q is not a resolv.conf option like \"ndots:2\" or \"edns0\"", what, clip(it.Value))
				continue
			}
			c.DNSOptions = append(c.DNSOptions, it.Value)
		}
	case "extra_hosts":
		p.extraHosts(c, v, what)
	case "domainname":
		if s, ok := p.str(v, what+": domainname", `"lab.example"`); ok {
			c.Domainname = strings.ToLower(s)
			if !isDNSName(c.Domainname) {
				p.errorf(v, "%s: domainname %q is not a valid DNS name: use labels of %s, joined by dots", what, clip(s), labelRule)
			} else if len(c.Domainname) > names.HostnameMax {
				p.errorf(v, "%s: domainname %q is %d bytes: the kernel holds at most %d in a domainname", what, clip(s), len(s), names.HostnameMax)
			}
		}
	case "depends_on":
		p.dependsOn(c, v, what)
	case "healthcheck":
		p.healthcheck(c, v, what)
	default:
		return false
	}
	return true
}

// strList reads a string or a list of strings (numbers as written), the
// items' nodes returned.
func (p *parser) strList(n *yaml.Node, what, example string) []*yaml.Node {
	v := resolve(n)
	items := []*yaml.Node{v}
	switch {
	case v.Kind == yaml.SequenceNode:
		items = v.Content
	case isNull(v):
		return nil
	case v.Kind != yaml.ScalarNode:
		p.errorf(n, "%s must be a string or a list of strings like %s, got %s", what, example, describe(v))
		return nil
	}
	var out []*yaml.Node
	for _, it := range items {
		r := resolve(it)
		if r.Kind != yaml.ScalarNode || isNull(r) {
			p.errorf(it, "%s: each entry must be a string like %s, got %s", what, example, describe(r))
			continue
		}
		out = append(out, r)
	}
	return out
}

// finishRuntime makes the command's environment: env_file's variables,
// then environment's, a later one of a name winning; sorted by name, so
// that plans do not change with the order of the file.
func (p *parser) finishRuntime(c *Container, rn *runtimeNodes, what string) {
	vars := map[string]string{}
	if rn.envFile != nil {
		p.envFiles(vars, rn.envFile, what)
		c.EnvPos = p.pos(rn.envFile)
	}
	if rn.env != nil {
		p.environment(vars, rn.env, what)
		c.EnvPos = p.pos(rn.env)
	}
	for _, k := range sortedKeys(vars) {
		c.Env = append(c.Env, k+"="+vars[k])
	}
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// environment reads environment:, a mapping of names to values or a list
// of NAME=VALUE; a name without a value takes the one topo's environment
// (or the .env file) gives it, and is left out when neither does, as in
// Compose.
func (p *parser) environment(vars map[string]string, n *yaml.Node, what string) {
	set := func(at *yaml.Node, name string, val *string) {
		switch {
		case name == "":
			p.errorf(at, "%s: environment: a variable has no name: write NAME=VALUE", what)
			return
		case strings.ContainsAny(name, "=\x00"):
			p.errorf(at, "%s: environment: variable name %q holds '=' or a NUL byte: write NAME=VALUE", what, clip(name))
			return
		}
		if val == nil {
			if v, ok := p.env(name); ok {
				vars[name] = v
			}
			return
		}
		if strings.IndexByte(*val, 0) >= 0 {
			p.errorf(at, "%s: environment: the value of %s holds a NUL byte, which no environment can: remove it", what, clip(name))
			return
		}
		vars[name] = *val
	}
	v := resolve(n)
	switch v.Kind {
	case yaml.MappingNode:
		for _, e := range p.entries(v) {
			val := resolve(e.val)
			switch {
			case isNull(val):
				set(e.key, e.key.Value, nil)
			case val.Kind == yaml.ScalarNode:
				s := val.Value
				set(e.val, e.key.Value, &s)
			default:
				p.errorf(e.val, "%s: environment: %s must be a string, a number or a boolean, got %s", what, clip(e.key.Value), describe(val))
			}
		}
	case yaml.SequenceNode:
		for _, it := range v.Content {
			r := resolve(it)
			if r.Kind != yaml.ScalarNode || isNull(r) {
				p.errorf(it, "%s: environment: each entry must be a string like \"NAME=VALUE\", got %s", what, describe(r))
				continue
			}
			name, val, ok := strings.Cut(r.Value, "=")
			if !ok {
				set(r, name, nil)
				continue
			}
			set(r, name, &val)
		}
	default:
		if !isNull(v) {
			p.errorf(n, "%s: environment must be a mapping of names to values or a list of \"NAME=VALUE\", got %s", what, describe(v))
		}
	}
}

// envFiles reads env_file:, a path or a list of paths or of {path,
// required, format}, as Compose does: each a .env file (see
// parseDotEnv), whose variables are the command's, the later files' winning.
// A relative path is relative to the project's folder: the first file's,
// or an included file's own.
func (p *parser) envFiles(vars map[string]string, n *yaml.Node, what string) {
	v := resolve(n)
	items := []*yaml.Node{n}
	if v.Kind == yaml.SequenceNode {
		items = v.Content
	}
	for _, it := range items {
		path, required, at := "", true, it
		r := resolve(it)
		if r.Kind == yaml.MappingNode {
			for _, e := range p.entries(r) {
				switch e.key.Value {
				case "path":
					path, _ = p.str(e.val, what+": env_file: path", `"app.env"`)
					at = e.val
				case "required":
					required, _ = p.boolish(e.val, what+": env_file: required")
				case "format":
					if s, ok := p.str(e.val, what+": env_file: format", `"raw"`); ok && s != "raw" {
						p.errorf(e.val, "%s: env_file: format %q is not supported: topo reads .env files, and format: raw", what, clip(s))
					}
				default:
					if !strings.HasPrefix(e.key.Value, "x-") {
						p.errorf(e.key, "unknown key %q in an env_file entry of %s: valid keys are path, required and format", clip(e.key.Value), what)
					}
				}
			}
			if path == "" {
				p.errorf(it, "%s: env_file: the entry has no path", what)
				continue
			}
		} else {
			s, ok := p.str(it, what+": env_file", `"app.env"`)
			if !ok {
				continue
			}
			path = s
		}
		full := path
		if !filepath.IsAbs(full) {
			full = filepath.Join(p.projectDir(at), full)
		}
		data, err := Read(full)
		if err != nil {
			if !required && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			p.errorf(at, "%s: env_file: %s", what, readError(err))
			continue
		}
		got, err := parseEnvFile(full, data, p.env)
		if err != nil {
			p.errorf(at, "%s: env_file: %v", what, err)
			continue
		}
		for k, val := range got {
			vars[k] = val
		}
	}
}

// projectDir is the folder relative paths of node n are relative to, as
// Compose resolves them: an included file's own (its nodes carry it),
// else the first file's, whichever -f file holds n.
func (p *parser) projectDir(n *yaml.Node) string {
	file := p.origin[n]
	if file == "" || slices.Contains(p.files, file) {
		file = p.path
	}
	return filepath.Dir(file)
}

// extraHosts reads extra_hosts: a list of "NAME:ADDR" or "NAME=ADDR", or
// a mapping of names to an address or a list of them; ADDR may be
// host-gateway, and an IPv6 one in brackets.
func (p *parser) extraHosts(c *Container, n *yaml.Node, what string) {
	add := func(at *yaml.Node, name, addr string) {
		h := &ExtraHost{Name: name, Pos: p.pos(at)}
		addr = strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
		switch a, err := netip.ParseAddr(addr); {
		case name == "" || strings.ContainsAny(name, " \t\r\n#\x00"):
			p.errorf(at, "%s: extra_hosts: %q is not a host name", what, clip(name))
			return
		case addr == "host-gateway":
			h.Gateway = true
		case err != nil || a.Zone() != "":
			p.errorf(at, "%s: extra_hosts: %q is not an IP address (or host-gateway) for %s", what, clip(addr), clip(name))
			return
		default:
			h.Addr = a
		}
		c.ExtraHosts = append(c.ExtraHosts, h)
	}
	v := resolve(n)
	switch v.Kind {
	case yaml.MappingNode:
		for _, e := range p.entries(v) {
			for _, it := range p.strList(e.val, what+": extra_hosts: "+clip(e.key.Value), `"10.0.0.5"`) {
				add(it, e.key.Value, it.Value)
			}
		}
	case yaml.SequenceNode:
		for _, it := range p.strList(n, what+": extra_hosts", `["db.example:10.0.0.5"]`) {
			// "=" first: an IPv6 address holds ':'.
			name, addr, ok := strings.Cut(it.Value, "=")
			if !ok {
				name, addr, ok = strings.Cut(it.Value, ":")
			}
			if !ok {
				p.errorf(it, "%s: extra_hosts: %q is not \"NAME:ADDRESS\" or \"NAME=ADDRESS\"", what, clip(it.Value))
				continue
			}
			add(it, name, addr)
		}
	default:
		if !isNull(v) {
			p.errorf(n, "%s: extra_hosts must be a list of \"NAME:ADDRESS\" or a mapping of names to addresses, got %s", what, describe(v))
		}
	}
}

var dependsKeys = []string{"condition", "restart", "required"}

// dependsOn reads depends_on: a list of names, or a mapping of names to
// {condition, restart, required}. A dependency that profiles left out is
// an error, unless required: false, which Compose skips with a warning.
func (p *parser) dependsOn(c *Container, n *yaml.Node, what string) {
	add := func(at *yaml.Node, name, cond string, required bool) {
		if profiles, off := p.disabled[name]; off {
			if !required {
				p.note(at, "%s: depends_on %q is skipped: the service is of profile %s, which is not enabled, and required is false", what, clip(name), quoteList(profiles))
				return
			}
			p.errorf(at, "%s: depends_on %q names a service of profile %s, which is not enabled: enable it with --profile %s, or write required: false", what, clip(name), quoteList(profiles), profiles[0])
			return
		}
		c.DependsOn = append(c.DependsOn, &Dependency{Container: name, Condition: cond, Required: required, Pos: p.pos(at)})
	}
	v := resolve(n)
	switch v.Kind {
	case yaml.SequenceNode:
		for _, it := range p.strList(n, what+": depends_on", `["db"]`) {
			add(it, it.Value, ServiceStarted, true)
		}
	case yaml.MappingNode:
		for _, e := range p.entries(v) {
			cond, required := ServiceStarted, true
			for _, o := range p.mapping(e.val, what+": depends_on: "+clip(e.key.Value), "a mapping of condition, restart and required", true) {
				switch o.key.Value {
				case "condition":
					if s, ok := p.str(o.val, what+": depends_on: condition", `"service_healthy"`); ok {
						switch s {
						case ServiceStarted, ServiceHealthy, ServiceCompletedSuccessfully:
							cond = s
						default:
							p.errorf(o.val, "%s: depends_on %s: condition %q is not valid: use service_started, service_healthy or service_completed_successfully", what, clip(e.key.Value), clip(s))
						}
					}
				case "required":
					required, _ = p.boolish(o.val, what+": depends_on: required")
				case "restart":
					if b, ok := p.boolish(o.val, what+": depends_on: restart"); ok && b {
						p.note(o.key, "%s: depends_on %s: restart is ignored: topo restarts a command only when its own settings change", what, clip(e.key.Value))
					}
				default:
					if !strings.HasPrefix(o.key.Value, "x-") {
						p.errorf(o.key, "unknown key %q in depends_on %s of %s%s: valid keys are %s", clip(o.key.Value), clip(e.key.Value), what, didYouMean(o.key.Value, dependsKeys), strings.Join(dependsKeys, ", "))
					}
				}
			}
			add(e.key, e.key.Value, cond, required)
		}
	default:
		if !isNull(v) {
			p.errorf(n, "%s: depends_on must be a list of names or a mapping of names to {condition}, got %s", what, describe(v))
		}
	}
}

var healthKeys = []string{"test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"}

// healthcheck reads healthcheck: as Docker takes it: test as
// ["CMD", ARGS...], ["CMD-SHELL", "LINE"], ["NONE"] or a string (a shell
// line); disable: true is NONE.
func (p *parser) healthcheck(c *Container, n *yaml.Node, what string) {
	h := &Healthcheck{Interval: DefaultHealthInterval, Timeout: DefaultHealthTimeout,
		StartInterval: DefaultHealthStartInterval, Retries: DefaultHealthRetries, Pos: p.pos(n)}
	var test, disable *yaml.Node
	none := false
	for _, e := range p.mapping(n, what+": healthcheck", "a mapping of test, interval, timeout, retries, start_period and disable", true) {
		switch k := e.key.Value; k {
		case "test":
			test = e.val
		case "disable":
			disable = e.key
			if b, ok := p.boolish(e.val, what+": healthcheck: disable"); ok && b {
				none = true
			}
		case "interval", "timeout", "start_period", "start_interval":
			d, ok := p.duration(e.val, what+": healthcheck: "+k, k == "start_period")
			if !ok {
				continue
			}
			switch k {
			case "interval":
				h.Interval = d
			case "timeout":
				h.Timeout = d
			case "start_period":
				h.StartPeriod = d
			case "start_interval":
				h.StartInterval = d
			}
		case "retries":
			r := resolve(e.val)
			x, err := strconv.Atoi(r.Value)
			if r.Kind != yaml.ScalarNode || err != nil || x < 0 {
				p.errorf(e.val, "%s: healthcheck: retries must be a whole number like 3, got %s", what, describe(r))
				continue
			}
			if x > 0 {
				h.Retries = x
			}
		default:
			if !strings.HasPrefix(k, "x-") {
				p.errorf(e.key, "unknown key %q in %s: healthcheck%s: valid keys are %s", clip(k), what, didYouMean(k, healthKeys), strings.Join(healthKeys, ", "))
			}
		}
	}
	if none {
		if test != nil {
			p.errorf(disable, "%s: healthcheck: disable and test cannot both be set: remove one", what)
		}
		return
	}
	if test == nil {
		p.errorf(n, "%s: healthcheck has no test: topo runs no images, so there is none to take; write test: [\"CMD\", ...], or disable: true", what)
		return
	}
	v := resolve(test)
	if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" {
		if strings.TrimSpace(v.Value) == "" {
			p.errorf(test, "%s: healthcheck: test is empty", what)
			return
		}
		h.Test = []string{"/bin/sh", "-c", v.Value}
	} else {
		args, ok := p.argv(test, "healthcheck test", what)
		if !ok {
			return
		}
		switch {
		case len(args) == 0:
			p.errorf(test, "%s: healthcheck: test is empty: write [\"CMD\", ...], or disable: true", what)
			return
		case args[0] == "NONE":
			return
		case args[0] == "CMD" && len(args) > 1 && args[1] != "":
			h.Test = args[1:]
		case args[0] == "CMD-SHELL" && len(args) == 2:
			h.Test = []string{"/bin/sh", "-c", args[1]}
		default:
			p.errorf(test, "%s: healthcheck: test must be [\"CMD\", PROGRAM, ARGS...], [\"CMD-SHELL\", \"LINE\"], [\"NONE\"] or a string, got %q first with %d words", what, clip(args[0]), len(args))
			return
		}
	}
	c.Healthcheck = h
}

// duration reads a Compose duration ("1m30s", "500ms"): at least a
// millisecond, as Docker takes them, or zero where zeroOK.
func (p *parser) duration(n *yaml.Node, what string, zeroOK bool) (time.Duration, bool) {
	v := resolve(n)
	d, err := time.ParseDuration(v.Value)
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" || err != nil {
		p.errorf(n, "%s must be a duration like \"10s\" or \"1m30s\", got %s", what, describe(v))
		return 0, false
	}
	if d < time.Millisecond && !(zeroOK && d == 0) {
		p.errorf(n, "%s %s is too short: use at least 1ms", what, v.Value)
		return 0, false
	}
	return d, true
}

// checkRuntime checks what a container's runtime keys say about others:
// depends_on names containers that exist, with a healthcheck for
// service_healthy, and no cycle.
func (p *parser) checkRuntime(f *File, containers map[string]*Container, names []string) {
	for _, c := range f.Containers {
		what := fmt.Sprintf("container %q", clip(c.Name))
		if c.Mode == ModeContainer && (len(c.DNS)+len(c.DNSSearch)+len(c.DNSOptions)+len(c.ExtraHosts) > 0 || c.Domainname != "") {
			// The files are the namespace's: Docker refuses them too.
			p.add(c.ModePos, "%s: dns, dns_search, dns_opt, extra_hosts and domainname cannot be combined with network_mode %q: the container has the resolv.conf and hosts of %q, whose namespace it shares; set them there", what, modeString(c), clip(c.ModeTarget))
		}
		if c.Mode == ModeHost && len(c.DNS)+len(c.DNSSearch)+len(c.DNSOptions)+len(c.ExtraHosts) > 0 {
			p.notes.add(c.ModePos, "%s: dns, dns_search, dns_opt and extra_hosts are ignored with network_mode host: the command sees the host's own resolv.conf and hosts", what)
		}
		if c.Healthcheck != nil && len(c.Command) == 0 {
			p.notes.add(c.Healthcheck.Pos, "%s: its healthcheck is not run: the container has no command (topo runs no image's)", what)
		}
		deps := c.DependsOn[:0]
		for _, d := range c.DependsOn {
			t := containers[d.Container]
			if t == nil && !d.Required {
				p.notes.add(d.Pos, "%s: depends_on %q is skipped: there is no such container, and required is false", what, clip(d.Container))
				continue
			}
			deps = append(deps, d)
			switch {
			case d.Container == c.Name:
				p.add(d.Pos, "%s: depends_on names the container itself", what)
			case t == nil:
				p.add(d.Pos, "%s: depends_on %q names no container%s: defined containers are %s", what, clip(d.Container), didYouMean(d.Container, names), quoteList(names))
			case d.Condition == ServiceHealthy && t.Healthcheck == nil:
				p.add(d.Pos, "%s: depends_on %q with condition service_healthy, but %q has no healthcheck: give it one, or use service_started", what, clip(d.Container), clip(d.Container))
			case d.Condition == ServiceCompletedSuccessfully && len(t.Command) == 0:
				p.add(d.Pos, "%s: depends_on %q with condition service_completed_successfully, but %q has no command: nothing of it runs, or ends; give it one, or use service_started", what, clip(d.Container), clip(d.Container))
			case d.Condition == ServiceHealthy && len(t.Command) == 0:
				p.notes.add(d.Pos, "%s: depends_on %q: condition service_healthy waits for nothing: %q has no command, whose health its healthcheck would check", what, clip(d.Container), clip(d.Container))
			}
		}
		c.DependsOn = deps
	}
	// Cycles: a depth-first walk, in file order; each cycle once.
	const (
		unseen = iota
		onPath
		done
	)
	mark := map[string]int{}
	var path []string
	var walk func(c *Container)
	walk = func(c *Container) {
		mark[c.Name] = onPath
		path = append(path, c.Name)
		for _, d := range c.DependsOn {
			t := containers[d.Container]
			if t == nil || t == c {
				continue
			}
			switch mark[t.Name] {
			case onPath:
				i := slices.Index(path, t.Name)
				cycle := append(slices.Clone(path[i:]), t.Name)
				p.add(d.Pos, "container %q: depends_on makes a cycle: %s; remove one of these dependencies", clip(c.Name), clip(strings.Join(cycle, " -> ")))
			case unseen:
				walk(t)
			}
		}
		path = path[:len(path)-1]
		mark[c.Name] = done
	}
	for _, c := range f.Containers {
		if mark[c.Name] == unseen {
			walk(c)
		}
	}
}
