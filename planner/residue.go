package planner

import (
	"fmt"
	"slices"
	"strings"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/state"
)

// Comparison is how the kernel observed after a rollback compares with the
// snapshot taken before the run, in everything the project's steps can
// change: its marked namespaces and links (addresses, routes, flags), the
// host sysctls topo sets, its firewall rules, DNS files, resolver and
// container commands. Objects of other projects and programs are not
// compared: they may change meanwhile, and topo never touches them.
type Comparison struct {
	// Err is set when the kernel could not be observed after the
	// rollback: nothing is known.
	Err         error
	Differences []Difference
}

// Difference is one way the kernel differs from the earlier snapshot.
type Difference struct {
	// What says what differs: "route default via 10.0.0.1 dev eth0 in
	// namespace shop-web is missing".
	What string
	// Repair is the step that puts it back; nil when no single command
	// does (a missing namespace, a command that was restarted).
	Repair *op.Step
	// Restart says the difference is a command that runs again as a new
	// process: nothing puts the old one back, and nothing needs to.
	Restart bool
}

// AsItWas reports whether the kernel was observed equal to the snapshot.
func (c *Comparison) AsItWas() bool { return c != nil && c.Err == nil && len(c.Differences) == 0 }

// String says the outcome in words: "the kernel is as it was", or what
// differs and what repairs it.
func (c *Comparison) String() string {
	switch {
	case c == nil:
		return "the kernel was not checked afterwards"
	case c.Err != nil:
		return fmt.Sprintf("the kernel could not be observed afterwards to check it (%v): run topo plan", c.Err)
	case len(c.Differences) == 0:
		return "the kernel is as it was"
	}
	parts := make([]string, len(c.Differences))
	for i, d := range c.Differences {
		parts[i] = d.String()
	}
	ways := fmt.Sprintf("%d ways", len(parts))
	if len(parts) == 1 {
		ways = "1 way"
	}
	return fmt.Sprintf("but the kernel is not as it was, in %s: %s", ways, strings.Join(parts, "; "))
}

func (d Difference) String() string {
	switch {
	case d.Restart:
		return d.What + " (a process cannot be put back)"
	case d.Repair == nil:
		return d.What + " (no single command puts it back: topo up converges to the file, topo down removes the project)"
	}
	return d.What + " (repair: " + strings.ReplaceAll(d.Repair.Command(), "\n", "; ") + ")"
}

// Compare compares after with before for project (see Comparison). It is
// pure: the caller observes.
func Compare(project string, before, after *state.Snapshot, o Options) *Comparison {
	c := &comparer{project: project, rt: o.runtime()}
	c.sysctls(before.Sysctls, after.Sysctls)
	c.records(before.SysctlsBefore, after.SysctlsBefore)
	c.links("", ownLinks(project, &before.Host), ownLinks(project, &after.Host))
	c.namespaces(before, after)
	c.processes(before.Processes, after.Processes)
	c.files(before.Files, after.Files)
	c.resolver(before.Resolver, after.Resolver)
	c.firewall(firewall.IPv4, before.Firewall, after.Firewall)
	c.firewall(firewall.IPv6, before.Firewall6, after.Firewall6)
	return &Comparison{Differences: c.out}
}

type comparer struct {
	project string
	rt      names.Runtime
	out     []Difference
}

// check is the Ref of a repair.
var check = op.RollbackCheck

func (c *comparer) add(repair *op.Step, format string, args ...any) {
	c.out = append(c.out, Difference{What: fmt.Sprintf(format, args...), Repair: repair})
}

func (c *comparer) sysctls(before, after map[string]string) {
	for _, k := range sortedKeys(before) {
		if v, ok := after[k]; ok && v != before[k] {
			c.add(&op.Step{Action: op.Change, Ref: op.Host, Op: op.Sysctl{Key: k, Value: before[k]}}, "sysctl %s is %s, was %s", k, v, before[k])
		}
	}
}

func (c *comparer) records(before, after map[string]string) {
	for _, k := range sortedKeys(before) {
		if after[k] != before[k] {
			w, _ := sysctlRecord(c.rt, k, before[k])
			c.add(&w, "the record of %s from before topo set it is %q, was %q", k, after[k], before[k])
		}
	}
	for _, k := range sortedKeys(after) {
		if _, ok := before[k]; !ok {
			_, d := sysctlRecord(c.rt, k, after[k])
			c.add(&d, "the record of %s from before topo set it was not there", k)
		}
	}
}

// ownLinks are the links of n that carry a mark of project, by name.
func ownLinks(project string, n *state.Namespace) map[string]*state.Link {
	out := map[string]*state.Link{}
	for i := range n.Links {
		if names.Owns(n.Links[i].Alias, project, "") {
			out[n.Links[i].Name] = &n.Links[i]
		}
	}
	return out
}

func where(ns string) string {
	if ns == "" {
		return "on the host"
	}
	return "in namespace " + ns
}

func (c *comparer) links(ns string, before, after map[string]*state.Link) {
	for _, name := range sortedKeys(before) {
		b, a := before[name], after[name]
		if a == nil {
			c.add(nil, "link %s %s (%s) is missing", name, where(ns), b.Alias)
			continue
		}
		if a.Up != b.Up {
			var set op.Operation = op.LinkDown{NS: ns, Link: name}
			if b.Up {
				set = op.LinkUp{NS: ns, Link: name}
			}
			c.add(&op.Step{Action: op.Change, Ref: check, Op: set}, "link %s %s is %s, was %s", name, where(ns), upWord(a.Up), upWord(b.Up))
		}
		if a.Master != b.Master {
			c.add(nil, "link %s %s has master %q, had %q", name, where(ns), a.Master, b.Master)
		}
		if a.Alias != b.Alias {
			c.add(nil, "link %s %s is marked %q, was %q", name, where(ns), a.Alias, b.Alias)
		}
		if a.MAC != b.MAC && b.MAC != "" {
			c.add(&op.Step{Action: op.Change, Ref: check, Op: op.LinkSetMAC{NS: ns, Link: name, MAC: parseMAC(b.MAC)}}, "link %s %s has address %s, had %s", name, where(ns), a.MAC, b.MAC)
		}
		if a.MTU != b.MTU && b.MTU != 0 && a.MTU != 0 {
			c.add(&op.Step{Action: op.Change, Ref: check, Op: op.LinkSetMTU{NS: ns, Link: name, MTU: b.MTU}}, "link %s %s has MTU %d, had %d", name, where(ns), a.MTU, b.MTU)
		}
		if a.Hairpin != b.Hairpin {
			c.add(&op.Step{Action: op.Change, Ref: check, Op: op.Hairpin{NS: ns, Link: name, On: b.Hairpin}}, "bridge port %s %s has hairpin %s, had %s", name, where(ns), onWord(a.Hairpin), onWord(b.Hairpin))
		}
		c.vxlan(name, b, a)
		for _, addr := range prefixes(b.Addrs) {
			if !slices.Contains(a.Addrs, addr.String()) {
				c.add(&op.Step{Action: op.Create, Ref: check, Op: op.AddrAdd{NS: ns, Link: name, Addr: addr}}, "address %s of %s %s is missing", addr, name, where(ns))
			}
		}
		for _, addr := range prefixes(a.Addrs) {
			if !slices.Contains(b.Addrs, addr.String()) {
				c.add(&op.Step{Action: op.Destroy, Ref: check, Op: op.AddrDel{NS: ns, Link: name, Addr: addr}}, "address %s of %s %s was not there", addr, name, where(ns))
			}
		}
	}
	for _, name := range sortedKeys(after) {
		if before[name] == nil {
			a := after[name]
			mk, _ := names.ParseMark(a.Alias)
			c.add(&op.Step{Action: op.Destroy, Ref: check, Op: op.LinkDel{NS: ns, Link: name, Mark: mk}}, "link %s %s (%s) was not there", name, where(ns), a.Alias)
		}
	}
}

func upWord(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

func onWord(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// ownNamespaces are the namespaces of s marked for project, by name.
func ownNamespaces(project string, s *state.Snapshot) map[string]*state.Namespace {
	out := map[string]*state.Namespace{}
	for i := range s.Namespaces {
		if names.Owns(s.Namespaces[i].Mark, project, "") {
			out[s.Namespaces[i].Name] = &s.Namespaces[i]
		}
	}
	return out
}

func (c *comparer) namespaces(before, after *state.Snapshot) {
	bs, as := ownNamespaces(c.project, before), ownNamespaces(c.project, after)
	for _, name := range sortedKeys(bs) {
		b, a := bs[name], as[name]
		if a == nil {
			c.add(nil, "namespace %s (%s) is missing", name, b.Mark)
			continue
		}
		c.links(name, ownLinks(c.project, b), ownLinks(c.project, a))
		// Routes with a gateway are topo's; the kernel keeps the others
		// with the addresses, compared above.
		for _, r := range b.Routes {
			if r.Gateway != "" && !slices.Contains(a.Routes, r) {
				dst, gw := route(r)
				c.add(&op.Step{Action: op.Create, Ref: check, Op: op.RouteAdd{NS: name, Link: r.Dev, Dst: dst, Gateway: gw}},
					"route %s via %s dev %s in namespace %s is missing", r.Dst, r.Gateway, r.Dev, name)
			}
		}
		for _, r := range a.Routes {
			if r.Gateway != "" && !slices.Contains(b.Routes, r) {
				dst, gw := route(r)
				c.add(&op.Step{Action: op.Destroy, Ref: check, Op: op.RouteDel{NS: name, Link: r.Dev, Dst: dst, Gateway: gw}},
					"route %s via %s dev %s in namespace %s was not there", r.Dst, r.Gateway, r.Dev, name)
			}
		}
	}
	for _, name := range sortedKeys(as) {
		if bs[name] == nil {
			mk, _ := names.ParseMark(as[name].Mark)
			c.add(&op.Step{Action: op.Destroy, Ref: check, Op: op.NetnsDel{NS: name, Mark: mk}}, "namespace %s (%s) was not there", name, as[name].Mark)
		}
	}
}

func (c *comparer) processes(before, after []state.Process) {
	find := func(ps []state.Process, container string) *state.Process {
		for i := range ps {
			if ps[i].Container == container {
				return &ps[i]
			}
		}
		return nil
	}
	for _, b := range before {
		a := find(after, b.Container)
		switch {
		case a == nil && b.Running:
			c.add(nil, "the command of container %s (pid %d) no longer runs", b.Container, b.PID)
		case a == nil:
		case a.Running && b.Running && a.NS == b.NS && slices.Equal(a.Argv, b.Argv) && a.Privileges.Equal(b.Privileges) && a.PID != b.PID:
			c.out = append(c.out, Difference{What: fmt.Sprintf("the command of container %s was restarted: pid %d, was %d", b.Container, a.PID, b.PID), Restart: true})
		case a.PID != b.PID || a.Running != b.Running || a.NS != b.NS || !slices.Equal(a.Argv, b.Argv) || !a.Privileges.Equal(b.Privileges):
			c.add(nil, "the command of container %s is %s, was %s", b.Container, procWord(a), procWord(&b))
		}
	}
	for _, a := range after {
		if find(before, a.Container) == nil {
			c.add(&op.Step{Action: op.Destroy, Ref: op.Container(a.Container), Op: op.ProcStop{NS: a.NS, Argv: a.Argv, PidFile: a.PidFile, Log: a.Log, PID: a.PID}},
				"the command of container %s (%s) was not there", a.Container, procWord(&a))
		}
	}
}

func procWord(p *state.Process) string {
	run := "exited"
	if p.Running {
		run = "running"
	}
	return fmt.Sprintf("%q pid %d %s in %q", strings.Join(p.Argv, " "), p.PID, run, p.NS)
}

func (c *comparer) files(before, after map[string]string) {
	for _, p := range sortedKeys(before) {
		if a, ok := after[p]; !ok || a != before[p] {
			word := "differs"
			if !ok {
				word = "is missing"
			}
			c.add(&op.Step{Action: op.Change, Ref: check, Op: op.FileWrite{NS: names.NetnsOfFile(p), Path: p, Content: before[p]}}, "file %s %s", p, word)
		}
	}
	for _, p := range sortedKeys(after) {
		if _, ok := before[p]; !ok {
			c.add(&op.Step{Action: op.Destroy, Ref: check, Op: op.FileDel{NS: names.NetnsOfFile(p), Path: p}}, "file %s was not there", p)
		}
	}
}

func (c *comparer) resolver(before, after *state.Resolver) {
	var b, a state.Resolver
	if before != nil {
		b = *before
	}
	if after != nil {
		a = *after
	}
	// A restarted resolver serves the same: its pid does not matter.
	b.PID, a.PID = 0, 0
	if b.Alive != a.Alive || b.Records != a.Records || b.Loaded != a.Loaded || !slices.Equal(b.Listening, a.Listening) || !slices.Equal(b.Errors, a.Errors) {
		c.add(nil, "the DNS resolver of project %s differs (alive %v, was %v; listening in %d namespaces, was %d)", c.project, a.Alive, b.Alive, len(a.Listening), len(b.Listening))
	}
}

func (c *comparer) firewall(fam firewall.Family, before, after *state.Firewall) {
	b, a := firewall.Part(before, c.project), firewall.Part(after, c.project)
	for _, tc := range firewall.Diff(c.project, b, a) {
		c.add(&op.Step{Action: op.Change, Ref: check, Op: op.FirewallBatch{Family: fam, Table: tc.Table, Changes: tc.Changes}},
			"%d %s rules or chains of project %s in table %s differ", len(tc.Changes), fam.Program(), c.project, tc.Table)
	}
}
