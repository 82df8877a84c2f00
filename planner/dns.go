package planner

import (
	"fmt"
	"slices"
	"strings"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/resolver/records"
	"github.com/topolab/topo/state"
)

// Hosts is the hosts file of the namespace ns: localhost, and the names of
// the containers running in it on each of its addresses.
func Hosts(m *Model, ns string) string {
	return hosts(m.Project, byNamespace(m)[ns])
}

// nsOwner is the container of inNS whose namespace it is, or nil.
func nsOwner(inNS []*Container) *Container {
	for _, c := range inNS {
		if c.OwnsNamespace() {
			return c
		}
	}
	return nil
}

// byNamespace groups the model's containers by the namespace they run in,
// in file order.
func byNamespace(m *Model) map[string][]*Container {
	in := map[string][]*Container{}
	for _, c := range m.Containers {
		in[c.NS] = append(in[c.NS], c)
	}
	return in
}

// hostsDefaults are the lines every container's hosts file starts with,
// Docker's (moby's libnetwork/etchosts).
const hostsDefaults = "127.0.0.1\tlocalhost\n" +
	"::1\tlocalhost ip6-localhost ip6-loopback\n" +
	"fe00::0\tip6-localnet\n" +
	"ff00::0\tip6-mcastprefix\n" +
	"ff02::1\tip6-allnodes\n" +
	"ff02::2\tip6-allrouters\n"

// hosts is the hosts file of a namespace whose containers are those given:
// the defaults, the owner's extra_hosts, then each address with the
// hostname (HOSTNAME.DOMAINNAME first, with a domainname), its first
// label (as Docker: `web.example` is also `web`) and the container's
// name, of every container in the namespace.
func hosts(project string, inNS []*Container) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by topo for project %s.\n%s", project, hostsDefaults)
	owner := nsOwner(inNS)
	if owner != nil {
		for _, h := range owner.ExtraHosts {
			fmt.Fprintf(&b, "%s\t%s\n", h.Addr, h.Name)
		}
	}
	names := hostsNames(inNS)
	if owner == nil || len(names) == 0 {
		return b.String()
	}
	if len(owner.Endpoints) == 0 && len(owner.CNI) == 0 {
		// No network: the names still resolve, to loopback, as Debian
		// gives the host's own name.
		fmt.Fprintf(&b, "127.0.1.1\t%s\n", strings.Join(names, " "))
	}
	for _, e := range owner.Endpoints {
		for _, a := range e.Addrs() {
			fmt.Fprintf(&b, "%s\t%s\n", a.Addr(), strings.Join(names, " "))
		}
	}
	return b.String()
}

// hostsNames are the names a hosts file gives the addresses of a
// namespace whose containers are inNS.
func hostsNames(inNS []*Container) []string {
	var names []string
	for _, c := range inNS {
		fqdn := ""
		if c.Domainname != "" {
			fqdn = c.Hostname + "." + c.Domainname
		}
		label, _, _ := strings.Cut(c.Hostname, ".")
		for _, n := range []string{fqdn, c.Hostname, label, c.Name} {
			if n != "" && !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	return names
}

// Records is the records document of the model's embedded DNS, or nil when
// no container has a namespace to serve.
func Records(m *Model) *records.Document {
	d := &records.Document{Project: m.Project, Namespaces: []records.Namespace{}, Networks: []records.Network{}}
	nets := map[string]*records.Network{}
	for _, n := range m.Networks {
		d.Networks = append(d.Networks, records.Network{Name: n.Name, Internal: n.Internal})
	}
	for i := range d.Networks {
		nets[d.Networks[i].Name] = &d.Networks[i]
	}
	inNS := byNamespace(m)
	for _, c := range m.Containers {
		if !c.OwnsNamespace() {
			continue
		}
		ns := records.Namespace{Name: c.NS, Upstreams: c.DNS}
		for _, o := range inNS[c.NS] {
			ns.Containers = append(ns.Containers, o.Name)
		}
		for _, e := range c.Endpoints {
			ns.Networks = append(ns.Networks, e.Network)
			if n := nets[e.Network]; n != nil {
				m := records.Member{Container: c.Name, Addr: e.Addr.Addr(), Names: dnsNames(c, e)}
				if e.Addr6.IsValid() {
					m.Addr6 = e.Addr6.Addr()
				}
				n.Members = append(n.Members, m)
			}
		}
		for _, a := range c.CNI {
			ns.Networks = append(ns.Networks, a.Network)
			if n := nets[a.Network]; n != nil {
				n.Members = append(n.Members, records.Member{Container: c.Name, Names: dnsNames(c, &Endpoint{Aliases: a.Aliases}),
					CNI: &records.CNIRef{Network: a.Network, ID: c.NS, IfName: a.IfName}})
			}
		}
		d.Namespaces = append(d.Namespaces, ns)
	}
	// Other hosts' containers on this host's overlays answer by name too.
	for _, c := range m.Remote {
		for _, e := range c.Endpoints {
			if n := nets[e.Network]; n != nil && onOverlay(e) {
				n.Members = append(n.Members, records.Member{Container: c.Name, Addr: e.Addr.Addr(), Addr6: e.Addr6.Addr(), Names: dnsNames(c, e)})
			}
		}
	}
	if len(d.Namespaces) == 0 {
		return nil
	}
	d.Proxies = proxies(m)
	return d
}

// dns plans the embedded DNS: the files of each namespace, the records
// document and the resolver process.
func (d *differ) dns(m *Model) {
	doc := Records(m)
	if checks := healthChecks(m, d.rt); len(checks) > 0 {
		if doc == nil {
			// Healthchecks of host-mode containers alone: the resolver
			// process runs them, serving no namespace.
			doc = &records.Document{Project: m.Project, Namespaces: []records.Namespace{}, Networks: []records.Network{}}
		}
		doc.Health = checks
	}
	want := map[string]string{} // path -> content
	owner := map[string]string{}
	if doc != nil {
		inNS := byNamespace(m)
		for _, c := range m.Containers {
			if !c.OwnsNamespace() {
				continue
			}
			for _, f := range []struct{ name, content string }{{names.ResolvConf, ResolvConf(m.Project, c)}, {names.Hosts, hosts(m.Project, inNS[c.NS])}} {
				p := names.NetnsFile(c.NS, f.name)
				want[p], owner[p] = f.content, c.Name
			}
		}
	}
	d.files(want, owner, d.cniHosts(m, want))
	d.resolver(m, doc)
}

// files plans the DNS files of the project's namespaces: want by path,
// each for the container owner names.
func (d *differ) files(want, owner map[string]string, cni map[string]op.HostsWrite) {
	// Files of namespaces (or names) the file no longer has.
	for _, p := range sortedKeys(d.obs.Files) {
		if _, ok := want[p]; ok {
			continue
		}
		ns := names.NetnsOfFile(p)
		d.add(destroy(op.Container(d.containerOf(ns)), op.FileDel{NS: ns, Path: p}, op.FileWrite{NS: ns, Path: p, Content: d.obs.Files[p]}))
	}
	for _, p := range sortedKeys(want) {
		ns := names.NetnsOfFile(p)
		ref := op.Container(owner[p])
		old, ok := d.obs.Files[p]
		if hw, isCNI := cni[p]; isCNI {
			d.hostsWrite(ref, hw, old, ok)
			continue
		}
		switch {
		case !ok:
			d.add(create(ref, op.FileWrite{NS: ns, Path: p, Content: want[p]}, op.FileDel{NS: ns, Path: p}))
		case old != want[p]:
			d.add(change(ref, op.FileWrite{NS: ns, Path: p, Content: want[p]}, op.FileWrite{NS: ns, Path: p, Content: old}))
		}
	}
}

// resolver plans the records document doc (nil for none) and the process
// that serves it.
func (d *differ) resolver(m *Model, doc *records.Document) {
	r := d.obs.Resolver
	if r == nil {
		r = &state.Resolver{}
	}
	p := m.Project
	if doc == nil {
		if r.PID != 0 {
			d.add(destroy(op.Resolver, op.ResolverStop{Project: p}, op.ResolverStart{Project: p}))
		}
		if r.Records != "" {
			d.add(destroy(op.Resolver, op.RecordsDel{Project: p}, op.RecordsWrite{Project: p, Content: r.Records}))
		}
		return
	}
	content := string(records.Encode(doc))
	current := r.Records
	adds := d.cniAddKeys()
	if inter, ok := d.detach(m, r); ok {
		// The resolver's sockets keep a deleted namespace alive, and a
		// namespace made again by a rollback would have none: so the
		// resolver leaves the namespaces about to go before they go, and
		// a rollback brings it back into those made again.
		undo := op.Step{Action: op.Change, Ref: op.Resolver, Op: op.RecordsWrite{Project: p, Content: current}}
		d.add(op.Step{Action: op.Destroy, Ref: op.Resolver, Op: op.RecordsWrite{Project: p, Content: inter}, Undo: &undo})
		current = inter
	}
	if current != content {
		s := change(op.Resolver, op.RecordsWrite{Project: p, Content: content}, op.RecordsWrite{Project: p, Content: current})
		if current == "" {
			s = create(op.Resolver, op.RecordsWrite{Project: p, Content: content}, op.RecordsDel{Project: p})
		}
		// The resolver listens in each namespace of the document, and
		// reads the results of the CNI attachments it names.
		for _, ns := range doc.Namespaces {
			s.Needs = append(s.Needs, op.NetnsKey(ns.Name))
		}
		s.Needs = append(s.Needs, adds...)
		d.add(s)
	}
	switch {
	case !r.Alive:
		// Never started, or dead: a resolver that died is drift.
		d.add(create(op.Resolver, op.ResolverStart{Project: p}, op.ResolverStop{Project: p}))
	case r.Records == content && (r.Loaded != records.Hash([]byte(content)) || !listensIn(r, doc)):
		// Current records on disk, but the resolver serves others, or
		// misses a namespace (one made again since it listened): stale.
		d.add(change(op.Resolver, op.ResolverReload{Project: p}, op.ResolverReload{Project: p}))
	case len(adds) > 0 && current == content:
		// The records name CNI attachments whose results the plan
		// makes again: the resolver reads them anew.
		s := change(op.Resolver, op.ResolverReload{Project: p}, op.ResolverReload{Project: p})
		s.Needs = adds
		d.add(s)
	}
}

// detach returns the records the running resolver serves minus the
// project's namespaces the plan deletes, when there are such.
func (d *differ) detach(m *Model, r *state.Resolver) (string, bool) {
	if !r.Alive || r.Records == "" {
		return "", false
	}
	keep := map[string]bool{}
	for _, c := range m.Containers {
		if c.OwnsNamespace() {
			keep[c.NS] = true
		}
	}
	// Only a namespace of the project's that stays in the kernel and
	// leaves the file can be in the records and go: without one, the
	// records (large, for many containers) need not be read.
	going := false
	for _, n := range d.obs.Namespaces {
		if mk, ok := names.ParseMark(n.Mark); ok && mk.Project == m.Project && !keep[n.Name] {
			going = true
			break
		}
	}
	if !going {
		return "", false
	}
	old, err := records.Decode([]byte(r.Records))
	if err != nil {
		return "", false
	}
	inter := *old
	inter.Namespaces = nil
	for _, ns := range old.Namespaces {
		if keep[ns.Name] || d.namespace(ns.Name) == nil {
			inter.Namespaces = append(inter.Namespaces, ns)
		}
	}
	if len(inter.Namespaces) == len(old.Namespaces) {
		return "", false
	}
	return string(records.Encode(&inter)), true
}

// listensIn reports whether r listens in exactly doc's namespaces.
func listensIn(r *state.Resolver, doc *records.Document) bool {
	if len(r.Listening) != len(doc.Namespaces) {
		return false
	}
	listening := make(map[string]bool, len(r.Listening))
	for _, ns := range r.Listening {
		listening[ns] = true
	}
	for _, ns := range doc.Namespaces {
		if !listening[ns.Name] {
			return false
		}
	}
	return true
}

// containerOf names the container whose namespace ns is, from its mark.
func (d *differ) containerOf(ns string) string {
	if n := d.namespace(ns); n != nil {
		if mk, ok := names.ParseMark(n.Mark); ok {
			return mk.Name
		}
	}
	return ns
}

// dnsNames lists the names the embedded DNS gives a container on a
// network: its name, hostname and aliases there.
func dnsNames(c *Container, e *Endpoint) []string {
	names := []string{c.Name}
	for _, n := range append([]string{c.Hostname}, e.Aliases...) {
		if n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}
