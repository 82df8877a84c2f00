package planner

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sort"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

// Options are what a plan depends on besides the file and the snapshot.
type Options struct {
	// Runtime locates the runtime files steps name (container logs and
	// pid files, the records of host sysctls); the zero value is
	// names.DefaultRuntime.
	Runtime names.Runtime
	// Host is the host of a file with hosts: whose part to plan; ""
	// for the one whose address this machine has (overlay.go).
	Host string
	// Elsewhere lets Host be a host this machine is not: its part is
	// planned against an empty kernel (plan --host), never applied.
	Elsewhere bool
}

func (o Options) runtime() names.Runtime {
	if o.Runtime.Root == "" {
		return names.DefaultRuntime
	}
	return o.Runtime
}

// Up plans the steps that make the kernel match f. It fails, before any
// step, when a name topo needs is held by an object topo did not make, or
// a host port it publishes by something else.
func Up(f *spec.File, obs *state.Snapshot, o Options) (*Plan, *Model, error) {
	obs, err := hostSnapshot(f, obs, o)
	if err != nil {
		return nil, nil, err
	}
	m, local, err := desire(f, obs, o.Host)
	if err != nil {
		return nil, nil, err
	}
	if err := errors.Join(checkSCTP(local, obs), checkHostPorts(local, obs), checkProxyPorts(local, obs), checkNetem(local, obs)); err != nil {
		return nil, nil, err
	}
	p, err := diff(m, obs, o.runtime())
	if err != nil {
		return nil, nil, err
	}
	return p, m, nil
}

// Down plans the removal of every object marked for project, and of nothing
// else. When no other project is left, it also puts ip_forward back to the
// value recorded before topo first set it, unless something else changed
// it since (it is no longer 1): then it only drops the record.
func Down(project string, obs *state.Snapshot, o Options) *Plan {
	rt := o.runtime()
	d := newDiffer(&Model{Project: project}, obs, rt)
	d.model(&Model{Project: project}) // an empty model cannot collide
	for _, key := range names.HostSysctls {
		before, ok := obs.SysctlsBefore[key]
		if !ok || othersPresent(project, obs) {
			continue
		}
		if now := obs.Sysctls[key]; now == "1" && before != "1" {
			d.add(change(op.Host, op.Sysctl{Key: key, Value: before}, op.Sysctl{Key: key, Value: now}))
		}
		_, del := sysctlRecord(rt, key, before)
		// After forwarding is put back: a crash between them leaves the
		// record for the next down.
		del.Needs = []op.Key{op.SysctlKey("", key)}
		d.add(del)
	}
	return d.plan()
}

// sysctlRecord returns the steps that write and remove the record of the
// value a host sysctl had before topo changed it (names.Runtime's
// SysctlRecord), each the other's undo.
func sysctlRecord(rt names.Runtime, key, value string) (write, del op.Step) {
	path := rt.SysctlRecord(key)
	write = op.Step{Action: op.Create, Ref: op.Host, Op: op.FileWrite{Path: path, Content: value + "\n"}}
	del = op.Step{Action: op.Destroy, Ref: op.Host, Op: op.FileDel{Path: path}}
	w, d := write, del
	write.Undo, del.Undo = &d, &w
	return write, del
}

// othersPresent reports whether the kernel holds a bridge or a namespace
// of another project, which may need forwarding.
func othersPresent(project string, obs *state.Snapshot) bool {
	for _, l := range obs.Host.Links {
		if mk, ok := names.ParseMark(l.Alias); ok && mk.Project != project {
			return true
		}
	}
	for _, n := range obs.Namespaces {
		if mk, ok := names.ParseMark(n.Mark); ok && mk.Project != project {
			return true
		}
	}
	return false
}

// step is a step with its undo: the same object, the inverse action.
func step(a op.Action, ref op.Ref, do, undo op.Operation) op.Step {
	return op.Step{Action: a, Ref: ref, Op: do, Undo: &op.Step{Action: a.Inverse(), Ref: ref, Op: undo}}
}

func create(ref op.Ref, do, undo op.Operation) op.Step  { return step(op.Create, ref, do, undo) }
func change(ref op.Ref, do, undo op.Operation) op.Step  { return step(op.Change, ref, do, undo) }
func destroy(ref op.Ref, do, undo op.Operation) op.Step { return step(op.Destroy, ref, do, undo) }

// differ plans one project: what the kernel holds of it (indexed once),
// what the model wants, and the steps between them.
type differ struct {
	project string
	obs     *state.Snapshot
	rt      names.Runtime
	nsIndex map[string]*state.Namespace // obs's namespaces by name
	steps   []op.Step
	errs    []error

	// What the project owns in the kernel.
	ownNS   map[string]*state.Namespace
	bridges map[string]*state.Link
	tunnels map[string]*state.Link // overlays' VXLAN devices, by network
	eps     map[string]*observedEndpoint
	// What the file wants, by the same keys.
	wantNet map[string]*Network
	wantNS  map[string]*Container
	wantEP  map[string]*Endpoint
	epOwner map[string]*Container
	// routesGone are the routes the plan deletes (routeID), which the
	// file's routes are then added again after.
	routesGone map[string]bool
	// linksGone are the links (by mark name) that go with their
	// namespaces, whose undo rebuilds them (links.go).
	linksGone map[string]bool
	// cniAdded are the CNI attachments the plan adds (cni.go).
	cniAdded map[string]bool
}

// observedEndpoint is what the kernel holds of one endpoint mark.
type observedEndpoint struct {
	host   *state.Link // host end, nil if missing
	ns     string      // namespace of the container end
	inner  *state.Link // container end, nil if missing
	routes []state.Route
}

func newDiffer(m *Model, obs *state.Snapshot, rt names.Runtime) *differ {
	d := &differ{project: m.Project, obs: obs, rt: rt}
	// Room for the usual number of steps (an up makes about 8 a container,
	// a down about 4 a namespace): growing the slice copied it a dozen
	// times, 15% of planning an up at N=1000.
	d.steps = make([]op.Step, 0, 8*len(m.Containers)+4*len(obs.Namespaces)+2*len(obs.Host.Links)+16)
	d.indexKernel()
	d.indexModel(m)
	return d
}

// namespace returns the observed namespace called name, or nil: through
// an index, since planning asks once per container.
func (d *differ) namespace(name string) *state.Namespace {
	if d.nsIndex == nil {
		d.nsIndex = make(map[string]*state.Namespace, len(d.obs.Namespaces))
		for i := range d.obs.Namespaces {
			d.nsIndex[d.obs.Namespaces[i].Name] = &d.obs.Namespaces[i]
		}
	}
	return d.nsIndex[name]
}

func (d *differ) add(s op.Step) { d.steps = append(d.steps, s) }

// plan is the steps planned, in order.
func (d *differ) plan() *Plan {
	return &Plan{Project: d.project, Steps: order(d.steps)}
}

func diff(m *Model, obs *state.Snapshot, rt names.Runtime) (*Plan, error) {
	d := newDiffer(m, obs, rt)
	d.checkCollisions(m)
	if len(d.errs) > 0 {
		return nil, spec.Join(d.errs...)
	}
	d.model(m)
	return d.plan(), nil
}

// indexKernel indexes what the project owns in the kernel: its
// namespaces, bridges and endpoints.
func (d *differ) indexKernel() {
	obs, project := d.obs, d.project
	d.ownNS = map[string]*state.Namespace{}
	for i := range obs.Namespaces {
		ns := &obs.Namespaces[i]
		if names.Owns(ns.Mark, project, names.KindNamespace) {
			d.ownNS[ns.Name] = ns
		}
	}
	d.bridges = map[string]*state.Link{}
	d.tunnels = map[string]*state.Link{}
	d.eps = map[string]*observedEndpoint{}
	for i := range obs.Host.Links {
		l := &obs.Host.Links[i]
		mk, ok := names.ParseMark(l.Alias)
		if !ok || mk.Project != project {
			continue
		}
		switch mk.Kind {
		case names.KindNetwork:
			d.bridges[mk.Name] = l
		case names.KindTunnel:
			d.tunnels[mk.Name] = l
		case names.KindEndpoint:
			d.endpointOf(mk.Name).host = l
		}
	}
	for _, ns := range sortedKeys(d.ownNS) {
		n := d.ownNS[ns]
		for i := range n.Links {
			l := &n.Links[i]
			if !names.Owns(l.Alias, project, names.KindEndpoint) {
				continue
			}
			mk, _ := names.ParseMark(l.Alias)
			e := d.endpointOf(mk.Name)
			e.ns, e.inner = ns, l
			// Only default routes and those of topo's protocol (a
			// file's routes:) are topo's; the kernel makes and removes
			// the subnet routes of addresses itself.
			for _, r := range n.Routes {
				if r.Dev == l.Name && (isDefault(r) || r.Topo) {
					e.routes = append(e.routes, r)
				}
			}
		}
	}
}

func (d *differ) endpointOf(name string) *observedEndpoint {
	if d.eps[name] == nil {
		d.eps[name] = &observedEndpoint{}
	}
	return d.eps[name]
}

// indexModel indexes what the file wants by the kernel's keys.
func (d *differ) indexModel(m *Model) {
	d.wantNet = map[string]*Network{}
	for _, n := range m.Networks {
		d.wantNet[n.Name] = n
	}
	d.wantNS = map[string]*Container{}
	d.wantEP = map[string]*Endpoint{}
	d.epOwner = map[string]*Container{}
	for _, c := range m.Containers {
		if !c.OwnsNamespace() {
			continue
		}
		d.wantNS[c.NS] = c
		for _, e := range c.Endpoints {
			key := names.Endpoint(c.Name, e.Network)
			d.wantEP[key] = e
			d.epOwner[key] = c
		}
	}
}

// model plans every step between the kernel and m.
func (d *differ) model(m *Model) {
	kept, routeGone := d.endpointsGone()
	d.forwarding(m)
	for _, n := range m.Networks {
		n.Driver.network(d, n, d.bridges[n.Name])
	}
	for _, c := range m.Containers {
		if c.OwnsNamespace() {
			d.container(c, kept, routeGone[c.NS])
		}
	}
	d.cniAttachments(m)
	d.links(m)
	for _, c := range m.Containers {
		if c.OwnsNamespace() {
			d.routes(c)
			d.sysctls(c)
		}
	}
	d.sysctlRecordsGone()
	d.uts()
	d.processes(m)
	d.firewall(m)
	d.dns(m)
}

// endpointsGone destroys what the file no longer has, or has otherwise:
// endpoints, namespaces and bridges. It returns the endpoints kept as
// they are, and the namespaces whose default route goes with them.
func (d *differ) endpointsGone() (kept, routeGone map[string]bool) {
	kept, routeGone = map[string]bool{}, map[string]bool{}
	rebuild := map[string][]op.Step{} // by namespace that goes away
	for _, key := range sortedKeys(d.eps) {
		o := d.eps[key]
		if d.intact(key, o) {
			kept[key] = true
			continue
		}
		for _, r := range o.routes {
			if isDefault(r) {
				routeGone[o.ns] = true
			}
		}
		if o.inner != nil && o.ns != "" && d.wantNS[o.ns] == nil {
			if parts, ok := endpointRebuild(key, o); ok {
				// The whole container goes: its veths, addresses and
				// routes go with its namespace, whose undo rebuilds them.
				rebuild[o.ns] = append(rebuild[o.ns], parts...)
				continue
			}
		}
		d.destroyEndpoint(key, o)
	}
	d.linksGoneWithNamespaces(rebuild)
	d.namespacesGone(rebuild)
	d.tunnelsGone()
	d.bridgesGone()
	return kept, routeGone
}

// intact reports whether the kernel's endpoint key is the one the file
// wants, whole: its driver says.
func (d *differ) intact(key string, o *observedEndpoint) bool {
	want := d.wantEP[key]
	return want != nil && o.inner != nil && want.Driver.intact(o, want, d.epOwner[key].NS)
}

// namespacesGone deletes the namespaces the file no longer has; the
// undo of one that takes veths with it rebuilds them.
func (d *differ) namespacesGone(rebuild map[string][]op.Step) {
	for _, name := range sortedKeys(d.ownNS) {
		if d.wantNS[name] != nil {
			continue
		}
		mk, _ := names.ParseMark(d.ownNS[name].Mark)
		ref := op.Container(mk.Name)
		add := op.Step{Action: op.Create, Ref: ref, Op: op.NetnsAdd{NS: name, Mark: mk}}
		undo := &add
		// The sysctls topo set go with the namespace: a new one has the
		// defaults, so its undo sets them again.
		parts := rebuild[name]
		now := d.ownNS[name].Sysctls
		for _, k := range slices.Sorted(maps.Keys(now)) {
			parts = append(parts, op.Step{Action: op.Change, Ref: ref, Op: op.Sysctl{NS: name, Key: k, Value: now[k]}})
		}
		if len(parts) > 0 {
			undo = &op.Step{Action: op.Create, Ref: ref, Op: op.Seq{Steps: append([]op.Step{add}, parts...)}}
		}
		d.add(op.Step{Action: op.Destroy, Ref: ref, Op: op.NetnsDel{NS: name, Mark: mk}, Undo: undo})
	}
}

// forwarding turns ip_forward on for networks that reach out, and IPv6's
// forwarding for those of them with IPv6, recording the value each had
// for the last project's down.
func (d *differ) forwarding(m *Model) {
	// A macvlan's traffic is the LAN's, not routed by the host. A CNI
	// chain's bridge (isGateway) and ptp plugins turn forwarding on
	// themselves: topo does it first, so that it is recorded, rolled
	// back and put back at the last down as its own.
	routed := func(n *Network) bool { return !n.Internal && n.Driver.firewalled() }
	d.forwardingOf(names.IPForward, slices.ContainsFunc(m.Networks, func(n *Network) bool { return routed(n) || n.CNI != nil && n.CNI.Forwards }))
	d.forwardingOf(names.IPv6Forward, slices.ContainsFunc(m.Networks, func(n *Network) bool {
		return routed(n) && n.Subnet6.IsValid() || n.CNI != nil && n.CNI.Forwards6
	}))
}

func (d *differ) forwardingOf(key string, needed bool) {
	if !needed {
		return
	}
	old := d.obs.Sysctls[key]
	if old == "1" {
		return
	}
	if old == "" {
		old = "0"
	}
	on := change(op.Host, op.Sysctl{Key: key, Value: "1"}, op.Sysctl{Key: key, Value: old})
	if _, ok := d.obs.SysctlsBefore[key]; !ok {
		// The first to set it records what it was, before setting it.
		write, _ := sysctlRecord(d.rt, key, old)
		d.add(write)
		on.Needs = []op.Key{op.FileKey(d.rt.SysctlRecord(key))}
	}
	d.add(on)
}

// container plans a container's namespace, endpoints and default route.
func (d *differ) container(c *Container, kept map[string]bool, routeGone bool) {
	ns := d.ownNS[c.NS]
	if ns == nil {
		mk := names.NewMark(d.project, names.KindNamespace, c.Name)
		d.add(create(op.Container(c.Name), op.NetnsAdd{NS: c.NS, Mark: mk}, op.NetnsDel{NS: c.NS, Mark: mk}))
	}
	for _, e := range c.Endpoints {
		key := names.Endpoint(c.Name, e.Network)
		var o *observedEndpoint
		if kept[key] {
			o = d.eps[key]
		}
		if d.endpoint(c, e, o) {
			routeGone = true
		}
	}
	d.defaultRoute(c, ns, routeGone)
}

// checkCollisions refuses names held by objects topo did not make for this
// purpose: topo never changes an object without its mark.
func (d *differ) checkCollisions(m *Model) {
	for _, name := range sortedKeys(d.wantNS) {
		c := d.wantNS[name]
		ns := d.namespace(name)
		if want := names.NewMark(m.Project, names.KindNamespace, c.Name).String(); ns != nil && ns.Mark != want {
			d.errs = append(d.errs, fmt.Errorf("container %s: namespace %s already exists and %s; remove it (ip netns del %s) or rename the container or the project",
				c.Name, name, owner(ns.Mark), name))
		}
	}
	for _, name := range sortedKeys(d.wantNet) {
		n := d.wantNet[name]
		if n.External {
			continue // the host's bridge, which topo joins
		}
		if l := d.obs.Host.Link(n.Bridge); n.Bridge != "" && l != nil && l.Alias != names.NewMark(m.Project, names.KindNetwork, n.Name).String() {
			d.errs = append(d.errs, fmt.Errorf("network %s: link %s already exists and %s; remove it or rename the network", n.Name, n.Bridge, owner(l.Alias)))
		}
	}
	// By name through a map: the host has a link per endpoint, and a scan
	// of them per endpoint made a no-op plan at N=5000 read 25 million.
	hostLinks := make(map[string]*state.Link, len(d.obs.Host.Links))
	for i := range d.obs.Host.Links {
		hostLinks[d.obs.Host.Links[i].Name] = &d.obs.Host.Links[i]
	}
	for _, key := range sortedKeys(d.wantEP) {
		e := d.wantEP[key]
		if l := hostLinks[e.HostLink]; e.HostLink != "" && l != nil && l.Alias != names.NewMark(m.Project, names.KindEndpoint, key).String() {
			d.errs = append(d.errs, fmt.Errorf("container %s: link %s already exists and %s; remove it", d.epOwner[key].Name, e.HostLink, owner(l.Alias)))
		}
	}
	d.checkTunnels(m)
	if len(m.Networks) > 0 { // a project without networks has no chains
		d.errs = append(d.errs, firewall.Conflicts(m.Project, d.obs.Firewall)...)
		d.errs = append(d.errs, firewall.Conflicts(m.Project, d.obs.Firewall6)...)
	}
}

func owner(alias string) string {
	if mk, ok := names.ParseMark(alias); ok {
		return fmt.Sprintf("belongs to %s %s of project %s", mk.Kind.Word(), mk.Name, mk.Project)
	}
	return "was not made by topo"
}

// destroyEndpoint removes what the kernel holds of an endpoint, routes and
// addresses first so that each removal can be undone on its own.
func (d *differ) destroyEndpoint(key string, o *observedEndpoint) {
	ref := op.Endpoint(key)
	if o.inner != nil {
		d.routesDel(ref, o)
		// The qdisc goes with the link; removed first, its undo puts it
		// back on the link made again.
		d.impair(ref, o.ns, o.inner.Name, o.inner.Qdisc, op.Impairment{})
		for _, a := range prefixes(o.inner.Addrs) {
			d.add(destroy(ref, op.AddrDel{NS: o.ns, Link: o.inner.Name, Addr: a}, op.AddrAdd{NS: o.ns, Link: o.inner.Name, Addr: a}))
		}
	}
	rebuild, rebuilds := rebuildOf(o)
	switch {
	case o.host != nil && rebuilds:
		mk, _ := names.ParseMark(o.host.Alias)
		d.add(destroy(ref, op.LinkDel{Link: o.host.Name, Mark: mk}, rebuild))
	case o.host != nil:
		// A lone end cannot be rebuilt as it was: its removal has no undo.
		mk, _ := names.ParseMark(o.host.Alias)
		d.add(op.Step{Action: op.Destroy, Ref: ref, Op: op.LinkDel{Link: o.host.Name, Mark: mk}})
	case o.inner != nil && rebuilds:
		mk, _ := names.ParseMark(o.inner.Alias)
		d.add(destroy(ref, op.LinkDel{NS: o.ns, Link: o.inner.Name, Mark: mk}, rebuild))
	case o.inner != nil:
		mk, _ := names.ParseMark(o.inner.Alias)
		d.add(op.Step{Action: op.Destroy, Ref: ref, Op: op.LinkDel{NS: o.ns, Link: o.inner.Name, Mark: mk}})
	}
}

// routesDel deletes the routes through an endpoint's container end, each
// with its undo.
func (d *differ) routesDel(ref op.Ref, o *observedEndpoint) {
	for _, r := range o.routes {
		d.routeDel(ref, o.ns, r)
	}
}

// endpointRebuild is what recreates an intact endpoint of a container
// that goes away with its namespace: its link, then the container end's
// addresses and routes. ok is false when no driver can make it again.
func endpointRebuild(key string, o *observedEndpoint) (steps []op.Step, ok bool) {
	ref := op.Endpoint(key)
	link, ok := rebuildOf(o)
	if !ok {
		return nil, false
	}
	out := []op.Step{{Action: op.Create, Ref: ref, Op: link}}
	for _, a := range prefixes(o.inner.Addrs) {
		out = append(out, op.Step{Action: op.Create, Ref: ref, Op: op.AddrAdd{NS: o.ns, Link: o.inner.Name, Addr: a}})
	}
	if q := observedImpairment(o.inner.Qdisc); !q.IsZero() {
		out = append(out, op.Step{Action: op.Create, Ref: ref, Op: op.QdiscSet{NS: o.ns, Link: o.inner.Name, Imp: q}})
	}
	for _, r := range o.routes {
		dst, gw := route(r)
		out = append(out, op.Step{Action: op.Create, Ref: ref, Op: op.RouteAdd{NS: o.ns, Link: r.Dev, Dst: dst, Gateway: gw, Metric: r.Metric, Proto: routeProto(r)}})
	}
	return out, true
}

func (d *differ) addrAdd(ref op.Ref, ns, link string, addr netip.Prefix) {
	d.add(create(ref, op.AddrAdd{NS: ns, Link: link, Addr: addr}, op.AddrDel{NS: ns, Link: link, Addr: addr}))
}

func (d *differ) linkUp(ref op.Ref, ns, link string) {
	d.add(change(ref, op.LinkUp{NS: ns, Link: link}, op.LinkDown{NS: ns, Link: link}))
}

// mtu sets a link's MTU when the kernel says it is another. An MTU of 0
// was not observed (a snapshot from before topo read them).
func (d *differ) mtu(ref op.Ref, ns string, have *state.Link, want int) {
	if have.MTU != 0 && have.MTU != want {
		d.add(change(ref, op.LinkSetMTU{NS: ns, Link: have.Name, MTU: want}, op.LinkSetMTU{NS: ns, Link: have.Name, MTU: have.MTU}))
	}
}

// syncAddrs makes link carry exactly want (one address of each family
// at most), the kernel's link-local ones aside.
func (d *differ) syncAddrs(ref op.Ref, ns, link string, have []string, want ...netip.Prefix) {
	got := prefixes(have)
	for _, a := range got {
		if !slices.Contains(want, a) {
			d.add(destroy(ref, op.AddrDel{NS: ns, Link: link, Addr: a}, op.AddrAdd{NS: ns, Link: link, Addr: a}))
		}
	}
	for _, a := range want {
		if !slices.Contains(got, a) {
			d.addrAdd(ref, ns, link, a)
		}
	}
}

// endpoint makes an endpoint as the file wants it. It reports whether it
// deletes the routes through the endpoint's container end, which the
// caller then plans again.
func (d *differ) endpoint(c *Container, e *Endpoint, have *observedEndpoint) (routesGone bool) {
	ref := op.Endpoint(names.Endpoint(c.Name, e.Network))
	if have == nil {
		e.Driver.create(d, ref, c, e)
		for _, a := range e.Addrs() {
			d.addrAdd(ref, c.NS, e.IfName, a)
		}
		if !e.Imp.IsZero() {
			d.add(create(ref, op.QdiscSet{NS: c.NS, Link: e.IfName, Imp: e.Imp}, op.QdiscDel{NS: c.NS, Link: e.IfName}))
		}
		return false
	}
	e.Driver.repair(d, ref, e, have)
	if !have.inner.Up {
		d.linkUp(ref, c.NS, have.inner.Name)
	}
	d.mtu(ref, c.NS, have.inner, cmp.Or(e.MTU, names.DefaultMTU))
	d.endpointMAC(ref, c.NS, e, have.inner)
	d.impair(ref, c.NS, e.IfName, have.inner.Qdisc, e.Imp)
	want := e.Addrs()
	if slices.ContainsFunc(prefixes(have.inner.Addrs), func(a netip.Prefix) bool { return !slices.Contains(want, a) }) {
		// Every address goes before the new one comes (an address
		// change), and with the last one of a family the kernel drops
		// every route of it through the link: delete them first, as
		// steps whose undo puts them back, and let the caller add them
		// again after the new address.
		d.routesDel(ref, have)
		routesGone = len(have.routes) > 0
	}
	d.syncAddrs(ref, c.NS, e.IfName, have.inner.Addrs, want...)
	return routesGone
}

// defaultRoute makes the container's default routes, IPv4's and IPv6's,
// point at its first non-internal network's gateway of the family, or
// removes one when there is none.
func (d *differ) defaultRoute(c *Container, ns *state.Namespace, gone bool) {
	d.defaultRouteOf(c, ns, gone, op.DefaultRoute, c.DefaultGW)
	d.defaultRouteOf(c, ns, gone, op.DefaultRoute6, c.DefaultGW6)
}

// defaultRouteOf makes the default route to dst go through want.
func (d *differ) defaultRouteOf(c *Container, ns *state.Namespace, gone bool, dst netip.Prefix, want netip.Addr) {
	ref := op.Container(c.Name)
	var have *state.Route
	if ns != nil {
		for i := range ns.Routes {
			// A file's default route (topo's protocol) is its routes',
			// one through a CNI interface its chain's. One the plan
			// deletes with its link's addresses (gone) is added again;
			// one through another link stays.
			if ns.Routes[i].Dst == op.DstString(dst) && !ns.Routes[i].Topo && !c.cniIfName(ns.Routes[i].Dev) && !(gone && d.routesGone[routeID(c.NS, ns.Routes[i])]) {
				have = &ns.Routes[i]
			}
		}
	}
	if have != nil && have.Gateway == addrString(want) {
		return
	}
	if have != nil {
		_, gw := route(*have)
		d.add(destroy(ref, op.RouteDel{NS: c.NS, Link: have.Dev, Dst: dst, Gateway: gw},
			op.RouteAdd{NS: c.NS, Link: have.Dev, Dst: dst, Gateway: gw}))
	}
	if want.IsValid() {
		s := create(ref, op.RouteAdd{NS: c.NS, Dst: dst, Gateway: want}, op.RouteDel{NS: c.NS, Dst: dst, Gateway: want})
		// Through the address of the network whose gateway it is.
		for _, e := range c.Endpoints {
			for _, a := range e.Addrs() {
				if a.Masked().Contains(want) {
					s.Needs = append(s.Needs, op.AddrKey(c.NS, e.IfName))
				}
			}
		}
		d.add(s)
	}
}

// isDefault says r is a default route, of either family.
func isDefault(r state.Route) bool { return r.Dst == "default" || r.Dst == "::/0" }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// prefixes reads the observed addresses topo manages (CIDR form, host
// part kept): all but IPv6 link-local ones, which the kernel makes on a
// link as it comes up (a bridge's, once it has a port) and takes away
// with it. No plan adds, removes or restores them.
func prefixes(addrs []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a); err == nil && !p.Addr().IsLinkLocalUnicast() {
			out = append(out, p)
		}
	}
	return out
}

// route reads an observed route's destination and gateway.
func route(r state.Route) (netip.Prefix, netip.Addr) {
	dst, _ := op.ParseDst(r.Dst)
	gw, _ := netip.ParseAddr(r.Gateway)
	return dst, gw
}

func parseMAC(s string) net.HardwareAddr {
	mac, _ := net.ParseMAC(s)
	return mac
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// addrMAC is the MAC of the first of a link's IPv4 addresses, nil if it
// has none: what a link topo made with that address has, so that an undo
// rebuilds the link as it was.
func addrMAC(addrs []string) net.HardwareAddr {
	for _, p := range prefixes(addrs) {
		if p.Addr().Is4() {
			return names.MAC(p.Addr())
		}
	}
	return nil
}

// keptMTU is the MTU a rebuild gives a link as it was: 0 (the kernel's)
// when it had the default or was not observed.
func keptMTU(l *state.Link) int {
	if l.MTU == names.DefaultMTU {
		return 0
	}
	return l.MTU
}
