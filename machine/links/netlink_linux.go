// Package links is the netlink mechanism of package machine: named
// network namespaces, links, addresses, routes and root qdiscs, observed
// and changed through netlink handles bound to each namespace (never through the
// calling thread's namespace). Named namespaces are kept under /run/netns
// as iproute2 keeps them, so that `ip netns list` and `ip netns exec` see
// them. It holds the machinery that makes large runs fast: its own dumps
// (dump_linux.go), a cache of handles (handles_linux.go), group deletes
// (batch_linux.go), and the background teardown of deleted namespaces
// that Settle waits for (netns_del_linux.go). Fake is its in-memory
// counterpart.
package links

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/topolab/topo/machine"
	topons "github.com/topolab/topo/machine/netns"
	"github.com/topolab/topo/op"
)

// Kernel is the real Links.
type Kernel struct {
	// host is the namespace topo runs in, held open so that "" always
	// means it, whatever thread asks.
	host netns.NsHandle
	// handles keeps netlink handles open across the operations of one
	// command (see handles_linux.go).
	handles handleCache
	// hostIPv6Conf is the host's /proc/sys/net/ipv6/conf.
	hostIPv6Conf confDir
	// dying is what the kernel still removes of deleted namespaces (see
	// netns_del_linux.go).
	dying teardown
}

var _ machine.Links = (*Kernel)(nil)

// New returns the netlink mechanism of the network namespace the process
// runs in.
func New() (*Kernel, error) {
	// Any unlocked thread is in the host namespace: threads switch only
	// while locked, and are restored or discarded after (see
	// netns.OnThread).
	host, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("open host network namespace: %w", err)
	}
	return &Kernel{host: host}, nil
}

// NetnsAdd creates a named namespace (netns_linux.go).
func (k *Kernel) NetnsAdd(o op.NetnsAdd) error {
	k.handles.forget(o.NS)
	return classify(k.addNetns(o.NS, o.Mark.String()))
}

// LinkSetUp sets a link up or down.
func (k *Kernel) LinkSetUp(ns, link string, up bool) error {
	return classify(k.setLinkUp(ns, link, up))
}

// Hairpin sets a bridge port's hairpin mode.
func (k *Kernel) Hairpin(o op.Hairpin) error {
	return classify(k.execute(o.NS, hairpinRequest(linkRequest(unix.RTM_NEWLINK, o.Link), o.On)))
}

// BridgeAdd creates a bridge (links_linux.go).
func (k *Kernel) BridgeAdd(o op.BridgeAdd) error { return classify(k.addBridge(o)) }

// VethAdd creates a veth pair (links_linux.go).
func (k *Kernel) VethAdd(o op.VethAdd) error { return classify(k.addVeth(o)) }

// LinkSetMAC sets a link's hardware address.
func (k *Kernel) LinkSetMAC(o op.LinkSetMAC) error { return classify(k.setLinkMAC(o)) }

// LinkSetMTU sets a link's MTU.
func (k *Kernel) LinkSetMTU(o op.LinkSetMTU) error { return classify(k.setLinkMTU(o)) }

// AddrAdd adds an address.
func (k *Kernel) AddrAdd(o op.AddrAdd) error { return classify(k.addAddr(o.NS, o.Link, o.Addr)) }

// AddrDel removes an address.
func (k *Kernel) AddrDel(o op.AddrDel) error { return classify(k.deleteAddr(o.NS, o.Link, o.Addr)) }

// RouteAdd adds a route.
func (k *Kernel) RouteAdd(o op.RouteAdd) error {
	return classify(k.addRoute(o.NS, routeSpec{o.Dst, o.Gateway, o.Link, o.Metric, o.Proto}))
}

// RouteDel removes a route.
func (k *Kernel) RouteDel(o op.RouteDel) error {
	return classify(k.deleteRoute(o.NS, routeSpec{o.Dst, o.Gateway, o.Link, o.Metric, o.Proto}))
}

// kernelError keeps the kernel's own error (and its message) and adds the
// class that machine.IsExist and machine.IsNotFound test.
type kernelError struct{ err, class error }

func (e kernelError) Error() string   { return e.err.Error() }
func (e kernelError) Unwrap() []error { return []error{e.err, e.class} }

// classify tags an error from the kernel with machine.ErrExist or
// machine.ErrNotExist.
func classify(err error) error {
	var notFound netlink.LinkNotFoundError
	switch {
	case err == nil, errors.Is(err, machine.ErrExist), errors.Is(err, machine.ErrNotExist):
		return err
	case errors.Is(err, unix.EEXIST):
		return kernelError{err, machine.ErrExist}
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV), errors.As(err, &notFound):
		return kernelError{err, machine.ErrNotExist}
	}
	return err
}

// handle returns a netlink handle bound to the named namespace, or to the
// host's for "", from the cache, with the library's handle; Close gives
// it back. A missing namespace is machine.ErrNotExist.
func (k *Kernel) handle(ns string) (*nsHandle, error) {
	h, err := k.handles.get(k, ns, true)
	if h != nil {
		h.links = nil // the library's calls are changes, or reads of their own
	}
	return h, err
}

// socket is handle for topo's own requests and dumps only: its Handle may
// be nil.
func (k *Kernel) socket(ns string) (*nsHandle, error) {
	return k.handles.get(k, ns, false)
}

// openNetnsOrHost opens a named namespace, or duplicates the host's handle
// for "", so that the caller always closes what it gets.
func (k *Kernel) openNetnsOrHost(name string) (netns.NsHandle, error) {
	if name == "" {
		fd, err := unix.FcntlInt(uintptr(k.host), unix.F_DUPFD_CLOEXEC, 0)
		return netns.NsHandle(fd), err
	}
	return topons.Open(name)
}
