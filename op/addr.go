package op

import (
	"net/netip"
	"strconv"
)

// AddrAdd adds an address, in CIDR form with its host part, to a link.
type AddrAdd struct {
	NS, Link string
	Addr     netip.Prefix
}

// AddrDel removes an address from a link.
type AddrDel struct {
	NS, Link string
	Addr     netip.Prefix
}

// RouteAdd adds a route of the main table: to Dst (DefaultRoute for
// `default`) via Gateway (none when invalid), out of Link (any when ""),
// with Metric (0 the kernel's) and protocol number Proto (0 the
// kernel's; names.RouteProto for a file's routes:).
type RouteAdd struct {
	NS, Link string
	Dst      netip.Prefix
	Gateway  netip.Addr
	Metric   int
	Proto    uint8
}

// RouteDel removes a route of the main table, as RouteAdd names it; with
// a Proto, only a route of that protocol.
type RouteDel struct {
	NS, Link string
	Dst      netip.Prefix
	Gateway  netip.Addr
	Metric   int
	Proto    uint8
}

// DefaultRoute is the destination `default` of IPv4; IPv6's is ::/0,
// which plans and snapshots write as such.
var (
	DefaultRoute  = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	DefaultRoute6 = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
)

func (AddrAdd) Name() string  { return "addr-add" }
func (AddrDel) Name() string  { return "addr-del" }
func (RouteAdd) Name() string { return "route-add" }
func (RouteDel) Name() string { return "route-del" }

// Command: `ip [-n NS] addr add ADDR dev LINK`, and `nodad` for IPv6:
// the address is usable at once.
func (o AddrAdd) Command() string {
	s := ipIn(o.NS) + "addr add " + o.Addr.String() + " dev " + o.Link
	if o.Addr.Addr().Is6() {
		s += " nodad"
	}
	return s
}

// Command: `ip [-n NS] addr del ADDR dev LINK`.
func (o AddrDel) Command() string {
	return ipIn(o.NS) + "addr del " + o.Addr.String() + " dev " + o.Link
}

// Command: `ip [-n NS] route add DST [via GATEWAY] [dev LINK] [metric N] [proto N]`.
func (o RouteAdd) Command() string {
	return routeCommand(o.NS, "add", o.Dst, o.Gateway, o.Link, o.Metric, o.Proto)
}

// Command: `ip [-n NS] route del DST [via GATEWAY] [dev LINK] [metric N] [proto N]`.
func (o RouteDel) Command() string {
	return routeCommand(o.NS, "del", o.Dst, o.Gateway, o.Link, o.Metric, o.Proto)
}

func routeCommand(ns, verb string, dst netip.Prefix, gw netip.Addr, dev string, metric int, proto uint8) string {
	s := ipIn(ns) + "route " + verb + " " + DstString(dst)
	if gw.IsValid() {
		s += " via " + gw.String()
	}
	if dev != "" {
		s += " dev " + dev
	}
	if metric != 0 {
		s += " metric " + strconv.Itoa(metric)
	}
	if proto != 0 {
		s += " proto " + strconv.Itoa(int(proto))
	}
	return s
}

// DstString is a route destination as ip prints it: "default" or a CIDR.
func DstString(dst netip.Prefix) string {
	if dst == DefaultRoute {
		return "default"
	}
	return dst.String()
}

// ParseDst reads a route destination as DstString writes it.
func ParseDst(s string) (netip.Prefix, error) {
	if s == "default" {
		return DefaultRoute, nil
	}
	return netip.ParsePrefix(s)
}

// The wire form of these operations (see wire.go).
func init() {
	register("addr-add", func(w *wire) (Operation, error) {
		a, err := netip.ParsePrefix(w.Addr)
		return AddrAdd{NS: w.NS, Link: w.Link, Addr: a}, err
	})
	register("addr-del", func(w *wire) (Operation, error) {
		a, err := netip.ParsePrefix(w.Addr)
		return AddrDel{NS: w.NS, Link: w.Link, Addr: a}, err
	})
	register("route-add", func(w *wire) (Operation, error) {
		dst, gw, err := route(w)
		return RouteAdd{NS: w.NS, Link: w.Link, Dst: dst, Gateway: gw, Metric: w.Metric, Proto: w.Proto}, err
	})
	register("route-del", func(w *wire) (Operation, error) {
		dst, gw, err := route(w)
		return RouteDel{NS: w.NS, Link: w.Link, Dst: dst, Gateway: gw, Metric: w.Metric, Proto: w.Proto}, err
	})
}

func (o AddrAdd) fill(w *wire) { w.NS, w.Link, w.Addr = o.NS, o.Link, o.Addr.String() }
func (o AddrDel) fill(w *wire) { w.NS, w.Link, w.Addr = o.NS, o.Link, o.Addr.String() }
func (o RouteAdd) fill(w *wire) {
	w.NS, w.Link, w.Dst, w.Gateway = o.NS, o.Link, DstString(o.Dst), gatewayString(o.Gateway)
	w.Metric, w.Proto = o.Metric, o.Proto
}
func (o RouteDel) fill(w *wire) {
	w.NS, w.Link, w.Dst, w.Gateway = o.NS, o.Link, DstString(o.Dst), gatewayString(o.Gateway)
	w.Metric, w.Proto = o.Metric, o.Proto
}
