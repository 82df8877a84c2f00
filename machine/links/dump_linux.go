package links

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/topolab/topo/machine/nlattr"
)

// Observation dumps every namespace's links, addresses and routes. The
// library's dumps decode every attribute of every message into its types
// (statistics, per-family settings, driver data) and topo keeps a few
// fields: a no-op observation of 500 containers spent as long decoding as
// the kernel spent dumping (a standalone run of the three dumps of 500
// namespaces: 27 ms through the library, 13 ms raw). These dumps read
// only what state.Link and state.Route hold, and ask the kernel to leave
// the links' statistics out.

// linkInfo is what topo reads of a link.
type linkInfo struct {
	Index  int
	Name   string
	Kind   string // as netlink.Link's Type: "device" when the kernel gives none
	Alias  string
	Master int    // index, 0 when none
	Flags  uint32 // IFF_*
	Group  uint32 // device group
	MTU    uint32
	// MAC is the hardware address, zeros when none (lo). Formatted only
	// where it is used, for bridges: the observation reads every link of
	// every namespace.
	MAC [6]byte
	// Hairpin is a bridge port's hairpin mode (IFLA_BRPORT_MODE).
	Hairpin bool
	// Link is the index of the link it is made on (IFLA_LINK: a
	// macvlan's parent), in the namespace LinkNetns says when set
	// (IFLA_LINK_NETNSID); MacvlanMode is a macvlan's mode.
	Link        int
	LinkNetns   bool
	MacvlanMode uint32
}

// addrInfo is an address of a link, of either family.
type addrInfo struct {
	Index int
	CIDR  string // as net.IPNet's String
}

// ip6DefaultMetric is the metric the kernel gives an IPv6 route added
// with none (IP6_RT_PRIO_USER).
const ip6DefaultMetric = 1024

// routeInfo is a route of the main table, of either family.
type routeInfo struct {
	Dst     string // "default" for 0.0.0.0/0, "::/0" for IPv6's default
	Gateway string
	OIF     int
	Metric  int
	Proto   uint8
}

// rtextFilterSkipStats is RTEXT_FILTER_SKIP_STATS: no link statistics in
// the dump.
const rtextFilterSkipStats = 1 << 3

// dump sends a dump request of type typ with header hdr on sh and calls fn
// with the payload of every answer of type resType. A dump the kernel
// marks as interrupted (objects changed during it) is
// nl.ErrDumpInterrupted, for retryDump.
//
// It reads the answers itself, into a buffer it reuses: the library's
// Receive allocates 64 KiB for each read, two reads a dump, three dumps a
// namespace (a 500-container observation allocated 190 MiB that way), and
// asks the kernel for the socket's address on every request.
func dump(sh *nl.SocketHandle, typ int, resType uint16, hdr nl.NetlinkRequestData, attrs []nl.NetlinkRequestData, fn func(msg []byte) error) error {
	s := sh.Socket
	s.Lock()
	defer s.Unlock()
	return dumpOn(s.GetFd(), atomic.AddUint32(&sh.Seq, 1), typ, resType, hdr, attrs, fn)
}

// dumpOn is dump on the netlink socket fd, numbering the request seq.
func dumpOn(fd int, seq uint32, typ int, resType uint16, hdr nl.NetlinkRequestData, attrs []nl.NetlinkRequestData, fn func(msg []byte) error) error {
	req := nl.NewNetlinkRequest(typ, unix.NLM_F_DUMP)
	req.AddData(hdr)
	for _, a := range attrs {
		req.AddData(a)
	}
	req.Seq = seq
	if err := unix.Sendto(fd, req.Serialize(), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	bp := dumpBuffers.Get().(*[]byte)
	defer dumpBuffers.Put(bp)
	buf := *bp
	interrupted := false
	for {
		n, err := recvReady(fd, buf)
		if err != nil {
			return fmt.Errorf("netlink receive: %w", err)
		}
		for b := buf[:n]; len(b) >= unix.SizeofNlMsghdr; {
			h := (*unix.NlMsghdr)(unsafe.Pointer(&b[0]))
			l := int(h.Len)
			if l < unix.SizeofNlMsghdr || l > len(b) {
				return fmt.Errorf("malformed netlink message (length %d of %d bytes)", l, len(b))
			}
			payload := b[unix.SizeofNlMsghdr:l]
			b = b[min(nlmAlign(l), len(b)):]
			if h.Seq != req.Seq {
				continue // an answer to an earlier request
			}
			if h.Flags&unix.NLM_F_DUMP_INTR != 0 {
				interrupted = true
			}
			switch h.Type {
			case unix.NLMSG_DONE, unix.NLMSG_ERROR:
				if len(payload) >= 4 {
					if errno := int32(binary.NativeEndian.Uint32(payload)); errno != 0 {
						return syscall.Errno(-errno)
					}
				}
				if interrupted {
					return nl.ErrDumpInterrupted
				}
				return nil
			case resType:
				if err := fn(payload); err != nil {
					return err
				}
			}
		}
	}
}

// dumpBuffers hold one netlink read each: the kernel's dump messages fit
// in 32 KiB; the library reads into 64.
var dumpBuffers = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// recvReady reads one datagram from the non-blocking socket fd, waiting
// for one if none is there yet (the kernel queues a dump's first part
// before the request's send returns, and each next one as the previous
// is read, so that is rare). A datagram larger than buf is an error, not
// a silently cut answer.
func recvReady(fd int, buf []byte) (int, error) {
	for {
		n, _, err := unix.Recvfrom(fd, buf, unix.MSG_TRUNC)
		switch {
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 1000)
			continue
		case err != nil:
			return 0, err
		case n > len(buf):
			return 0, fmt.Errorf("answer of %d bytes, more than %d", n, len(buf))
		}
		return n, nil
	}
}

func nlmAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

// dumpLinks lists the links of sh's namespace.
//
// Equivalent to: `ip link`
func dumpLinks(sh *nl.SocketHandle) ([]linkInfo, error) {
	var out []linkInfo
	err := dump(sh, unix.RTM_GETLINK, unix.RTM_NEWLINK, nl.NewIfInfomsg(unix.AF_UNSPEC),
		[]nl.NetlinkRequestData{nl.NewRtAttr(unix.IFLA_EXT_MASK, nl.Uint32Attr(rtextFilterSkipStats))},
		func(msg []byte) error {
			if len(msg) < unix.SizeofIfInfomsg {
				return fmt.Errorf("short link message (%d bytes)", len(msg))
			}
			ifi := (*unix.IfInfomsg)(unsafe.Pointer(&msg[0]))
			l := linkInfo{Index: int(ifi.Index), Flags: ifi.Flags, Kind: "device"}
			err := nlattr.Each(msg[unix.SizeofIfInfomsg:], func(typ uint16, v []byte) error {
				switch typ {
				case unix.IFLA_IFNAME:
					l.Name = nlattr.CString(v)
				case unix.IFLA_IFALIAS:
					l.Alias = nlattr.CString(v)
				case unix.IFLA_MASTER:
					l.Master = int(u32(v))
				case unix.IFLA_GROUP:
					l.Group = u32(v)
				case unix.IFLA_MTU:
					l.MTU = u32(v)
				case unix.IFLA_ADDRESS:
					copy(l.MAC[:], v)
				case unix.IFLA_LINK:
					l.Link = int(u32(v))
				case unix.IFLA_LINK_NETNSID:
					l.LinkNetns = true
				case unix.IFLA_LINKINFO:
					return nlattr.Each(v, func(typ uint16, v []byte) error {
						switch typ {
						case unix.IFLA_INFO_KIND:
							l.Kind = linkKind(nlattr.CString(v))
						case unix.IFLA_INFO_DATA:
							// The kernel gives the kind first.
							if l.Kind == "macvlan" {
								return nlattr.Each(v, func(typ uint16, v []byte) error {
									if typ == unix.IFLA_MACVLAN_MODE {
										l.MacvlanMode = u32(v)
									}
									return nil
								})
							}
						case nl.IFLA_INFO_SLAVE_DATA:
							return nlattr.Each(v, func(typ uint16, v []byte) error {
								if typ == nl.IFLA_BRPORT_MODE && len(v) > 0 {
									l.Hairpin = v[0] != 0
								}
								return nil
							})
						}
						return nil
					})
				}
				return nil
			})
			out = append(out, l)
			return err
		})
	return out, err
}

// linkKind is the netlink library's name for a kind of link, so that
// snapshots read either way say the same.
func linkKind(kind string) string {
	if kind == "tun" {
		return "tuntap"
	}
	return kind
}

// dumpAddrs lists the addresses of both families of sh's namespace, in
// one dump: the kernel's own IPv6 ones too (a bridge's link-local
// address, lo's ::1), which the planner leaves alone.
//
// Equivalent to: `ip addr`
func dumpAddrs(sh *nl.SocketHandle) ([]addrInfo, error) {
	var out []addrInfo
	err := dump(sh, unix.RTM_GETADDR, unix.RTM_NEWADDR, nl.NewIfAddrmsg(unix.AF_UNSPEC), nil,
		func(msg []byte) error {
			if len(msg) < unix.SizeofIfAddrmsg {
				return fmt.Errorf("short address message (%d bytes)", len(msg))
			}
			ifa := (*unix.IfAddrmsg)(unsafe.Pointer(&msg[0]))
			bits := familyBits(ifa.Family)
			if bits == 0 {
				return nil
			}
			var address, local net.IP
			err := nlattr.Each(msg[unix.SizeofIfAddrmsg:], func(typ uint16, v []byte) error {
				switch typ {
				case unix.IFA_ADDRESS:
					address = net.IP(v)
				case unix.IFA_LOCAL:
					local = net.IP(v)
				}
				return nil
			})
			// IPv4 gives both; they differ on a point-to-point address,
			// whose own (local) address then has no prefix: read as the
			// library does. IPv6 gives IFA_ADDRESS alone, but for a
			// point-to-point address, whose IFA_LOCAL is its own.
			ipn := net.IPNet{IP: address, Mask: net.CIDRMask(int(ifa.Prefixlen), bits)}
			if local != nil && !local.Equal(address) {
				ipn = net.IPNet{IP: local, Mask: net.CIDRMask(bits, bits)}
			}
			if ipn.IP == nil {
				return err
			}
			out = append(out, addrInfo{Index: int(ifa.Index), CIDR: ipn.String()})
			return err
		})
	return out, err
}

// familyBits is the length of an address of the family: 32 for AF_INET,
// 128 for AF_INET6, 0 for others.
func familyBits(family uint8) int {
	switch family {
	case unix.AF_INET:
		return 32
	case unix.AF_INET6:
		return 128
	}
	return 0
}

// dumpRoutes lists the routes of the main table of both families of sh's
// namespace, in one dump, without the kernel's cached clones.
//
// Equivalent to: `ip route show table main; ip -6 route show table main`
func dumpRoutes(sh *nl.SocketHandle) ([]routeInfo, error) {
	var out []routeInfo
	err := dump(sh, unix.RTM_GETROUTE, unix.RTM_NEWROUTE, &nl.RtMsg{RtMsg: unix.RtMsg{Family: unix.AF_UNSPEC}}, nil,
		func(msg []byte) error {
			if len(msg) < unix.SizeofRtMsg {
				return fmt.Errorf("short route message (%d bytes)", len(msg))
			}
			rtm := (*unix.RtMsg)(unsafe.Pointer(&msg[0]))
			bits := familyBits(rtm.Family)
			if bits == 0 || rtm.Flags&unix.RTM_F_CLONED != 0 {
				return nil
			}
			table := uint32(rtm.Table)
			r := routeInfo{Dst: "default", Proto: rtm.Protocol}
			if bits == 128 {
				r.Dst = "::/0"
			}
			err := nlattr.Each(msg[unix.SizeofRtMsg:], func(typ uint16, v []byte) error {
				switch typ {
				case unix.RTA_TABLE:
					table = u32(v)
				case unix.RTA_DST:
					if rtm.Dst_len != 0 {
						r.Dst = (&net.IPNet{IP: net.IP(v), Mask: net.CIDRMask(int(rtm.Dst_len), bits)}).String()
					}
				case unix.RTA_GATEWAY:
					r.Gateway = net.IP(v).String()
				case unix.RTA_OIF:
					r.OIF = int(u32(v))
				case unix.RTA_PRIORITY:
					r.Metric = int(u32(v))
				}
				return nil
			})
			if bits == 128 && r.Metric == ip6DefaultMetric {
				// The kernel's own metric for an IPv6 route added without
				// one: read as IPv4's, 0, so that a route topo adds reads
				// back as it was asked for.
				r.Metric = 0
			}
			if table == unix.RT_TABLE_MAIN {
				out = append(out, r)
			}
			return err
		})
	return out, err
}

// u32 is a netlink u32 attribute; 0 if short.
func u32(v []byte) uint32 {
	if len(v) < 4 {
		return 0
	}
	return binary.NativeEndian.Uint32(v)
}
