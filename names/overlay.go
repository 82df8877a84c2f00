package names

import (
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
)

// KindTunnel marks an overlay network's VXLAN device; NAME is the
// network's.
const KindTunnel Kind = "vxlan"

// VXLANDigits are the hex digits of a hash in a VXLAN device's name.
const VXLANDigits = 15 - len("vx-")

// VXLAN is the VXLAN device of a project's overlay network on each host.
func VXLAN(project, network string) string {
	return "vx-" + shortHash(project+"/"+network, VXLANDigits)
}

// VXLANPort is the UDP port of VXLAN (IANA's, RFC 7348), the kernel's
// dstport for topo's overlays.
const VXLANPort = 4789

// VXLANOverhead is what VXLAN adds to a frame on an IPv4 underlay (outer
// IP 20, UDP 8, VXLAN 8, inner Ethernet 14): an overlay's MTU is its
// underlay's minus this. VXLANOverhead6 is an IPv6 underlay's, whose
// outer header is 40.
const (
	VXLANOverhead  = 50
	VXLANOverhead6 = 70
)

// VXLANOverheadOn is the overhead of VXLAN on an underlay whose
// addresses are of local's family.
func VXLANOverheadOn(local netip.Addr) int {
	if local.Is6() {
		return VXLANOverhead6
	}
	return VXLANOverhead
}

// VNI is the VXLAN network identifier of an overlay network whose file
// gives none: from a hash of project and network, the same on every host,
// in 1 to 2^24-1 with the low 4096 left out (where hand-made tunnels and
// examples tend to be).
func VNI(project, network string) int {
	sum := sha256.Sum256([]byte("vni/" + project + "/" + network))
	const span = 1<<24 - 1 - 4096
	return 4096 + int(binary.BigEndian.Uint32(sum[:4])%span) + 1
}
