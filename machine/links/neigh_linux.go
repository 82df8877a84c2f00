package links

import (
	"fmt"
	"net"
	"slices"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/topolab/topo/machine/nlattr"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/state"
)

// readNeighbours fills the Neighbours of the bridges of the host that
// topo did not make (links, as links read them, with their infos), in
// one dump of the host's IPv4 neighbour table; none when there is no such
// bridge. An external network picks no address they hold.
//
// Equivalent to: `ip -4 neigh show dev BRIDGE` for each
func readNeighbours(h *nsHandle, infos []linkInfo, links []state.Link) error {
	foreign := map[int]*state.Link{}
	for _, li := range infos {
		if _, topo := names.ParseMark(li.Alias); li.Kind != "bridge" || topo {
			continue
		}
		for i := range links {
			if links[i].Name == li.Name {
				foreign[li.Index] = &links[i]
			}
		}
	}
	if len(foreign) == 0 {
		return nil
	}
	neigh, err := retryDump(func() ([]addrInfo, error) { return dumpNeighbours(h.sock) })
	if err != nil {
		return fmt.Errorf("list neighbours: %w", err)
	}
	for _, n := range neigh {
		if l := foreign[n.Index]; l != nil && !slices.Contains(l.Neighbours, n.CIDR) {
			l.Neighbours = append(l.Neighbours, n.CIDR)
		}
	}
	for _, l := range foreign {
		slices.Sort(l.Neighbours)
	}
	return nil
}

// dumpNeighbours lists the IPv4 neighbour entries of sh's namespace: the
// link's index and the address (CIDR is the bare address here).
//
// Equivalent to: `ip -4 neigh`
func dumpNeighbours(sh *nl.SocketHandle) ([]addrInfo, error) {
	var out []addrInfo
	err := dump(sh, unix.RTM_GETNEIGH, unix.RTM_NEWNEIGH, &netlink.Ndmsg{Family: unix.AF_INET}, nil,
		func(msg []byte) error {
			if len(msg) < unix.SizeofNdMsg {
				return fmt.Errorf("short neighbour message (%d bytes)", len(msg))
			}
			ndm := (*unix.NdMsg)(unsafe.Pointer(&msg[0]))
			if ndm.Family != unix.AF_INET {
				return nil
			}
			if ndm.State&unix.NUD_NOARP != 0 {
				return nil // multicast and broadcast: no host
			}
			return nlattr.Each(msg[unix.SizeofNdMsg:], func(typ uint16, v []byte) error {
				if typ == unix.NDA_DST && len(v) == net.IPv4len && net.IP(v).IsGlobalUnicast() {
					out = append(out, addrInfo{Index: int(ndm.Ifindex), CIDR: net.IP(v).String()})
				}
				return nil
			})
		})
	return out, err
}
