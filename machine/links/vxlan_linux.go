package links

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/state"
)

// VxlanAdd creates an overlay's VXLAN device on the host, a port of its
// bridge, learning off and ARP proxy on, then marks it and sets it up;
// if marking fails the device is deleted again.
//
// Equivalent to: `ip link add LINK [mtu MTU] master MASTER type vxlan id VNI local LOCAL dstport PORT nolearning proxy;
// ip link set LINK alias MARK up`
func (k *Kernel) VxlanAdd(o op.VxlanAdd) error {
	h, err := k.handle("")
	if err != nil {
		return err
	}
	defer h.Close()
	master, err := linkByName(h.Handle, o.Master)
	if err != nil {
		return classify(fmt.Errorf("master: %w", err))
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = o.Link
	attrs.MTU = o.MTU
	attrs.MasterIndex = master.Attrs().Index
	vx := &netlink.Vxlan{LinkAttrs: attrs, VxlanId: o.VNI, SrcAddr: net.IP(o.Local.AsSlice()), Port: o.Port, Learning: false, Proxy: true}
	if err := h.LinkAdd(vx); err != nil {
		return classify(err)
	}
	if err := executeOn(h.sock, markUpRequest(o.Link, o.Mark.String())); err != nil {
		return errors.Join(fmt.Errorf("set alias and up: %w", err), h.LinkDel(vx))
	}
	return nil
}

// Fdb adds (append: a MAC may go to several hosts, as the all-zeros one
// does) or deletes a static forwarding entry of a VXLAN device. Deleting
// an entry, or from a device, that is gone succeeds.
//
// Equivalent to: `bridge fdb append|del MAC dev LINK dst DST self permanent`
func (k *Kernel) Fdb(o op.FdbAdd, add bool) error {
	n := &netlink.Neigh{Family: unix.AF_BRIDGE, Flags: unix.NTF_SELF, State: unix.NUD_PERMANENT | unix.NUD_NOARP,
		IP: net.IP(o.Dst.AsSlice()), HardwareAddr: o.MAC}
	return k.neigh(o.Link, n, add)
}

// Neigh adds or deletes a permanent neighbour entry of a link on the
// host, of the address's family (ARP's or IPv6 neighbour discovery's
// table). Deleting one that is gone succeeds.
//
// Equivalent to: `ip neigh add ADDR lladdr MAC dev LINK nud permanent` or `ip neigh del ADDR dev LINK`
func (k *Kernel) Neigh(o op.NeighAdd, add bool) error {
	fam := unix.AF_INET
	if o.Addr.Is6() {
		fam = unix.AF_INET6
	}
	n := &netlink.Neigh{Family: fam, State: unix.NUD_PERMANENT, IP: net.IP(o.Addr.AsSlice()), HardwareAddr: o.MAC}
	return k.neigh(o.Link, n, add)
}

func (k *Kernel) neigh(link string, n *netlink.Neigh, add bool) error {
	h, err := k.handle("")
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := linkByName(h.Handle, link)
	if err != nil {
		if !add && errors.Is(err, machine.ErrNotExist) {
			return nil
		}
		return err
	}
	n.LinkIndex = l.Attrs().Index
	switch {
	case add && n.Family == unix.AF_BRIDGE:
		err = h.NeighAppend(n)
	case add:
		err = h.NeighAdd(n)
	default:
		err = h.NeighDel(n)
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
	}
	return classify(err)
}

// observeTunnels reads the settings and entries of the project's VXLAN
// devices among the host's links.
//
// Equivalent to: `ip -d link show LINK; bridge fdb show dev LINK; ip neigh show dev LINK; ip -6 neigh show dev LINK`
func (k *Kernel) observeTunnels(project string, host *state.Namespace) error {
	var h *nsHandle
	for i := range host.Links {
		l := &host.Links[i]
		if l.Kind != "vxlan" || !names.Owns(l.Alias, project, names.KindTunnel) {
			continue
		}
		if h == nil {
			var err error
			if h, err = k.handle(""); err != nil {
				return err
			}
			defer h.Close()
		}
		v, err := readVxlan(h.Handle, l.Name)
		if err != nil {
			return fmt.Errorf("vxlan %s: %w", l.Name, err)
		}
		l.VXLAN = v
	}
	return nil
}

func readVxlan(h *netlink.Handle, name string) (*state.VXLAN, error) {
	link, err := h.LinkByName(name)
	if err != nil {
		return nil, err
	}
	vx, ok := link.(*netlink.Vxlan)
	if !ok {
		return nil, fmt.Errorf("is a %s, not a vxlan", link.Type())
	}
	out := &state.VXLAN{VNI: vx.VxlanId, Port: vx.Port, Learning: vx.Learning, Proxy: vx.Proxy}
	if a, ok := netip.AddrFromSlice(vx.SrcAddr); ok {
		out.Local = a.Unmap().String()
	}
	fdb, err := h.NeighList(link.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		return nil, fmt.Errorf("forwarding entries: %w", err)
	}
	for _, n := range fdb {
		if n.Flags&unix.NTF_SELF == 0 || n.IP == nil {
			continue
		}
		if a, ok := netip.AddrFromSlice(n.IP); ok {
			out.FDB = append(out.FDB, op.FdbEntry(n.HardwareAddr, a.Unmap()))
		}
	}
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		neigh, err := h.NeighList(link.Attrs().Index, fam)
		if err != nil {
			return nil, fmt.Errorf("neighbour entries: %w", err)
		}
		for _, n := range neigh {
			if n.State&unix.NUD_PERMANENT == 0 {
				continue
			}
			if a, ok := netip.AddrFromSlice(n.IP); ok {
				out.Neigh = append(out.Neigh, op.NeighEntry(a.Unmap(), n.HardwareAddr))
			}
		}
	}
	slices.Sort(out.FDB)
	slices.Sort(out.Neigh)
	return out, nil
}
