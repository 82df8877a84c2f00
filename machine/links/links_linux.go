package links

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/op"
)

// linkByName finds a link, saying ErrNotExist in words when it is missing.
func linkByName(h *netlink.Handle, name string) (netlink.Link, error) {
	l, err := h.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil, fmt.Errorf("link %s: %w", name, machine.ErrNotExist)
	}
	return l, err
}

// linkIndex is the index of the link called name in the namespace of
// sh's socket: SIOCGIFINDEX, which the kernel answers for any socket in
// its namespace, a netlink one too, without a round trip. RTM_GETLINK
// (netlink.LinkByName) sends the whole link back, which the library then
// parses: one more request per veth.
func linkIndex(sh *nl.SocketHandle, name string) (int, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, fmt.Errorf("link %s: %w", name, err)
	}
	if err := unix.IoctlIfreq(sh.Socket.GetFd(), unix.SIOCGIFINDEX, ifr); err != nil {
		if errors.Is(err, unix.ENODEV) {
			return 0, fmt.Errorf("link %s: %w", name, machine.ErrNotExist)
		}
		return 0, fmt.Errorf("link %s: %w", name, err)
	}
	return int(ifr.Uint32()), nil
}

// addBridge creates a bridge with the step's hardware address (a set
// address, which the kernel then keeps whatever ports come and go),
// carrying its mark, and sets it up. If marking or setting it up fails the
// bridge is deleted again.
//
// Equivalent to: `ip link add LINK address MAC [mtu MTU] type bridge; ip link set LINK alias MARK up`
func (k *Kernel) addBridge(o op.BridgeAdd) error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = o.Link
	attrs.HardwareAddr = o.MAC
	attrs.MTU = o.MTU
	h, err := k.handle(o.NS)
	if err != nil {
		return err
	}
	defer h.Close()
	br := &netlink.Bridge{LinkAttrs: attrs}
	if err := h.LinkAdd(br); err != nil {
		return err
	}
	// The kernel ignores IFLA_IFALIAS when it creates a link, so the mark
	// goes with the up, in a second request.
	if err := executeOn(h.sock, markUpRequest(o.Link, o.Mark.String())); err != nil {
		return errors.Join(fmt.Errorf("set alias and up: %w", err), h.LinkDel(br))
	}
	return nil
}

// addVeth creates a veth pair: LINK in NS (the host for ""), enslaved to
// MASTER, and its peer PEER created directly in PEERNS, so that no thread
// has to switch namespaces and the peer never appears next to LINK. Both
// ends carry ALIAS and are set up; LINK, a bridge port with no address,
// gets IPv6 off first, and PEER no IPv6 address. If any part fails the
// pair is deleted again.
//
// Profile of `topo up` at N=500: a veth took nine netlink requests (the
// library looks each new link up again after creating it, and enslaves
// it in a request of its own), the largest share of up's time. It now
// takes four and an ioctl: the master's index (SIOCGIFINDEX, see
// linkIndex; it was a fifth request); one RTM_NEWLINK that creates the pair
// with its master (the kernel undoes the whole creation if enslaving
// fails); the host end's alias and up; the peer's address generation;
// the peer's alias and up (the kernel cannot bring a peer up while it
// creates it, nor take an alias at creation).
//
// IPv6 off on the host end: perf of `topo down` at N=1000 showed a fifth
// of the kernel's teardown in IPv6 work for the host ends (addrconf_ifdown,
// and __fib6_clean_all walking the host's IPv6 routes, one link-local
// route per host end, for each end removed: quadratic), and up paid for
// their link-local addresses and routes too. A bridge port needs no
// address of its own; it forwards IPv6 all the same.
//
// No IPv6 address of its own on the peer, the container's interface: on
// an IPv4-only network Docker gives containers no IPv6 either, and on a
// dual-stack one the planner adds the container's address (nodad), no
// link-local or SLAAC one. Otherwise each new interface sends duplicate address
// detection, router solicitation and multicast listener packets as it
// comes up, which its bridge floods to every other port: work that grows
// with the square of the containers on a network (a fifth of the CPU of
// `topo up` at N=500). Docker writes the interface's disable_ipv6 sysctl;
// from a new namespace that costs a lookup of /proc/sys/net that walks one
// dentry per namespace (proc hashes every namespace's "net" alike): 43 ms
// in all at N=500, 154 ms at N=1000. Address generation off is one netlink
// request and leaves the same: no IPv6 address, no IPv6 packet sent.
//
// Equivalent to: `ip [-n NS] link add LINK [mtu MTU] master MASTER type veth peer name PEER address MAC [mtu MTU] netns PEERNS;
// sysctl -w net.ipv6.conf.LINK.disable_ipv6=1; ip [-n NS] link set LINK alias ALIAS up;
// ip -n PEERNS link set PEER addrgenmode none; ip -n PEERNS link set PEER alias ALIAS up`
func (k *Kernel) addVeth(s op.VethAdd) error {
	mac := s.MAC
	h, err := k.handle(s.NS)
	if err != nil {
		return err
	}
	defer h.Close()
	master := 0
	if s.Master != "" {
		if master, err = linkIndex(h.sock, s.Master); err != nil {
			return fmt.Errorf("master: %w", err)
		}
	}
	peerNS, err := k.openNetnsOrHost(s.PeerNS)
	if err != nil {
		return err
	}
	defer peerNS.Close()

	req := createRequest(s.Link)
	if s.LinkMAC != nil {
		req.AddData(nl.NewRtAttr(unix.IFLA_ADDRESS, []byte(s.LinkMAC)))
	}
	if s.MTU != 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(s.MTU))))
	}
	if master != 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_MASTER, nl.Uint32Attr(uint32(master))))
	}
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("veth"))
	peer := info.AddRtAttr(nl.IFLA_INFO_DATA, nil).AddRtAttr(nl.VETH_INFO_PEER, nil)
	nl.NewIfInfomsgChild(peer, unix.AF_UNSPEC)
	peer.AddRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(s.Peer))
	if mac != nil {
		peer.AddRtAttr(unix.IFLA_ADDRESS, []byte(mac))
	}
	if s.MTU != 0 {
		peer.AddRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(s.MTU)))
	}
	peer.AddRtAttr(unix.IFLA_NET_NS_FD, nl.Uint32Attr(uint32(peerNS)))
	req.AddData(info)
	// An error here means no pair was made: never delete on it, the name
	// may be a foreign link's.
	if err := k.execute(s.NS, req); err != nil {
		return err
	}
	if err := finishVeth(k, s); err != nil {
		// Deleting one end deletes both.
		return errors.Join(err, k.execute(s.NS, linkRequest(unix.RTM_DELLINK, s.Link)))
	}
	return nil
}

// finishVeth turns IPv6 off on the host end of a new veth and address
// generation on the peer, and marks and sets up both ends.
func finishVeth(k *Kernel, s op.VethAdd) error {
	if err := k.disableIPv6(s.NS, s.Link); err != nil {
		return fmt.Errorf("turn IPv6 off: %w", err)
	}
	up := markUpRequest(s.Link, s.Mark.String())
	if s.Master != "" {
		up = portUpRequest(s.Link, s.Mark.String())
	}
	if err := k.execute(s.NS, up); err != nil {
		return fmt.Errorf("set alias and up: %w", err)
	}
	if err := k.finishInNamespace(s.PeerNS, s.Peer, s.Mark.String()); err != nil {
		return fmt.Errorf("peer: %w", err)
	}
	return nil
}

// markUpRequest sets the link called name up and gives it alias (none
// for ""), in one request.
func markUpRequest(name, alias string) *nl.NetlinkRequest {
	req := linkRequest(unix.RTM_SETLINK, name)
	req.Data[0].(*nl.IfInfomsg).Flags = unix.IFF_UP
	req.Data[0].(*nl.IfInfomsg).Change = unix.IFF_UP
	if alias != "" {
		req.AddData(nl.NewRtAttr(unix.IFLA_IFALIAS, []byte(alias)))
	}
	return req
}

// portUpRequest is markUpRequest for a bridge port, which it also puts in
// hairpin mode: the bridge may then send a frame back out of the port it
// came in by. That is the way back for a container that reaches its own
// published port through the host's address (DNAT sends its packets back
// to it, through the bridge), as it can with Docker, whose bridge driver
// sets hairpin mode when its userland proxy does not take such
// connections. One request: RTM_NEWLINK of an existing link applies
// the port's settings (IFLA_INFO_SLAVE_DATA), then the rest as
// RTM_SETLINK does.
//
// Equivalent to: `ip link set LINK type bridge_slave hairpin on; ip link set LINK alias ALIAS up`
func portUpRequest(name, alias string) *nl.NetlinkRequest {
	req := markUpRequest(name, alias)
	req.Type = unix.RTM_NEWLINK
	return hairpinRequest(req, true)
}

// hairpinRequest adds a bridge port's hairpin mode to req, an RTM_NEWLINK
// of an existing link.
//
// Equivalent to: `ip link set LINK type bridge_slave hairpin on|off`
func hairpinRequest(req *nl.NetlinkRequest, on bool) *nl.NetlinkRequest {
	mode := []byte{0}
	if on {
		mode[0] = 1
	}
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_SLAVE_KIND, nl.NonZeroTerminated("bridge"))
	info.AddRtAttr(nl.IFLA_INFO_SLAVE_DATA, nil).AddRtAttr(nl.IFLA_BRPORT_MODE, mode)
	req.AddData(info)
	return req
}

// setLinkMAC sets a link's hardware address.
//
// Equivalent to: `ip [-n NS] link set LINK address MAC`
func (k *Kernel) setLinkMAC(o op.LinkSetMAC) error {
	if len(o.MAC) == 0 {
		return errors.New("no hardware address to set")
	}
	req := linkRequest(unix.RTM_SETLINK, o.Link)
	req.AddData(nl.NewRtAttr(unix.IFLA_ADDRESS, []byte(o.MAC)))
	return k.execute(o.NS, req)
}

// setLinkMTU sets a link's MTU.
//
// Equivalent to: `ip [-n NS] link set LINK mtu MTU`
func (k *Kernel) setLinkMTU(o op.LinkSetMTU) error {
	req := linkRequest(unix.RTM_SETLINK, o.Link)
	req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(o.MTU))))
	return k.execute(o.NS, req)
}

// in6AddrGenModeNone is IN6_ADDR_GEN_MODE_NONE: no IPv6 address made for
// a link as it comes up.
const in6AddrGenModeNone = 1

// createRequest is a request that creates a link called name, and fails
// if one is there.
func createRequest(name string) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	return req
}

// linkRequest is a request of type typ about the link called name.
func linkRequest(typ int, name string) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(typ, unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	return req
}

// deleteLink deletes a link; a missing link, or a missing namespace, is
// success. With a mark, it refuses a link whose alias differs: topo never
// deletes what it does not own.
//
// Equivalent to: `ip [-n NS] link del LINK`
func (k *Kernel) deleteLink(ns, name, mark string) error {
	h, err := k.handle(ns)
	if machine.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := linkByName(h.Handle, name)
	if machine.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if got := l.Attrs().Alias; mark != "" && got != mark {
		return fmt.Errorf("alias is %q, not %q: not topo's to delete", got, mark)
	}
	if err := h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return err
	}
	return nil
}

// setLinkUp sets a link up or down.
//
// Equivalent to: `ip [-n NS] link set LINK up|down`
func (k *Kernel) setLinkUp(ns, name string, up bool) error {
	h, err := k.handle(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := linkByName(h.Handle, name)
	if err != nil {
		return err
	}
	if up {
		return h.LinkSetUp(l)
	}
	return h.LinkSetDown(l)
}

// addr is an address in CIDR form, keeping the host part, as the library
// takes it. An IPv6 address skips duplicate address detection
// (IFA_F_NODAD): it is usable at once, as the file's addresses are
// unique on the bridge by construction, and up never waits for DAD.
func addr(p netip.Prefix) *netlink.Addr {
	a := &netlink.Addr{IPNet: prefixNet(p)}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

// prefixNet is p as a net.IPNet, of p's family, host part kept.
func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// addAddr adds an address to a link. An IPv4 address's broadcast address
// is the subnet's last one (netlink computes it when Broadcast is unset,
// for prefixes up to /30), as Docker and CNI set it.
//
// Equivalent to: `ip [-n NS] addr add ADDR broadcast + dev LINK`, or for
// IPv6 `ip [-n NS] addr add ADDR dev LINK nodad`
func (k *Kernel) addAddr(ns, link string, p netip.Prefix) error {
	if !p.IsValid() {
		return fmt.Errorf("address %s: not an address in CIDR form", p)
	}
	h, err := k.socket(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	i, err := linkIndex(h.sock, link)
	if err != nil {
		return err
	}
	h.links = nil
	return executeOn(h.sock, AddrRequest(i, p))
}

// AddrRequest is what netlink.AddrAdd sends for addr(p) on the link of
// index i: an IPv4 address with its subnet's broadcast address, an IPv6
// one without duplicate address detection (the benchmark's kernel floor
// sends the same). Sent on topo's own socket, a namespace needs no
// library handle for its addresses and routes (one more socket, opened
// by two setns calls: 2000 of them in an up at N=1000).
func AddrRequest(i int, p netip.Prefix) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	ip := p.Addr().AsSlice()
	msg := nl.NewIfAddrmsg(nl.GetIPFamily(ip))
	msg.Index = uint32(i)
	msg.Prefixlen = uint8(p.Bits())
	if p.Addr().Is6() {
		msg.Flags = unix.IFA_F_NODAD
	}
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFA_LOCAL, ip))
	req.AddData(nl.NewRtAttr(unix.IFA_ADDRESS, ip))
	if p.Addr().Is4() && p.Bits() < 31 {
		b := p.Masked().Addr().As4()
		host := uint32(1)<<(32-p.Bits()) - 1
		for j := range 4 {
			b[j] |= byte(host >> (8 * (3 - j)))
		}
		req.AddData(nl.NewRtAttr(unix.IFA_BROADCAST, b[:]))
	}
	return req
}

// indexed stands for the link called name by its index, found without a
// round trip (see linkIndex), for the library's calls that need only
// that: an address's or a route's.
func indexed(h *nsHandle, name string) (netlink.Link, error) {
	i, err := linkIndex(h.sock, name)
	if err != nil {
		return nil, err
	}
	return &netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: name, Index: i}}, nil
}

// deleteAddr removes an address from a link; a missing address, link or
// namespace is success.
//
// Equivalent to: `ip [-n NS] addr del ADDR dev LINK`
func (k *Kernel) deleteAddr(ns, link string, p netip.Prefix) error {
	if !p.IsValid() {
		return fmt.Errorf("address %s: not an address in CIDR form", p)
	}
	a := addr(p)
	h, err := k.handle(ns)
	if machine.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := indexed(h, link)
	if machine.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := h.AddrDel(l, a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return err
	}
	return nil
}

// routeSpec is a route as operations name it.
type routeSpec struct {
	dst     netip.Prefix
	gateway netip.Addr
	dev     string
	metric  int
	proto   uint8
}

// route builds the netlink route for dst via gateway (none when invalid)
// out of dev (may be empty) in the main table, of dst's family, with its
// metric and protocol.
func route(h *nsHandle, rs routeSpec) (*netlink.Route, error) {
	dst, gateway, dev := rs.dst, rs.gateway, rs.dev
	r := &netlink.Route{Table: unix.RT_TABLE_MAIN, Priority: rs.metric, Protocol: netlink.RouteProtocol(rs.proto)}
	if !dst.IsValid() {
		return nil, fmt.Errorf("destination %s: not default or a CIDR", op.DstString(dst))
	}
	r.Dst = prefixNet(dst.Masked())
	if gateway.IsValid() {
		if gateway.Is4() != dst.Addr().Is4() {
			return nil, fmt.Errorf("gateway %s: not of the family of destination %s", gateway, op.DstString(dst))
		}
		r.Gw = gateway.AsSlice()
	} else {
		// As ip does for a route without a gateway.
		r.Scope = netlink.SCOPE_LINK
	}
	if dev != "" {
		l, err := indexed(h, dev)
		if err != nil {
			return nil, err
		}
		r.LinkIndex = l.Attrs().Index
	}
	return r, nil
}

// addRoute adds a route to the main table.
//
// Equivalent to: `ip [-n NS] route add DST via GATEWAY [dev LINK] [metric N] [proto N]`
func (k *Kernel) addRoute(ns string, rs routeSpec) error {
	h, err := k.socket(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	r, err := route(h, rs)
	if err != nil {
		return err
	}
	h.links = nil
	return executeOn(h.sock, routeRequest(r))
}

// routeRequest is what netlink.RouteAdd sends for r, a route that route
// built: see AddrRequest.
func routeRequest(r *netlink.Route) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	msg := nl.NewRtMsg() // the main table, protocol boot, unicast
	dst := r.Dst.IP      // 4 bytes for IPv4: route made it from a netip.Addr
	msg.Family = uint8(nl.GetIPFamily(dst))
	bits, _ := r.Dst.Mask.Size()
	msg.Dst_len = uint8(bits)
	msg.Scope = uint8(r.Scope)
	if r.Protocol > 0 {
		msg.Protocol = uint8(r.Protocol)
	}
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.RTA_DST, dst))
	if r.Gw != nil {
		req.AddData(nl.NewRtAttr(unix.RTA_GATEWAY, r.Gw))
	}
	if r.Priority > 0 {
		req.AddData(nl.NewRtAttr(unix.RTA_PRIORITY, nl.Uint32Attr(uint32(r.Priority))))
	}
	if r.LinkIndex > 0 {
		req.AddData(nl.NewRtAttr(unix.RTA_OIF, nl.Uint32Attr(uint32(r.LinkIndex))))
	}
	return req
}

// deleteRoute removes a route from the main table; a missing route,
// device or namespace is success.
//
// Equivalent to: `ip [-n NS] route del DST via GATEWAY [dev LINK] [metric N] [proto N]`
func (k *Kernel) deleteRoute(ns string, rs routeSpec) error {
	h, err := k.handle(ns)
	if machine.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer h.Close()
	r, err := route(h, rs)
	if machine.IsNotFound(err) {
		return nil // the device went, and its routes with it
	}
	if err != nil {
		return err
	}
	// As ip route del: any scope matches (netlink would send route's own).
	r.Scope = netlink.SCOPE_NOWHERE
	if err := h.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) {
		return err
	}
	return nil
}
