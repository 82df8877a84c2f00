package planner

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/rundir"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

// IPForward is the sysctl that lets non-internal networks reach out.
const IPForward = "net.ipv4.ip_forward"

// Up plans the steps that make the kernel match f. It fails, before any
// step, when a name topo needs is held by an object topo did not make, or
// a host port it publishes by something else.
func Up(f *spec.File, obs *state.Snapshot) (*Plan, *Model, error) {
	m, err := Desire(f, obs)
	if err != nil {
		return nil, nil, err
	}
	if err := errors.Join(checkSCTP(f, obs), checkHostPorts(f, obs)); err != nil {
		return nil, nil, err
	}
	p, err := diff(m, obs)
	if err != nil {
		return nil, nil, err
	}
	return p, m, nil
}

// Down plans the removal of every object marked for project, and of nothing
// else. When no other project is left, it also puts ip_forward back to the
// value recorded before topo first set it, unless something else changed
// it since (it is no longer 1): then it only drops the record.
func Down(project string, obs *state.Snapshot) *Plan {
	p, _ := diff(&Model{Project: project}, obs) // an empty model cannot collide
	if before, ok := obs.SysctlsBefore[IPForward]; ok && !othersPresent(project, obs) {
		if now := obs.Sysctls[IPForward]; now == "1" && before != "1" {
			undo := Step{Action: Change, Op: OpSysctl, Resource: "host", Key: IPForward, Value: now}
			p.Steps = append(p.Steps, Step{Action: Change, Op: OpSysctl, Resource: "host", Key: IPForward, Value: before, Undo: &undo})
		}
		_, del := sysctlRecord(IPForward, before)
		p.Steps = append(p.Steps, del)
	}
	return p
}

// sysctlRecord returns the steps that write and remove the record of the
// value a host sysctl had before topo changed it (rundir.SysctlRecord),
// each the other's undo.
func sysctlRecord(key, value string) (write, del Step) {
	path := rundir.SysctlRecord(key)
	write = Step{Action: Create, Op: OpFileWrite, Resource: "host", Path: path, Content: value + "\n"}
	del = Step{Action: Destroy, Op: OpFileDel, Resource: "host", Path: path}
	w, d := write, del
	write.Undo, del.Undo = &d, &w
	return write, del
}

// othersPresent reports whether the kernel holds a bridge or a namespace
// of another project, which may need forwarding.
func othersPresent(project string, obs *state.Snapshot) bool {
	for _, l := range obs.Host.Links {
		if mk, ok := state.ParseMark(l.Alias); ok && mk.Project != project {
			return true
		}
	}
	for _, n := range obs.Namespaces {
		if mk, ok := state.ParseMark(n.Mark); ok && mk.Project != project {
			return true
		}
	}
	return false
}

// Phases order steps: destroys run first, in descending phase, then creates
// and changes in ascending phase, so every step finds what it depends on.
const (
	phaseSysctl = iota
	phaseNetns
	phaseBridge
	phaseBridgeUp
	phaseBridgeAddr
	phaseVeth
	phaseVethUp
	phaseEndpointAddr
	phaseRoute
	// phaseFirewall comes after everything it refers to for creates, and
	// so before everything for destroys.
	phaseFirewall
)

// Some destroys come last, after the namespaces and bridges go: deleting
// those is hundreds of milliseconds of the kernel's work at hundreds of
// containers, much of it waiting, and the real kernel runs these steps
// beside it (a down at N=500 spent 70 ms removing rules and 25 ms
// removing DNS files before deleting any namespace). Rules name links and
// addresses as strings and may outlive them for a moment; the DNS files
// of a deleted namespace stay in /etc/netns until their steps.
const (
	// phaseFilesGone: a DNS file of a namespace that goes.
	phaseFilesGone = phaseSysctl - 1 - iota
	// phaseFirewallGone: a firewall step that only removes rules.
	phaseFirewallGone
)

type plannedStep struct {
	phase int
	Step
}

type differ struct {
	project string
	obs     *state.Snapshot
	nsIndex map[string]*state.Namespace // obs's namespaces by name
	steps   []plannedStep
	errs    []error
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

func (d *differ) add(phase int, s Step) {
	d.steps = append(d.steps, plannedStep{phase, s})
}

// observedEndpoint is what the kernel holds of one endpoint mark.
type observedEndpoint struct {
	host   *state.Link // host end, nil if missing
	ns     string      // namespace of the container end
	inner  *state.Link // container end, nil if missing
	routes []state.Route
}

func diff(m *Model, obs *state.Snapshot) (*Plan, error) {
	d := &differ{project: m.Project, obs: obs}
	// Room for the usual number of steps (an up makes about 8 a container,
	// a down about 4 a namespace): growing the slice copied it a dozen
	// times, 15% of planning an up at N=1000.
	d.steps = make([]plannedStep, 0, 8*len(m.Containers)+4*len(obs.Namespaces)+2*len(obs.Host.Links)+16)

	// Index what the project owns in the kernel.
	ownNS := map[string]*state.Namespace{}
	for i := range obs.Namespaces {
		ns := &obs.Namespaces[i]
		if mk, ok := state.ParseMark(ns.Mark); ok && mk.Project == m.Project && mk.Kind == state.KindNamespace {
			ownNS[ns.Name] = ns
		}
	}
	bridges := map[string]*state.Link{}
	eps := map[string]*observedEndpoint{}
	ep := func(name string) *observedEndpoint {
		if eps[name] == nil {
			eps[name] = &observedEndpoint{}
		}
		return eps[name]
	}
	for i := range obs.Host.Links {
		l := &obs.Host.Links[i]
		mk, ok := state.ParseMark(l.Alias)
		if !ok || mk.Project != m.Project {
			continue
		}
		switch mk.Kind {
		case state.KindNetwork:
			bridges[mk.Name] = l
		case state.KindEndpoint:
			ep(mk.Name).host = l
		}
	}
	for _, ns := range sortedKeys(ownNS) {
		n := ownNS[ns]
		for i := range n.Links {
			l := &n.Links[i]
			mk, ok := state.ParseMark(l.Alias)
			if !ok || mk.Project != m.Project || mk.Kind != state.KindEndpoint {
				continue
			}
			e := ep(mk.Name)
			e.ns, e.inner = ns, l
			// Only default routes are topo's; the kernel makes and removes
			// the subnet routes of addresses itself.
			for _, r := range n.Routes {
				if r.Dev == l.Name && r.Dst == "default" {
					e.routes = append(e.routes, r)
				}
			}
		}
	}

	// What the file wants, by the same keys.
	wantNet := map[string]*Network{}
	for _, n := range m.Networks {
		wantNet[n.Name] = n
	}
	wantNS := map[string]*Container{}
	wantEP := map[string]*Endpoint{}
	epOwner := map[string]*Container{}
	for _, c := range m.Containers {
		if !c.OwnsNamespace() {
			continue
		}
		wantNS[c.NS] = c
		for _, e := range c.Endpoints {
			key := state.EndpointName(c.Name, e.Network)
			wantEP[key] = e
			epOwner[key] = c
		}
	}
	d.checkCollisions(m, wantNS, wantNet, wantEP, epOwner)
	if len(d.errs) > 0 {
		return nil, spec.Join(d.errs...)
	}

	// Endpoints: keep the intact ones that match, destroy the rest.
	rebuild := map[string][]Step{} // by namespace that goes away
	routeGone := map[string]bool{} // namespaces whose default route is being removed
	keptEP := map[string]bool{}
	for _, key := range sortedKeys(eps) {
		o := eps[key]
		want := wantEP[key]
		if want != nil && o.host != nil && o.inner != nil && o.host.Kind == "veth" &&
			o.host.Master == want.Bridge && o.inner.Name == want.IfName && o.ns == epOwner[key].NS &&
			o.host.Name == want.HostLink {
			keptEP[key] = true
			continue
		}
		for _, r := range o.routes {
			if r.Dst == "default" {
				routeGone[o.ns] = true
			}
		}
		if o.host != nil && o.inner != nil && o.ns != "" && wantNS[o.ns] == nil {
			// The whole container goes: its veths, addresses and routes
			// go with its namespace, whose undo rebuilds them.
			rebuild[o.ns] = append(rebuild[o.ns], endpointRebuild(key, o)...)
			continue
		}
		d.destroyEndpoint(key, o)
	}

	// Namespaces the file no longer has.
	for _, name := range sortedKeys(ownNS) {
		if wantNS[name] != nil {
			continue
		}
		mk, _ := state.ParseMark(ownNS[name].Mark)
		res := "container " + mk.Name
		add := Step{Action: Create, Op: OpNetnsAdd, Resource: res, NS: name, Alias: ownNS[name].Mark}
		undo, phase := &add, phaseNetns
		if parts := rebuild[name]; len(parts) > 0 {
			// The namespace takes its veths with it: it goes before the
			// bridges they are on, so that its undo finds them.
			undo = &Step{Action: Create, Op: OpSeq, Resource: res, Steps: append([]Step{add}, parts...)}
			phase = phaseVeth
		}
		d.add(phase, Step{Action: Destroy, Op: OpNetnsDel, Resource: res, NS: name, Alias: ownNS[name].Mark, Undo: undo})
	}

	// Bridges the file no longer has.
	for _, name := range sortedKeys(bridges) {
		if wantNet[name] != nil {
			continue
		}
		// The bridge's addresses go with it; its undo puts them back.
		l := bridges[name]
		res := "network " + name
		add := Step{Action: Create, Op: OpBridgeAdd, Resource: res, Link: l.Name, MAC: cmp.Or(l.MAC, addrMAC(l.Addrs)), Alias: l.Alias}
		undo := &add
		if len(l.Addrs) > 0 {
			parts := []Step{add}
			for _, a := range l.Addrs {
				parts = append(parts, Step{Action: Create, Op: OpAddrAdd, Resource: res, Link: l.Name, Addr: a})
			}
			undo = &Step{Action: Create, Op: OpSeq, Resource: res, Steps: parts}
		}
		d.add(phaseBridge, Step{Action: Destroy, Op: OpLinkDel, Resource: res, Link: l.Name, Alias: l.Alias, Undo: undo})
	}

	// Forwarding, for networks that reach out.
	for _, n := range m.Networks {
		if n.Internal {
			continue
		}
		if old := obs.Sysctls[IPForward]; old != "1" {
			if old == "" {
				old = "0"
			}
			undo := Step{Action: Change, Op: OpSysctl, Resource: "host", Key: IPForward, Value: old}
			d.add(phaseSysctl, Step{Action: Change, Op: OpSysctl, Resource: "host", Key: IPForward, Value: "1", Undo: &undo})
			if _, ok := obs.SysctlsBefore[IPForward]; !ok {
				// The first to set it records what it was, for the last
				// project's down.
				write, _ := sysctlRecord(IPForward, old)
				d.add(phaseSysctl, write)
			}
		}
		break
	}

	for _, n := range m.Networks {
		d.network(n, bridges[n.Name])
	}
	for _, c := range m.Containers {
		if !c.OwnsNamespace() {
			continue
		}
		res := "container " + c.Name
		ns := ownNS[c.NS]
		if ns == nil {
			undo := Step{Action: Destroy, Op: OpNetnsDel, Resource: res, NS: c.NS, Alias: mark(m.Project, state.KindNamespace, c.Name)}
			d.add(phaseNetns, Step{Action: Create, Op: OpNetnsAdd, Resource: res, NS: c.NS,
				Alias: mark(m.Project, state.KindNamespace, c.Name), Undo: &undo})
		}
		gone := routeGone[c.NS]
		for _, e := range c.Endpoints {
			key := state.EndpointName(c.Name, e.Network)
			var o *observedEndpoint
			if keptEP[key] {
				o = eps[key]
			}
			if d.endpoint(c, e, o) {
				gone = true
			}
		}
		d.defaultRoute(c, ns, gone)
	}
	d.processes(m, ownNS)

	d.firewall(m, bridges)

	d.dns(m)

	p := &Plan{Project: m.Project, Steps: make([]Step, 0, len(d.steps))}
	for _, i := range d.order() {
		p.Steps = append(p.Steps, d.steps[i].Step)
	}
	return p, nil
}

// order returns the indexes of d.steps in the order the plan runs them:
// destroys first, in descending phase, then creates and changes in
// ascending phase, each phase by sort key, steps alike in the order they
// were added. It sorts indexes and computes each sort key once: sorting
// the steps themselves, with keys built per comparison, was a sixth of
// planning an up at N=1000 (a stable sort moving 400-byte steps, and a
// string concatenation for each comparison).
func (d *differ) order() []int {
	keys := make([]string, len(d.steps))
	idx := make([]int, len(d.steps))
	for i := range d.steps {
		keys[i] = d.steps[i].sortKey()
		idx[i] = i
	}
	slices.SortFunc(idx, func(i, j int) int {
		a, b := &d.steps[i], &d.steps[j]
		ad, bd := a.Action == Destroy, b.Action == Destroy
		switch {
		case ad != bd:
			if ad {
				return -1
			}
			return 1
		case a.phase != b.phase && ad:
			return cmp.Compare(b.phase, a.phase)
		case a.phase != b.phase:
			return cmp.Compare(a.phase, b.phase)
		}
		return cmp.Or(cmp.Compare(keys[i], keys[j]), cmp.Compare(i, j))
	})
	return idx
}

// checkCollisions refuses names held by objects topo did not make for this
// purpose: topo never changes an object without its mark.
func (d *differ) checkCollisions(m *Model, wantNS map[string]*Container, wantNet map[string]*Network, wantEP map[string]*Endpoint, epOwner map[string]*Container) {
	for _, name := range sortedKeys(wantNS) {
		c := wantNS[name]
		ns := d.namespace(name)
		want := mark(m.Project, state.KindNamespace, c.Name)
		if ns != nil && ns.Mark != want {
			d.errs = append(d.errs, fmt.Errorf("container %s: namespace %s already exists and %s; remove it (ip netns del %s) or rename the container or the project",
				c.Name, name, owner(ns.Mark), name))
		}
	}
	for _, name := range sortedKeys(wantNet) {
		n := wantNet[name]
		if l := d.obs.Host.Link(n.Bridge); l != nil && l.Alias != mark(m.Project, state.KindNetwork, n.Name) {
			d.errs = append(d.errs, fmt.Errorf("network %s: link %s already exists and %s; remove it or rename the network", n.Name, n.Bridge, owner(l.Alias)))
		}
	}
	for _, key := range sortedKeys(wantEP) {
		e := wantEP[key]
		if l := d.obs.Host.Link(e.HostLink); l != nil && l.Alias != mark(m.Project, state.KindEndpoint, key) {
			d.errs = append(d.errs, fmt.Errorf("container %s: link %s already exists and %s; remove it", epOwner[key].Name, e.HostLink, owner(l.Alias)))
		}
	}
	if len(m.Networks) > 0 { // a project without networks has no chains
		d.errs = append(d.errs, firewall.Conflicts(m.Project, d.obs.Firewall)...)
	}
}

func owner(alias string) string {
	if mk, ok := state.ParseMark(alias); ok {
		return fmt.Sprintf("belongs to %s %s of project %s", kindWord(mk.Kind), mk.Name, mk.Project)
	}
	return "was not made by topo"
}

func kindWord(kind string) string {
	switch kind {
	case state.KindNamespace:
		return "container"
	case state.KindNetwork:
		return "network"
	case state.KindEndpoint:
		return "endpoint"
	}
	return kind
}

// destroyEndpoint removes what the kernel holds of an endpoint, routes and
// addresses first so that each removal can be undone on its own.
func (d *differ) destroyEndpoint(key string, o *observedEndpoint) {
	res := "endpoint " + key
	if o.inner != nil {
		d.routesDel(res, o)
		for _, a := range o.inner.Addrs {
			d.addrDel(phaseEndpointAddr, res, o.ns, o.inner.Name, a)
		}
	}
	switch {
	case o.host != nil && o.inner != nil:
		undo := Step{Action: Create, Op: OpVethAdd, Resource: res, Link: o.host.Name, Master: o.host.Master,
			Peer: o.inner.Name, PeerNS: o.ns, MAC: addrMAC(o.inner.Addrs), Alias: o.host.Alias}
		d.add(phaseVeth, Step{Action: Destroy, Op: OpLinkDel, Resource: res, Link: o.host.Name, Alias: o.host.Alias, Undo: &undo})
	case o.host != nil:
		// A lone end cannot be rebuilt as it was: its removal has no undo.
		d.add(phaseVeth, Step{Action: Destroy, Op: OpLinkDel, Resource: res, Link: o.host.Name, Alias: o.host.Alias})
	case o.inner != nil:
		d.add(phaseVeth, Step{Action: Destroy, Op: OpLinkDel, Resource: res, NS: o.ns, Link: o.inner.Name, Alias: o.inner.Alias})
	}
}

// routesDel deletes the routes through an endpoint's container end, each
// with its undo.
func (d *differ) routesDel(res string, o *observedEndpoint) {
	for _, r := range o.routes {
		undo := Step{Action: Create, Op: OpRouteAdd, Resource: res, NS: o.ns, Link: r.Dev, Dst: r.Dst, Gateway: r.Gateway}
		d.add(phaseRoute, Step{Action: Destroy, Op: OpRouteDel, Resource: res, NS: o.ns, Link: r.Dev, Dst: r.Dst, Gateway: r.Gateway, Undo: &undo})
	}
}

// endpointRebuild is what recreates an intact endpoint of a container
// that goes away with its namespace: the veth pair, then the container
// end's addresses and routes.
func endpointRebuild(key string, o *observedEndpoint) []Step {
	res := "endpoint " + key
	out := []Step{{Action: Create, Op: OpVethAdd, Resource: res, Link: o.host.Name, Master: o.host.Master,
		Peer: o.inner.Name, PeerNS: o.ns, MAC: addrMAC(o.inner.Addrs), Alias: o.host.Alias}}
	for _, a := range o.inner.Addrs {
		out = append(out, Step{Action: Create, Op: OpAddrAdd, Resource: res, NS: o.ns, Link: o.inner.Name, Addr: a})
	}
	for _, r := range o.routes {
		out = append(out, Step{Action: Create, Op: OpRouteAdd, Resource: res, NS: o.ns, Link: r.Dev, Dst: r.Dst, Gateway: r.Gateway})
	}
	return out
}

func (d *differ) addrDel(phase int, res, ns, link, addr string) {
	undo := Step{Action: Create, Op: OpAddrAdd, Resource: res, NS: ns, Link: link, Addr: addr}
	d.add(phase, Step{Action: Destroy, Op: OpAddrDel, Resource: res, NS: ns, Link: link, Addr: addr, Undo: &undo})
}

func (d *differ) addrAdd(phase int, res, ns, link, addr string) {
	undo := Step{Action: Destroy, Op: OpAddrDel, Resource: res, NS: ns, Link: link, Addr: addr}
	d.add(phase, Step{Action: Create, Op: OpAddrAdd, Resource: res, NS: ns, Link: link, Addr: addr, Undo: &undo})
}

func (d *differ) linkUp(phase int, res, ns, link string) {
	undo := Step{Action: Change, Op: OpLinkDown, Resource: res, NS: ns, Link: link}
	d.add(phase, Step{Action: Change, Op: OpLinkUp, Resource: res, NS: ns, Link: link, Undo: &undo})
}

// syncAddrs makes link carry exactly want.
func (d *differ) syncAddrs(phase int, res, ns, link string, have []string, want string) {
	found := false
	for _, a := range have {
		if a == want {
			found = true
			continue
		}
		d.addrDel(phase, res, ns, link, a)
	}
	if !found {
		d.addrAdd(phase, res, ns, link, want)
	}
}

func (d *differ) network(n *Network, have *state.Link) {
	res := "network " + n.Name
	gw := netip.PrefixFrom(n.Gateway, n.Subnet.Bits()).String()
	if have == nil {
		undo := Step{Action: Destroy, Op: OpLinkDel, Resource: res, Link: n.Bridge, Alias: mark(d.project, state.KindNetwork, n.Name)}
		d.add(phaseBridge, Step{Action: Create, Op: OpBridgeAdd, Resource: res, Link: n.Bridge,
			MAC: MAC(n.Gateway), Alias: mark(d.project, state.KindNetwork, n.Name), Undo: &undo})
		d.addrAdd(phaseBridgeAddr, res, "", n.Bridge, gw)
		return
	}
	if !have.Up {
		d.linkUp(phaseBridgeUp, res, "", n.Bridge)
	}
	if want := MAC(n.Gateway); have.MAC != want {
		// Made by an earlier topo, or changed by hand: put back, so
		// that the gateway's address stops following the ports'.
		undo := Step{Action: Change, Op: OpLinkMAC, Resource: res, Link: n.Bridge, MAC: have.MAC}
		d.add(phaseBridgeUp, Step{Action: Change, Op: OpLinkMAC, Resource: res, Link: n.Bridge, MAC: want, Undo: &undo})
	}
	d.syncAddrs(phaseBridgeAddr, res, "", n.Bridge, have.Addrs, gw)
}

// endpoint makes an endpoint as the file wants it. It reports whether it
// deletes the routes through the endpoint's container end, which the
// caller then plans again.
func (d *differ) endpoint(c *Container, e *Endpoint, have *observedEndpoint) (routesGone bool) {
	key := state.EndpointName(c.Name, e.Network)
	res := "endpoint " + key
	if have == nil {
		undo := Step{Action: Destroy, Op: OpLinkDel, Resource: res, Link: e.HostLink, Alias: mark(d.project, state.KindEndpoint, key)}
		d.add(phaseVeth, Step{Action: Create, Op: OpVethAdd, Resource: res, Link: e.HostLink, Master: e.Bridge,
			Peer: e.IfName, PeerNS: c.NS, MAC: MAC(e.Addr.Addr()), Alias: mark(d.project, state.KindEndpoint, key), Undo: &undo})
		d.addrAdd(phaseEndpointAddr, res, c.NS, e.IfName, e.Addr.String())
		return false
	}
	if !have.host.Up {
		d.linkUp(phaseVethUp, res, "", have.host.Name)
	}
	if !have.host.Hairpin {
		undo := Step{Action: Change, Op: OpHairpin, Resource: res, Link: have.host.Name, Value: "off"}
		d.add(phaseVethUp, Step{Action: Change, Op: OpHairpin, Resource: res, Link: have.host.Name, Value: "on", Undo: &undo})
	}
	if !have.inner.Up {
		d.linkUp(phaseVethUp, res, c.NS, have.inner.Name)
	}
	if len(have.inner.Addrs) > 0 && !slices.Contains(have.inner.Addrs, e.Addr.String()) {
		// Every address goes before the new one comes (an address
		// change), and with the last one the kernel drops every route
		// through the link: delete them first, as steps whose undo puts
		// them back, and let the caller add them again after the new
		// address.
		d.routesDel(res, have)
		routesGone = len(have.routes) > 0
	}
	d.syncAddrs(phaseEndpointAddr, res, c.NS, e.IfName, have.inner.Addrs, e.Addr.String())
	return routesGone
}

// defaultRoute makes the container's default route point at its first
// non-internal network's gateway, or removes it when there is none.
func (d *differ) defaultRoute(c *Container, ns *state.Namespace, gone bool) {
	res := "container " + c.Name
	var have *state.Route
	if ns != nil && !gone {
		for i := range ns.Routes {
			if ns.Routes[i].Dst == "default" {
				have = &ns.Routes[i]
			}
		}
	}
	want := ""
	if c.DefaultGW.IsValid() {
		want = c.DefaultGW.String()
	}
	if have != nil && have.Gateway == want {
		return
	}
	if have != nil {
		undo := Step{Action: Create, Op: OpRouteAdd, Resource: res, NS: c.NS, Link: have.Dev, Dst: "default", Gateway: have.Gateway}
		d.add(phaseRoute, Step{Action: Destroy, Op: OpRouteDel, Resource: res, NS: c.NS, Link: have.Dev, Dst: "default", Gateway: have.Gateway, Undo: &undo})
	}
	if want != "" {
		undo := Step{Action: Destroy, Op: OpRouteDel, Resource: res, NS: c.NS, Dst: "default", Gateway: want}
		d.add(phaseRoute, Step{Action: Create, Op: OpRouteAdd, Resource: res, NS: c.NS, Dst: "default", Gateway: want, Undo: &undo})
	}
}

// sortKey orders the steps of one phase, by their own fields.
func (s Step) sortKey() string {
	return s.Resource + "\x00" + s.NS + "\x00" + s.Link + "\x00" + s.Addr + "\x00" + s.Dst + "\x00" + s.Key + "\x00" + string(s.Op) + "\x00" + s.Table
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
