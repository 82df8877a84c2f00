package kernel

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/topolab/topo/planner"
)

// Netlink is the real Kernel. It talks to each network namespace through a
// netlink handle bound to it (never through the calling thread's namespace),
// and keeps named namespaces under /run/netns as iproute2 does, so that
// `ip netns list` and `ip netns exec` see them.
type Netlink struct {
	// host is the namespace topo runs in, held open so that "" always
	// means it, whatever thread asks.
	host netns.NsHandle
	// fw is the iptables backend, detected on first use.
	fw fwState
	// handles keeps netlink handles open across the steps of one command
	// (see handles_linux.go).
	handles handleCache
	// hostIPv6Conf is the host's /proc/sys/net/ipv6/conf.
	hostIPv6Conf confDir
	// dying is what the kernel still removes of deleted namespaces (see
	// netns_del_linux.go).
	dying teardown
}

var _ Kernel = (*Netlink)(nil)

// New returns the netlink-backed Kernel for the network namespace the
// process runs in.
func New() (Kernel, error) {
	// Any unlocked thread is in the host namespace: threads switch only
	// while locked, and are restored or discarded after (see onThread).
	host, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("open host network namespace: %w", err)
	}
	return &Netlink{host: host}, nil
}

// Apply performs one step, as the comment of its Op in package planner
// says. Deleting something already gone succeeds; creating something that
// exists fails with an error for which IsExist is true.
func (k *Netlink) Apply(ctx context.Context, s planner.Step) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !whileTearingDown[s.Op] {
		k.Settle(ctx)
	}
	if s.Op == planner.OpSeq {
		for _, part := range s.Steps {
			if err := k.Apply(ctx, part); err != nil {
				return err
			}
		}
		return nil
	}
	if ok, err := k.applyDNS(s); ok {
		if err != nil {
			return fmt.Errorf("%s (%s): %w", s.Command(), s.Resource, classify(err))
		}
		return nil
	}
	var err error
	switch s.Op {
	case planner.OpSysctl:
		err = k.setSysctl(s.NS, s.Key, s.Value)
	case planner.OpNetnsAdd:
		k.handles.forget(s.NS)
		err = k.addNetns(s.NS, s.Alias)
	case planner.OpNetnsDel:
		err = k.deleteNetnsStep(s) // netns_del_linux.go
	case planner.OpBridgeAdd:
		err = k.addBridge(s)
	case planner.OpLinkMAC:
		err = k.setLinkMAC(s)
	case planner.OpHairpin:
		err = k.execute(s.NS, hairpinRequest(linkRequest(unix.RTM_NEWLINK, s.Link), s.Value == "on"))
	case planner.OpVethAdd:
		err = k.addVeth(s)
	case planner.OpLinkDel:
		err = k.deleteLink(s.NS, s.Link, s.Alias)
	case planner.OpLinkUp:
		err = k.setLinkUp(s.NS, s.Link, true)
	case planner.OpLinkDown:
		err = k.setLinkUp(s.NS, s.Link, false)
	case planner.OpAddrAdd:
		err = k.addAddr(s.NS, s.Link, s.Addr)
	case planner.OpAddrDel:
		err = k.deleteAddr(s.NS, s.Link, s.Addr)
	case planner.OpRouteAdd:
		err = k.addRoute(s.NS, s.Dst, s.Gateway, s.Link)
	case planner.OpRouteDel:
		err = k.deleteRoute(s.NS, s.Dst, s.Gateway, s.Link)
	case planner.OpProcStart:
		err = startProcess(s)
	case planner.OpProcStop:
		err = stopProcess(s)
	case planner.OpFirewall:
		err = k.applyFirewall(ctx, s)
	default:
		err = errors.New("unknown op")
	}
	if err != nil {
		return fmt.Errorf("%s (%s): %w", describe(s), s.Resource, classify(err))
	}
	return nil
}

// describe says what a step does, for its error message:
// "create bridge br-3f2a", "add address 10.0.0.2/24 to eth0 in web".
func describe(s planner.Step) string {
	in := ""
	if s.NS != "" {
		in = " in " + s.NS
	}
	switch s.Op {
	case planner.OpSysctl:
		return fmt.Sprintf("set sysctl %s=%s%s", s.Key, s.Value, in)
	case planner.OpFirewall:
		return fmt.Sprintf("apply %d iptables changes to table %s", len(s.Rules), s.Table)
	case planner.OpNetnsAdd:
		return "create namespace " + s.NS
	case planner.OpNetnsDel:
		return "delete namespace " + s.NS
	case planner.OpBridgeAdd:
		return "create bridge " + s.Link + in
	case planner.OpVethAdd:
		peerIn := ""
		if s.PeerNS != "" {
			peerIn = " in " + s.PeerNS
		}
		return fmt.Sprintf("create veth %s%s (peer %s%s)", s.Link, in, s.Peer, peerIn)
	case planner.OpLinkDel:
		return "delete link " + s.Link + in
	case planner.OpLinkMAC:
		return "set the address of link " + s.Link + in + " to " + s.MAC
	case planner.OpHairpin:
		return "set hairpin " + s.Value + " on bridge port " + s.Link + in
	case planner.OpLinkUp:
		return "set link " + s.Link + in + " up"
	case planner.OpLinkDown:
		return "set link " + s.Link + in + " down"
	case planner.OpAddrAdd:
		return fmt.Sprintf("add address %s to %s%s", s.Addr, s.Link, in)
	case planner.OpAddrDel:
		return fmt.Sprintf("delete address %s from %s%s", s.Addr, s.Link, in)
	case planner.OpRouteAdd, planner.OpRouteDel:
		verb := "add"
		if s.Op == planner.OpRouteDel {
			verb = "delete"
		}
		r := verb + " route " + s.Dst
		if s.Gateway != "" {
			r += " via " + s.Gateway
		}
		if s.Link != "" {
			r += " dev " + s.Link
		}
		return r + in
	case planner.OpProcStart:
		return fmt.Sprintf("start %s%s", planner.ShellJoin(s.Argv), in)
	case planner.OpProcStop:
		return fmt.Sprintf("stop %s%s (pid file %s)", planner.ShellJoin(s.Argv), in, s.PidFile)
	case planner.OpResolverStop, planner.OpRecordsDel:
		// In a batch (stopResolverBatch): as Apply names DNS steps.
		return s.Command()
	}
	return fmt.Sprintf("%s%s", s.Op, in)
}

// kernelError keeps the kernel's own error (and its message) and adds the
// class that IsExist and IsNotFound test.
type kernelError struct{ err, class error }

func (e kernelError) Error() string   { return e.err.Error() }
func (e kernelError) Unwrap() []error { return []error{e.err, e.class} }

// classify tags an error from the kernel with ErrExist or ErrNotExist.
func classify(err error) error {
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.Is(err, ErrExist), errors.Is(err, ErrNotExist):
		return err
	case errors.Is(err, unix.EEXIST):
		return kernelError{err, ErrExist}
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV), errors.As(err, &notFound):
		return kernelError{err, ErrNotExist}
	}
	return err
}

// handle returns a netlink handle bound to the named namespace, or to the
// host's for "", from the cache, with the library's handle; Close gives
// it back. A missing namespace is ErrNotExist.
func (k *Netlink) handle(ns string) (*nsHandle, error) {
	h, err := k.handles.get(k, ns, true)
	if h != nil {
		h.links = nil // the library's calls are changes, or reads of their own
	}
	return h, err
}

// socket is handle for topo's own requests and dumps only: its Handle may
// be nil.
func (k *Netlink) socket(ns string) (*nsHandle, error) {
	return k.handles.get(k, ns, false)
}

// openNetns opens a named namespace. A missing one is ErrNotExist.
func openNetns(name string) (netns.NsHandle, error) {
	path, err := netnsPath(name)
	if err != nil {
		return netns.None(), err
	}
	fd, err := netns.GetFromPath(path)
	if errors.Is(err, os.ErrNotExist) {
		return netns.None(), fmt.Errorf("namespace %s: %w", name, ErrNotExist)
	}
	return fd, err
}

// openNetnsOrHost opens a named namespace, or duplicates the host's handle
// for "", so that the caller always closes what it gets.
func (k *Netlink) openNetnsOrHost(name string) (netns.NsHandle, error) {
	if name == "" {
		fd, err := unix.FcntlInt(uintptr(k.host), unix.F_DUPFD_CLOEXEC, 0)
		return netns.NsHandle(fd), err
	}
	return openNetns(name)
}
