package firewall

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/state"
)

// Underlay is what the rules of a host with overlay networks need: its
// own underlay address, and those of the file's other hosts, the only
// ones whose VXLAN packets it takes.
type Underlay struct {
	Local netip.Addr
	Peers []netip.Addr
}

// vxlanRules drop, in TOPO-INPUT of the underlay's family, VXLAN
// packets to the host's underlay address from anything but the file's
// other hosts: otherwise any machine of the underlay could put frames on
// the overlays. One
// negated range match per peer, stacked: the packet is dropped when it
// is from none of them.
func vxlanRules(project string, u *Underlay) []state.FwRule {
	if u == nil {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "-d %s -p udp -m udp --dport %d", host(u.Local), names.VXLANPort)
	for _, p := range u.Peers {
		fmt.Fprintf(&b, " -m iprange ! --src-range %s-%s", p, p)
	}
	fmt.Fprintf(&b, " %s -j DROP", comment(project, names.KindTunnel, "underlay"))
	return []state.FwRule{{Spec: b.String()}}
}
