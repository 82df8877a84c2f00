package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/topolab/topo/machine/links"
)

// floorArg, as the first argument, makes the bench binary the kernel
// floor: floorArg up|down TARGET.
const floorArg = "--topo-bench-floor"

// floorMain runs the floor if args ask for it, and returns whether they
// did and its exit status. It refuses to run anywhere but as a child of
// a sandbox's init (the bench, or its test binary, inside its sandbox):
// the floor changes the kernel of the namespace it runs in.
func floorMain(args []string) (bool, int) {
	if len(args) < 1 || args[0] != floorArg {
		return false, 0
	}
	if len(args) != 3 || (args[1] != "up" && args[1] != "down") {
		fmt.Fprintf(os.Stderr, "usage: %s up|down TARGET\n", floorArg)
		return true, 2
	}
	if os.Getenv("TOPO_SANDBOX_INSIDE") != "1" || os.Getppid() != 1 {
		fmt.Fprintln(os.Stderr, "the kernel floor runs only as a child of the bench inside its sandbox")
		return true, 2
	}
	t, err := readFloorTarget(args[2])
	if err == nil {
		if args[1] == "up" {
			err = floorUp(t)
		} else {
			err = floorDown(t)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kernel floor %s: %v\n", args[1], err)
		return true, 1
	}
	return true, 0
}

// floorCommand is the argv that runs the floor's verb on target.
func floorCommand(verb, target string) ([]string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return []string{self, floorArg, verb, target}, nil
}

// The floor's up, per container, is four kernel requests and a sysctl:
//
//   - the namespace: unshare(CLONE_NEWNET) on one locked thread that
//     stays in each new namespace until the next, a bind mount, and a
//     netlink socket made there (so no setns, ever); on its own thread,
//     beside the rest;
//   - one RTM_NEWLINK that makes the veth with its master, its peer
//     directly in the namespace with its MAC;
//   - the host end's disable_ipv6, through a folder held open (IPv6
//     settings have no netlink attribute): before the end is up, so it
//     never has an IPv6 address;
//   - one RTM_NEWLINK of the host end: alias, hairpin, up (the kernel
//     takes neither alias nor a port's settings at creation, and the end
//     must not be up before its IPv6 is off);
//   - one write of five messages into the namespace: lo's alias and up,
//     the peer's address generation off, its alias and up, its address
//     (the peer is index 2: lo is 1, and the namespace is new), its
//     default route.
//
// The bridges come first (a creation, then alias and up, then their
// addresses, in one write), the firewall (one restore per family), the
// files and the UTS namespaces (on a thread of their own, each an
// unshare, its names and a bind mount) run beside it all.
func floorUp(t *floorTarget) error {
	fw := startRestores(t.Firewall)
	files := make(chan error, 1)
	go func() { files <- writeFloorFiles(t.Files) }()
	uts := make(chan error, 1)
	go func() { uts <- makeUTS(t.UTS) }()

	if err := os.MkdirAll("/run/netns", 0o755); err != nil {
		return err
	}
	shareNetnsDir()
	made := make(chan madeNS, len(t.Containers))
	go makeNamespaces(t.Containers, made)

	host, err := openNetlink()
	if err != nil {
		return err
	}
	defer host.close()
	index, err := floorBridges(host, t.Bridges)
	if err != nil {
		return err
	}
	for _, s := range t.Sysctls {
		if err := writeSysctl(s.Key, s.Value); err != nil {
			return err
		}
	}
	conf, err := unix.Open("/proc/sys/net/ipv6/conf", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(conf)
	var failed error
	for range t.Containers {
		m := <-made
		if m.err != nil || failed != nil {
			failed = errors.Join(failed, m.err)
			m.close()
			continue
		}
		failed = floorContainerUp(host, conf, index, m)
		m.close()
	}
	return errors.Join(failed, <-files, <-uts, fw())
}

// makeUTS makes the UTS namespaces, on one locked thread that the
// runtime drops after: each `touch PATH; unshare --uts=PATH hostname H`.
func makeUTS(us []floorUTS) error {
	runtime.LockOSThread()
	for _, u := range us {
		if err := os.MkdirAll(filepath.Dir(u.Path), 0o700); err != nil {
			return err
		}
		fd, err := unix.Open(u.Path, unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return &os.PathError{Op: "create", Path: u.Path, Err: err}
		}
		unix.Close(fd)
		if err := unix.Unshare(unix.CLONE_NEWUTS); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		domain := u.Domainname
		if domain == "" {
			domain = "(none)"
		}
		if err := errors.Join(unix.Sethostname([]byte(u.Hostname)), unix.Setdomainname([]byte(domain))); err != nil {
			return fmt.Errorf("UTS namespace %s: %w", u.Path, err)
		}
		if err := unix.Mount("/proc/thread-self/ns/uts", u.Path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind mount %s: %w", u.Path, err)
		}
	}
	return nil
}

// removeUTS unmounts and removes the UTS namespaces, then their folder
// and the project's runtime folder, as topo's down leaves none.
func removeUTS(us []floorUTS) error {
	var failed error
	dirs := map[string]bool{}
	for _, u := range us {
		if err := unix.Unmount(u.Path, unix.MNT_DETACH); err != nil {
			failed = errors.Join(failed, fmt.Errorf("unmount %s: %w", u.Path, err))
			continue
		}
		failed = errors.Join(failed, os.Remove(u.Path))
		dirs[filepath.Dir(u.Path)] = true
	}
	for d := range dirs {
		failed = errors.Join(failed, os.Remove(d), os.Remove(filepath.Dir(d)))
	}
	return failed
}

// madeNS is a namespace makeNamespaces made, with a netlink socket and a
// file of it.
type madeNS struct {
	c          *floorContainer
	sock, file int
	err        error
}

func (m madeNS) close() {
	if m.err == nil {
		unix.Close(m.sock)
		unix.Close(m.file)
	}
}

// makeNamespaces makes every container's namespace, on one thread that
// the runtime drops after (it is locked, and left in the last one).
func makeNamespaces(cs []floorContainer, made chan<- madeNS) {
	runtime.LockOSThread()
	for i := range cs {
		m := madeNS{c: &cs[i]}
		m.sock, m.file, m.err = makeNamespace(cs[i].NS)
		made <- m
	}
}

// makeNamespace is `ip netns add NAME` on the calling thread, which it
// leaves in the new namespace, and returns a netlink socket of it and
// the namespace's file.
func makeNamespace(name string) (sock, file int, err error) {
	path := filepath.Join("/run/netns", name)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0, &os.PathError{Op: "create", Path: path, Err: err}
	}
	unix.Close(fd)
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return 0, 0, fmt.Errorf("unshare: %w", err)
	}
	if err := unix.Mount("/proc/thread-self/ns/net", path, "none", unix.MS_BIND, ""); err != nil {
		return 0, 0, fmt.Errorf("bind mount %s: %w", path, err)
	}
	if file, err = unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
		return 0, 0, err
	}
	if sock, err = netlinkSocket(); err != nil {
		unix.Close(file)
		return 0, 0, err
	}
	return sock, file, nil
}

// floorBridges makes the bridges and returns their indexes.
func floorBridges(host *nlSocket, bs []floorBridge) (map[string]int, error) {
	var reqs []*nl.NetlinkRequest
	for _, b := range bs {
		req := newLink(b.Name)
		req.AddData(nl.NewRtAttr(unix.IFLA_ADDRESS, []byte(b.MAC)))
		if b.MTU != 0 {
			req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(b.MTU))))
		}
		info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
		info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("bridge"))
		req.AddData(info)
		reqs = append(reqs, req, aliasUp(unix.RTM_SETLINK, b.Name, b.Alias))
	}
	if err := host.batch(reqs); err != nil {
		return nil, fmt.Errorf("bridges: %w", err)
	}
	index := map[string]int{}
	reqs = reqs[:0]
	for _, b := range bs {
		i, err := host.linkIndex(b.Name)
		if err != nil {
			return nil, err
		}
		index[b.Name] = i
		for _, a := range b.Addrs {
			reqs = append(reqs, links.AddrRequest(i, a))
		}
	}
	if err := host.batch(reqs); err != nil {
		return nil, fmt.Errorf("bridge addresses: %w", err)
	}
	return index, nil
}

func floorContainerUp(host *nlSocket, conf int, index map[string]int, m madeNS) error {
	c := m.c
	master, ok := index[c.Master]
	if !ok {
		return fmt.Errorf("veth %s: no bridge %s", c.Link, c.Master)
	}
	req := newLink(c.Link)
	if c.LinkMAC != nil {
		req.AddData(nl.NewRtAttr(unix.IFLA_ADDRESS, []byte(c.LinkMAC)))
	}
	if c.MTU != 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(c.MTU))))
	}
	req.AddData(nl.NewRtAttr(unix.IFLA_MASTER, nl.Uint32Attr(uint32(master))))
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("veth"))
	peer := info.AddRtAttr(nl.IFLA_INFO_DATA, nil).AddRtAttr(nl.VETH_INFO_PEER, nil)
	nl.NewIfInfomsgChild(peer, unix.AF_UNSPEC)
	peer.AddRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(c.Peer))
	if c.MAC != nil {
		peer.AddRtAttr(unix.IFLA_ADDRESS, []byte(c.MAC))
	}
	if c.MTU != 0 {
		peer.AddRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(c.MTU)))
	}
	peer.AddRtAttr(unix.IFLA_NET_NS_FD, nl.Uint32Attr(uint32(m.file)))
	req.AddData(info)
	if err := host.batch([]*nl.NetlinkRequest{req}); err != nil {
		return fmt.Errorf("veth %s: %w", c.Link, err)
	}
	if err := writeAt(conf, c.Link+"/disable_ipv6", "1"); err != nil {
		return fmt.Errorf("veth %s: %w", c.Link, err)
	}
	if err := host.batch([]*nl.NetlinkRequest{portUp(c.Link, c.Alias)}); err != nil {
		return fmt.Errorf("veth %s: %w", c.Link, err)
	}
	gen := linkReq(unix.RTM_SETLINK, c.Peer)
	af := nl.NewRtAttr(unix.IFLA_AF_SPEC, nil)
	af.AddRtAttr(unix.AF_INET6, nil).AddRtAttr(unix.IFLA_INET6_ADDR_GEN_MODE, []byte{1}) // IN6_ADDR_GEN_MODE_NONE
	gen.AddData(af)
	reqs := []*nl.NetlinkRequest{aliasUp(unix.RTM_SETLINK, "lo", c.Mark), gen, aliasUp(unix.RTM_SETLINK, c.Peer, c.Alias)}
	const peerIndex = 2
	for _, a := range c.Addrs {
		reqs = append(reqs, links.AddrRequest(peerIndex, a))
	}
	for _, r := range c.Routes {
		reqs = append(reqs, routeAdd(r))
	}
	ns := &nlSocket{fd: m.sock}
	if err := ns.batch(reqs); err != nil {
		return fmt.Errorf("namespace %s: %w", c.NS, err)
	}
	return nil
}

// The floor's down: the firewall's undo (one restore per family) and the
// removal of the files and the UTS namespaces beside the rest; the host
// ends of the veths and the bridges moved into one device group and
// deleted in one request (one unregister_netdevice_many, which pays the
// kernel's RCU waits once; the peers go with their pairs); then the
// namespaces unmounted and their files removed (only lo is left in
// them); the host's sysctls put back.
// The group is one no link holds: the sandbox holds only the benchmark's
// links, all in group 0.
func floorDown(t *floorTarget) error {
	fw := startRestores(t.Unfirewall)
	files := make(chan error, 1)
	go func() { files <- errors.Join(removeFloorFiles(t.Files), removeUTS(t.UTS)) }()

	host, err := openNetlink()
	if err != nil {
		return err
	}
	defer host.close()
	const group = 0x746f70 // "top"
	var reqs []*nl.NetlinkRequest
	setGroup := func(name string) {
		req := linkReq(unix.RTM_SETLINK, name)
		req.AddData(nl.NewRtAttr(unix.IFLA_GROUP, nl.Uint32Attr(group)))
		reqs = append(reqs, req)
	}
	for _, c := range t.Containers {
		setGroup(c.Link)
	}
	for _, b := range t.Bridges {
		setGroup(b.Name)
	}
	del := nl.NewNetlinkRequest(unix.RTM_DELLINK, unix.NLM_F_ACK)
	del.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	del.AddData(nl.NewRtAttr(unix.IFLA_GROUP, nl.Uint32Attr(group)))
	reqs = append(reqs, del)
	var failed error
	if err := host.batch(reqs); err != nil {
		failed = fmt.Errorf("links: %w", err)
	}
	for _, c := range t.Containers {
		path := filepath.Join("/run/netns", c.NS)
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
			failed = errors.Join(failed, fmt.Errorf("unmount %s: %w", path, err))
			continue
		}
		failed = errors.Join(failed, os.Remove(path))
	}
	for _, s := range t.Sysctls {
		if s.Before != "" {
			failed = errors.Join(failed, writeSysctl(s.Key, s.Before))
		}
	}
	return errors.Join(failed, <-files, fw())
}

// startRestores starts one restore per input and returns what waits for
// them all.
func startRestores(rs []floorRestore) func() error {
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	var failed error
	for _, r := range rs {
		cmd := exec.Command(r.Program, "--noflush", "-w")
		cmd.Stdin = strings.NewReader(r.Input)
		out := &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			failed = errors.Join(failed, err)
			continue
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	return func() error {
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				failed = errors.Join(failed, fmt.Errorf("%s: %w: %s", cmd.Path, err, strings.TrimSpace(outs[i].String())))
			}
		}
		return failed
	}
}

// writeFloorFiles writes the files as topo does: folders 0755, files
// 0644.
func writeFloorFiles(fs []floorFile) error {
	for _, f := range fs {
		if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(f.Path, []byte(f.Content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// removeFloorFiles removes the files, and their folders once empty.
func removeFloorFiles(fs []floorFile) error {
	var failed error
	dirs := map[string]bool{}
	for _, f := range fs {
		failed = errors.Join(failed, os.Remove(f.Path))
		dirs[filepath.Dir(f.Path)] = true
	}
	for d := range dirs {
		failed = errors.Join(failed, os.Remove(d))
	}
	return failed
}

func writeSysctl(key, value string) error {
	return os.WriteFile("/proc/sys/"+strings.ReplaceAll(key, ".", "/"), []byte(value), 0o644)
}

func writeAt(dir int, name, value string) error {
	fd, err := unix.Openat(dir, name, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: name, Err: err}
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte(value)); err != nil {
		return &os.PathError{Op: "write", Path: name, Err: err}
	}
	return nil
}

// shareNetnsDir makes /run/netns a shared mount, bound on itself, as ip
// and topo do.
func shareNetnsDir() {
	if errors.Is(unix.Mount("", "/run/netns", "none", unix.MS_SHARED|unix.MS_REC, ""), unix.EINVAL) {
		if unix.Mount("/run/netns", "/run/netns", "none", unix.MS_BIND|unix.MS_REC, "") == nil {
			_ = unix.Mount("", "/run/netns", "none", unix.MS_SHARED|unix.MS_REC, "")
		}
	}
}

// Requests, as topo's machine/links makes them.

func newLink(name string) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	return req
}

func linkReq(typ int, name string) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(typ, unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	return req
}

func aliasUp(typ int, name, alias string) *nl.NetlinkRequest {
	req := linkReq(typ, name)
	req.Data[0].(*nl.IfInfomsg).Flags = unix.IFF_UP
	req.Data[0].(*nl.IfInfomsg).Change = unix.IFF_UP
	req.AddData(nl.NewRtAttr(unix.IFLA_IFALIAS, []byte(alias)))
	return req
}

// portUp is aliasUp of a bridge port, in hairpin mode.
func portUp(name, alias string) *nl.NetlinkRequest {
	req := aliasUp(unix.RTM_NEWLINK, name, alias)
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_SLAVE_KIND, nl.NonZeroTerminated("bridge"))
	info.AddRtAttr(nl.IFLA_INFO_SLAVE_DATA, nil).AddRtAttr(nl.IFLA_BRPORT_MODE, []byte{1})
	req.AddData(info)
	return req
}

// routeAdd is `ip route add DST via GATEWAY` in the main table.
func routeAdd(r floorRoute) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	msg := nl.NewRtMsg()
	msg.Family = uint8(nl.GetIPFamily(r.Gateway.AsSlice()))
	msg.Dst_len = uint8(r.Dst.Bits())
	req.AddData(msg)
	if r.Dst.Bits() > 0 {
		req.AddData(nl.NewRtAttr(unix.RTA_DST, r.Dst.Masked().Addr().AsSlice()))
	}
	req.AddData(nl.NewRtAttr(unix.RTA_GATEWAY, r.Gateway.AsSlice()))
	return req
}

// nlSocket is a netlink route socket that sends requests in batches: one
// write of many messages, which the kernel runs in order, then their
// acknowledgements.
type nlSocket struct {
	fd  int
	seq uint32
	buf []byte
}

func netlinkSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return 0, fmt.Errorf("netlink socket: %w", err)
	}
	return fd, nil
}

func openNetlink() (*nlSocket, error) {
	fd, err := netlinkSocket()
	if err != nil {
		return nil, err
	}
	return &nlSocket{fd: fd}, nil
}

func (s *nlSocket) close() { unix.Close(s.fd) }

// batchSize bounds the messages of one write, so that their
// acknowledgements fit the socket's receive buffer.
const batchSize = 256

// batch sends reqs in order and waits for all their acknowledgements;
// it stops at the first that fails (the kernel has run those before it).
func (s *nlSocket) batch(reqs []*nl.NetlinkRequest) error {
	for len(reqs) > 0 {
		n := min(len(reqs), batchSize)
		if err := s.send(reqs[:n]); err != nil {
			return err
		}
		reqs = reqs[n:]
	}
	return nil
}

func (s *nlSocket) send(reqs []*nl.NetlinkRequest) error {
	var out []byte
	first := s.seq + 1
	for _, r := range reqs {
		s.seq++
		r.Seq = s.seq
		out = append(out, r.Serialize()...)
	}
	if err := unix.Sendto(s.fd, out, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	acked := 0
	for acked < len(reqs) {
		msgs, err := s.receive()
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Header.Type != unix.NLMSG_ERROR || m.Header.Seq < first || m.Header.Seq > s.seq {
				continue
			}
			acked++
			if code := int32(nl.NativeEndian().Uint32(m.Data[:4])); code != 0 {
				// Later requests of the write still run; drain their
				// answers so the socket stays usable, then fail.
				err := fmt.Errorf("request %d of %d: %w", m.Header.Seq-first+1, len(reqs), syscall.Errno(-code))
				for acked < len(reqs) {
					more, rerr := s.receive()
					if rerr != nil {
						break
					}
					for _, m := range more {
						if m.Header.Type == unix.NLMSG_ERROR {
							acked++
						}
					}
				}
				return err
			}
		}
	}
	return nil
}

func (s *nlSocket) receive() ([]syscall.NetlinkMessage, error) {
	if s.buf == nil {
		s.buf = make([]byte, 1<<16)
	}
	n, _, err := unix.Recvfrom(s.fd, s.buf, 0)
	if err != nil {
		return nil, fmt.Errorf("netlink receive: %w", err)
	}
	return syscall.ParseNetlinkMessage(s.buf[:n])
}

// linkIndex asks for the index of the link called name.
func (s *nlSocket) linkIndex(name string) (int, error) {
	// No acknowledgement asked: the answer is the link.
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, 0)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	s.seq++
	req.Seq = s.seq
	if err := unix.Sendto(s.fd, req.Serialize(), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, err
	}
	for {
		msgs, err := s.receive()
		if err != nil {
			return 0, err
		}
		for _, m := range msgs {
			if m.Header.Seq != s.seq {
				continue
			}
			switch m.Header.Type {
			case unix.RTM_NEWLINK:
				return int(nl.DeserializeIfInfomsg(m.Data).Index), nil
			case unix.NLMSG_ERROR:
				if code := int32(nl.NativeEndian().Uint32(m.Data[:4])); code != 0 {
					return 0, fmt.Errorf("link %s: %w", name, syscall.Errno(-code))
				}
			}
		}
	}
}
