package links

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/topolab/topo/machine/nlattr"

	"github.com/topolab/topo/state"
)

// Sockets lists the host's listening TCP sockets and bound UDP sockets,
// IPv4 and IPv6, with the process that holds each where it can see it.
//
// Equivalent to: `ss -ltnup; cat /proc/net/sctp/eps`
func (k *Kernel) Sockets() ([]state.Socket, error) {
	tcp, err := diagSockets(unix.IPPROTO_TCP)
	if err != nil {
		// No sock_diag for TCP here (tcp_diag neither built in nor
		// loadable): /proc lists the same sockets, slower.
		if tcp, err = procSockets("tcp", "/proc/self/net/tcp", "/proc/self/net/tcp6"); err != nil {
			return nil, err
		}
	}
	udp, err := diagSockets(unix.IPPROTO_UDP)
	if err != nil {
		// udp_diag is a module of its own, often not loaded.
		if udp, err = procSockets("udp", "/proc/self/net/udp", "/proc/self/net/udp6"); err != nil {
			return nil, err
		}
	}
	sctp, err := procSCTPSockets("/proc/self/net/sctp/eps")
	if err != nil {
		return nil, err
	}
	socks := append(append(tcp, udp...), sctp...)
	nameOwners(socks)
	var out []state.Socket
	for _, s := range socks {
		out = append(out, s.Socket)
	}
	slices.SortFunc(out, func(a, b state.Socket) int {
		return cmp.Or(cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Port, b.Port), cmp.Compare(a.Addr, b.Addr), cmp.Compare(a.PID, b.PID))
	})
	return slices.Compact(out), nil
}

// hostSocket is a socket as read, with the inode that names it in
// /proc/PID/fd.
type hostSocket struct {
	state.Socket
	inode uint64
}

// tcpListen is TCP_LISTEN, a socket state as sock_diag and /proc/net/tcp
// give it.
const tcpListen = 10

// inetDiagSKV6Only is INET_DIAG_SKV6ONLY, the attribute that carries a
// listening IPv6 socket's IPV6_V6ONLY.
const inetDiagSKV6Only = 11

// diagSockets lists, from sock_diag, the host's listening TCP sockets or
// all its UDP sockets, IPv4 and IPv6.
//
// Reading /proc/net/tcp and tcp6 costs 1.7 ms each even with no socket at
// all: the kernel walks every bucket of its established-connection hash
// table, which all namespaces share. Asked for listeners only, sock_diag
// walks the listeners' table alone.
//
// Equivalent to: `ss -ltn` (TCP), `ss -uan` (UDP)
func diagSockets(protocol uint8) ([]hostSocket, error) {
	proto, states := "tcp", uint32(1<<tcpListen)
	if protocol == unix.IPPROTO_UDP {
		proto, states = "udp", ^uint32(0)
	}
	// A socket of this thread's namespace: threads leave the host's only
	// while locked (onThread, netlink.NewHandleAt).
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("sock_diag socket: %w", err)
	}
	defer unix.Close(fd)
	var out []hostSocket
	for i, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		req := &inetDiagReq{family: family, protocol: protocol, states: states}
		err := dumpOn(fd, uint32(i+1), nl.SOCK_DIAG_BY_FAMILY, nl.SOCK_DIAG_BY_FAMILY, req, nil, func(msg []byte) error {
			s, ok, err := parseDiagMsg(msg, proto)
			if ok {
				out = append(out, s)
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("sock_diag of %s family %d: %w", proto, family, err)
		}
	}
	return out, nil
}

// inetDiagMsgLen is the size of struct inet_diag_msg; its attributes
// follow.
const inetDiagMsgLen = 72

// parseDiagMsg reads a struct inet_diag_msg: family, state, timer,
// retrans, then the socket's id (source port and destination port in
// network order, source and destination address in 16 bytes each,
// interface, cookie), expires, rqueue, wqueue, uid and inode.
func parseDiagMsg(msg []byte, proto string) (hostSocket, bool, error) {
	if len(msg) < inetDiagMsgLen {
		return hostSocket{}, false, fmt.Errorf("short sock_diag message (%d bytes)", len(msg))
	}
	if proto == "tcp" && msg[1] != tcpListen {
		return hostSocket{}, false, nil
	}
	s := hostSocket{Socket: state.Socket{Proto: proto, Port: int(binary.BigEndian.Uint16(msg[4:6]))}}
	switch msg[0] {
	case unix.AF_INET:
		s.Addr = netip.AddrFrom4([4]byte(msg[8:12])).String()
	case unix.AF_INET6:
		s.Addr = netip.AddrFrom16([16]byte(msg[8:24])).String()
	default:
		return hostSocket{}, false, nil
	}
	s.inode = uint64(binary.NativeEndian.Uint32(msg[68:72]))
	err := nlattr.Each(msg[inetDiagMsgLen:], func(typ uint16, v []byte) error {
		if typ == inetDiagSKV6Only && len(v) > 0 {
			s.V6Only = v[0] != 0
		}
		return nil
	})
	return s, true, err
}

// inetDiagReq is struct inet_diag_req_v2 with an empty socket id: every
// socket of the family and protocol in the given states.
type inetDiagReq struct {
	family, protocol uint8
	states           uint32
}

// Len is the size of struct inet_diag_req_v2.
func (r *inetDiagReq) Len() int { return 56 }

// Serialize lays the request out as the kernel reads it.
func (r *inetDiagReq) Serialize() []byte {
	b := make([]byte, r.Len())
	b[0], b[1] = r.family, r.protocol
	binary.NativeEndian.PutUint32(b[4:8], r.states)
	return b
}

// procSockets lists the sockets of /proc/net files (tcp, tcp6, udp,
// udp6): listening ones only for TCP, all for UDP. They do not say
// whether an IPv6 socket is IPV6_V6ONLY: one on :: is taken to hold IPv4
// too, as it does by default.
func procSockets(proto string, files ...string) ([]hostSocket, error) {
	var out []hostSocket
	for _, file := range files {
		b, err := os.ReadFile(file)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		lines := strings.Split(string(b), "\n")
		for _, line := range lines[1:] {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			f := strings.Fields(line)
			if len(f) < 10 {
				continue
			}
			if proto == "tcp" && f[3] != fmt.Sprintf("%02X", tcpListen) {
				continue
			}
			hexAddr, hexPort, ok := strings.Cut(f[1], ":")
			addr, aok := procAddr(hexAddr)
			port, perr := strconv.ParseUint(hexPort, 16, 16)
			inode, ierr := strconv.ParseUint(f[9], 10, 64)
			if !ok || !aok || perr != nil || ierr != nil {
				continue
			}
			out = append(out, hostSocket{Socket: state.Socket{Proto: proto, Addr: addr.String(), Port: int(port)}, inode: inode})
		}
	}
	return out, nil
}

// procAddr reads an address of /proc/net/tcp: 32-bit words in hex, each
// in the machine's byte order.
func procAddr(h string) (netip.Addr, bool) {
	if len(h) != 8 && len(h) != 32 {
		return netip.Addr{}, false
	}
	b := make([]byte, 0, 16)
	for i := 0; i < len(h); i += 8 {
		w, err := strconv.ParseUint(h[i:i+8], 16, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		b = binary.NativeEndian.AppendUint32(b, uint32(w))
	}
	a, ok := netip.AddrFromSlice(b)
	return a, ok
}

// nameOwners gives each socket the pid and command name of the lowest
// process of this PID namespace that holds it, as `ss -p` finds them:
// /proc/PID/fd/N is a link to socket:[INODE]. It stops when all are
// found; sockets of processes it cannot see keep no owner.
func nameOwners(socks []hostSocket) {
	want := make(map[uint64][]int, len(socks))
	for i, s := range socks {
		if s.inode != 0 {
			want[s.inode] = append(want[s.inode], i)
		}
	}
	if len(want) == 0 {
		return
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	for _, pid := range pids {
		dir := "/proc/" + strconv.Itoa(pid) + "/fd/"
		fds, err := readDirNames(dir)
		if err != nil {
			continue // gone, or not ours to read
		}
		comm := ""
		for _, fd := range fds {
			link, err := os.Readlink(dir + fd)
			inode, ok := socketInode(link)
			if err != nil || !ok || want[inode] == nil {
				continue
			}
			if comm == "" {
				b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
				comm = strings.TrimSpace(string(b))
			}
			for _, i := range want[inode] {
				socks[i].PID, socks[i].Command = pid, comm
			}
			delete(want, inode)
			if len(want) == 0 {
				return
			}
		}
	}
}

// socketInode reads the target of a /proc/PID/fd link to a socket,
// "socket:[INODE]".
func socketInode(link string) (uint64, bool) {
	rest, ok := strings.CutPrefix(link, "socket:[")
	if !ok || !strings.HasSuffix(rest, "]") {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 64)
	return n, err == nil
}

// readDirNames lists a folder's names, unsorted: os.ReadDir would stat
// and sort each process's descriptors for nothing.
func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}
