package op

import (
	"fmt"
	"net"
	"strings"

	"github.com/topolab/topo/names"
)

// ipIn is the start of an ip command in namespace ns ("" the host).
func ipIn(ns string) string {
	if ns == "" {
		return "ip "
	}
	return "ip -n " + ns + " "
}

// NetnsAdd makes a named namespace with lo up and marked; a namespace is
// what a container is.
type NetnsAdd struct {
	NS   string
	Mark names.Mark
}

// NetnsDel removes a named namespace, refused when Mark is set and lo's
// differs. Its veths go with it.
type NetnsDel struct {
	NS   string
	Mark names.Mark
}

// BridgeAdd makes a bridge with its hardware address set, marked and up
// (a network's). MTU 0 leaves the kernel's (1500).
type BridgeAdd struct {
	NS, Link string
	MAC      net.HardwareAddr
	MTU      int
	Mark     names.Mark
}

// VethAdd makes a veth pair: Link in NS, a port of Master (in hairpin
// mode) when there is one, with hardware address LinkMAC when set, and
// Peer moved to PeerNS with hardware address MAC; both ends are marked
// and up. MTU 0 leaves the kernel's (1500) on both ends. Without a
// master it is a point-to-point link between two namespaces.
type VethAdd struct {
	NS, Link, Master string
	Peer, PeerNS     string
	MAC              net.HardwareAddr
	LinkMAC          net.HardwareAddr
	MTU              int
	Mark             names.Mark
}

// LinkDel deletes a link, refused when Mark is set and the link's
// differs, so that nothing changed since the plan is deleted.
type LinkDel struct {
	NS, Link string
	Mark     names.Mark
}

// LinkSetMAC sets a link's hardware address: a bridge's, put back.
type LinkSetMAC struct {
	NS, Link string
	MAC      net.HardwareAddr
}

// LinkSetMTU sets a link's MTU.
type LinkSetMTU struct {
	NS, Link string
	MTU      int
}

// Hairpin sets a bridge port's hairpin mode.
type Hairpin struct {
	NS, Link string
	On       bool
}

// LinkUp sets a link up.
type LinkUp struct{ NS, Link string }

// LinkDown sets a link down.
type LinkDown struct{ NS, Link string }

func (NetnsAdd) Name() string   { return "netns-add" }
func (NetnsDel) Name() string   { return "netns-del" }
func (BridgeAdd) Name() string  { return "bridge-add" }
func (VethAdd) Name() string    { return "veth-add" }
func (LinkDel) Name() string    { return "link-del" }
func (LinkSetMAC) Name() string { return "link-mac" }
func (LinkSetMTU) Name() string { return "link-mtu" }
func (Hairpin) Name() string    { return "hairpin" }
func (LinkUp) Name() string     { return "link-up" }
func (LinkDown) Name() string   { return "link-down" }

// Command: `ip netns add NS` (lo's mark and up follow in the same step).
func (o NetnsAdd) Command() string { return "ip netns add " + o.NS }

// Command: `ip netns del NS`.
func (o NetnsDel) Command() string { return "ip netns del " + o.NS }

// Command: `ip link add LINK address MAC [mtu N] type bridge`.
func (o BridgeAdd) Command() string {
	return ipIn(o.NS) + "link add " + o.Link + macWord(o.MAC) + mtuWord(o.MTU) + " type bridge"
}

// Command: `ip link add LINK [address MAC] [mtu N] [master MASTER] type
// veth peer name PEER address MAC [mtu N] netns PEERNS`.
func (o VethAdd) Command() string {
	master := ""
	if o.Master != "" {
		master = " master " + o.Master
	}
	return fmt.Sprintf("%slink add %s%s%s%s type veth peer name %s%s%s netns %s",
		ipIn(o.NS), o.Link, macWord(o.LinkMAC), mtuWord(o.MTU), master, o.Peer, macWord(o.MAC), mtuWord(o.MTU), o.PeerNS)
}

// Command: `ip [-n NS] link del LINK`.
func (o LinkDel) Command() string { return ipIn(o.NS) + "link del " + o.Link }

// Command: `ip [-n NS] link set LINK address MAC`.
func (o LinkSetMAC) Command() string {
	return ipIn(o.NS) + "link set " + o.Link + " address " + o.MAC.String()
}

// Command: `ip [-n NS] link set LINK mtu N`.
func (o LinkSetMTU) Command() string {
	return fmt.Sprintf("%slink set %s mtu %d", ipIn(o.NS), o.Link, o.MTU)
}

// Command: `ip [-n NS] link set LINK type bridge_slave hairpin on|off`.
func (o Hairpin) Command() string {
	return ipIn(o.NS) + "link set " + o.Link + " type bridge_slave hairpin " + onOff(o.On)
}

// Command: `ip [-n NS] link set LINK up`.
func (o LinkUp) Command() string { return ipIn(o.NS) + "link set " + o.Link + " up" }

// Command: `ip [-n NS] link set LINK down`.
func (o LinkDown) Command() string { return ipIn(o.NS) + "link set " + o.Link + " down" }

func macWord(mac net.HardwareAddr) string {
	if len(mac) == 0 {
		return ""
	}
	return " address " + mac.String()
}

func mtuWord(mtu int) string {
	if mtu == 0 {
		return ""
	}
	return fmt.Sprintf(" mtu %d", mtu)
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// Seq is the Steps, in order, as one step: only ever an undo, that rebuilds
// in one go what one deletion removed (a namespace with its veths, their
// addresses and routes; a bridge with its addresses).
type Seq struct {
	Steps []Step
}

func (Seq) Name() string { return "seq" }

// Command is the parts' commands, joined by "; ".
func (o Seq) Command() string {
	parts := make([]string, len(o.Steps))
	for i, p := range o.Steps {
		parts[i] = p.Command()
	}
	return strings.Join(parts, "; ")
}

// The wire form of these operations (see wire.go).
func init() {
	register("netns-add", func(w *wire) (Operation, error) {
		m, err := parseMark(w.Alias)
		return NetnsAdd{NS: w.NS, Mark: m}, err
	})
	register("netns-del", func(w *wire) (Operation, error) {
		m, err := parseMark(w.Alias)
		return NetnsDel{NS: w.NS, Mark: m}, err
	})
	register("bridge-add", func(w *wire) (Operation, error) {
		m, err := parseMark(w.Alias)
		if err != nil {
			return nil, err
		}
		mac, err := parseMAC(w.MAC)
		return BridgeAdd{NS: w.NS, Link: w.Link, MAC: mac, MTU: w.MTU, Mark: m}, err
	})
	register("veth-add", func(w *wire) (Operation, error) {
		m, err := parseMark(w.Alias)
		if err != nil {
			return nil, err
		}
		mac, err := parseMAC(w.MAC)
		if err != nil {
			return nil, err
		}
		linkMAC, err := parseMAC(w.LinkMAC)
		return VethAdd{NS: w.NS, Link: w.Link, Master: w.Master, Peer: w.Peer, PeerNS: w.PeerNS, MAC: mac, LinkMAC: linkMAC, MTU: w.MTU, Mark: m}, err
	})
	register("link-del", func(w *wire) (Operation, error) {
		m, err := parseMark(w.Alias)
		return LinkDel{NS: w.NS, Link: w.Link, Mark: m}, err
	})
	register("link-mac", func(w *wire) (Operation, error) {
		mac, err := parseMAC(w.MAC)
		return LinkSetMAC{NS: w.NS, Link: w.Link, MAC: mac}, err
	})
	register("link-mtu", func(w *wire) (Operation, error) {
		return LinkSetMTU{NS: w.NS, Link: w.Link, MTU: w.MTU}, nil
	})
	register("hairpin", func(w *wire) (Operation, error) {
		if w.Value != "on" && w.Value != "off" {
			return nil, fmt.Errorf("hairpin %q: want on or off", w.Value)
		}
		return Hairpin{NS: w.NS, Link: w.Link, On: w.Value == "on"}, nil
	})
	register("link-up", func(w *wire) (Operation, error) { return LinkUp{NS: w.NS, Link: w.Link}, nil })
	register("link-down", func(w *wire) (Operation, error) { return LinkDown{NS: w.NS, Link: w.Link}, nil })
	register("seq", func(w *wire) (Operation, error) {
		s := Seq{Steps: make([]Step, len(w.Steps))}
		for i := range w.Steps {
			part, err := fromWire(&w.Steps[i])
			if err != nil {
				return nil, fmt.Errorf("part %d: %w", i+1, err)
			}
			s.Steps[i] = part
		}
		return s, nil
	})
}

func (o NetnsAdd) fill(w *wire) { w.NS, w.Alias = o.NS, o.Mark.String() }
func (o NetnsDel) fill(w *wire) { w.NS, w.Alias = o.NS, o.Mark.String() }
func (o BridgeAdd) fill(w *wire) {
	w.NS, w.Link, w.MAC, w.MTU, w.Alias = o.NS, o.Link, macString(o.MAC), o.MTU, o.Mark.String()
}
func (o VethAdd) fill(w *wire) {
	w.NS, w.Link, w.Alias, w.Master, w.Peer, w.PeerNS = o.NS, o.Link, o.Mark.String(), o.Master, o.Peer, o.PeerNS
	w.MAC, w.LinkMAC, w.MTU = macString(o.MAC), macString(o.LinkMAC), o.MTU
}
func (o LinkDel) fill(w *wire)    { w.NS, w.Link, w.Alias = o.NS, o.Link, o.Mark.String() }
func (o LinkSetMAC) fill(w *wire) { w.NS, w.Link, w.MAC = o.NS, o.Link, macString(o.MAC) }
func (o LinkSetMTU) fill(w *wire) { w.NS, w.Link, w.MTU = o.NS, o.Link, o.MTU }
func (o Hairpin) fill(w *wire)    { w.NS, w.Link, w.Value = o.NS, o.Link, onOff(o.On) }
func (o LinkUp) fill(w *wire)     { w.NS, w.Link = o.NS, o.Link }
func (o LinkDown) fill(w *wire)   { w.NS, w.Link = o.NS, o.Link }
func (o Seq) fill(w *wire) {
	w.Steps = make([]wire, len(o.Steps))
	for i := range o.Steps {
		w.Steps[i] = toWire(&o.Steps[i])
	}
}
