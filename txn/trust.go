package txn

import (
	"encoding/json"
	"fmt"
	pathpkg "path"
	"regexp"
	"slices"
	"strings"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/state"
)

// trust decides which operations read back from a journal recovery runs.
// The journal is root's alone (package safedir refuses one that is not),
// but it is still data from disk: recovery runs an operation only when it
// is one topo's plans make, on objects that carry the project's mark
// (or that recovery itself just made with it), and never starts a
// command. Whatever it refuses is left to the plan that follows, which
// starts from a fresh observation of the kernel.
type trust struct {
	project string
	rt      names.Runtime
	snap    *state.Snapshot
	// made are the namespaces and host links recovery made with the
	// project's mark, by name.
	made map[string]bool
}

// refuse says why recovery does not run an operation.
func (t *trust) refuse(format string, args ...any) error {
	return fmt.Errorf("recovery refuses it: "+format, args...)
}

// mark checks that m is one of the project's marks of kind.
func (t *trust) mark(m names.Mark, kind names.Kind) error {
	if m.Project != t.project || m.Kind != kind || m.Name == "" {
		return t.refuse("mark %q is not the project's %s mark", m, kind)
	}
	return nil
}

// namespace checks that ns is one of the project's namespaces.
func (t *trust) namespace(ns string) error {
	if t.made["ns:"+ns] {
		return nil
	}
	if n := t.snap.Namespace(ns); n != nil && names.Owns(n.Mark, t.project, names.KindNamespace) {
		return nil
	}
	return t.refuse("namespace %q does not carry the project's mark", ns)
}

// link checks that link, in ns ("" the host), is the project's: a host
// link that carries its mark, or any link of one of its namespaces.
func (t *trust) link(ns, link string) error {
	if ns != "" {
		return t.namespace(ns)
	}
	if t.made["link:"+link] {
		return nil
	}
	if l := t.snap.Host.Link(link); link != "" && l != nil && names.Owns(l.Alias, t.project, "") {
		return nil
	}
	return t.refuse("host link %q does not carry the project's mark", link)
}

// derived reports whether name is what names derives for the object of
// ref: the only objects without a mark that recovery deletes are those a
// create in flight left half made, and their names are the project's.
func (t *trust) derived(o object, ref op.Ref) bool {
	switch {
	case o.netns:
		return ref.Kind == op.RefContainer && o.ns == names.Namespace(t.project, ref.Name)
	case o.ns != "":
		return false
	case ref.Kind == op.RefNetwork:
		return o.link == names.Bridge(t.project, ref.Name)
	case ref.Kind == op.RefEndpoint:
		c, n, ok := strings.Cut(ref.Name, "/")
		return ok && o.link == names.Veth(t.project, c, n)
	}
	return false
}

// commentRe finds a rule's comment, where topo's rules carry their mark.
var commentRe = regexp.MustCompile(`--comment\s+"?([^"\s]+)"?`)

// sharedChains are the chains every project shares, and builtins the
// kernel's that topo jumps from.
var (
	sharedChains = map[string]bool{names.ChainUser: true, names.ChainInput: true, names.ChainIsolation: true, names.ChainIngress: true, names.ChainEgress: true}
	builtins     = map[string]bool{"INPUT": true, "FORWARD": true, "OUTPUT": true, "PREROUTING": true, "POSTROUTING": true}
)

// change checks one firewall change: chains are the project's or the
// shared ones, and every rule added or deleted carries the project's
// mark (or, for a jump into a shared chain, topo's shared comment).
func (t *trust) change(c firewall.Change) error {
	own := firewall.IsProjectChain(t.project, c.Chain)
	switch c.Op {
	case firewall.NewChain, firewall.DeleteChain:
		if own || sharedChains[c.Chain] {
			return nil
		}
	case firewall.Flush:
		if own {
			return nil
		}
	case firewall.Append, firewall.Insert, firewall.Delete:
		if !own && !sharedChains[c.Chain] && !builtins[c.Chain] {
			break
		}
		m := commentRe.FindStringSubmatch(c.Spec)
		if m != nil && (names.Owns(m[1], t.project, "") || m[1] == names.SharedComment) {
			return nil
		}
		return t.refuse("rule %q of chain %s does not carry the project's mark", c.Spec, c.Chain)
	}
	return t.refuse("%s of chain %s", c.Op, c.Chain)
}

// netnsFile checks a file of /etc/netns/NS/: NS is the project's, or
// gone and named as the project's namespaces are (the undo of a down
// puts the files back before it makes the namespace again).
func (t *trust) netnsFile(ns, path string) error {
	if !names.IsNetnsFile(ns, path) {
		return t.refuse("file %s is not the resolv.conf or hosts of %s/%s/", path, names.NetnsEtcDir, ns)
	}
	if t.snap.Namespace(ns) == nil && strings.HasPrefix(ns, t.project+"-") {
		return nil
	}
	return t.namespace(ns)
}

// check says whether recovery may run o.
func (t *trust) check(o op.Operation) error {
	switch o := o.(type) {
	case op.Seq:
		for _, part := range o.Steps {
			if err := t.check(part.Op); err != nil {
				return err
			}
		}
		return nil
	case op.NetnsAdd:
		return t.mark(o.Mark, names.KindNamespace)
	case op.NetnsDel:
		return t.mark(o.Mark, names.KindNamespace)
	case op.BridgeAdd:
		return t.mark(o.Mark, names.KindNetwork)
	case op.VethAdd:
		if o.Mark.Kind == names.KindLink && o.NS != "" {
			// A point-to-point link: both its ends in the project's
			// namespaces.
			if err := t.mark(o.Mark, names.KindLink); err != nil {
				return err
			}
			if err := t.namespace(o.NS); err != nil {
				return err
			}
			return t.namespace(o.PeerNS)
		}
		if err := t.mark(o.Mark, names.KindEndpoint); err != nil {
			return err
		}
		if o.Master != "" && t.link(o.NS, o.Master) != nil && !t.hostBridge(o.NS, o.Master) {
			return t.refuse("master %q of %s is neither the project's nor a bridge of the host's", o.Master, o.Link)
		}
		if o.NS != "" {
			if err := t.namespace(o.NS); err != nil {
				return err
			}
		}
		return t.namespace(o.PeerNS)
	case op.LinkDel:
		if o.Mark.Project != t.project {
			return t.refuse("%s deletes a link by its name alone", o.Command())
		}
		if o.NS != "" {
			return t.namespace(o.NS)
		}
		return nil
	case op.LinkSetMAC:
		return t.link(o.NS, o.Link)
	case op.LinkSetMTU:
		return t.link(o.NS, o.Link)
	case op.Hairpin:
		return t.link(o.NS, o.Link)
	case op.LinkUp:
		return t.link(o.NS, o.Link)
	case op.LinkDown:
		return t.link(o.NS, o.Link)
	case op.AddrAdd:
		return t.link(o.NS, o.Link)
	case op.AddrDel:
		return t.link(o.NS, o.Link)
	case op.RouteAdd:
		return t.link(o.NS, o.Link)
	case op.RouteDel:
		return t.link(o.NS, o.Link)
	case op.Sysctl:
		return t.sysctl(o)
	case op.MacvlanAdd:
		// A container's (in its namespace), or a network's host_link:
		// on a parent of the host's, which topo never changes.
		kind := names.KindEndpoint
		if o.NS == "" {
			kind = names.KindNetwork
		}
		if err := t.mark(o.Mark, kind); err != nil {
			return err
		}
		if t.snap.Host.Link(o.Parent) == nil {
			return t.refuse("parent %q of %s is not a link of the host's", o.Parent, o.Link)
		}
		if o.NS != "" {
			return t.namespace(o.NS)
		}
		return nil
	case op.SysctlReset:
		if err := t.netnsSysctl(o.NS, o.Key); err != nil {
			return err
		}
		return t.namespace(o.NS)
	case op.QdiscSet:
		return t.link(o.NS, o.Link)
	case op.QdiscDel:
		return t.link(o.NS, o.Link)
	case op.VxlanAdd:
		if err := t.mark(o.Mark, names.KindTunnel); err != nil {
			return err
		}
		return t.link("", o.Master)
	case op.FdbAdd:
		return t.link("", o.Link)
	case op.FdbDel:
		return t.link("", o.Link)
	case op.NeighAdd:
		return t.link("", o.Link)
	case op.NeighDel:
		return t.link("", o.Link)
	case op.FirewallBatch:
		if o.Table != "filter" && o.Table != "nat" {
			return t.refuse("table %q", o.Table)
		}
		for _, c := range o.Changes {
			if err := t.change(c); err != nil {
				return err
			}
		}
		return nil
	case op.FileWrite:
		if o.NS == "" && (t.rt.IsSysctlRecord(o.Path, names.HostSysctls...) || t.netnsSysctlRecord(o.Path)) {
			return nil
		}
		return t.netnsFile(o.NS, o.Path)
	case op.FileDel:
		if o.NS == "" && (t.rt.IsSysctlRecord(o.Path, names.HostSysctls...) || t.netnsSysctlRecord(o.Path)) {
			return nil
		}
		return t.netnsFile(o.NS, o.Path)
	case op.RecordsWrite:
		return t.ownProject(o.Project)
	case op.RecordsDel:
		return t.ownProject(o.Project)
	case op.ResolverStart:
		return t.ownProject(o.Project)
	case op.ResolverStop:
		return t.ownProject(o.Project)
	case op.ResolverReload:
		return t.ownProject(o.Project)
	case op.ProcStop:
		c := names.ContainerOfPidFile(o.PidFile)
		if o.PidFile != t.rt.PidFile(t.project, c) || o.DropLog && o.Log != t.rt.LogFile(t.project, c) {
			return t.refuse("pid file %s or log %s is not one of the project's", o.PidFile, o.Log)
		}
		return nil
	case op.UTSAdd:
		return t.uts(o.Path)
	case op.UTSSet:
		return t.uts(o.Path)
	case op.UTSDel:
		return t.uts(o.Path)
	case op.ProcStart:
		return t.refuse("recovery starts no command read back from a journal (%s); the next up starts the file's", op.ShellJoin(o.Argv))
	case op.CNIAdd:
		if err := t.cni(o); err != nil {
			return err
		}
		return t.namespace(o.NS)
	case op.CNIDel:
		// Its namespace may be gone (deleted by hand, or by the rest of
		// the rollback): DEL then releases what the chain holds outside.
		if err := t.cni(op.CNIAdd(o)); err != nil {
			return err
		}
		if t.snap.Namespace(o.NS) == nil && strings.HasPrefix(o.NS, t.project+"-") {
			return nil
		}
		return t.namespace(o.NS)
	case op.HostsWrite:
		for _, l := range o.CNI {
			if l.Cache != t.rt.CNI(t.project) {
				return t.refuse("%s reads the CNI cache %s, not the project's", o.Command(), l.Cache)
			}
		}
		return t.netnsFile(o.NS, o.Path)
	}
	return t.refuse("operation %s", o.Name())
}

// sysctl checks a sysctl: a net.* key of one of the project's
// namespaces, to a value the file could give; or on the host a
// forwarding key (IPv4's or IPv6's), or one of a project's link's keys
// that topo sets, to 0 or 1.
func (t *trust) sysctl(o op.Sysctl) error {
	if o.NS != "" {
		if err := t.netnsSysctl(o.NS, o.Key); err != nil {
			return err
		}
		if o.Value == "" || len(o.Value) > 256 || strings.ContainsAny(o.Value, "\n\x00") {
			return t.refuse("sysctl %s=%q", o.Key, o.Value)
		}
		return t.namespace(o.NS)
	}
	if o.Value != "0" && o.Value != "1" {
		return t.refuse("sysctl %s=%q", o.Key, o.Value)
	}
	if slices.Contains(names.HostSysctls, o.Key) {
		return nil
	}
	link, ok := names.SysctlLink(o.Key)
	if !ok || o.Key != names.RouteLocalnet(link) && o.Key != names.IPv6Off(link) {
		return t.refuse("sysctl %s", o.Key)
	}
	return t.link("", link)
}

// hostBridge reports whether link is a bridge of the host's: an external
// network's, which carries no mark of topo's, and to which the project's
// own veths are attached.
func (t *trust) hostBridge(ns, link string) bool {
	l := t.snap.Host.Link(link)
	return ns == "" && l != nil && l.Kind == "bridge"
}

// netnsSysctl checks a key set in namespace ns: a net.* key, as the file's
// sysctls: are.
func (t *trust) netnsSysctl(ns, key string) error {
	if _, ok := names.SysctlPath(key); !ok || ns == "" || !strings.HasPrefix(key, "net.") {
		return t.refuse("sysctl %s in namespace %q", key, ns)
	}
	return nil
}

// netnsSysctlRecord reports whether path is the record of the keys topo
// set in one of the project's namespaces.
func (t *trust) netnsSysctlRecord(path string) bool {
	ns := strings.TrimSuffix(pathpkg.Base(path), ".sysctls")
	return strings.HasPrefix(ns, t.project+"-") && path == t.rt.NetnsSysctls(t.project, ns)
}

// uts checks that path is a UTS namespace of the project's folder.
func (t *trust) uts(path string) error {
	if !t.rt.IsUTS(t.project, path) {
		return t.refuse("%s is not a UTS namespace of the project's (%s/)", path, t.rt.UTSDir(t.project))
	}
	return nil
}

func (t *trust) ownProject(project string) error {
	if project != t.project {
		return t.refuse("project %q is not %q", project, t.project)
	}
	return nil
}

// ran notes what a successful operation made with the project's mark.
func (t *trust) ran(o op.Operation) {
	switch o := o.(type) {
	case op.NetnsAdd:
		t.made["ns:"+o.NS] = true
	case op.BridgeAdd:
		if o.NS == "" {
			t.made["link:"+o.Link] = true
		}
	case op.VethAdd:
		if o.NS == "" {
			t.made["link:"+o.Link] = true
		}
	case op.VxlanAdd:
		t.made["link:"+o.Link] = true
	case op.MacvlanAdd:
		if o.NS == "" {
			t.made["link:"+o.Link] = true
		}
	}
}

// cni checks a chain's ADD or DEL: in the project's cache, with plugins
// named as programs of the plugin path.
func (t *trust) cni(o op.CNIAdd) error {
	if o.Cache != t.rt.CNI(t.project) {
		return t.refuse("the chain of network %s uses the CNI cache %s, not the project's", o.Network, o.Cache)
	}
	var list struct {
		Plugins []struct {
			Type string `json:"type"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal([]byte(o.Config), &list); err != nil || len(list.Plugins) == 0 {
		return t.refuse("the chain of network %s is no conflist", o.Network)
	}
	for _, p := range list.Plugins {
		if !names.IsPluginType(p.Type) {
			return t.refuse("the chain of network %s: plugin type %q is not a program's name", o.Network, p.Type)
		}
	}
	return nil
}

// firewallUndo is the part of a firewall undo that recovery runs: a batch
// read back from the journal may have been cut short before it ran
// (iptables-restore changes a table whole or not at all), and other
// projects may have come since and use the shared chains. So it leaves
// out what the kernel, as recovery observed it, already is (a rule to
// delete that is not there, one to add or a chain to make that is), and
// the deletion of the shared chains and of the jumps into them, which
// the next plan of a project decides on; the flush of a shared chain
// becomes the deletion of the project's own rules in it.
func (t *trust) firewallUndo(b op.FirewallBatch) op.FirewallBatch {
	have := t.snap.Firewall
	if b.Family == firewall.IPv6 {
		have = t.snap.Firewall6
	}
	table := have.Table(b.Table)
	has := func(chain, spec string) bool {
		c := table.Chain(chain)
		return c != nil && slices.ContainsFunc(c.Rules, func(r state.FwRule) bool { return r.Spec == spec })
	}
	out := b
	out.Changes = nil
	for _, c := range b.Changes {
		exists := table.Chain(c.Chain) != nil || builtins[c.Chain]
		switch {
		case c.Op == firewall.NewChain && exists:
		case c.Op == firewall.DeleteChain && (!exists || sharedChains[c.Chain]):
		case c.Op == firewall.Flush && !exists:
		case c.Op == firewall.Flush && sharedChains[c.Chain]:
			for _, r := range table.Chain(c.Chain).Rules {
				if m := commentRe.FindStringSubmatch(r.Spec); m != nil && names.Owns(m[1], t.project, "") {
					out.Changes = append(out.Changes, firewall.Change{Op: firewall.Delete, Chain: c.Chain, Spec: r.Spec})
				}
			}
		case c.Op == firewall.Delete && firewall.Comment(c.Spec) == names.SharedComment:
		case c.Op == firewall.Delete && !has(c.Chain, c.Spec):
		case (c.Op == firewall.Append || c.Op == firewall.Insert) && has(c.Chain, c.Spec):
		default:
			out.Changes = append(out.Changes, c)
		}
	}
	return out
}
