package planner

import (
	"fmt"
	"net/netip"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

// Route is one of a file's static routes as it will exist in the kernel:
// in the container's main table, with topo's protocol number
// (names.RouteProto), so that routes made by hand, the kernel's and the
// default route of the container's networks are told from it.
type Route struct {
	// To is the destination, op.DefaultRoute for default.
	To  netip.Prefix
	Via netip.Addr
	// Dev is the file's dev:, "" to leave it to the kernel.
	Dev    string
	Metric int
	// Iface is the container's interface that reaches Via: the address
	// the route needs.
	Iface string
}

// route adds r to c, checking that an interface of c reaches its via
// (the spec did for fixed subnets; IPAM's are known only now). A
// default route replaces the one of the container's networks.
func (ds *desirer) route(c *Container, r *spec.Route) {
	dr := &Route{To: r.To, Via: r.Via, Dev: r.Dev, Metric: r.Metric, Iface: r.Dev}
	if r.Via.IsValid() {
		dr.Iface = ""
		var have []string
		for _, i := range c.prefixes() {
			if r.Dev != "" && i.name != r.Dev {
				continue
			}
			if i.prefix.IsValid() && i.prefix.Masked().Contains(r.Via) {
				dr.Iface = i.name
				break
			}
			if i.prefix.IsValid() {
				have = append(have, i.name+" "+i.prefix.Masked().String())
			}
		}
		if dr.Iface == "" {
			ds.fail(r.ViaPos, "container %s: route to %s: via %s is on none of the container's interfaces (%s): give an address of a network or link it is on",
				c.Name, op.DstString(r.To), r.Via, joinOr(have, "none has an address"))
			return
		}
	}
	if r.IsDefault() {
		c.DefaultGW = netip.Addr{}
	}
	c.Routes = append(c.Routes, dr)
}

func joinOr(s []string, none string) string {
	if len(s) == 0 {
		return none
	}
	out := s[0]
	for _, x := range s[1:] {
		out += ", " + x
	}
	return out
}

// routeID names a route of namespace ns, for the routes a plan deletes.
func routeID(ns string, r state.Route) string {
	return fmt.Sprintf("%s %s %s %s %d %v", ns, r.Dst, r.Gateway, r.Dev, r.Metric, r.Topo)
}

// routeDel deletes an observed route of namespace ns with its undo, and
// remembers it, so that the routes a file wants are added again.
func (d *differ) routeDel(ref op.Ref, ns string, r state.Route) {
	dst, gw := route(r)
	proto := routeProto(r)
	d.add(destroy(ref, op.RouteDel{NS: ns, Link: r.Dev, Dst: dst, Gateway: gw, Metric: r.Metric, Proto: proto},
		op.RouteAdd{NS: ns, Link: r.Dev, Dst: dst, Gateway: gw, Metric: r.Metric, Proto: proto}))
	if d.routesGone == nil {
		d.routesGone = map[string]bool{}
	}
	d.routesGone[routeID(ns, r)] = true
}

// routeProto is the protocol number an observed route is made again
// with: topo's for a file's route, else the kernel's.
func routeProto(r state.Route) uint8 {
	if r.Topo {
		return names.RouteProto
	}
	return 0
}

// routes plans a container's static routes against the kernel's routes
// of topo's protocol in its namespace, after its links and endpoints:
// those the plan deleted already are added again.
func (d *differ) routes(c *Container) {
	ref := op.Container(c.Name)
	var have []state.Route
	if ns := d.ownNS[c.NS]; ns != nil {
		for _, r := range ns.Routes {
			if r.Topo && !d.routesGone[routeID(c.NS, r)] {
				have = append(have, r)
			}
		}
	}
	matched := make([]bool, len(have))
	for _, w := range c.Routes {
		found := false
		for i, h := range have {
			dst, gw := route(h)
			if !matched[i] && dst == w.To && gw == w.Via && h.Metric == w.Metric && (w.Dev == "" || w.Dev == h.Dev) {
				matched[i], found = true, true
				break
			}
		}
		if found {
			continue
		}
		add := op.RouteAdd{NS: c.NS, Link: w.Dev, Dst: w.To, Gateway: w.Via, Metric: w.Metric, Proto: names.RouteProto}
		del := op.RouteDel{NS: c.NS, Link: w.Dev, Dst: w.To, Gateway: w.Via, Metric: w.Metric, Proto: names.RouteProto}
		s := create(ref, add, del)
		if w.Iface != "" {
			s.Needs = []op.Key{op.AddrKey(c.NS, w.Iface)}
		}
		d.add(s)
	}
	for i, h := range have {
		if !matched[i] {
			d.routeDel(ref, c.NS, h)
		}
	}
}
