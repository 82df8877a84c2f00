package op

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/topolab/topo/names"
)

// VxlanAdd makes a VXLAN device on the host, a port of Master, marked
// and up: VNI, packets from Local (IPv4 or IPv6, the underlay's family)
// to Port, learning off (every entry is the file's) and ARP and IPv6
// neighbour solicitations answered from its neighbour entries (proxy),
// so that neither crosses the underlay. MTU 0 leaves the kernel's.
type VxlanAdd struct {
	Link, Master string
	VNI          int
	Local        netip.Addr
	Port         int
	MTU          int
	Mark         names.Mark
}

// FdbAdd adds a static forwarding entry to a VXLAN device: frames to
// MAC go to the host at Dst; the all-zeros MAC is broadcast and unknown
// unicast, one entry per other host.
type FdbAdd struct {
	Link string
	MAC  net.HardwareAddr
	Dst  netip.Addr
}

// FdbDel removes a forwarding entry, as FdbAdd names it.
type FdbDel struct {
	Link string
	MAC  net.HardwareAddr
	Dst  netip.Addr
}

// NeighAdd adds a permanent neighbour entry to a link: Addr (IPv4's
// ARP table or IPv6's neighbour table, by its family) is at MAC.
type NeighAdd struct {
	Link string
	Addr netip.Addr
	MAC  net.HardwareAddr
}

// NeighDel removes a neighbour entry, as NeighAdd names it.
type NeighDel struct {
	Link string
	Addr netip.Addr
	MAC  net.HardwareAddr
}

func (VxlanAdd) Name() string { return "vxlan-add" }
func (FdbAdd) Name() string   { return "fdb-add" }
func (FdbDel) Name() string   { return "fdb-del" }
func (NeighAdd) Name() string { return "neigh-add" }
func (NeighDel) Name() string { return "neigh-del" }

// Command: `ip link add LINK [mtu N] master MASTER type vxlan id VNI local
// LOCAL dstport PORT nolearning proxy`.
func (o VxlanAdd) Command() string {
	return fmt.Sprintf("ip link add %s%s master %s type vxlan id %d local %s dstport %d nolearning proxy",
		o.Link, mtuWord(o.MTU), o.Master, o.VNI, o.Local, o.Port)
}

// Command: `bridge fdb append MAC dev LINK dst DST self permanent`.
func (o FdbAdd) Command() string {
	return fmt.Sprintf("bridge fdb append %s dev %s dst %s self permanent", o.MAC, o.Link, o.Dst)
}

// Command: `bridge fdb del MAC dev LINK dst DST self`.
func (o FdbDel) Command() string {
	return fmt.Sprintf("bridge fdb del %s dev %s dst %s self", o.MAC, o.Link, o.Dst)
}

// Command: `ip neigh add ADDR lladdr MAC dev LINK nud permanent`.
func (o NeighAdd) Command() string {
	return fmt.Sprintf("ip neigh add %s lladdr %s dev %s nud permanent", o.Addr, o.MAC, o.Link)
}

// Command: `ip neigh del ADDR dev LINK`.
func (o NeighDel) Command() string {
	return fmt.Sprintf("ip neigh del %s dev %s", o.Addr, o.Link)
}

// FdbEntry is a forwarding entry as state.VXLAN lists it: "MAC DST".
func FdbEntry(mac net.HardwareAddr, dst netip.Addr) string { return mac.String() + " " + dst.String() }

// NeighEntry is a neighbour entry as state.VXLAN lists it: "ADDR MAC".
func NeighEntry(a netip.Addr, mac net.HardwareAddr) string { return a.String() + " " + mac.String() }

func init() {
	register("vxlan-add", func(w *wire) (Operation, error) {
		m, err := parseMark(w.Alias)
		if err != nil {
			return nil, err
		}
		local, err := netip.ParseAddr(w.Local)
		return VxlanAdd{Link: w.Link, Master: w.Master, VNI: w.VNI, Local: local, Port: w.Port, MTU: w.MTU, Mark: m}, err
	})
	register("fdb-add", func(w *wire) (Operation, error) {
		mac, dst, err := fdbWire(w)
		return FdbAdd{Link: w.Link, MAC: mac, Dst: dst}, err
	})
	register("fdb-del", func(w *wire) (Operation, error) {
		mac, dst, err := fdbWire(w)
		return FdbDel{Link: w.Link, MAC: mac, Dst: dst}, err
	})
	register("neigh-add", func(w *wire) (Operation, error) {
		a, mac, err := neighWire(w)
		return NeighAdd{Link: w.Link, Addr: a, MAC: mac}, err
	})
	register("neigh-del", func(w *wire) (Operation, error) {
		a, mac, err := neighWire(w)
		return NeighDel{Link: w.Link, Addr: a, MAC: mac}, err
	})
}

func fdbWire(w *wire) (net.HardwareAddr, netip.Addr, error) {
	mac, err := net.ParseMAC(w.MAC)
	if err != nil {
		return nil, netip.Addr{}, err
	}
	dst, err := netip.ParseAddr(w.Remote)
	return mac, dst, err
}

func neighWire(w *wire) (netip.Addr, net.HardwareAddr, error) {
	a, err := netip.ParseAddr(w.Addr)
	if err != nil {
		return a, nil, err
	}
	mac, err := net.ParseMAC(w.MAC)
	return a, mac, err
}

func (o VxlanAdd) fill(w *wire) {
	w.Link, w.Alias, w.Master, w.MTU = o.Link, o.Mark.String(), o.Master, o.MTU
	w.VNI, w.Local, w.Port = o.VNI, o.Local.String(), o.Port
}
func (o FdbAdd) fill(w *wire)   { w.Link, w.MAC, w.Remote = o.Link, o.MAC.String(), o.Dst.String() }
func (o FdbDel) fill(w *wire)   { w.Link, w.MAC, w.Remote = o.Link, o.MAC.String(), o.Dst.String() }
func (o NeighAdd) fill(w *wire) { w.Link, w.Addr, w.MAC = o.Link, o.Addr.String(), o.MAC.String() }
func (o NeighDel) fill(w *wire) { w.Link, w.Addr, w.MAC = o.Link, o.Addr.String(), o.MAC.String() }
