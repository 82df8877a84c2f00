package op

import (
	"net"

	"github.com/topolab/topo/names"
)

// MacvlanModes are the macvlan modes, as Docker's macvlan_mode and ip
// name them.
var MacvlanModes = []string{"bridge", "private", "vepa", "passthru"}

// MacvlanAdd makes a macvlan link of Parent (a link of the host) called
// Link, directly in namespace NS, with hardware address MAC, in Mode
// (one of MacvlanModes); marked and up. MTU 0 leaves the kernel's (the
// parent's).
type MacvlanAdd struct {
	NS, Link     string
	Parent, Mode string
	MAC          net.HardwareAddr
	MTU          int
	Mark         names.Mark
}

func (MacvlanAdd) Name() string { return "macvlan-add" }

// Command: `ip link add link PARENT name LINK address MAC [mtu N] netns NS
// type macvlan mode MODE`.
func (o MacvlanAdd) Command() string {
	return "ip link add link " + o.Parent + " name " + o.Link + macWord(o.MAC) + mtuWord(o.MTU) + netnsWord(o.NS) + " type macvlan mode " + o.Mode
}

func netnsWord(ns string) string {
	if ns == "" {
		return ""
	}
	return " netns " + ns
}

func init() {
	register("macvlan-add", func(w *wire) (Operation, error) {
		m, err := parseMark(w.Alias)
		if err != nil {
			return nil, err
		}
		mac, err := parseMAC(w.MAC)
		return MacvlanAdd{NS: w.NS, Link: w.Link, Parent: w.Parent, Mode: w.Mode, MAC: mac, MTU: w.MTU, Mark: m}, err
	})
}

func (o MacvlanAdd) fill(w *wire) {
	w.NS, w.Link, w.Alias, w.Parent, w.Mode = o.NS, o.Link, o.Mark.String(), o.Parent, o.Mode
	w.MAC, w.MTU = macString(o.MAC), o.MTU
}
