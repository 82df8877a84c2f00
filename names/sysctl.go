package names

import (
	"slices"
	"strings"
)

// IPForward is the host sysctl that lets non-internal networks reach
// out; IPv6Forward IPv6's, for non-internal networks with IPv6.
const (
	IPForward   = "net.ipv4.ip_forward"
	IPv6Forward = "net.ipv6.conf.all.forwarding"
)

// HostSysctls are the host sysctls a snapshot carries, with their records
// from before topo first changed them.
var HostSysctls = []string{IPForward, IPv6Forward}

// The host's port ranges, which publishes without a host port pick from.
const (
	EphemeralPorts = "net.ipv4.ip_local_port_range"
	ReservedPorts  = "net.ipv4.ip_local_reserved_ports"
)

// RouteLocalnet is the per-interface sysctl that lets the host reach a
// publish through 127.0.0.1: packets from 127.0.0.1 may then be routed out
// of the bridge (and are masqueraded on the way).
func RouteLocalnet(link string) string { return "net.ipv4.conf." + link + ".route_localnet" }

// IPv6Off is the sysctl that turns IPv6 off on an interface. An internal
// network's bridge has it on 1: its link-local address would be an address
// of the host that the network's containers reach, given an IPv6 address
// of their own, where no iptables rule of topo's looks.
func IPv6Off(link string) string { return "net.ipv6.conf." + link + ".disable_ipv6" }

// SysctlLink is the interface of a per-interface key
// (net.ipv4.conf.LINK.KEY, net.ipv6.conf.LINK.KEY).
func SysctlLink(key string) (string, bool) {
	for _, pre := range []string{"net.ipv4.conf.", "net.ipv6.conf."} {
		if rest, ok := strings.CutPrefix(key, pre); ok {
			link, _, _ := strings.Cut(rest, ".")
			return link, true
		}
	}
	return "", false
}

// SysctlPath maps a dotted key to its file under /proc/sys; ok is false for
// keys that would leave it.
func SysctlPath(key string) (string, bool) {
	parts := strings.Split(key, ".")
	for _, p := range parts {
		if p == "" || strings.ContainsAny(p, "/\x00") {
			return "", false
		}
	}
	return "/proc/sys/" + strings.Join(parts, "/"), true
}

// RouteProto is the route protocol number (rtm_protocol) of the routes
// topo adds for a file's routes:, shown by `ip route` as "proto 211": it
// tells them from the kernel's, from DHCP's and from routes added by
// hand, which topo leaves alone. 211 is unassigned in iproute2's
// rt_protos.
const RouteProto = 211

// FormatSysctlRecord writes a namespace's sysctl record (see
// Runtime.NetnsSysctls): the keys topo set there, sorted, one a line.
func FormatSysctlRecord(keys []string) string {
	keys = slices.Sorted(slices.Values(keys))
	return strings.Join(keys, "\n") + "\n"
}

// ParseSysctlRecord reads a record as FormatSysctlRecord writes it.
func ParseSysctlRecord(s string) []string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}
