// Package names derives every name, path, mark and key that topo gives the
// kernel's objects and its own files: bridges, veths, namespaces, MAC
// addresses, ownership marks, iptables chains, /etc/netns and runtime
// paths, sysctl keys. It is pure: the runtime root is passed in (Runtime),
// never read from the environment here, so that a plan depends only on its
// inputs.
package names

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
)

// The hex digits of a hash that fit in an interface name (15 bytes) with
// its prefix.
const (
	BridgeDigits = 15 - len("br-")
	VethDigits   = 15 - len("veth")
)

// Bridge is the host bridge of a project's network. Interface names are
// limited to 15 bytes, so it is derived from a hash, as Docker's are.
func Bridge(project, network string) string {
	return "br-" + shortHash(project+"/"+network, BridgeDigits)
}

// Veth is the host end of a container's veth on a network.
func Veth(project, container, network string) string {
	return "veth" + shortHash(project+"/"+container+"/"+network, VethDigits)
}

// Namespace is the named namespace of a container, as `ip netns` lists it.
func Namespace(project, container string) string {
	return project + "-" + container
}

// IfName is a container's interface on its i-th network: eth0, eth1, …
func IfName(i int) string { return fmt.Sprintf("eth%d", i) }

// Endpoint is the name an endpoint (a container's veth on a network)
// carries in its mark: CONTAINER/NETWORK.
func Endpoint(container, network string) string { return container + "/" + network }

func shortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}

// MAC is the hardware address Docker gives a container with address a:
// 02:42 followed by the four bytes of a (of an IPv6 a, folded to four).
// topo gives a network's bridge the one of its gateway address the same
// way.
func MAC(a netip.Addr) net.HardwareAddr {
	if a.Is6() {
		// An IPv6-only endpoint's, or bridge's: the address folded to
		// 32 bits (its four words XORed), which tells apart the
		// addresses of one subnet as the last 32 bits do, and the
		// gateways of different subnets too.
		b := a.As16()
		var m [4]byte
		for k := range m {
			m[k] = b[k] ^ b[4+k] ^ b[8+k] ^ b[12+k]
		}
		return net.HardwareAddr{0x02, 0x42, m[0], m[1], m[2], m[3]}
	}
	b := a.As4()
	return net.HardwareAddr{0x02, 0x42, b[0], b[1], b[2], b[3]}
}

// ResolverAddr is where the embedded DNS answers in each namespace.
var ResolverAddr = netip.MustParseAddr("127.0.0.11")

// DefaultMTU is a network's MTU when the file gives none, the kernel's
// for a new bridge or veth.
const DefaultMTU = 1500

// MacvlanHost is the host's own macvlan on a macvlan network's parent
// (driver_opts host_link), through which the host reaches the network's
// containers.
func MacvlanHost(project, network string) string {
	return "mv-" + shortHash(project+"/"+network, BridgeDigits)
}

// IsAddrMAC says whether mac is one MAC makes, of some address.
func IsAddrMAC(mac net.HardwareAddr) bool {
	return len(mac) == 6 && mac[0] == 0x02 && mac[1] == 0x42
}
