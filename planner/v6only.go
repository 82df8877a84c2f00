package planner

import (
	"net"

	"github.com/topolab/topo/names"
)

// IPv6-only networks (spec.Network.IPv4 false) have no IPv4 subnet or
// gateway in the model, and their endpoints no IPv4 address: everything
// that derives from an IPv4 address takes the IPv6 one there.

// gatewayMAC is the hardware address of the network's bridge: the one
// of its IPv4 gateway, of its IPv6 gateway on an IPv6-only network.
func (n *Network) gatewayMAC() net.HardwareAddr {
	if !n.Gateway.IsValid() {
		return names.MAC(n.Gateway6)
	}
	return names.MAC(n.Gateway)
}
